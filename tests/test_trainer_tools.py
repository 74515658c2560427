"""What users reach for around the trainer: sampling, TensorBoard / W&B logging, lm-evaluation-harness on an
export, and `train tokenize` on every core writing the same shards as one process."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from corpus_helpers import wikitext_articles
from run_helpers import train_cmd, write_clean_corpus
from train.model import GPT
from train.tokenize_shards import tokenize_corpus
from train.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory) -> Path:
    return write_clean_corpus(tmp_path_factory.mktemp("corpus"), wikitext_articles(shared_data, 40, min_words=100))


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory) -> Path:
    """A finished tiny run with a 64-token context (lm-eval's windows need room)."""
    root = tmp_path_factory.mktemp("run")
    save_tokenizer(train_tokenizer([corpus], vocab_size=512), root / "tokenizer")
    tokenize_corpus(corpus, root / "tokenizer", root / "tokens", block_size=64, val_fraction=0.1, split="id-hash")
    subprocess.run(
        train_cmd(
            root / "tokens",
            root / "run",
            "--max-steps",
            "12",
            "--log-every",
            "4",
            "--eval-every",
            "6",
            "--eval-blocks",
            "2",
        ),
        check=True,
        capture_output=True,
    )
    return root / "run"


def sample(model: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "train", "sample", str(model), "--max-new-tokens", "20", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def test_sampling_is_reproducible_from_a_run_an_export_and_a_checkpoint(run, tmp_path):
    first = sample(run, "--prompt", "The album", "--seed", "3", "--num-samples", "2")
    assert first.startswith("The album") and first.count("-" * 40) == 2
    assert sample(run, "--prompt", "The album", "--seed", "3", "--num-samples", "2") == first
    assert sample(run / "export", "--prompt", "The album", "--seed", "3", "--num-samples", "2") == first
    assert sample(run, "--prompt", "The album", "--seed", "4", "--num-samples", "2") != first
    # a run without its export samples from its latest checkpoint: the same weights, the same text
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished, ignore=shutil.ignore_patterns("export", "summary.json"))
    assert sample(unfinished, "--prompt", "The album", "--seed", "3", "--num-samples", "2") == first


def test_temperature_zero_is_greedy_decoding_as_transformers_does_it(run):
    from transformers import AutoModelForCausalLM

    tok = load_tokenizer(run / "export")
    ids = tok("The album").input_ids
    hf = AutoModelForCausalLM.from_pretrained(run / "export")
    greedy = hf.generate(torch.tensor([ids]), max_new_tokens=20, do_sample=False, pad_token_id=tok.eos_token_id)
    assert sample(run, "--prompt", "The album", "--temperature", "0").split("\n" + "-" * 40)[0] == tok.decode(greedy[0])


def test_sample_errors_are_one_line(run, tmp_path):
    for args in ([str(tmp_path)], [str(run), "--top-k", "-1"]):
        result = subprocess.run([sys.executable, "-m", "train", "sample", *args], capture_output=True, text=True)
        assert result.returncode == 2 and "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_run_writes_tensorboard_events_with_its_logged_scalars(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    loss = {e.step: e.value for e in events.Scalars("train/loss")}
    assert loss == pytest.approx({m["step"]: m["train_loss"] for m in metrics}, rel=1e-6)
    val = {e.step: e.value for e in events.Scalars("val/loss")}
    assert val == pytest.approx({m["step"]: m["val_loss"] for m in metrics if "val_loss" in m}, rel=1e-6)
    assert [e.step for e in events.Scalars("train/lr")] == [m["step"] for m in metrics]
    assert all(0 < e.value < 5 for e in events.Scalars("perf/mfu"))


def test_wandb_offline_logs_the_run_and_a_missing_wandb_is_one_line(run, tmp_path):
    tokens = Path(json.loads((run / "config.json").read_text())["data"]["tokens"])
    out = tmp_path / "wandb-run"
    env = {**os.environ, "WANDB_SILENT": "true"}
    subprocess.run(
        train_cmd(tokens, out, "--max-steps", "4", "--wandb-project", "tests", "--wandb-mode", "offline"),
        check=True,
        capture_output=True,
        env=env,
    )
    offline = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1 and offline[0].stat().st_size > 0
    # without the package: a stand-in module that fails to import, as an absent one does
    (tmp_path / "hide" / "wandb").mkdir(parents=True)
    (tmp_path / "hide" / "wandb" / "__init__.py").write_text("raise ImportError('no wandb here')\n")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "hide"), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        train_cmd(tokens, tmp_path / "no-wandb", "--max-steps", "2", "--wandb-project", "tests"),
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2 and "pip install wandb" in result.stderr and "Traceback" not in result.stderr


def own_log_probs(model: GPT, tok, text: str) -> float:
    """log p(text) after an end-of-text token, summed: what lm-eval asks of a model for a context-free text."""
    ids = torch.tensor([[tok.eos_token_id] + tok(text).input_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids[:, :-1]).logits.double(), dim=-1)
    return float(logp.gather(-1, ids[:, 1:, None]).sum())


def test_lm_eval_scores_an_export_on_local_tasks_as_the_documented_recipe_says(run, shared_data, tmp_path):
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed: pip install '.[lm-eval]'")
    tok, model = load_tokenizer(run / "export"), GPT.from_pretrained(run / "export")
    pairs = [json.loads(line) for line in (shared_data / "blimp" / "anaphor_gender_agreement.jsonl").open()][:40]
    texts = [
        t.strip()
        for t in (shared_data / "wikitext-2-raw" / "wiki.test.raw").read_text().splitlines()
        if 8 < len(t.split()) and len(tok(t).input_ids) < 60
    ][:8]  # one window of the 64-token context each
    data = tmp_path / "data" / "lm-eval"
    data.mkdir(parents=True)
    (data / "blimp.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (data / "text.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lm_eval",
            "--model",
            "hf",
            "--model_args",
            f"pretrained={run / 'export'},dtype=float32",
            "--include_path",
            str(ROOT / "docs" / "lm-eval"),
            "--tasks",
            "blimp_local,wikitext_local",
            "--device",
            "cpu",
            "--batch_size",
            "8",
            "--output_path",
            "results",
        ],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    results = json.loads(next((tmp_path / "results").rglob("results*.json")).read_text())["results"]
    right = [
        own_log_probs(model, tok, p["sentence_good"]) > own_log_probs(model, tok, p["sentence_bad"]) for p in pairs
    ]
    assert results["blimp_local"]["acc,none"] == pytest.approx(np.mean(right))
    nll = -sum(own_log_probs(model, tok, t) for t in texts)
    words = sum(len(t.split()) for t in texts)
    assert results["wikitext_local"]["word_perplexity,none"] == pytest.approx(math.exp(nll / words), rel=1e-4)


def test_tokenize_on_every_core_writes_what_one_document_at_a_time_writes(shared_data, tmp_path, monkeypatch):
    import train.split as split

    articles = wikitext_articles(shared_data, 30, min_words=100)
    near_copies = [a.replace(" the ", " a ", 1) for a in articles[:6]]  # near-duplicates for the cluster split
    corpus = write_clean_corpus(tmp_path / "corpus", articles + near_copies)
    tok_dir = tmp_path / "tok"
    save_tokenizer(train_tokenizer([corpus], vocab_size=512), tok_dir)
    one = tokenize_corpus(corpus, tok_dir, tmp_path / "one", block_size=32, val_fraction=0.2, batch_docs=1, workers=1)
    monkeypatch.setattr(split, "PARALLEL_FROM_BYTES", 0)  # worker processes even for this small corpus
    many = tokenize_corpus(corpus, tok_dir, tmp_path / "many", block_size=32, val_fraction=0.2, workers=2)
    assert many["content_fingerprint"] == one["content_fingerprint"] and many["split"] == one["split"]
    assert many["split"]["near_duplicate_pairs"] > 0  # the workers' signatures found the same pairs
    tok = load_tokenizer(tok_dir)
    import pyarrow as pa

    rows = pa.ipc.open_stream(pa.memory_map(str(corpus / "shards" / "shard-00000.arrow"))).read_all().to_pylist()
    expected = [t for r in rows for t in tok(r["text"]).input_ids + [tok.eos_token_id]]
    written = [
        np.fromfile(tmp_path / "many" / s["path"], dtype=np.uint16)
        for split in ("train", "val")
        for s in many["splits"][split]["shards"]
    ]
    assert sorted(np.concatenate(written).tolist()) == sorted(expected)  # every document's tokens, once


def test_tokenize_leaves_out_the_documents_it_is_told_to_and_splits_the_rest_as_before(shared_data, tmp_path):
    """--exclude: the listed documents are in neither split, every other document is where it would have been
    without them, the manifest counts them, and the list is part of the shards' settings."""
    import pyarrow as pa

    from safe_output import UserError
    from train import TrainError
    from train.split import held_out_documents

    articles = wikitext_articles(shared_data, 30, min_words=100)
    corpus = write_clean_corpus(tmp_path / "corpus", articles)
    tok_dir = tmp_path / "tok"
    save_tokenizer(train_tokenizer([corpus], vocab_size=512), tok_dir)
    rows = pa.ipc.open_stream(pa.memory_map(str(corpus / "shards" / "shard-00000.arrow"))).read_all().to_pylist()
    held, _ = held_out_documents(corpus, 0.2, "cluster", 1)
    val_ids = [r["id"] for r in rows if held[r["id"]]]
    gone = [val_ids[0], next(r["id"] for r in rows if not held[r["id"]])]  # one of each split
    (tmp_path / "ids.txt").write_text(f"{gone[0]}\n\n{gone[1]}\nnot-in-the-corpus\n")
    made = tokenize_corpus(
        corpus, tok_dir, tmp_path / "out", block_size=32, val_fraction=0.2, exclude=tmp_path / "ids.txt"
    )
    assert made["excluded"] == {"ids_given": 3, "docs_left_out": 2}
    tok = load_tokenizer(tok_dir)

    def tokens_of(split_rows):
        return sorted(t for r in split_rows for t in tok(r["text"]).input_ids + [tok.eos_token_id])

    for split, want in (("val", True), ("train", False)):
        kept = [r for r in rows if held[r["id"]] is want and r["id"] not in gone]
        written = [np.fromfile(tmp_path / "out" / s["path"], dtype=np.uint16) for s in made["splits"][split]["shards"]]
        assert sorted(np.concatenate(written).tolist()) == tokens_of(kept) and made["splits"][split]["docs"] == len(
            kept
        )
    (tmp_path / "ids.txt").write_text(f"{gone[0]}\n")
    with pytest.raises(UserError, match="other inputs or settings .*exclude"):
        tokenize_corpus(
            corpus, tok_dir, tmp_path / "out", block_size=32, val_fraction=0.2, exclude=tmp_path / "ids.txt"
        )
    with pytest.raises(TrainError, match=r"^--exclude .*missing.txt: cannot read it"):
        tokenize_corpus(corpus, tok_dir, tmp_path / "new", exclude=tmp_path / "missing.txt")
    assert not (tmp_path / "new").exists()  # refused before anything was written
