"""Tokenizers, token shards, the training loop, exact resume after SIGKILL / Ctrl-C, DDP, and clear errors."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from corpus_helpers import wikitext_articles
from run_helpers import interruptible, metric_lines, train_cmd, write_clean_corpus
from train.data import TokenBlocks, sample_indices
from train.model import GPT, GPTConfig
from train.tokenize_shards import is_validation, tokenize_corpus
from train.tokenizer import gpt2_tokenizer, load_tokenizer, save_tokenizer, train_tokenizer, vocab_fingerprint


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory) -> Path:
    return write_clean_corpus(tmp_path_factory.mktemp("corpus"), wikitext_articles(shared_data, 60, min_words=100))


@pytest.fixture(scope="module")
def tokens(corpus, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tok")
    save_tokenizer(train_tokenizer([corpus], vocab_size=512), root / "tokenizer")
    tokenize_corpus(corpus, root / "tokenizer", root / "tokens", block_size=32, val_fraction=0.1)
    return root / "tokens"


def test_gpt2_tokenizer_is_the_real_one(tmp_path):
    tok = gpt2_tokenizer()
    assert tok("Hello world").input_ids == [15496, 995]
    assert len(tok) == 50257 and tok.eos_token_id == 50256
    save_tokenizer(tok, tmp_path)
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again("Hello world").input_ids == [15496, 995] and again.eos_token == "<|endoftext|>"


def test_encoder_reads_the_end_of_text_token_where_transformers_does(tmp_path):
    from train import TrainError
    from train.tokenizer import load_encoder

    save_tokenizer(gpt2_tokenizer(), tmp_path)
    tok, eos = load_encoder(tmp_path)
    assert tok.encode("Hello world").ids == [15496, 995] and eos == 50256
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config["eos_token"] = {"content": "Hello", "special": True}  # an AddedToken saved in full
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert load_encoder(tmp_path)[1] == 15496
    del config["eos_token"]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"eos_token": "world"}))
    assert load_encoder(tmp_path)[1] == 6894  # "world", from special_tokens_map.json
    (tmp_path / "special_tokens_map.json").unlink()
    with pytest.raises(TrainError, match="no end-of-text token"):
        load_encoder(tmp_path)


def test_trained_tokenizer_round_trips(corpus, tokens):
    tok = load_tokenizer(tokens / "tokenizer")
    text = "The album was released in 1998, and it sold 30 @,@ 000 copies."
    assert tok.decode(tok(text).input_ids) == text
    assert len(tok) == 512 and tok.eos_token == "<|endoftext|>"


def test_token_shards_contract(corpus, tokens):
    manifest = json.loads((tokens / "manifest.json").read_text())
    tok = load_tokenizer(tokens / "tokenizer")
    assert manifest["fingerprint"] == vocab_fingerprint(tok) and manifest["vocab_size"] == 512
    texts = pa.ipc.open_stream(pa.memory_map(str(corpus / "shards" / "shard-00000.arrow"))).read_all().to_pylist()
    val_ids = {r["id"] for r in texts if is_validation(r["id"], 0.1)}
    assert 0 < len(val_ids) < len(texts)
    for split in ("train", "val"):
        flat = np.concatenate(
            [np.fromfile(tokens / s["path"], dtype=np.uint16) for s in manifest["splits"][split]["shards"]]
        )
        docs = [r for r in texts if (r["id"] in val_ids) == (split == "val")]
        expected = [t for r in docs for t in tok(r["text"]).input_ids + [tok.eos_token_id]]
        assert flat.tolist() == expected  # every document once, in order, each followed by EOS
    blocks = TokenBlocks(tokens, "train")
    assert blocks.block(1)[0] == blocks.block(0)[-1]  # consecutive blocks share the target/input token
    assert len(blocks) == (manifest["splits"]["train"]["tokens"] - 1) // 32


def test_sample_order_is_a_pure_function_of_seed_and_position():
    a = sample_indices(seed=3, n_blocks=10, start=0, count=25)
    assert a == sample_indices(seed=3, n_blocks=10, start=0, count=25)
    assert a[12:20] == sample_indices(seed=3, n_blocks=10, start=12, count=8)  # resuming mid-way
    assert sorted(a[:10]) == list(range(10)) and sorted(a[10:20]) == list(range(10))  # each epoch a permutation
    assert a[:10] != a[10:20]  # reshuffled per epoch
    assert a != sample_indices(seed=4, n_blocks=10, start=0, count=25)


def test_training_lowers_the_loss_and_exports(tokens, tmp_path):
    run = tmp_path / "run"
    subprocess.run(train_cmd(tokens, run, "--max-steps", "60", "--eval-every", "30"), check=True, capture_output=True)
    lines = metric_lines(run)
    assert lines[-1]["step"] == 60
    assert lines[-1]["val_loss"] < lines[0]["train_loss"] - 0.5
    summary = json.loads((run / "summary.json").read_text())
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf = AutoModelForCausalLM.from_pretrained(run / "export")
    tok = AutoTokenizer.from_pretrained(run / "export")
    ids = torch.tensor([tok("The album was released").input_ids])
    ours = GPT.from_pretrained(run / "export")
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, ours(ids).logits, atol=1e-5, rtol=1e-5)
    assert summary["steps"] == 60 and summary["val_ppl"] == pytest.approx(np.exp(summary["val_loss"]))


def wait_for(predicate, proc, timeout=120):
    deadline = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, "the run ended before the interruption point"
        assert time.time() < deadline
        time.sleep(0.02)


@pytest.fixture(scope="module")
def uninterrupted(tokens, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ref") / "run"
    subprocess.run(
        train_cmd(tokens, run, "--max-steps", "30", "--ckpt-every", "5", "--dropout", "0.1"),
        check=True,
        capture_output=True,
    )
    return run


def test_sigkill_resume_is_exact(tokens, tmp_path, uninterrupted):
    run = tmp_path / "run"
    cmd = train_cmd(tokens, run, "--max-steps", "30", "--ckpt-every", "5", "--dropout", "0.1")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (run / "checkpoints" / "step-00000015.pt").exists(), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "summary.json").exists()
    subprocess.run(cmd, check=True, capture_output=True)
    assert not list(run.rglob("*.partial-*"))  # what the kill left half-written is gone
    assert metric_lines(run) == metric_lines(uninterrupted)
    a = GPT.from_pretrained(run / "export").state_dict()
    b = GPT.from_pretrained(uninterrupted / "export").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ctrl_c_saves_a_checkpoint_then_resumes_exactly(tokens, tmp_path, uninterrupted):
    run = tmp_path / "run"
    cmd = train_cmd(tokens, run, "--max-steps", "30", "--ckpt-every", "5", "--dropout", "0.1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    wait_for(
        lambda: (run / "metrics.jsonl").exists() and len((run / "metrics.jsonl").read_text().splitlines()) >= 7, proc
    )
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "checkpoint saved" in stdout
    subprocess.run(cmd, check=True, capture_output=True)
    assert metric_lines(run) == metric_lines(uninterrupted)


def torchrun(cmd: list[str], nproc: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(nproc),
            "--master_port",
            "29517",
            *cmd[1:],
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


def two_ranks_in_one_process(tokens: Path, args: list[str], dropout_seeds=(1, 2), rank_offsets=(0, 1)):
    """What a 2-process run computes, step by step in this process, from the library's own pieces: both
    ranks' micro-batches (sample k of the run is a function of seed and k), each rank's forward pass with
    its own dropout stream, gradients averaged over the ranks, one clipped AdamW step.
    Returns (model, validation loss). `dropout_seeds` / `rank_offsets` let a test plant a mistake."""
    import argparse
    from contextlib import nullcontext

    import torch.nn.functional as F

    import cli_config
    from train.config import RunConfig
    from train.loop import build_model, evaluate, lr_at, make_optimizer, total_steps

    parser = argparse.ArgumentParser()
    cli_config.add_arguments(parser, RunConfig)
    cfg = cli_config.resolve(RunConfig, parser.parse_args(args))
    train_blocks, val = TokenBlocks(tokens, "train"), TokenBlocks(tokens, "val")
    model, _ = build_model(cfg, train_blocks)
    model.train()
    optimizer = make_optimizer(model, cfg)
    world, batch = 2, cfg.optim.batch_size
    steps = total_steps(cfg, world, train_blocks.block_size)
    streams = []
    for s in dropout_seeds:
        torch.manual_seed(cfg.system.seed + s)
        streams.append(torch.get_rng_state())
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg, steps)
        for rank in range(world):
            torch.set_rng_state(streams[rank])
            first = step * batch * world + rank_offsets[rank] * batch
            blocks = train_blocks.batch(sample_indices(cfg.system.seed, len(train_blocks), first, batch))
            logits = model(blocks[:, :-1]).logits
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), blocks[:, 1:].reshape(-1))
            (loss / world).backward()  # DDP's average of the ranks' gradients
            streams[rank] = torch.get_rng_state()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return model, evaluate(model, val, cfg.log.eval_blocks, batch, torch.device("cpu"), nullcontext())


DDP_ARGS = ("--max-steps", "24", "--eval-every", "24", "--ckpt-every", "4", "--dropout", "0.2")


@pytest.fixture(scope="module")
def ddp_run(tokens, tmp_path_factory) -> tuple[Path, list[str]]:
    """An uninterrupted 2-process run (torchrun, gloo on CPU), and its command."""
    ddp = tmp_path_factory.mktemp("ddp") / "ddp"
    cmd = train_cmd(tokens, ddp, *DDP_ARGS)
    result = torchrun(cmd)
    assert result.returncode == 0, result.stderr[-3000:]
    return ddp, cmd


def test_ddp_with_dropout_matches_its_single_process_computation(tokens, ddp_run, tmp_path):
    """2 processes with dropout on: final weights and validation loss equal a single-process computation
    of the same two ranks (own dropout streams, averaged gradients, the sharded data). The same computation
    with one planted mistake (both ranks drawing the same dropout masks, or reading the same samples) is
    far off: the test would catch a DDP run that averaged, sharded or seeded wrongly."""
    ddp, cmd = ddp_run
    summary = json.loads((ddp / "summary.json").read_text())
    assert summary["world_size"] == 2
    ddp_weights = GPT.from_pretrained(ddp / "export").state_dict()

    args = cmd[cmd.index("--tokens") :] + ["--output", str(tmp_path / "unused")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the processes ran (--threads 1): the same summation order
    torch.set_flush_denormal(True)  # as the training loop does
    try:

        def max_diff(model) -> float:
            own = model.state_dict()
            return max((own[k] - ddp_weights[k]).abs().max().item() for k in ddp_weights)

        model, val_loss = two_ranks_in_one_process(tokens, args)
        same_masks, _ = two_ranks_in_one_process(tokens, args, dropout_seeds=(1, 1))
        same_data, _ = two_ranks_in_one_process(tokens, args, rank_offsets=(0, 0))
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)
    exact = max_diff(model)
    assert exact < 1e-5, exact
    assert summary["val_loss"] == pytest.approx(val_loss, abs=1e-5)
    assert max_diff(same_masks) > 100 * max(exact, 1e-6) and max_diff(same_data) > 100 * max(exact, 1e-6)


def test_a_ddp_run_killed_after_a_checkpoint_resumes_to_the_uninterrupted_result(tokens, ddp_run, tmp_path):
    """Killed (torchrun and both ranks) once its step-4 checkpoint exists, then run again: the metrics and the
    weights equal the uninterrupted run's."""
    import psutil

    reference, _ = ddp_run
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29518",
        *train_cmd(tokens, run, *DDP_ARGS)[1:],
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (run / "checkpoints" / "step-00000004.pt").exists(), proc, timeout=300)
    for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]:
        p.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "checkpoints" / "step-00000024.pt").exists()  # the kill landed before the end
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from" in again.stdout
    assert metric_lines(run) == metric_lines(reference)
    a, b = GPT.from_pretrained(run / "export").state_dict(), GPT.from_pretrained(reference / "export").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in b)


def test_nan_on_the_ranks_stops_them_all_with_one_message(tokens, tmp_path):
    cmd = train_cmd(tokens, tmp_path / "ddp", "--max-steps", "50", "--lr", "1e9", "--grad-clip", "0")
    result = torchrun(cmd)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("train: error:")]
    assert len(ours) == 1 and "the loss became" in ours[0], result.stderr[-3000:]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *args], capture_output=True, text=True)


def test_user_errors_are_one_clear_line(corpus, tokens, tmp_path):
    teacher = tmp_path / "teacher"
    GPT(GPTConfig(vocab_size=512, block_size=64, n_layer=4, n_head=2, n_embd=32)).save_pretrained(teacher)
    other_tok = tmp_path / "other-teacher"
    GPT(GPTConfig(vocab_size=512, block_size=64, n_layer=4, n_head=2, n_embd=32)).save_pretrained(other_tok)
    save_tokenizer(train_tokenizer([corpus], vocab_size=300), tmp_path / "tok300")
    # same vocabulary size, other tokens: a tokenizer mismatch that sizes alone would not catch
    texts = (
        pa.ipc.open_stream(pa.memory_map(str(corpus / "shards" / "shard-00000.arrow")))
        .read_all()
        .column("text")
        .to_pylist()
    )
    tok = train_tokenizer([write_clean_corpus(tmp_path / "upper", [t.upper() for t in texts])], vocab_size=512)
    save_tokenizer(tok, other_tok)
    base = ["pretrain", "--tokens", str(tokens), "--max-steps", "2"]
    cases = [
        (base + ["--output", str(tmp_path / "a"), "--teacher", str(tmp_path / "nope")], "no such checkpoint directory"),
        (
            base + ["--output", str(tmp_path / "b"), "--teacher", str(teacher), "--keep-layers", "0,7"],
            "the teacher has layers 0-3, not [7]",
        ),
        (base + ["--output", str(tmp_path / "c"), "--teacher", str(other_tok)], "uses another tokenizer"),
        (
            base
            + [
                "--output",
                str(tmp_path / "d"),
                "--init",
                "scratch",
                "--n-layer",
                "1",
                "--n-embd",
                "16",
                "--n-head",
                "2",
                "--lr",
                "1e9",
                "--grad-clip",
                "0",
                "--max-steps",
                "50",
            ],
            "the loss became",
        ),
        (
            ["tokenize", "--data", str(corpus), "--tokenizer", str(tmp_path / "tok300"), "--output", str(tokens)],
            "made from other inputs or settings (block_size 32 -> 128, fingerprint ",
        ),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr[-2000:])
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]


def test_a_run_resumes_only_on_its_own_data_and_tokenizer(corpus, tokens, tmp_path):
    import shutil

    data = tmp_path / "tokens"
    shutil.copytree(tokens, data)
    run = tmp_path / "run"
    cmd = train_cmd(data, run, "--max-steps", "4", "--ckpt-every", "2")
    subprocess.run(cmd, check=True, capture_output=True)
    finished = json.loads((run / "summary.json").read_text())
    assert json.loads((run / "export" / "provenance.json").read_text())["fingerprint"] == finished["fingerprint"]
    # the same folder re-tokenized with another tokenizer and split: same path, other data
    shutil.rmtree(data)
    save_tokenizer(train_tokenizer([corpus], vocab_size=400), tmp_path / "tok400")
    tokenize_corpus(corpus, tmp_path / "tok400", data, block_size=32, val_fraction=0.2)
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "was trained on other inputs than now (tokenizer" in result.stderr and "tokens " in result.stderr
    # a tokenizer folder is reused only for the data and settings it was made from
    assert (
        run_cli("tokenizer", "--data", str(corpus), "--vocab-size", "300", "--output", str(tmp_path / "t")).returncode
        == 0
    )
    assert (
        run_cli("tokenizer", "--data", str(corpus), "--vocab-size", "300", "--output", str(tmp_path / "t")).returncode
        == 0
    )
    other = run_cli("tokenizer", "--data", str(corpus), "--vocab-size", "350", "--output", str(tmp_path / "t"))
    assert other.returncode == 2 and "made from other inputs or settings (vocab_size 300 -> 350)" in other.stderr


def test_held_out_split_keeps_near_duplicate_clusters_together(shared_data, tmp_path):
    from corpus_helpers import edit_words
    from train.split import cluster_split, find_near_duplicates, id_hash_split, leakage

    articles = wikitext_articles(shared_data, 40, min_words=150)
    # each article and two lightly edited copies (Jaccard well above 0.8) under unrelated ids
    docs = [
        (f"doc-{i}-{c}", a if c == 0 else edit_words(a, 0.01, seed=10 * i + c))
        for i, a in enumerate(articles)
        for c in range(3)
    ]
    found = find_near_duplicates(docs)
    assert len(found.pairs) >= 3 * len(articles) * 0.9  # 3 pairs per triple
    by_id, by_cluster = leakage(found, id_hash_split(found, 0.3)), leakage(found, cluster_split(found, 0.3))
    assert by_id["leaked_docs"] > 0  # copies on both sides of an id-hash split
    assert by_cluster["leaked_docs"] == 0 and by_cluster["val_docs"] > 0
    corpus = write_clean_corpus(tmp_path / "c", [t for _, t in docs])
    save_tokenizer(train_tokenizer([corpus], vocab_size=300), tmp_path / "tok")
    manifest = tokenize_corpus(corpus, tmp_path / "tok", tmp_path / "tokens", block_size=16, val_fraction=0.3)
    assert manifest["split"]["method"] == "cluster" and manifest["split"]["leakage"]["cluster"]["leaked_docs"] == 0
    assert manifest["split"]["leakage"]["id-hash"]["leaked_docs"] > 0


def test_corrupt_shard_and_empty_dataset(corpus, tokens, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tokens, broken)
    shard = broken / "train-00000.bin"
    shard.write_bytes(shard.read_bytes()[:-7])
    result = run_cli(
        "pretrain", "--tokens", str(broken), "--output", str(tmp_path / "r"), "--init", "scratch", "--max-steps", "1"
    )
    assert (
        result.returncode == 2
        and "corrupt or truncated token shard" in result.stderr
        and "Traceback" not in result.stderr
    )
    tiny = write_clean_corpus(tmp_path / "tiny", ["Too short."])
    result = run_cli(
        "tokenize", "--data", str(tiny), "--tokenizer", str(tokens / "tokenizer"), "--output", str(tmp_path / "t")
    )
    assert result.returncode == 2 and "not enough text" in result.stderr


def limit_file_size(max_bytes: int):
    """For a child process: writing past `max_bytes` fails (EFBIG; Python ignores SIGXFSZ), as on a full disk."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


def test_checkpoint_that_cannot_be_written_leaves_no_partial_file(tokens, tmp_path):
    run = tmp_path / "run"
    cmd = train_cmd(tokens, run, "--max-steps", "100", "--ckpt-every", "2")  # (too many steps to finish before Ctrl-C)
    # good checkpoints (rolling ones, and Ctrl-C saves one), then no room for the next
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    wait_for(lambda: (run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().count("\n") >= 1, proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    good = sorted(p.name for p in (run / "checkpoints").glob("step-*.pt"))
    assert good and not (run / "summary.json").exists()
    result = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=limit_file_size(64_000))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert (
        "could not write checkpoint" in result.stderr
        and good[-1] in result.stderr
        and "nothing half-written" in result.stderr
    )
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == good  # intact, and no partial file
    # space is back: the same command resumes and finishes
    subprocess.run(cmd, check=True, capture_output=True)
    assert (run / "summary.json").exists()


def test_distillation_with_frozen_position_embeddings(tokens, tmp_path):
    """DistilGPT-2 kept GPT-2's position embeddings fixed: --freeze-pos-embeddings trains everything else."""
    teacher_dir = tmp_path / "teacher"
    tok = load_tokenizer(tokens / "tokenizer")
    torch.manual_seed(0)
    GPT(GPTConfig(vocab_size=len(tok), block_size=32, n_layer=4, n_head=2, n_embd=32, dropout=0.1)).save_pretrained(
        teacher_dir
    )
    save_tokenizer(tok, teacher_dir)
    base = [
        sys.executable,
        "-m",
        "train",
        "pretrain",
        "--tokens",
        str(tokens),
        "--teacher",
        str(teacher_dir),
        "--keep-layers",
        "0,3",
        "--distill",
        "--max-steps",
        "4",
        "--batch-size",
        "4",
        "--lr",
        "1e-2",
        "--warmup",
        "1",
        "--threads",
        "1",
    ]
    subprocess.run(
        [*base, "--output", str(tmp_path / "frozen"), "--freeze-pos-embeddings"], check=True, capture_output=True
    )
    subprocess.run([*base, "--output", str(tmp_path / "free")], check=True, capture_output=True)
    teacher = GPT.from_pretrained(teacher_dir).state_dict()
    frozen = GPT.from_pretrained(tmp_path / "frozen" / "export").state_dict()
    free = GPT.from_pretrained(tmp_path / "free" / "export").state_dict()
    assert torch.equal(frozen["transformer.wpe.weight"], teacher["transformer.wpe.weight"])
    assert not torch.equal(free["transformer.wpe.weight"], teacher["transformer.wpe.weight"])
    assert not torch.equal(frozen["transformer.wte.weight"], teacher["transformer.wte.weight"])
    assert not torch.equal(frozen["transformer.h.1.mlp.c_fc.weight"], teacher["transformer.h.3.mlp.c_fc.weight"])
    summary = json.loads((tmp_path / "frozen" / "summary.json").read_text())
    assert summary["freeze_pos_embeddings"] is True and summary["dropout"] == pytest.approx(
        0.1
    )  # the teacher's dropout


def test_validation_on_another_corpus_s_held_out_split(shared_data, tokens, tmp_path):
    """--val-tokens: the validation scores another token folder's val split (same tokenizer), so runs on
    different data share one validation set; another tokenizer is refused."""
    from eval.perplexity import shard_perplexity

    other = write_clean_corpus(tmp_path / "other", wikitext_articles(shared_data, 60, min_words=100)[20:])
    tokenize_corpus(other, tokens / "tokenizer", tmp_path / "other-tokens", block_size=32, val_fraction=0.5)
    run = tmp_path / "run"
    subprocess.run(
        train_cmd(tokens, run, "--max-steps", "4", "--eval-every", "2", "--val-tokens", str(tmp_path / "other-tokens")),
        check=True,
        capture_output=True,
    )
    summary = json.loads((run / "summary.json").read_text())
    direct = shard_perplexity(
        GPT.from_pretrained(run / "export"), tmp_path / "other-tokens", "val", max_blocks=8, batch_size=8
    )
    assert summary["val_loss"] == pytest.approx(direct["nll"], rel=1e-5)
    own = shard_perplexity(GPT.from_pretrained(run / "export"), tokens, "val", max_blocks=8, batch_size=8)
    assert own["nll"] != pytest.approx(direct["nll"], rel=1e-5)  # not its own val split
    save_tokenizer(train_tokenizer([other], vocab_size=300), tmp_path / "tok2")
    tokenize_corpus(other, tmp_path / "tok2", tmp_path / "other-tok2", block_size=32, val_fraction=0.5)
    refused = subprocess.run(
        train_cmd(tokens, tmp_path / "run2", "--max-steps", "2", "--val-tokens", str(tmp_path / "other-tok2")),
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "another tokenizer" in refused.stderr
