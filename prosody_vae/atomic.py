"""Writing files so that a crash, a kill or a full disk never leaves half a file under the real name.

Every file the package writes (wavs, figures, manifests, ``.npz``, JSON, reports, checkpoints) goes
through :func:`atomic_path`: it is written to a hidden temporary name in the same folder
(``.<name>.<random>.tmp<suffix>``, so libraries still infer the format from the suffix), flushed to
disk and renamed into place with ``os.replace``, which is atomic on POSIX. A reader sees the old file
or the new one, never a mix. If writing fails, the temporary file is removed and the old file stays.

:func:`remove_stale_temporaries` clears what a ``kill -9`` in the middle of a write left behind;
:func:`reserve_path` picks an output name that no other run (even one running at the same time)
can pick too.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "remove_stale_temporaries", "reserve_path", "write_text_atomic"]

# What atomic_path's temporary names look like (and the checkpoint and feature writers' ".<name>.*.tmp").
_TEMPORARY = re.compile(r"^\..+\.tmp(\.[A-Za-z0-9]+)?$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by the owner only; a finished output gets the usual permissions.
_FILE_MODE = 0o666 & ~_umask()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an exception, move it
    onto ``path`` (atomically). On any exception the temporary file is removed and ``path`` is left
    as it was.

    ``path`` naming an existing folder is an :class:`IsADirectoryError` before anything is written.
    A symbolic link at ``path`` is replaced by the file; its target is never written.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise IsADirectoryError(errno.EISDIR, "is a folder, expected a file name", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, _FILE_MODE)
        with open(temporary, "rb+") as handle:  # the data on disk before the name points at it
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files an interrupted write left in ``folder`` (not recursive).

    Call it only where no other process is writing at the same time (e.g. when a run starts in its
    own folder). Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        if _TEMPORARY.match(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def reserve_path(path: str | os.PathLike) -> Path:
    """Claim ``path``, or ``<stem>_2<suffix>``, ``<stem>_3<suffix>``, ... when it is taken.

    The name is claimed by creating an empty file exclusively (``O_EXCL``), so two processes writing
    into one folder at the same time never get the same name, and nothing that exists (a file, a
    folder, a symbolic link, even a dangling one) is ever overwritten. Fill the claimed file through
    :func:`atomic_path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for index in range(1, 100_000):
        candidate = path if index == 1 else path.with_name(f"{path.stem}_{index}{path.suffix}")
        try:
            fd = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(errno.EEXIST, "no free output name", str(path))
