"""Training throughput of our loop vs transformers' GPT2LMHeadModel + Trainer, same shape, data and batch;
achieved FLOP/s against this machine's fp32 matmul rate; peak memory with 1 vs many token shards."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.memory import peak_rss

ROOT = Path(__file__).resolve().parents[1]
STEPS, BATCH = 40, 16


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def token_shards(tmp: Path) -> tuple[Path, Path]:
    """(one-shard tokens, many-shard tokens) of the clean demo corpus (or the html sample)."""
    from train.tokenize_shards import tokenize_corpus
    from train.tokenizer import save_tokenizer, train_tokenizer

    clean = ROOT / "data" / "clean" / "full"
    if not (clean / "manifest.json").exists():
        clean = tmp / "clean"
        subprocess.run([sys.executable, "-m", "corpus.cli", "--input", str(ROOT.parent / "shared" / "data" / "html-sample"),
                        "--output", str(clean), "--preset", "none", "--workers", "2"], check=True, capture_output=True)
    tok = ROOT / "runs" / "tokenizer"
    if not (tok / "tokenizer.json").exists():
        tok = tmp / "tok"
        save_tokenizer(train_tokenizer([clean], 8192), tok)
    one = tokenize_corpus(clean, tok, tmp / "tokens-1", block_size=128, val_fraction=0.02)
    many = tokenize_corpus(clean, tok, tmp / "tokens-many", block_size=128, val_fraction=0.02, shard_tokens=2**14)
    return tmp / "tokens-1", tmp / "tokens-many"


def ours_cmd(tokens: Path, out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "train", "pretrain", "--tokens", str(tokens), "--output", str(out), "--init", "scratch",
            "--n-layer", "6", "--n-embd", "256", "--n-head", "4", "--max-steps", str(steps), "--batch-size", str(BATCH),
            "--warmup", "5", "--log-every", str(steps), "--eval-every", "100000", "--eval-blocks", "1"]


def main(out_dir: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one, many = token_shards(tmp)
        gflops = matmul_gflops()
        subprocess.run(ours_cmd(one, tmp / "ours", STEPS), check=True, capture_output=True)
        last = [json.loads(l) for l in (tmp / "ours" / "metrics.jsonl").read_text().splitlines()][-1]
        ours_tps = last["tokens"] / last["elapsed_s"]
        base = subprocess.run([sys.executable, "-m", "bench.hf_trainer_baseline", str(one), str(tmp / "hf"), str(STEPS), str(BATCH)],
                              check=True, capture_output=True, text=True)
        hf_tps = json.loads(base.stdout.strip().splitlines()[-1])["tokens_per_s"]
        from train.model import GPT, GPTConfig

        vocab = json.loads((one / "manifest.json").read_text())["vocab_size"]
        flops = GPT(GPTConfig(vocab_size=vocab, block_size=128, n_layer=6, n_head=4, n_embd=256)).flops_per_token(128)
        rss_one = peak_rss(ours_cmd(one, tmp / "rss-1", 20))[0]
        rss_many = peak_rss(ours_cmd(many, tmp / "rss-many", 20))[0]
        shards_many = len(json.loads((many / "manifest.json").read_text())["splits"]["train"]["shards"])
    print(f"6-layer 256-wide GPT-2, vocab {vocab:,}, batch {BATCH} x 128, {STEPS} steps, fp32 on CPU")
    print(f"{'':<34}{'tokens/s':>10}{'GFLOP/s':>10}{'of matmul peak':>16}")
    for name, tps in (("ours (train/loop.py)", ours_tps), ("HF GPT2LMHeadModel + Trainer", hf_tps)):
        print(f"{name:<34}{tps:>10,.0f}{tps * flops / 1e9:>10.1f}{100 * tps * flops / 1e9 / gflops:>15.1f}%")
    print(f"speed-up: {ours_tps / hf_tps:.2f}x; fp32 matmul (2048^2) on this machine: {gflops:.0f} GFLOP/s")
    print(f"peak RSS of a training run: 1 token shard {rss_one:.0f} MB, {shards_many} token shards {rss_many:.0f} MB")
    return {"ours_tokens_per_s": ours_tps, "hf_trainer_tokens_per_s": hf_tps, "speedup": ours_tps / hf_tps,
            "matmul_gflops": gflops, "ours_mfu": ours_tps * flops / 1e9 / gflops, "hf_mfu": hf_tps * flops / 1e9 / gflops,
            "rss_mb": {"1 shard": rss_one, f"{shards_many} shards": rss_many}}
