"""Perplexity against direct reference computations; GLUE fine-tuning and the KD losses."""
from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from eval import kd
from eval.glue import GlueConfig, finetune, matthews, read_tsv
from eval.perplexity import ids_perplexity, load_causal_lm, shard_perplexity, text_perplexity
from train.model import GPT, GPTConfig
from train.tokenizer import gpt2_tokenizer, save_tokenizer


def save_small_gpt2(path: Path, n_layer: int, seed: int = 0, n_positions: int = 32) -> Path:
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(vocab_size=50257, n_positions=n_positions, n_embd=32, n_layer=n_layer, n_head=2)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(path)
    save_tokenizer(gpt2_tokenizer(), path)
    return path


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory) -> Path:
    return save_small_gpt2(tmp_path_factory.mktemp("lm"), n_layer=2)


def test_sliding_window_matches_brute_force_reference(lm_dir, shared_data):
    hf = transformers.AutoModelForCausalLM.from_pretrained(lm_dir).eval()
    model, tok = load_causal_lm(lm_dir)
    text = (shared_data / "wikitext-2-raw" / "wiki.test.raw").read_text()[:400]
    ids = torch.tensor(tok(text).input_ids[:60])
    context = 16
    # reference: every token i >= 1 scored by transformers with up to context-1 tokens before it
    nll = 0.0
    with torch.no_grad():
        for i in range(1, len(ids)):
            window = ids[max(0, i - context + 1): i + 1].unsqueeze(0)
            nll -= torch.log_softmax(hf(window).logits[0, -2], -1)[window[0, -1]].item()
    ours = ids_perplexity(model, ids, context=context, stride=1)
    assert ours["tokens"] == len(ids) - 1
    assert ours["ppl"] == pytest.approx(math.exp(nll / (len(ids) - 1)), rel=1e-4)
    # stride == context: disjoint windows, each scoring all but its first token (HF's own loss per chunk)
    ref_nll, ref_n = 0.0, 0
    with torch.no_grad():
        for b in range(0, len(ids), context):
            chunk = ids[b:b + context].unsqueeze(0)
            if chunk.size(1) > 1:
                ref_nll += hf(chunk, labels=chunk).loss.item() * (chunk.size(1) - 1)
                ref_n += chunk.size(1) - 1
    disjoint = ids_perplexity(model, ids, context=context, stride=context)
    assert disjoint["tokens"] == ref_n and disjoint["ppl"] == pytest.approx(math.exp(ref_nll / ref_n), rel=1e-4)
    # the text entry point gives the same as the token one
    assert text_perplexity(model, tok, text, context=16, stride=1, max_tokens=60)["ppl"] == pytest.approx(ours["ppl"])


def test_blocks_protocol_matches_run_clm_style_reference(lm_dir, shared_data):
    hf = transformers.AutoModelForCausalLM.from_pretrained(lm_dir).eval()
    model, tok = load_causal_lm(lm_dir)
    text = (shared_data / "wikitext-2-raw" / "wiki.test.raw").read_text()[:3000]
    context = 32  # the tiny model's n_positions: the default block length
    # reference: run_clm.py's grouping (concatenate, cut into blocks, drop the remainder), labels = inputs,
    # one batch of all blocks, perplexity = exp(loss)
    ids = tok(text).input_ids
    n_blocks = len(ids) // context
    assert len(ids) % context  # the text has a remainder to drop
    blocks = torch.tensor(ids[: n_blocks * context]).view(n_blocks, context)
    with torch.no_grad():
        loss = hf(blocks, labels=blocks).loss.item()
    got = text_perplexity(model, tok, text, protocol="blocks")
    assert got["blocks"] == n_blocks and got["tokens"] == n_blocks * (context - 1)
    assert got["dropped_tokens"] == len(ids) - n_blocks * context
    assert got["ppl"] == pytest.approx(math.exp(loss), rel=1e-4)
    sliding = text_perplexity(model, tok, text)
    assert sliding["protocol"] == "sliding" and sliding["tokens"] == len(ids) - 1 and sliding["ppl"] != pytest.approx(got["ppl"])


def test_shard_perplexity_equals_mean_block_loss(tmp_path, lm_dir):
    from train.tokenize_shards import tokenize_corpus
    from test_train import write_clean_corpus

    corpus = write_clean_corpus(tmp_path / "c", ["Some text about cats. " * 40, "More text about dogs. " * 40] * 20)
    tokenize_corpus(corpus, lm_dir, tmp_path / "tokens", block_size=16, val_fraction=0.3)
    model, _ = load_causal_lm(lm_dir)
    from train.data import TokenBlocks

    blocks = TokenBlocks(tmp_path / "tokens", "val")
    x = blocks.batch(range(len(blocks)))
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(x[:, :-1]).logits.reshape(-1, 50257), x[:, 1:].reshape(-1)).item()
    got = shard_perplexity(model, tmp_path / "tokens", "val", batch_size=5)
    assert got["blocks"] == len(blocks) and got["nll"] == pytest.approx(expected, rel=1e-5)


def test_perplexity_cli(lm_dir, tmp_path):
    out = tmp_path / "ppl.json"
    result = subprocess.run([sys.executable, "-m", "eval", "perplexity", str(lm_dir), "--max-tokens", "300", "--json", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wiki.test.raw: perplexity" in result.stdout
    data = json.loads(out.read_text())
    assert next(v for k, v in data.items() if k.endswith("wiki.test.raw"))["tokens"] == 299
    blocks = subprocess.run([sys.executable, "-m", "eval", "perplexity", str(lm_dir), "--max-tokens", "300", "--protocol", "blocks",
                             "--json", str(out)], capture_output=True, text=True)
    assert blocks.returncode == 0, blocks.stderr[-2000:]
    assert "9 blocks of 32, 12 remainder tokens dropped" in blocks.stdout
    assert next(v for k, v in json.loads(out.read_text()).items() if k.endswith("wiki.test.raw"))["tokens"] == 9 * 31
    bad = subprocess.run([sys.executable, "-m", "eval", "perplexity", str(tmp_path / "nope")], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a model directory" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a CPU-only machine gives")
def test_device_mistakes_are_one_line(lm_dir):
    cases = [(["perplexity", str(lm_dir), "--device", "cuda"], "--device cuda, but no CUDA device is available"),
             (["glue", str(lm_dir), "--task", "sst2", "--device", "cuda:0"], "--device cuda:0, but no CUDA device is available"),
             (["glue", str(lm_dir), "--task", "rte", "--device", "gpu"], "unknown device 'gpu'")]
    for command, message in cases:
        result = subprocess.run([sys.executable, "-m", "eval", *command], capture_output=True, text=True)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert message in result.stderr


def test_glue_readers_and_matthews(shared_data, tmp_path):
    texts, labels, skipped = read_tsv(shared_data / "glue" / "CoLA" / "dev.tsv", "cola")
    assert len(texts) == 1043 and set(labels) == {0, 1} and skipped == 0
    texts, labels, _ = read_tsv(shared_data / "glue" / "RTE" / "dev.tsv", "rte")
    assert len(texts[0]) == 2 and set(labels) == {0, 1}
    bad = tmp_path / "SST-2"
    bad.mkdir()
    (bad / "train.tsv").write_text("sentence\tlabel\ngood film\t1\nbroken row without label\nbad film\t0\nodd\t7\n")
    texts, labels, skipped = read_tsv(bad / "train.tsv", "sst2")
    assert texts == [("good film",), ("bad film",)] and labels == [1, 0] and skipped == 2
    assert matthews([1, 1, 0, 0], [1, 1, 0, 0]) == 1.0
    assert matthews([1, 0, 1, 0], [0, 1, 0, 1]) == -1.0
    assert matthews([1, 0, 1, 1], [1, 0, 0, 1]) == pytest.approx((2 * 1 - 1 * 0) / math.sqrt(3 * 2 * 1 * 2))


def synthetic_sst2(folder: Path, shared_data: Path, n_train: int = 240, n_dev: int = 60) -> Path:
    """SST-2-format data whose label is whether the sentence says 'excellent' or 'terrible'."""
    words = (shared_data / "wikitext-2-raw" / "wiki.test.raw").read_text().split()[:3000]
    rng = random.Random(0)
    (folder / "SST-2").mkdir(parents=True)
    for split, n in (("train", n_train), ("dev", n_dev)):
        rows = ["sentence\tlabel"]
        for _ in range(n):
            label = rng.randint(0, 1)
            sentence = rng.sample(words, 6) + ["excellent" if label else "terrible"] + rng.sample(words, 3)
            rows.append(" ".join(sentence) + f"\t{label}")
        (folder / "SST-2" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return folder


def test_finetuning_learns_a_learnable_task_deterministically(shared_data, tmp_path, lm_dir):
    data = synthetic_sst2(tmp_path / "glue", shared_data)
    cfg = GlueConfig(epochs=4, lr=2e-3, batch_size=16, seed=1)
    a = finetune(lm_dir, "sst2", data, cfg, save=tmp_path / "tuned")
    assert a["value"] >= 0.9, a
    b = finetune(lm_dir, "sst2", data, cfg)
    assert a["value"] == b["value"]
    assert json.loads((tmp_path / "tuned" / "classifier.json").read_text()) == {"task": "sst2", "n_labels": 2}


def test_kd_losses_by_hand():
    logits = torch.randn(4, 2)
    assert kd.kl_distill(logits, logits, 2.0).abs() < 1e-6
    s, t = torch.zeros(1, 2), torch.tensor([[2.0, 0.0]])
    p = torch.softmax(t / 2.0, -1)[0]
    assert kd.kl_distill(s, t, 2.0).item() == pytest.approx(4 * (p * (p / 0.5).log()).sum().item(), rel=1e-5)
    # annealing: phi grows from 1/tau_max to 1 over phase 1, then phase 2 (labels only)
    assert kd.annealing_phase1_fraction(3) == pytest.approx(2 / 3)
    assert kd.annealing_factor(0.0, 7, 0.5) == pytest.approx(1 / 7)
    assert kd.annealing_factor(0.25, 7, 0.5) == pytest.approx(1 - (4 - 1) / 7)
    assert kd.annealing_factor(0.4999, 7, 0.5) == pytest.approx(1.0, abs=1e-3)
    assert kd.annealing_factor(0.5, 7, 0.5) is None
    # RAIL: as many teacher layers as the student has, sorted, distinct, redrawn each epoch
    draws = [kd.rail_layers(e, seed=0, n_teacher=12, n_student=6) for e in range(5)]
    for layers in draws:
        assert len(layers) == 6 and layers == sorted(set(layers)) and all(1 <= i <= 12 for i in layers)
    assert len({tuple(d) for d in draws}) > 1
    assert draws[0] == kd.rail_layers(0, seed=0, n_teacher=12, n_student=6)


@pytest.mark.parametrize("technique", ["vanilla", "annealing", "rail"])
def test_kd_finetuning_end_to_end(shared_data, tmp_path_factory, technique):
    root = tmp_path_factory.getbasetemp() / "kd"
    if not (root / "teacher-tuned" / "classifier.json").exists():
        root.mkdir(exist_ok=True)
        data = synthetic_sst2(root / "glue", shared_data)
        teacher = save_small_gpt2(root / "teacher", n_layer=4, seed=1)
        finetune(teacher, "sst2", data, GlueConfig(epochs=4, lr=2e-3, batch_size=16), save=root / "teacher-tuned")
        from train.truncate import truncate

        student = truncate(GPT.from_pretrained(teacher), [0, 2])
        student.save_pretrained(root / "student")
        save_tokenizer(gpt2_tokenizer(), root / "student")
    cfg = GlueConfig(epochs=3, lr=2e-3, batch_size=16, kd=technique)
    result = finetune(root / "student", "sst2", root / "glue", cfg, teacher_dir=root / "teacher-tuned")
    assert result["teacher"]["dev"] >= 0.9 and not result["teacher"]["finetuned_here"]
    assert 0.0 <= result["value"] <= 1.0 and result["config"]["kd"] == technique
