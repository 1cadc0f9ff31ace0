"""Files in and out, the bottom layer beside :mod:`ksparse.backend`: the one atomic-write
helper that checkpoints, datasets and plots share, and bounded ``.npy``/``.npz`` readers.

The readers never unpickle, never advise ``allow_pickle``, and never allocate more than
the file's own bytes describe: a header that promises more data than the file holds is
refused before any array is made. Every fault is a :class:`ksparse.errors.FileFormatError`
(a ``ValueError``), raised as the subclass the caller asks for.
"""

import argparse
import contextlib
import os
import signal
import tempfile
import threading
import zipfile
import zlib

import numpy as np

from ksparse.errors import DataFileError, OutputNotWritableError

CHUNK = 1 << 20
# deflate cannot expand by more than about 1032:1; a member declaring more is corrupt
_MAX_DEFLATE_RATIO = 1032
_FORMAT_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, SyntaxError,
                  RecursionError, MemoryError, EOFError, OSError, zlib.error, zipfile.BadZipFile,
                  NotImplementedError, UnicodeDecodeError)


def _umask():
    """The process's umask (read by setting and restoring it; there is no read-only call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, write, interruptible=False):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it into place.

    A crash leaves either the old file or the new one, never half of one. The new file
    gets the mode any other tool would create it with, ``0o666`` less the umask (not the
    ``0o600`` of a temporary file).

    Parameters
    ----------
    path : str or path-like
    write : callable
        ``write(fileobj)`` writes the whole content.
    interruptible : bool, default False
        False: Ctrl-C or SIGTERM during ``write`` is held until the file is in place (for
        writes that only serialise what is in memory, such as a checkpoint). True: for a
        ``write`` that computes what it writes, block by block, and may run for long: the
        signal interrupts it at once, the temporary file is removed and the old file (if any)
        is kept. The temporary file's creation, rename and removal are never interrupted.

    Raises
    ------
    ksparse.errors.OutputNotWritableError
        (an ``OSError``) If ``path`` is empty or a folder, or its folder cannot be made or written to.
    """
    path = os.fspath(path)
    if not path.strip():  # else the rename fails with the temporary file's name
        raise OutputNotWritableError(f"the path to write is empty ({path!r}); give the name of a file")
    if os.path.isdir(path):  # else the rename fails with the temporary file's name, or the folder's
        raise OutputNotWritableError(f"{path!r} is a folder; give the name of a file to write")
    folder = os.path.dirname(os.path.abspath(path))
    f = tmp = None
    try:
        with _signals_deferred():  # a signal between mkstemp and the cleanup would leave a temporary file
            try:
                os.makedirs(folder, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
            except OSError as e:  # named by the file asked for, not by the temporary file's name
                raise OutputNotWritableError(f"cannot write {path!r} ({_why(folder, e)}); choose a folder "
                                             "you can write to") from None
            f = os.fdopen(fd, "wb")
        with contextlib.nullcontext() if interruptible else _signals_deferred():
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            write(f)
            f.flush()
            os.fsync(f.fileno())
            with _signals_deferred():
                f.close()
                os.replace(tmp, path)
                tmp = None
    except BaseException:
        with _signals_deferred():
            if f is not None:
                f.close()
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
        raise


def _why(folder, e):
    """Why ``folder`` could not be made or written: a file where a folder should be, else ``e``'s reason
    (makedirs says 'File exists' for a path through a file)."""
    parent = os.path.abspath(folder)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    return f"{parent!r} is a file, not a folder" if not os.path.isdir(parent) else (e.strerror or str(e))


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGINT and SIGTERM until the block ends, then hand them to their handlers.

    A write is then finished (or undone) before Ctrl-C's KeyboardInterrupt or SIGTERM's
    handler runs. Python runs signal handlers in the main thread only, so elsewhere the
    block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: received.append((signum, frame))) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            if handler is not None:  # None: a handler set outside Python, left as it was
                signal.signal(s, handler)
        for signum, frame in received[:1]:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


def _read_into(f, n, what, error):
    """Read exactly ``n`` bytes of ``f`` into a new writable buffer, in chunks."""
    buf, got = bytearray(n), 0
    view = memoryview(buf)
    while got < n:
        chunk = f.read(min(CHUNK, n - got))
        if not chunk:
            raise error(f"{what} is truncated: its header describes {n} bytes of data but only {got} "
                        "follow; write the file again")
        view[got:got + len(chunk)] = chunk
        got += len(chunk)
    return buf


def read_npy_header(f, size, what, error=DataFileError):
    """The header of the ``.npy`` data at ``f``: ``(shape, fortran_order, dtype, n_bytes)``.

    Checks what :func:`read_npy` checks before reading the data (magic string, readable
    header, no Python objects, ``n_bytes`` of data after the header in a file of ``size``
    bytes) and leaves ``f`` at the start of the data.
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f"unknown .npy version {version}")
        start = f.tell()
    except Exception:  # numpy's header parser raises many kinds (tokenize.TokenError, ...)
        raise error(f"{what} is not a .npy array file (its header is missing or unreadable); "
                    "write it with numpy.save") from None
    if dtype.hasobject:
        raise error(f"{what} holds Python objects, which ksparse never loads (unpickling can run code); "
                    "save it as an array of numbers")
    n_bytes = int(np.prod([int(s) for s in shape], dtype=object)) * dtype.itemsize
    if n_bytes != size - start:
        raise error(f"{what} holds {max(size - start, 0)} bytes of data but its header (shape {shape}, "
                    f"{dtype}) describes {n_bytes}; the file is truncated or corrupt, write it again")
    return shape, fortran, dtype, n_bytes


def read_npy(f, size, what, error=DataFileError):
    """Read one ``.npy`` array from the binary file object ``f`` that holds ``size`` bytes.

    Parameters
    ----------
    f : binary file object, positioned at the start of the ``.npy`` data
    size : int
        The number of bytes ``f`` holds (the file's size, or a zip member's declared size).
    what : str
        How messages name the file, e.g. ``"'X.npy'"``.
    error : type
        The :class:`ksparse.errors.FileFormatError` subclass to raise.

    Returns
    -------
    ndarray, writable, with the header's shape and dtype

    Raises
    ------
    error
        For a wrong magic string, an unreadable header, Python objects (pickles), or a
        header whose shape and dtype describe other than the bytes that follow.
    """
    shape, fortran, dtype, n_bytes = read_npy_header(f, size, what, error)
    try:
        buf = _read_into(f, n_bytes, what, error)
        if n_bytes == 0:
            return np.zeros(shape, dtype=dtype)
        return np.frombuffer(buf, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    except error:
        raise
    except _FORMAT_ERRORS as e:
        raise error(f"{what} is corrupt ({type(e).__name__}); write it again") from None


def load_npy(path, error=DataFileError):
    """Read the ``.npy`` file at ``path`` with :func:`read_npy` (bounded, no pickles)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return read_npy(f, os.fstat(f.fileno()).st_size, repr(path), error)
    except OSError as e:
        raise error(f"cannot read {path!r} ({e.strerror or e})") from None


@contextlib.contextmanager
def open_npz(path, error=DataFileError, kind="an .npz archive", fix="write it with numpy.savez"):
    """Open an ``.npz`` (a zip of ``.npy`` members) as a :class:`zipfile.ZipFile`.

    Raises ``error("PATH is not KIND (why); FIX")`` when the file is not a readable zip archive.
    """
    path = os.fspath(path)
    try:
        zf = zipfile.ZipFile(path)
    except _FORMAT_ERRORS as e:
        raise error(f"{path!r} is not {kind} ({e}); {fix}") from None
    with zf:
        yield zf


def npz_keys(zf):
    """The array names in an open ``.npz``: its members ending in ``.npy``, without that suffix."""
    return [name[:-4] for name in zf.namelist() if name.endswith(".npy")]


def read_npz_array(zf, key, what, error=DataFileError):
    """Read the array ``key`` of an open ``.npz`` with :func:`read_npy`, bounded by the archive.

    Raises ``error`` if the member is missing, or if its declared size is more than its
    compressed bytes can hold.
    """
    try:
        info = zf.getinfo(key + ".npy")
    except KeyError:
        raise error(f"{what} has no array {key!r} (it holds {npz_keys(zf)})") from None
    limit = info.compress_size * (1 if info.compress_type == zipfile.ZIP_STORED else _MAX_DEFLATE_RATIO)
    if info.file_size > limit + 1024:
        raise error(f"{what}: member {key!r} declares {info.file_size} bytes, more than its "
                    f"{info.compress_size} stored bytes can hold; the file is corrupt, write it again")
    try:
        with zf.open(info) as f:
            return read_npy(f, info.file_size, f"{what} (array {key!r})", error)
    except error:
        raise
    except _FORMAT_ERRORS as e:
        raise error(f"{what} (array {key!r}) is corrupt ({type(e).__name__}: {e}); write it again") from None


def path_argument(text):
    """argparse's ``type`` for an option or argument that names a file or folder: the text itself,
    or ArgumentTypeError for an empty (or blank) one, which would otherwise name the current folder
    (``--out ""`` wrote into it) or fall back to a default unsaid (``--data-dir ""``).

    Raises
    ------
    argparse.ArgumentTypeError
        Which argparse reports as ``argument --out: is empty; ...``.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError(f"is empty ({text!r}); give the path of a file or folder")
    return text


def same_file(a, b):
    """True when paths ``a`` and ``b`` name one existing file (through links, ``..`` or case)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_parent(path, option):
    """Raise OSError unless the folder that is to hold the output FILE ``path`` exists.

    Output files are never given folders of their own: a missing folder is usually a typo.

    Raises
    ------
    ksparse.errors.OutputNotWritableError
        (an ``OSError``) Naming the option, the file and its missing folder.
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputNotWritableError(f"{option} {os.fspath(path)!r}: {folder!r} is a file, not a folder; "
                                     "choose another path")
    if not os.path.isdir(folder):
        raise OutputNotWritableError(f"{option} {os.fspath(path)!r}: its folder {folder!r} does not exist; "
                                     "create it first or choose another path")
    check_writable(folder, option + "'s folder")


def check_model_file(path, option):
    """Raise unless ``path`` can name a model file to write (``KSparseAutoencoder.save``,
    ``checkpoint_path``). The name ends in ``.npz`` (the file is an ``.npz`` archive, written under
    exactly the name given), it is not a folder, and its folder exists and can be written
    (:func:`check_parent`, the rule of ``ksparse encode``'s OUTPUT too: an output file is never
    given a folder of its own, a missing folder is usually a typo; output folders such as
    ``ksparse train --out`` are made).

    Raises
    ------
    ValueError
        For a name not ending in ``.npz``, naming the one to use.
    ksparse.errors.OutputNotWritableError
        (an ``OSError``) For an empty path, a folder, or a folder that is missing or not writable.
    """
    path = os.fspath(path)
    if not path.strip():
        raise OutputNotWritableError(f"{option} is empty ({path!r}); give the name of a file (model.npz)")
    if os.path.isdir(path):
        raise OutputNotWritableError(f"{option} {path!r} is a folder; give the name of a file to write "
                                     f"({os.path.join(path, 'model.npz')})")
    if not path.endswith(".npz"):
        raise ValueError(f"{option} {path!r}: a model file is an .npz archive; name it "
                         f"{os.path.splitext(path)[0] + '.npz'!r}")
    check_parent(path, option)


#: the file each form of codes is written as (:func:`ksparse.estimators.codes.save_codes`, ``ksparse
#: encode``'s OUTPUT): the dense array as a .npy, the arrays of the sparse and top-k forms in a .npz
CODE_SUFFIXES = {"dense": ".npy", "sparse": ".npz", "topk": ".npz"}


def check_codes_name(path, output, option="path", form="output={!r}"):
    """Raise unless ``path`` can name the file of codes of form ``output`` (:data:`CODE_SUFFIXES`):
    its name ends in that form's suffix (the file is written under exactly that name) and it is not
    a folder. Nothing is read or written.

    ``form`` names a form in the messages: ``"output={!r}"`` (Python) or ``"--form {}"`` (the command
    line).

    Raises
    ------
    ValueError
        For an unknown form, or a name with another suffix (``codes.txt``, ``codes``): the message
        lists the accepted suffixes and names the file to use.
    ksparse.errors.OutputNotWritableError
        (an ``OSError``) For an empty path or a folder.
    """
    path = os.fspath(path)
    if output not in CODE_SUFFIXES:
        raise ValueError(f"output must be one of {tuple(CODE_SUFFIXES)}, got {output!r}")
    want = CODE_SUFFIXES[output]
    if not path.strip():
        raise OutputNotWritableError(f"{option} is empty ({path!r}); give the name of a file (codes{want})")
    if os.path.isdir(path):
        raise OutputNotWritableError(f"{option} {path!r} is a folder; give the name of a file to write "
                                     f"({os.path.join(path, 'codes' + want)})")
    if not path.endswith(want):
        accepted = "; ".join(f"{suffix} for " + " or ".join(form.format(f) for f, s in CODE_SUFFIXES.items()
                                                             if s == suffix)
                             for suffix in dict.fromkeys(CODE_SUFFIXES.values()))
        raise ValueError(f"{option} {path!r}: {form.format(output)} writes {want} (the accepted "
                         f"suffixes: {accepted}); name it {os.path.splitext(path)[0] + want!r}")


def check_codes_file(path, output, option="path", form="output={!r}"):
    """:func:`check_codes_name`, and the folder that is to hold ``path`` exists and can be written
    (:func:`check_parent`): every check before codes are computed and written."""
    check_codes_name(path, output, option, form)
    check_parent(path, option)


def check_output_file(path, option):
    """Raise OSError unless :func:`atomic_write` can write the file ``path``, before any work: not a
    folder, and its folder (made if missing, as atomic_write does) writable.

    Raises
    ------
    ksparse.errors.OutputNotWritableError
        (an ``OSError``) Naming the option, the path and the reason.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise OutputNotWritableError(f"{option} {path!r} is a folder; give the name of a file to write")
    check_writable(os.path.dirname(os.path.abspath(path)), option + "'s folder")


#: suffixes of the files the commands write or read: a folder to be made with one is a slip
FILE_SUFFIXES = (".npz", ".npy", ".json", ".png", ".md", ".csv", ".txt", ".h5", ".hdf5")


def check_folder_name(folder, option="--out"):
    """Raise ValueError when ``folder``, an output folder that does not exist yet, is named like a
    file (``--out model.npz`` made a folder called model.npz); an existing folder is taken as is.
    The message begins with ``option`` (none when it is None: argparse names the option itself)."""
    ext = os.path.splitext(os.path.normpath(os.fspath(folder)))[1].lower()
    if ext in FILE_SUFFIXES and not os.path.exists(folder):
        stem = os.path.splitext(os.path.normpath(os.fspath(folder)))[0]
        raise ValueError(("" if option is None else f"{option} ") + f"{os.fspath(folder)!r} is the folder "
                         f"to write into, but it is named like a {ext} file; give a folder, such as {stem!r}")


def folder_argument(text):
    """argparse's ``type`` for an option that names an output folder (made if missing):
    :func:`path_argument`'s rule, then :func:`check_folder_name`'s (a folder to be made is not named
    like a file), the rule of ``ksparse train --out`` and ``ksparse reproduce --out``; the scripts of
    ``benchmarks/`` and ``reference/`` use it.

    Raises
    ------
    argparse.ArgumentTypeError
        Which argparse reports as ``argument --out: 'r.json' is the folder to write into, ...``.
    """
    text = path_argument(text)
    try:
        check_folder_name(text, None)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def check_writable(folder, option="--out"):
    """Raise OSError unless files can be created in ``folder`` (made if missing), before any work.

    The check creates and removes a probe file, so that it sees what creating the real
    output will see (permissions, a read-only file system, a path through a regular file);
    a folder it had to make is removed again.

    Raises
    ------
    ksparse.errors.OutputNotWritableError
        (an ``OSError``) Naming the folder, the reason and the option to change.
    """
    folder = os.fspath(folder)
    made = []
    try:
        missing, parent = [], os.path.abspath(folder)
        while not os.path.exists(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        for path in reversed(missing):
            os.mkdir(path)
            made.append(path)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".ksparse-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputNotWritableError(
            f"cannot write into {option} {folder!r} ({_why(folder, e)}); choose a folder you can write to"
        ) from None
    finally:
        for path in reversed(made):
            try:
                os.rmdir(path)
            except OSError:
                pass
