"""Remote outputs and `--dedup-against` corpora (s3://, gs://, hf://, memory://, ...): all remote-path
handling of a run in one place.

A remote `--output URL` is built in a local staging folder (`staging_dir`: resume state, logs and
signatures stay there) and uploaded when the run has finished: the corpus files first, `manifest.json`
last, so a folder with a manifest is complete. Run the same command again after a crash: the run
resumes in the staging folder and the upload is redone (same files, same names).

The output-folder rules hold remotely as locally: a non-empty remote folder that does not carry our
mark (`.work/config.json`, written first) is never written to or deleted, `--overwrite` or not; one
with our mark and other settings is replaced only with `--overwrite`.

A remote `--dedup-against URL` is mirrored (its manifest.json and minhash_index/) into a local cache
and used from there; the mirror is refreshed when the remote manifest changes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from corpus import storage
from safe_output import atomic_write

MARKER = ".work/config.json"  # what marks a folder as a corpus-clean output (locally too: Layout.config)
UPLOADED = ("shards", "removed", "minhash_index", "stats.json", "report.md", "report.html")  # then manifest.json


from corpus import CorpusError as RemoteOutputInUse  # the package's one user-facing error


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "corpus-clean"


def _key(url: str) -> str:
    return hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]


def staging_dir(url: str) -> Path:
    """Where a run with `--output URL` is built before the upload."""
    return cache_root() / "staging" / _key(url)


def claim_output(url: str, wanted: dict, overwrite: bool) -> None:
    """Check the remote folder (see the module docstring) and put our mark on it."""
    fs, root = storage.fs_and_path(url)
    root = root.rstrip("/")
    marker = f"{root}/{MARKER}"
    present = fs.exists(root) and bool(fs.find(root))
    if present:
        if not fs.exists(marker):
            raise RemoteOutputInUse(f"{url} is not empty and holds no corpus-clean run; choose a new or empty --output")
        previous = json.loads(fs.cat_file(marker))
        if previous != wanted:
            if not overwrite:
                raise RemoteOutputInUse(
                    f"{url} holds a run with other inputs or settings; pass --overwrite to replace it, or choose another --output")
            fs.rm(root, recursive=True)  # ours: it carries our mark
    fs.pipe_file(marker, json.dumps(wanted, indent=2, default=str).encode())


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
