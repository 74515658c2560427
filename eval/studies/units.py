"""Units of work: every step of a study (clean corpus, token shards, run, evaluation) lives in a folder or file
named by the fingerprint of its settings and inputs, so a study resumes and never reuses a unit made otherwise."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from safe_output import atomic_json


def unit_path(root: Path, name: str, key: dict, suffix: str = "") -> tuple[Path, str]:
    """(where a unit of work lives, its fingerprint): the name plus a short fingerprint of `key`, which holds
    every setting of the unit and the fingerprints of its inputs. Units made under other settings or from
    other inputs live beside it under other names, so a study never reuses one for another setting."""
    from train.fingerprint import fingerprint, short

    fp = fingerprint(key)
    return root / f"{name}-{short(fp)}{suffix}", fp


def cached(path: Path, compute: Callable[[], dict]) -> dict:
    """The result of one unit of a study: computed once, then read back (so a study resumes).
    `path` names the unit by its fingerprint (`unit_path`), so a reused result is one made under the same settings."""
    if path.exists():
        return json.loads(path.read_text())
    result = compute()
    atomic_json(path, result)
    return result
