"""The output-folder rule every command follows.

A command writes only into a folder it created or found empty; it marks such a folder as its own with
`.made-by.json` (naming the command). Pointed at a folder holding anything else (`--output ~`, a folder of
the user's files, another command's output) it stops with one line and writes nothing. It replaces its
own earlier output only when asked (`reuse_or_replace`, behind --overwrite), never a folder without its mark.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from safe_output.atomic import atomic_json, is_leftover
from safe_output.errors import UserError

MARKER = ".made-by.json"
LOCK = ".lock"  # see safe_output.lock; kept when a folder is emptied for --overwrite


def owner_of(folder: str | os.PathLike) -> str | None:
    """The command that made `folder` (from its mark), or None."""
    try:
        return json.loads((Path(folder) / MARKER).read_text())["command"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def claim_output(folder: str | os.PathLike, command: str, *, option: str = "--output", legacy: tuple[str, ...] = ()) -> bool:
    """Make `folder` the output folder of `command`. Returns True when it already was (a re-run: resume or
    reuse), False when it was created or found empty. Raises UserError for any other folder.

    `legacy`: files that identify this command's output made before folders were marked; such a folder
    is used as it is (no mark is added to it)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{option} {folder}: is a file; give a folder path")
    owner = owner_of(folder)
    if owner == command:
        return True
    if owner is not None:
        raise UserError(f"{option} {folder}: holds the output of `{owner}`, not of `{command}`; choose another {option}")
    if folder.is_dir() and any(folder.iterdir()):
        if legacy and all((folder / name).exists() for name in legacy):
            return True
        raise UserError(f"{option} {folder}: is not empty and was not made by `{command}`; nothing was written there: "
                        f"choose a new or empty folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_json(folder / MARKER, {"command": command, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    except OSError as e:
        raise UserError(f"{option} {folder}: cannot write there ({e.strerror}); choose a writable folder") from None
    return False


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
               legacy: tuple[str, ...] = ()) -> Iterator[bool]:
    """What every command does with its output folder: claim it (`claim_output`), hold its lock for the
    whole run (`output_lock`), then remove temporary files a killed run of its own left there.
    Yields True for a re-run (the folder already held this command's output)."""
    from safe_output.lock import output_lock

    rerun = claim_output(folder, command, option=option, legacy=legacy)
    with output_lock(folder, wait=wait):
        if owner_of(folder) == command:
            remove_leftovers(Path(folder))
        yield rerun


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
    """Empty `folder` for a fresh run of `command` (--overwrite). Only a folder marked as made by `command`."""
    folder = Path(folder)
    if owner_of(folder) != command:
        raise UserError(f"{option} {folder}: was not made by `{command}` (no {MARKER}), so it is not replaced; "
                        f"remove it yourself if you are sure, or choose another {option}")
    for p in folder.iterdir():
        if p.name in (MARKER, LOCK):
            continue
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
