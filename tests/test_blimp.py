"""BLiMP zero-shot scoring and bits per byte, each against a direct transformers computation."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from eval.blimp import read_paradigms, score, sentence_logprobs
from eval.perplexity import load_causal_lm, text_perplexity
from tests.test_eval import save_small_gpt2


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory) -> Path:
    return save_small_gpt2(tmp_path_factory.mktemp("blimp") / "lm", n_layer=2, seed=3, n_positions=64)


def direct_logprob(hf, tok, sentence: str) -> float:
    """log P(sentence | <|endoftext|>) summed over its tokens, one sentence at a time, no padding."""
    ids = torch.tensor([[tok.eos_token_id] + tok(sentence).input_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(hf(ids).logits[0, :-1].float(), -1)
    return logprobs.gather(-1, ids[0, 1:].unsqueeze(-1)).sum().item()


def test_sentence_scores_and_pair_outcomes_match_transformers(lm_dir, shared_data):
    hf = transformers.AutoModelForCausalLM.from_pretrained(lm_dir).eval()
    model, tok = load_causal_lm(lm_dir)
    paradigms = read_paradigms(shared_data / "blimp", ["anaphor_gender_agreement", "adjunct_island"], max_pairs=6)
    sentences = [p[k] for pairs in paradigms.values() for p in pairs for k in ("good", "bad")]
    assert len({len(tok(s).input_ids) for s in sentences}) > 1  # batches really mix lengths (padding is exercised)
    ours = sentence_logprobs(model, tok, sentences, batch_size=5)
    direct = [direct_logprob(hf, tok, s) for s in sentences]
    assert ours == pytest.approx(direct, rel=1e-4, abs=1e-3)
    result = score(model, tok, paradigms, batch_size=4)
    for name, pairs in paradigms.items():
        expected = "".join("1" if direct_logprob(hf, tok, p["good"]) > direct_logprob(hf, tok, p["bad"]) else "0"
                           for p in pairs)
        assert result["outcomes"][name] == expected
        assert result["paradigms"][name] == pytest.approx(expected.count("1") / len(pairs))
    every = "".join(result["outcomes"].values())
    assert result["pairs"] == 12 and result["accuracy"] == pytest.approx(every.count("1") / 12)
    fields = {p["field"] for pairs in paradigms.values() for p in pairs}
    assert set(result["fields"]) == fields


def test_blimp_cli_and_its_mistakes(lm_dir, shared_data, tmp_path):
    out = tmp_path / "blimp.json"
    cmd = [sys.executable, "-m", "eval", "blimp", str(lm_dir), "--eval-data", str(shared_data)]
    done = subprocess.run(cmd + ["--paradigms", "causative", "--max-pairs", "5", "--json", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["pairs"] == 5 and len(result["outcomes"]["causative"]) == 5 and "BLiMP:" in done.stdout
    wrong = subprocess.run(cmd + ["--paradigms", "no_such_paradigm"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "no_such_paradigm" in wrong.stderr and "Traceback" not in wrong.stderr
    bad = tmp_path / "data" / "blimp"
    bad.mkdir(parents=True)
    (bad / "broken.jsonl").write_text('{"sentence_good": "A cat sleeps."}\n')
    broken = subprocess.run(cmd[:5] + ["--eval-data", str(tmp_path / "data")], capture_output=True, text=True)
    assert broken.returncode == 2 and "broken.jsonl line 1" in broken.stderr and "Traceback" not in broken.stderr


def test_bits_per_byte_is_the_loss_in_bits_over_the_scored_bytes(lm_dir, shared_data):
    hf = transformers.AutoModelForCausalLM.from_pretrained(lm_dir).eval()
    model, tok = load_causal_lm(lm_dir)
    text = (shared_data / "wikitext-2-raw" / "wiki.test.raw").read_text()[:2000]
    ids = tok(text).input_ids
    with torch.no_grad():  # sliding with stride 1 and context >= length: every token after the first, all context
        full = torch.tensor([ids[:64]])
        nll = -torch.log_softmax(hf(full).logits[0, :-1], -1).gather(-1, full[0, 1:].unsqueeze(-1)).sum().item()
    got = text_perplexity(model, tok, text, context=64, stride=64, max_tokens=64)
    scored_text = tok.decode(ids[1:64])
    assert got["bytes"] == len(scored_text.encode("utf-8"))
    assert got["bpb"] == pytest.approx(nll / math.log(2) / got["bytes"], rel=1e-4)
    # blocks: each block's first token is unscored, so its bytes are left out too
    blocks = text_perplexity(model, tok, text, protocol="blocks")
    context = 64
    expected_bytes = sum(len(tok.decode(ids[b * context + 1:(b + 1) * context]).encode("utf-8"))
                         for b in range(len(ids) // context))
    assert blocks["bytes"] == expected_bytes
    assert blocks["bpb"] == pytest.approx(blocks["nll"] * blocks["tokens"] / math.log(2) / expected_bytes)
