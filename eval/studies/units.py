"""Units of work: every step of a study (clean corpus, token shards, run, evaluation) lives in a folder or file
named by the fingerprint of its settings, its inputs and the code that shapes it, so a study resumes and never
reuses a unit made otherwise.

The code is part of the key: each kind of unit names the modules that shape it (`SHAPED_BY`), and their source
fingerprint enters the unit's fingerprint. After a fix to a loss or a metric, an unchanged rerun makes new units
beside the old ones (nothing is deleted); `--reuse-stale` instead reuses a unit made under the same settings by
other code, and the study's report flags it (`locate` returns it with `stale` set).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from safe_output import atomic_json

ROOT = Path(__file__).resolve().parents[2]
# the modules (files, or folders: every .py below) whose code shapes each kind of unit
SHAPED_BY = {
    "clean corpus": ["corpus"],
    "token shards": ["train/tokenize_shards.py", "train/tokenizer.py", "train/split.py"],
    "training run": ["train"],
    "initial model": ["train"],
    "evaluation": [
        "eval/perplexity.py",
        "eval/glue.py",
        "eval/kd.py",
        "eval/data.py",
        "train/model.py",
        "eval/studies/pretraining.py",
    ],
    "teacher overlap": ["train/split.py"],
    "fine-tuning": ["eval/glue.py", "eval/kd.py", "eval/data.py", "train/model.py"],
}


def source_fingerprint(kind: str) -> str:
    """The fingerprint of the sources of the modules that shape units of `kind` (paths and contents)."""
    from train.fingerprint import file_sha256, fingerprint

    files = sorted(
        {
            p
            for entry in SHAPED_BY[kind]
            for p in ((ROOT / entry).rglob("*.py") if (ROOT / entry).is_dir() else [ROOT / entry])
        }
    )
    return fingerprint([[str(p.relative_to(ROOT)), file_sha256(p)] for p in files])


def unit_path(root: Path, name: str, key: dict, suffix: str = "") -> tuple[Path, str]:
    """(where a unit of work lives, its fingerprint): the name plus a short fingerprint of `key`, which holds
    every setting of the unit and the fingerprints of its inputs. Units made under other settings or from
    other inputs live beside it under other names, so a study never reuses one for another setting."""
    from train.fingerprint import fingerprint, short

    fp = fingerprint(key)
    return root / f"{name}-{short(fp)}{suffix}", fp


def record_path(path: Path) -> Path:
    """Beside each unit: which settings and which code made it (`<unit>.unit.json`)."""
    return path.with_name(path.name + ".unit.json")


def locate(
    root: Path, name: str, key: dict, kind: str, finished: str = "", suffix: str = "", reuse_stale: bool = False
) -> tuple[Path, str, dict]:
    """(path, fingerprint, code record) of a unit whose key is `key` plus the source fingerprint of `kind`.
    The unit is finished when `path / finished` (or `path` itself, for a file) exists. With `reuse_stale`, when
    this code's unit is not finished but one made under the same settings by other code is, that one is
    returned, its record saying `stale: true` and the code that made it."""
    from train.fingerprint import fingerprint

    settings, code = fingerprint(key), source_fingerprint(kind)
    path, fp = unit_path(root, name, {"settings": settings, "code": code}, suffix)
    record = {"settings": settings, "code": code, "kind": kind, "stale": False}
    if is_finished(path, finished) or not reuse_stale:
        return path, fp, record
    for other in sorted(root.glob(f"{name}-*{suffix}.unit.json")):
        made = json.loads(other.read_text())
        unit = other.with_name(other.name.removesuffix(".unit.json"))
        if made.get("settings") == settings and is_finished(unit, finished):
            return unit, made["fingerprint"], {**record, "stale": True, "made_by_code": made["code"]}
    return path, fp, record


def is_finished(path: Path, finished: str = "") -> bool:
    return (path / finished).exists() if finished else path.exists()


def record_unit(path: Path, fp: str, record: dict) -> None:
    """Write the unit's record once it is finished (a reused stale unit keeps the record of its own code)."""
    if not record["stale"] and not record_path(path).exists():
        atomic_json(
            record_path(path),
            {"fingerprint": fp, "settings": record["settings"], "code": record["code"], "kind": record["kind"]},
        )


def cached(path: Path, compute: Callable[[], dict]) -> dict:
    """The result of one unit of a study: computed once, then read back (so a study resumes).
    `path` names the unit by its fingerprint (`unit_path`), so a reused result is one made under the same settings."""
    if path.exists():
        return json.loads(path.read_text())
    result = compute()
    atomic_json(path, result)
    return result
