"""File helpers for the data loaders: find a file, read exactly n bytes, download and verify.

Every reader here is bounded by what the file really holds: a header that promises more
data than the file contains raises ``ValueError`` before (or instead of) a large allocation.
"""

import gzip
import hashlib
import io
import os
import urllib.error
import urllib.request
import zlib

from ksparse.errors import DataFileError
from ksparse.io import atomic_write

CHUNK = 1 << 20


def find_file(folders, names):
    """Return the first existing ``folder/name`` (folders outer, names inner), or None."""
    for folder in folders:
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    return None


def open_data(path):
    """Open ``path`` for binary reading, decompressing on the fly when it ends in ``.gz``."""
    if os.fspath(path).endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def on_disk_size(path):
    """Byte size of an uncompressed file, or None for ``.gz`` (unknown until decompressed)."""
    return None if os.fspath(path).endswith(".gz") else os.path.getsize(path)


def read_exact(f, n, what, digest=None):
    """Read exactly ``n`` bytes from ``f`` in chunks, so memory follows what the file really holds.

    Raises
    ------
    ValueError
        If the stream ends early (truncated file or a header that promises too much), or a
        compressed stream is corrupt.
    """
    chunks, got = [], 0
    try:
        while got < n:
            chunk = f.read(min(CHUNK, n - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except (EOFError, OSError, zlib.error) as e:
        raise DataFileError(f"{what} is truncated or corrupt ({e}); delete it and fetch it again") from None
    if got < n:
        raise DataFileError(
            f"{what} is truncated: its header promises {n} more bytes but only {got} follow; "
            "delete it and fetch it again"
        )
    data = b"".join(chunks)
    if digest is not None:
        digest.update(data)
    return data


def check_end(f, what):
    """Raise ValueError if ``f`` holds bytes beyond what its header described."""
    try:
        extra = f.read(1)
    except (EOFError, OSError, zlib.error) as e:
        raise DataFileError(f"{what} is truncated or corrupt ({e}); delete it and fetch it again") from None
    if extra:
        raise DataFileError(f"{what} holds more bytes than its header describes; the file is corrupt")


def gunzip_md5(data, what, max_bytes):
    """md5 hex digest of the decompressed ``data`` (gzip), reading at most ``max_bytes``."""
    digest, total = hashlib.md5(), 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            while chunk := f.read(CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise ValueError(f"{what} decompresses to more than {max_bytes} bytes")
                digest.update(chunk)
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{what} is truncated or not valid gzip ({e})") from None
    return digest.hexdigest()


def fetch(url, timeout, max_bytes):
    """GET ``url`` and return its body, refusing bodies larger than ``max_bytes``."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        chunks, total = [], 0
        while chunk := response.read(CHUNK):
            total += len(chunk)
            if total > max_bytes:
                raise ValueError(f"{url} sends more than {max_bytes} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def download_verified(name, mirrors, dest, md5, timeout=60, max_bytes=1 << 28):
    """Download ``name`` from the first mirror whose copy matches ``md5``; write it atomically.

    Parameters
    ----------
    name : str
        File name appended to each mirror's base URL, e.g. ``"train-images-idx3-ubyte.gz"``.
    mirrors : sequence of str
        Base URLs, tried in turn.
    dest : str
        Where the verified file goes (written through ``atomic_write``).
    md5 : str
        Expected md5 hex digest of the decompressed bytes (of the bytes themselves if ``name``
        does not end in ``.gz``).

    Returns
    -------
    dest : str

    Raises
    ------
    ValueError
        If no mirror delivered a verified copy; the message lists each mirror's failure.
        Nothing is written in that case.
    """
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + name
        try:
            data = fetch(url, timeout, max_bytes)
            if name.endswith(".gz"):
                got = gunzip_md5(data, url, max_bytes * 16)
            else:
                got = hashlib.md5(data).hexdigest()
            if got != md5:
                raise ValueError(f"md5 of the decompressed bytes is {got}, expected {md5}")
        except (ValueError, OSError, urllib.error.URLError) as e:
            failures.append(f"{url}: {e}")
            continue
        atomic_write(dest, lambda f, data=data: f.write(data))
        return dest
    tried = "; ".join(failures) if failures else "no mirrors given"
    raise ValueError(f"could not download {name} ({tried})")
