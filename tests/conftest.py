"""Shared test fixtures: where the reference data lives (../shared beside the project root)."""
from pathlib import Path

import pytest
from hypothesis import Phase, settings

# `make mutation` runs the property tests against every mutant: a failing example is all it needs, not the smallest
settings.register_profile("mutation", phases=[Phase.explicit, Phase.generate])

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"reference data not found at {SHARED}: clone the project beside ../shared")
    return SHARED
