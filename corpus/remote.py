"""Remote outputs and `--dedup-against` corpora (s3://, gs://, hf://, memory://, ...): all remote-path
handling of a run in one place.

A remote `--output URL` is built in a local staging folder (`staging_dir`: resume state, logs and
signatures stay there) and uploaded when the run has finished: the corpus files first, `manifest.json`
last, so a folder with a manifest is complete. Run the same command again after a crash: the run
resumes in the staging folder and the upload is redone (same files, same names).

The output-folder rule of `safe_output` holds remotely as locally: a non-empty remote folder that
does not carry corpus-clean's mark (`.made-by.json`, written first) is never written to or deleted,
`--overwrite` or not; one with our mark and other settings is replaced only with `--overwrite`.

A remote `--dedup-against URL` is mirrored (its manifest.json and minhash_index/) into a local cache
and used from there; the mirror is refreshed when the remote manifest changes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from corpus import CorpusError, storage
from safe_output import MARKER as OWNER_MARK
from safe_output import atomic_write

COMMAND = "corpus-clean"
SETTINGS = ".work/config.json"  # the run's inputs and settings (locally too: Layout.config)
UPLOADED = ("shards", "removed", "minhash_index", "stats.json", "report.md", "report.html")  # then manifest.json




def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "corpus-clean"


def _key(url: str) -> str:
    return hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]


def staging_dir(url: str) -> Path:
    """Where a run with `--output URL` is built before the upload."""
    return cache_root() / "staging" / _key(url)


def _owner(fs, root: str) -> str | None:
    """The command that made the remote folder `root` (its `.made-by.json`, as `safe_output` writes
    locally), or None."""
    try:
        return json.loads(fs.cat_file(f"{root}/{OWNER_MARK}"))["command"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def claim_output(url: str, wanted: dict, overwrite: bool) -> None:
    """`safe_output`'s output-folder rule for a remote folder: write only into a new or empty folder, or
    one corpus-clean made (same run: resume; other settings: replaced only with --overwrite). Marks it."""
    fs, root = storage.fs_and_path(url)
    root = root.rstrip("/")
    held = [p for p in (fs.find(root) if fs.exists(root) else []) if not p.endswith("/" + OWNER_MARK)]
    if held:
        owner = _owner(fs, root)
        if owner is None:
            raise CorpusError(f"--output {url}: is not empty and was not made by `{COMMAND}`; nothing was written there: "
                              "choose a new or empty folder")
        if owner != COMMAND:
            raise CorpusError(f"--output {url}: holds the output of `{owner}`, not of `{COMMAND}`; choose another --output")
        previous = json.loads(fs.cat_file(f"{root}/{SETTINGS}")) if fs.exists(f"{root}/{SETTINGS}") else None
        if previous != wanted:
            if not overwrite:
                raise CorpusError(f"--output {url}: holds the output of `{COMMAND}` made from other inputs or settings; "
                                  "pass --overwrite to replace it, or choose another --output")
            for p in fs.ls(root, detail=False):  # ours (it carries our mark): emptied, the mark kept
                if not p.rstrip("/").endswith("/" + OWNER_MARK):
                    fs.rm(p, recursive=True)
    if not fs.exists(f"{root}/{OWNER_MARK}"):
        mark = {"command": COMMAND, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        fs.pipe_file(f"{root}/{OWNER_MARK}", json.dumps(mark).encode())
    fs.pipe_file(f"{root}/{SETTINGS}", json.dumps(wanted, indent=2, default=str).encode())


def upload(local: Path, url: str) -> None:
    """The finished corpus in `local` to `url`; manifest.json last (its presence means complete)."""
    fs, root = storage.fs_and_path(url)
    root = root.rstrip("/")
    for name in UPLOADED:
        src = local / name
        if src.is_dir():
            for f in sorted(p for p in src.rglob("*") if p.is_file()):
                fs.put_file(str(f), f"{root}/{f.relative_to(local).as_posix()}")
        elif src.is_file():
            fs.put_file(str(src), f"{root}/{name}")
    fs.put_file(str(local / "manifest.json"), f"{root}/manifest.json")


def local_copy(url: str) -> str:
    """A local mirror of a clean corpus at `url` (manifest.json and minhash_index/), for --dedup-against."""
    fs, root = storage.fs_and_path(url)
    root = root.rstrip("/")
    mirror = cache_root() / "against" / _key(url)
    try:
        manifest = fs.cat_file(f"{root}/manifest.json")
    except FileNotFoundError:
        manifest = None
    if manifest is None:  # not a finished corpus: let check_against say so about an empty mirror
        mirror.mkdir(parents=True, exist_ok=True)
        return str(mirror)
    done = mirror / "manifest.json"
    if not (done.is_file() and done.read_bytes() == manifest):
        shutil.rmtree(mirror / "minhash_index", ignore_errors=True)  # our cache: the remote index changed
        index = f"{root}/minhash_index"
        files = [f for f, info in fs.find(index, detail=True).items() if info.get("type") != "directory"] if fs.exists(index) else []
        for f in files:
            dst = mirror / "minhash_index" / f[len(index) + 1:]
            dst.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(f, str(dst))
        atomic_write(done, manifest)  # last: a mirror with a manifest is complete
    return str(mirror)


def local_against(dirs: list[str] | None) -> list[str] | None:
    """--dedup-against with every remote corpus replaced by its local mirror."""
    return [local_copy(d) if storage.is_remote(d) else storage.local_path(d) for d in dirs] if dirs else dirs
