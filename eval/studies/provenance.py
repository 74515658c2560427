"""The code behind a study's numbers: package version, git commit and a fingerprint of the project's sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

PACKAGES = ("corpus", "train", "eval", "safe_output")


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gpt2-compress")
    except PackageNotFoundError:
        return "unknown"


def code_version() -> dict:
    """The code that ran a study: package version, git commit (with uncommitted changes flagged) and a hash of
    the project's Python sources, so a number can be traced to the code behind it, not only to its settings."""
    from train.fingerprint import file_sha256, fingerprint

    root = Path(__file__).resolve().parents[2]
    sources = sorted(p for pkg in PACKAGES for p in (root / pkg).rglob("*.py"))
    record = {"source_fingerprint": fingerprint([[str(p.relative_to(root)), file_sha256(p)] for p in sources])}
    if (version := package_version()) != "unknown":
        record["package_version"] = version
    git = ["git", "-C", str(root)]
    try:
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            dirty = subprocess.run(
                [*git, "status", "--porcelain", "--untracked-files=no", "--", *PACKAGES],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            record["git_commit"] = commit.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        pass  # not a git checkout (an installed package): the source fingerprint stands for the code
    return record
