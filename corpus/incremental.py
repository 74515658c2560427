"""Incremental cleaning: deduplicate a new batch against corpora that are already clean.

Every `full` run keeps its MinHash index in `<out>/minhash_index/bucket_NNN/*.minhash.index`
(datatrove's index format: the sorted band signatures of every document that reached MinHash).
`corpus-clean --dedup-against OLD [OLD ...]` drops the new documents whose signature shares a band
with one of those corpora, without reading their text again.

Two things make that safe:

- signatures are only comparable when made with the same MinHash settings (n-grams, bands, rows,
  seed, precision): `check_against` refuses an index built with other settings (it would not fail,
  it would silently find nothing, or read the files with the wrong record size);
- the new corpus's index also carries the indexes it was deduplicated against (hard links, so
  no copies): cleaning batch 3 against batch 2 also avoids everything of batch 1. Files are named by
  their content hash, so an index reached twice (directly and through a later corpus) counts once.

    from corpus.incremental import check_against, reference_index
    check_against(["clean-2024-05"], MinHashSettings())
    folder = reference_index(["clean-2024-05"], Path("clean-2024-06"))  # index_folder= of MinhashDedupBuckets
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

from corpus.remote import local_against

INDEX_DIR = "minhash_index"
REFERENCE_DIR = ".work/minhash/reference"  # what this run deduplicates against (never its own index)
CARRIED_PREFIX = "ref-"  # carried-over index files in <out>/minhash_index/


from corpus import CorpusError  # the package's one user-facing error
from safe_output import atomic_file


def index_files(clean_dir: str | os.PathLike) -> list[Path]:
    return sorted((Path(clean_dir) / INDEX_DIR).glob("bucket_*/*.minhash.index"))


def check_against(dirs: list[str | os.PathLike], settings) -> None:
    """Each dir must be a finished clean corpus with a MinHash index made with `settings`."""
    wanted = dataclasses.asdict(settings)
    for given, local in zip(dirs, local_against(dirs)):
        d, shown = Path(local), given  # a remote corpus is checked in its local mirror, named by its URL
        if not (d / INDEX_DIR).is_dir():
            raise CorpusError(f"--dedup-against {shown}: no {INDEX_DIR}/ there (clean it with --preset full first)")
        manifest = d / "manifest.json"
        if not manifest.is_file():
            raise CorpusError(f"--dedup-against {shown}: no manifest.json (that run did not finish; run its command again)")
        try:
            used = json.loads(manifest.read_text())["config"]["minhash"]
        except (ValueError, KeyError, TypeError):
            raise CorpusError(f"--dedup-against {shown}: manifest.json does not record the MinHash settings") from None
        if used != wanted:
            diff = ", ".join(f"{k}={used.get(k)} there, {v} here" for k, v in wanted.items() if used.get(k) != v)
            raise CorpusError(f"--dedup-against {shown}: its index was made with other MinHash settings ({diff})")
        buckets = {p.parent.name for p in index_files(d)}
        expected = {f"bucket_{b:03d}" for b in range(settings.num_buckets)}
        if buckets != expected:
            raise CorpusError(f"--dedup-against {shown}: {INDEX_DIR}/ is incomplete ({len(buckets)} of {len(expected)} buckets)")


def _content_name(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f"{CARRIED_PREFIX}{digest.hexdigest()[:20]}.minhash.index"


def _link(src: Path, dst: Path) -> None:
    """Hard link (no extra space); a copy across file systems. Made under a temp name, then renamed."""
    if dst.exists():
        return
    with atomic_file(dst) as tmp:
        tmp.unlink()  # the link takes the temporary name
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def reference_index(dirs: list[str | os.PathLike] | None, out: str | os.PathLike) -> Path | None:
    """Gather the index files of `dirs` (their own and those they carry) into one folder for
    `MinhashDedupBuckets(index_folder=...)`, and carry them into `<out>/minhash_index/` as well.

    Returns the folder, or None without `dirs`. Idempotent: a re-run after a kill finds the files there."""
    if not dirs:
        return None
    out = Path(out)
    reference = out / REFERENCE_DIR
    for d in local_against(dirs):
        for f in index_files(d):
            name = _content_name(f)
            _link(f, reference / f.parent.name / name)
            _link(f, out / INDEX_DIR / f.parent.name / name)
    return reference
