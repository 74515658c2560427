"""Training throughput of our loop vs transformers' GPT2LMHeadModel + Trainer, same shape, data and batch;
achieved FLOP/s against this machine's fp32 matmul rate; peak memory with 1 vs many token shards.

Two shapes: the benchmark's (6 x 256, batch 16 x 128, the corpus's own 8k BPE) and GPT-2 small's (12 x 768,
context 1024, GPT-2's BPE). Each round runs the matmul reference, our loop and the HF Trainer in turn (one warm-up
round, then `repeats`); every training run is a fresh process and its rate is taken over steps 2..N.
`BENCH_TRAIN_SHAPES` picks the shapes (comma-separated names, e.g. "6 x 256"; default: both).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.memory import peak_rss
from bench.timing import interleaved, show, spread

NEEDS = ("accelerate",)  # transformers' Trainer, the baseline
ROOT = Path(__file__).resolve().parents[1]
# name: (n_layer, n_embd, n_head, block size, batch, steps)
SHAPES = {"6 x 256": (6, 256, 4, 128, 16, 30), "GPT-2 small": (12, 768, 12, 1024, 8, 5)}


def chosen_shapes() -> list[str]:
    """The shapes named in BENCH_TRAIN_SHAPES (default: all); an unknown name stops the benchmark before any work."""
    names = [name.strip() for name in os.environ.get("BENCH_TRAIN_SHAPES", ",".join(SHAPES)).split(",")]
    unknown = [name for name in names if name not in SHAPES]
    if unknown:
        raise SystemExit(
            f"BENCH_TRAIN_SHAPES: unknown shape {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(map(repr, SHAPES))} (comma-separated)"
        )
    return names


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def clean_corpus(tmp: Path) -> Path:
    """The clean corpus in `BENCH_CLEAN_CORPUS` (default: the clean demo corpus, data/clean/full), or else the
    html sample cleaned without filters."""
    clean = Path(os.environ.get("BENCH_CLEAN_CORPUS", ROOT / "data" / "clean" / "full"))
    if not (clean / "manifest.json").exists():
        clean = tmp / "clean"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "corpus.cli",
                "--input",
                str(ROOT.parent / "shared" / "data" / "html-sample"),
                "--output",
                str(clean),
                "--preset",
                "none",
                "--workers",
                "2",
            ],
            check=True,
            capture_output=True,
        )
    return clean


def token_shards(tmp: Path, clean: Path) -> dict[str, Path]:
    """Token shards for each shape, and the benchmark shape's again in many small shards ("many")."""
    from train.tokenize_shards import tokenize_corpus
    from train.tokenizer import gpt2_tokenizer, save_tokenizer, train_tokenizer

    tok = ROOT / "runs" / "tokenizer"
    if not (tok / "tokenizer.json").exists():
        tok = tmp / "tok"
        save_tokenizer(train_tokenizer([clean], 8192), tok)
    save_tokenizer(gpt2_tokenizer(), tmp / "tok-gpt2")
    split = {"val_fraction": 0.05, "split": "id-hash"}
    tokenize_corpus(clean, tok, tmp / "tokens-128", block_size=128, **split)
    tokenize_corpus(clean, tok, tmp / "tokens-many", block_size=128, shard_tokens=2**14, **split)
    tokenize_corpus(clean, tmp / "tok-gpt2", tmp / "tokens-1024", block_size=1024, **split)
    return {"6 x 256": tmp / "tokens-128", "many": tmp / "tokens-many", "GPT-2 small": tmp / "tokens-1024"}


def ours_cmd(tokens: Path, out: Path, shape: tuple) -> list[str]:
    n_layer, n_embd, n_head, _, batch, steps = shape
    return [
        sys.executable,
        "-m",
        "train",
        "pretrain",
        "--tokens",
        str(tokens),
        "--output",
        str(out),
        "--init",
        "scratch",
        "--n-layer",
        str(n_layer),
        "--n-embd",
        str(n_embd),
        "--n-head",
        str(n_head),
        "--max-steps",
        str(steps),
        "--batch-size",
        str(batch),
        "--warmup",
        "5",
        "--log-every",
        str(steps - 1),
        "--eval-every",
        "100000",
        "--eval-blocks",
        "1",
    ]


def ours_rate(tokens: Path, out: Path, shape: tuple) -> float:
    """tokens/s of our loop over steps 2..N-1: its log line at step N-1 (the first step logs too; the last
    one's line would include the final evaluation)."""
    subprocess.run(ours_cmd(tokens, out, shape), check=True, capture_output=True)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rate = next(line["tokens_per_s"] for line in lines if line["step"] == shape[-1] - 1)
    shutil.rmtree(out)  # GPT-2 small's checkpoint and export are 2 GB
    return rate


def hf_rate(tokens: Path, out: Path, shape: tuple) -> float:
    n_layer, n_embd, n_head, _, batch, steps = shape
    args = [str(tokens), str(out), str(steps), str(batch), str(n_layer), str(n_embd), str(n_head)]
    base = subprocess.run(
        [sys.executable, "-m", "bench.hf_trainer_baseline", *args], check=True, capture_output=True, text=True
    )
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(base.stdout.strip().splitlines()[-1])["tokens_per_s"]


def measure_shape(name: str, tokens: Path, tmp: Path, repeats: int) -> dict:
    from train.model import GPT, GPTConfig

    shape = SHAPES[name]
    n_layer, n_embd, n_head, block, batch, steps = shape
    vocab = json.loads((tokens / "manifest.json").read_text())["vocab_size"]
    model = GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=n_layer, n_head=n_head, n_embd=n_embd))
    flops = model.flops_per_token(block)
    figures = interleaved(
        {
            "matmul": matmul_gflops,
            "ours": lambda: ours_rate(tokens, tmp / "ours", shape),
            "hf": lambda: hf_rate(tokens, tmp / "hf", shape),
        },
        repeats,
    )
    ratios = [o / h for o, h in zip(figures["ours"], figures["hf"])]  # round by round: the pair ran side by side
    peak = statistics.median(figures["matmul"])
    print(
        f"\n{name}: {n_layer} layers x {n_embd}, vocab {vocab:,}, batch {batch} x {block}, {steps} steps, "
        f"fp32 on CPU; "
        f"median (min-max) of {repeats} rounds after a warm-up"
    )
    print(f"{'':<32}{'tokens/s':>24}{'GFLOP/s':>10}{'of matmul':>11}")
    for label, key in (("ours (train/loop.py)", "ours"), ("HF GPT2LMHeadModel + Trainer", "hf")):
        rate = statistics.median(figures[key])
        gflops = rate * flops / 1e9
        print(f"{label:<32}{show(figures[key]):>24}{gflops:>10.1f}{100 * gflops / peak:>10.0f}%")
    print(f"speed-up ours / HF: {show(ratios, '.2f')}x; fp32 matmul (2048^2): {show(figures['matmul'])} GFLOP/s")
    return {
        "shape": {
            "n_layer": n_layer,
            "n_embd": n_embd,
            "n_head": n_head,
            "block_size": block,
            "batch": batch,
            "steps": steps,
            "vocab": vocab,
        },
        "ours_tokens_per_s": spread(figures["ours"]),
        "hf_trainer_tokens_per_s": spread(figures["hf"]),
        "speedup": spread(ratios),
        "matmul_gflops": spread(figures["matmul"]),
        "ours_of_matmul": statistics.median(figures["ours"]) * flops / 1e9 / peak,
        "hf_of_matmul": statistics.median(figures["hf"]) * flops / 1e9 / peak,
    }


def main(out_dir: Path, repeats: int = 3) -> dict:
    shapes = chosen_shapes()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tokens = token_shards(tmp, clean_corpus(tmp))
        results = {name: measure_shape(name, tokens[name], tmp, repeats) for name in shapes}
        small = SHAPES["6 x 256"][:5] + (20,)
        rss_one = peak_rss(ours_cmd(tokens["6 x 256"], tmp / "rss-1", small))[0]
        rss_many = peak_rss(ours_cmd(tokens["many"], tmp / "rss-many", small))[0]
        shards_many = len(json.loads((tokens["many"] / "manifest.json").read_text())["splits"]["train"]["shards"])
    print(f"\npeak RSS of a training run: 1 token shard {rss_one:.0f} MB, {shards_many} token shards {rss_many:.0f} MB")
    return {**results, "rss_mb": {"1 shard": rss_one, f"{shards_many} shards": rss_many}}
