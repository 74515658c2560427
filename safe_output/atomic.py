"""Atomic writes: a finished file (or folder) appears whole or not at all.

The content goes to a fresh temporary name beside the target (hidden, with a random part: no user picks
it, and nothing that existed is touched), is fsynced, then renamed over the target. A crash, a kill or a
full disk leaves the previous version (or nothing), never half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

PARTIAL = ".partial-"  # in every temporary name: `.<target name>.partial-<random>`
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # (reading the umask means setting it)


def _mkstemp(path: Path) -> Path:
    """A new, empty file beside `path`, with the permissions a plain open() would give it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{PARTIAL}", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)
    os.close(fd)
    return Path(tmp)


def _mkdtemp(path: Path, kind: str = PARTIAL) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{kind}", dir=path.parent))
    tmp.chmod(0o777 & ~_UMASK)
    return tmp


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not supported on this platform / file system
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write to; on success it is fsynced and renamed to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _mkstemp(path)
    try:
        yield tmp
        with open(tmp, "rb") as f:  # (fsync works on a read-only descriptor)
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def atomic_json(path: str | os.PathLike, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=2, default=str) + "\n")


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a fresh temporary folder beside `path`; on success it replaces `path` (which, if it exists,
    must be this command's own output, e.g. `<run>/export`). On failure the temporary folder is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _mkdtemp(path)
    try:
        yield tmp
        if path.exists():  # two renames: the old one is out of the way before the new one takes its name
            old = _mkdtemp(path, ".old-")
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


@contextmanager
def atomic_contents(folder: str | os.PathLike, finished: str) -> Iterator[Path]:
    """Yields a fresh temporary folder inside `folder` (an output folder the command owns); on success its
    entries move into `folder`, `finished` last (the file by which a finished output is recognised)."""
    folder = Path(folder)
    tmp = _mkdtemp(folder / "contents")
    try:
        yield tmp
        for entry in sorted(tmp.iterdir(), key=lambda p: p.name == finished):
            target = folder / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
        _fsync_dir(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def is_leftover(name: str) -> bool:
    """A temporary name of this module's (what a killed run leaves behind)."""
    return name.startswith(".") and (PARTIAL in name or ".old-" in name)
