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


def test_lines_protocol_matches_run_clm_over_the_datasets_text_loader(lm_dir, shared_data, tmp_path):
    """The paper authors' evaluation: datasets' text loader (newlines dropped), per-line tokenization, run_clm's
    group_texts over map batches of 1,000 lines, Hugging Face's loss per block."""
    import datasets

    lines = (shared_data / "wikitext-2-raw" / "wiki.test.raw").read_text().split("\n")[:1100]
    path = tmp_path / "wiki.txt"
    path.write_text("\n".join(line[:40] for line in lines) + "\n")
    hf = transformers.AutoModelForCausalLM.from_pretrained(lm_dir).eval()
    model, tok = load_causal_lm(lm_dir)
    context = 64
    raw = datasets.load_dataset("text", data_files=str(path), split="train")
    tokenized = raw.map(lambda batch: tok(batch["text"]), batched=True, remove_columns=["text"])

    def group_texts(examples):  # run_clm.py's
        concatenated = {k: sum(examples[k], []) for k in examples}
        total = len(concatenated["input_ids"]) // context * context
        return {k: [t[i:i + context] for i in range(0, total, context)] for k, t in concatenated.items()}

    blocks = torch.tensor(tokenized.map(group_texts, batched=True)["input_ids"])
    with torch.no_grad():
        losses = [hf(b, labels=b).loss.item() for b in blocks.split(256)]
        sizes = [len(b) for b in blocks.split(256)]
    reference = math.exp(sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / sum(sizes))
    got = text_perplexity(model, tok, path.read_text(), protocol="lines")
    assert got["blocks"] == len(blocks) and got["tokens"] == len(blocks) * (context - 1)
    assert got["ppl"] == pytest.approx(reference, rel=1e-4)
    # two groups (1,000 + 100 lines), each dropping its own remainder
    assert got["dropped_tokens"] == sum(map(len, tokenized["input_ids"])) - len(blocks) * context
    assert got["ppl"] != pytest.approx(text_perplexity(model, tok, path.read_text(), protocol="blocks")["ppl"])
