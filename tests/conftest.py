"""Shared test fixtures: where the reference data lives (../shared beside the project root), and a small teacher
model for the studies."""

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import Phase, settings

# `make mutation` runs the property tests against every mutant: a failing example is all it needs, not the smallest
settings.register_profile("mutation", phases=[Phase.explicit, Phase.generate])

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def pytest_collection_modifyitems(items):
    """Files with more tests marked slow come first. `make test` hands whole files to its two workers, in this
    order (`--dist loadfile --no-loadscope-reorder`): the long end-to-end files then start first, and the many
    short ones even out the end, instead of one worker running a study file alone while the other waits."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: each file's tests stay together, in their order


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"reference data not found at {SHARED}: clone the project beside ../shared")
    return SHARED


@pytest.fixture(scope="module")
def teacher(shared_data, tmp_path_factory) -> Path:
    """A small random 4-layer GPT-2 with a BPE trained on real prose: stands in for `make teacher`."""
    from corpus_helpers import wikitext_articles
    from test_train import write_clean_corpus
    from train.model import GPT, GPTConfig
    from train.tokenizer import save_tokenizer, train_tokenizer

    root = tmp_path_factory.mktemp("teacher")
    corpus = write_clean_corpus(root / "corpus", wikitext_articles(shared_data, 40, min_words=100))
    tok = train_tokenizer([corpus], vocab_size=512)
    model = GPT(
        GPTConfig(
            vocab_size=len(tok),
            block_size=64,
            n_layer=4,
            n_head=2,
            n_embd=32,
            dropout=0.1,
            bos_token_id=tok.eos_token_id,
            eos_token_id=tok.eos_token_id,
        )
    )
    model.save_pretrained(root / "export")
    save_tokenizer(tok, root / "export")
    return root / "export"
