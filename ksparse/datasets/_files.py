"""File helpers for the data loaders: find a file, read exactly n bytes, download (with pooch) and verify.

Every reader here is bounded by what the file really holds: a header that promises more
data than the file contains raises ``ValueError`` before (or instead of) a large allocation.
"""

import gzip
import hashlib
import os
import urllib.parse
import zlib

from ksparse.errors import DataFileError

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


def contents_md5(path):
    """md5 hex digest of the file's contents, decompressed when it ends in ``.gz``.

    Raises
    ------
    ksparse.errors.DataFileError
        If a ``.gz`` file is truncated or not valid gzip.
    """
    digest = hashlib.md5()
    try:
        with open_data(path) as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    except (EOFError, OSError, zlib.error) as e:
        raise DataFileError(f"{path} is truncated or not valid gzip ({e}); "
                            "delete it and fetch it again") from None
    return digest.hexdigest()


def download(name, mirrors, folder, known_hash=None, md5=None, timeout=60, retries=1, progress=False):
    """Download ``name`` into ``folder`` with pooch, from the first mirror that serves a good copy.

    pooch streams each attempt into a temporary file in ``folder``, checks ``known_hash``,
    and only then moves it into place (so a failed download leaves nothing behind); it
    retries a failed attempt ``retries`` times. The file is then checked against ``md5``,
    the digest of its decompressed bytes, and deleted if that does not match.

    Parameters
    ----------
    name : str
        File name appended to each mirror's base URL, e.g. ``"train-images-idx3-ubyte.gz"``.
    mirrors : sequence of str
        Base URLs, tried in turn.
    folder : str
        Where the file goes (``folder/name``).
    known_hash : str, optional
        pooch's hash of the file as served, e.g. ``"md5:f68b..."``; None skips that check.
    md5 : str, optional
        md5 hex digest of the decompressed bytes (of the bytes themselves without ``.gz``).
    timeout : float
        Seconds to wait for the server.
    retries : int
        Further attempts per mirror after a failed one.
    progress : bool
        Draw pooch's progress bar (tqdm) on stderr.

    Returns
    -------
    path : str

    Raises
    ------
    ValueError
        If no mirror delivered a verified copy; the message lists each mirror's failure.
    """
    import pooch
    import requests

    failures, made = [], _missing_folders(folder)
    logger, level = pooch.get_logger(), pooch.get_logger().level
    logger.setLevel("ERROR")  # no "Failed to download... Will attempt again" lines: one summary below
    try:
        for base in mirrors:
            host = urllib.parse.urlsplit(base).netloc or base
            store = pooch.create(folder, base.rstrip("/") + "/", registry={name: known_hash},
                                 retry_if_failed=retries)
            try:
                fetcher = pooch.HTTPDownloader(progressbar=progress, timeout=timeout)
                path = store.fetch(name, downloader=fetcher)
                _check_md5(path, md5)
            except (ValueError, OSError, requests.exceptions.RequestException) as e:
                failures.append(f"{host}: {_reason(e)}")
                continue
            return path
    finally:
        logger.setLevel(level)
    for path in made:  # a failed download leaves no folder behind either
        if os.path.isdir(path) and not os.listdir(path):
            os.rmdir(path)
    tried = "; ".join(failures) if failures else "no mirrors given"
    raise ValueError(f"could not download {name} ({tried})")


def _missing_folders(folder):
    """The folders from ``folder`` up that do not exist yet, deepest first."""
    made, path = [], os.path.abspath(folder)
    while not os.path.exists(path):
        made.append(path)
        path = os.path.dirname(path)
    return made


def _reason(error):
    """A short reason for a failed download: 'no connection' or the exception's first words."""
    import requests

    if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return "no connection" if isinstance(error, requests.exceptions.ConnectionError) else "timed out"
    text = " ".join(str(error).split())
    return text if len(text) <= 120 else text[:117] + "..."


def _check_md5(path, md5):
    """Delete ``path`` and raise ValueError unless its decompressed bytes have md5 ``md5`` (None: any)."""
    if md5 is None:
        return
    try:
        got = contents_md5(path)
        if got != md5:
            raise ValueError(f"md5 of the decompressed bytes is {got}, expected {md5}")
    except ValueError:
        os.remove(path)
        raise
