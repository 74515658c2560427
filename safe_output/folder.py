"""The output-folder rule every command follows.

A command writes only into a folder it created or found empty; it marks such a folder as its own with
`.made-by.json` (naming the command). Pointed at a folder holding anything else (`--output ~`, a folder of
the user's files, another command's output) it stops with one line and writes nothing. It replaces its
own earlier output only when asked (`reuse_or_replace`, behind --overwrite), never a folder without its mark.

The mark also records what the command wrote there: when a run ends, every file it (or an earlier run of it)
wrote is listed under "written"; while a run lasts (or after one was killed), "run_started" says since when
files are the run's own. --overwrite removes only those files: anything else found in the folder (a file a
user put there) stops the run with one line naming it, before anything is removed. An input inside the
output folder is refused before the folder is touched (`inputs` of `use_output`).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from safe_output.atomic import atomic_json, is_leftover
from safe_output.errors import UserError
from safe_output.lock import LOCK, output_lock

MARKER = ".made-by.json"


def owner_of(folder: str | os.PathLike) -> str | None:
    """The command that made `folder` (from its mark), or None."""
    try:
        return json.loads((Path(folder) / MARKER).read_text())["command"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def claim_output(folder: str | os.PathLike, command: str, *, option: str = "--output") -> bool:
    """Make `folder` the output folder of `command`. Returns True when it already was (a re-run: resume or
    reuse), False when it was created or found empty. Raises UserError for any other folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{option} {folder}: is a file; give a folder path")
    owner = owner_of(folder)
    if owner == command:
        return True
    if owner is not None:
        raise UserError(f"{option} {folder}: holds the output of `{owner}`, not of `{command}`; choose another {option}")
    if folder.is_dir() and any(folder.iterdir()):
        raise UserError(f"{option} {folder}: is not empty and was not made by `{command}`; nothing was written there: "
                        f"choose a new or empty folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_json(folder / MARKER, {"command": command, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    except OSError as e:
        raise UserError(f"{option} {folder}: cannot write there ({e.strerror}); choose a writable folder") from None
    return False


def check_inputs_outside(folder: str | os.PathLike, inputs: dict[str, list], option: str = "--output") -> None:
    """No input may live inside the output folder: a run there replaces (with --overwrite) or changes what it
    reads. `inputs`: {option: [paths]}; URLs and names that are not local paths are not checked."""
    out = Path(folder).resolve()
    for given_option, paths in inputs.items():
        for given in paths or []:
            if not given or "://" in str(given) or not Path(given).exists():
                continue
            p = Path(given).resolve()
            if p == out or out in p.parents:
                raise UserError(f"{given_option} {given} is inside {option} {folder}: the run would change or replace "
                                f"what it reads; give an input outside the output folder, or another {option}")


def _read_mark(folder: Path) -> dict:
    try:
        mark = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return mark if isinstance(mark, dict) else {}


def _own_files(folder: Path) -> list[str]:
    """Every file (and symlink) below `folder`, relative, except the mark and the lock at its top."""
    found = []
    for root, dirs, files in os.walk(folder):
        rel_root = Path(root).relative_to(folder)
        links = [d for d in dirs if (Path(root) / d).is_symlink()]  # a link to a folder is one entry
        for name in files + links:
            rel = (rel_root / name).as_posix()
            if rel not in (MARKER, LOCK):
                found.append(rel)
    return sorted(found)


def _since(mark: dict) -> float | None:
    """Files changed at or after this time are the command's own (an unfinished run's); None: none are."""
    if mark.get("run_started") is not None:
        return float(mark["run_started"])
    if "written" not in mark and mark.get("created"):  # marked before written files were recorded
        try:
            import calendar

            return calendar.timegm(time.strptime(mark["created"], "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            return None
    return None


def foreign_files(folder: str | os.PathLike) -> list[str]:
    """Files in the command's output folder that the command did not write (relative paths)."""
    folder = Path(folder)
    mark = _read_mark(folder)
    written, since = set(mark.get("written") or []), _since(mark)
    foreign = []
    for rel in _own_files(folder):
        if rel in written:
            continue
        try:
            changed = os.lstat(folder / rel).st_ctime
        except OSError:
            continue
        if since is None or changed < since:
            foreign.append(rel)
    return foreign


def _update_mark(folder: Path, **changes) -> None:
    mark = _read_mark(folder)
    mark.update(changes)
    try:
        atomic_json(folder / MARKER, mark)
    except OSError:
        pass  # a full disk: the next run records it (until then, the run's start time stands for it)


def _start_record(folder: Path) -> None:
    mark = _read_mark(folder)
    if mark.get("run_started") is None:  # else an unfinished (killed) run's files are still to be recorded
        _update_mark(folder, run_started=os.stat(folder / LOCK).st_mtime)  # the file system's clock, as ctimes


def _finish_record(folder: Path) -> None:
    foreign = set(foreign_files(folder))
    _update_mark(folder, written=[rel for rel in _own_files(folder) if rel not in foreign], run_started=None)


FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


def _free(folder: str | os.PathLike) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:,.1f} MiB"
    except OSError:
        return "unknown"


def remove_leftovers(folder: Path) -> None:
    """Temporary files and folders a killed run of the command left in its folder: anywhere below it,
    except in sub-folders that another command owns (their own run removes theirs)."""
    for root, dirs, files in os.walk(folder):
        if Path(root) != folder and MARKER in files:
            dirs.clear()
            continue
        for name in [d for d in dirs if is_leftover(d)]:
            shutil.rmtree(Path(root) / name, ignore_errors=True)
            dirs.remove(name)
        for name in files:
            if is_leftover(name):
                (Path(root) / name).unlink(missing_ok=True)


@contextmanager
def use_output(folder: str | os.PathLike, command: str, *, wait: bool = False, option: str = "--output",
               inputs: dict[str, list] | None = None) -> Iterator[bool]:
    """What every command does with its output folder: refuse inputs inside it (`check_inputs_outside`),
    claim it (`claim_output`), hold its lock for the whole run (`output_lock`), remove temporary files a
    killed run of its own left there, and record the files the run wrote (in the mark).
    Yields True for a re-run (the folder already held this command's output)."""
    check_inputs_outside(folder, inputs or {}, option)
    rerun = claim_output(folder, command, option=option)
    with output_lock(folder, wait=wait):
        own = owner_of(folder) == command
        if own:
            remove_leftovers(Path(folder))
            _start_record(Path(folder))
        try:
            yield rerun
        except OSError as e:
            if e.errno not in FULL_DISK:
                raise
            raise UserError(f"{option} {folder}: no space left on its device ({_free(folder)} free); free some space "
                            "and run the same command again to resume (finished work is kept)") from None
        finally:
            if own:
                _finish_record(Path(folder))


def reuse_or_replace(folder: str | os.PathLike, command: str, same: bool, overwrite: bool, *, changes: str = "",
                     option: str = "--output") -> bool:
    """For a folder holding `command`'s earlier output: True to reuse (or resume) it when made with the
    `same` settings and inputs; else False once it is emptied for a new run (only with --overwrite), or
    UserError naming what changed (`changes`)."""
    if same:
        return True
    if not overwrite:
        raise UserError(f"{option} {folder}: holds the output of `{command}` made from other inputs or settings"
                        f"{f' ({changes})' if changes else ''}; pass --overwrite to replace it, or choose another {option}")
    replace_own(folder, command, option=option)
    return False


def replace_own(folder: str | os.PathLike, command: str, *, option: str = "--output") -> None:
    """Empty `folder` for a fresh run of `command` (--overwrite): remove the files the command wrote there.
    Only a folder marked as made by `command`, and only when it holds nothing else."""
    folder = Path(folder)
    if owner_of(folder) != command:
        raise UserError(f"{option} {folder}: was not made by `{command}` (no {MARKER}), so it is not replaced; "
                        f"remove it yourself if you are sure, or choose another {option}")
    foreign = foreign_files(folder)
    if foreign:
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        raise UserError(f"{option} {folder}: holds files `{command}` did not write ({', '.join(foreign[:5])}{more}); "
                        f"nothing was removed: move them elsewhere, then run again with --overwrite")
    for rel in _own_files(folder):
        (folder / rel).unlink(missing_ok=True)
    for root, dirs, files in os.walk(folder, topdown=False):  # the folders left empty
        for name in dirs:
            path = Path(root) / name
            if not path.is_symlink() and not any(path.iterdir()):
                path.rmdir()
    _update_mark(folder, written=[])
