"""`make gpu-smoke`: the GPU paths on one CUDA GPU, in a few minutes; every step a real command, its numbers printed.

    python -m bench.gpu_smoke [--device cuda:N] [--out runs/gpu-smoke] [--kd-batch 8]

1. pretrain with --deterministic, SIGKILLed after a checkpoint and rerun: compared with the uninterrupted run
   (metrics and weights bit for bit);
2. a run started on the CPU, killed, and continued on the GPU with the same command plus --device;
3. tokens/s and MFU of fp32 (TF32), bf16 and bf16 + torch.compile;
4. a truncated student distilled from the teacher (bf16), `eval perplexity` with both protocols;
5. `eval glue` on SST-2 with each KD technique (none, vanilla, annealing, rail);
6. one distillation step of a 124M GPT-2 student (6 layers) from a 12-layer teacher, 1024-token blocks, GPT-2's
   vocabulary, bf16: peak GPU memory, tokens/s and MFU.
MFU is against this GPU's measured bf16 (or TF32) matmul rate, not the vendor's peak. On a machine without CUDA it
says so in one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from safe_output import UserError, atomic_json, run_cli, use_output

STEPS, CKPT = 60, 20
MODEL = [
    "--init",
    "scratch",
    "--n-layer",
    "6",
    "--n-embd",
    "384",
    "--n-head",
    "6",
    "--batch-size",
    "32",
    "--lr",
    "1e-3",
    "--warmup",
    "10",
    "--log-every",
    "10",
    "--eval-every",
    "30",
    "--eval-blocks",
    "32",
    "--dropout",
    "0.1",
]


class SmokeError(UserError):
    """One line, exit 2: no GPU, or a bad option."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gpu_smoke", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda", help="the CUDA GPU to test: cuda or cuda:N (default: cuda)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/gpu-smoke"),
        help="folder to write (created, or empty, or an earlier smoke's) (default: runs/gpu-smoke)",
    )
    parser.add_argument(
        "--kd-batch", type=int, default=8, help="sequences per step of the 124M distillation step (default: 8)"
    )
    args = parser.parse_args(argv)
    return run_cli("gpu-smoke", lambda: run(args))


def gpu(name: str) -> torch.device:
    from train.device import parse_device

    if not torch.cuda.is_available():
        raise SmokeError(
            f"no CUDA device on this machine (torch {torch.__version__}, CUDA build {torch.version.cuda}): "
            "run the GPU smoke where a GPU is"
        )
    try:
        device = parse_device(name)
    except ValueError as e:
        raise SmokeError(str(e)) from None
    if device.type != "cuda":
        raise SmokeError(f"--device {name}: the GPU smoke tests a CUDA device (cuda or cuda:N)")
    return torch.device("cuda", device.index or 0)


def run(args) -> None:
    device = gpu(args.device)
    with use_output(args.out, "gpu-smoke"):
        shutil.rmtree(args.out / "work", ignore_errors=True)  # our own scratch folder from an earlier smoke
        work = args.out / "work"
        work.mkdir(parents=True)
        results = smoke(device, work, args.kd_batch)
        atomic_json(args.out / "results.json", results)
    print(f"\nresults: {args.out / 'results.json'}")


def step(title: str) -> float:
    print(f"\n=== {title}", flush=True)
    return time.time()


def train(tokens: Path, out: Path, *extra: str, kill_at: int = 0) -> subprocess.CompletedProcess | None:
    cmd = [sys.executable, "-m", "train", "pretrain", "--tokens", str(tokens), "--output", str(out), *extra]
    if not kill_at:
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-3000:]}")
        return result
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (out / "checkpoints" / f"step-{kill_at:08d}.pt").exists():
        if proc.poll() is not None:
            raise RuntimeError(f"{' '.join(cmd)} ended (exit {proc.returncode}) before its step-{kill_at} checkpoint")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return None


def metrics(run: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in ("tokens_per_s", "elapsed_s")} for line in lines]


def same_weights(a: Path, b: Path) -> float:
    """The largest difference between two exports' weights (0.0: bit for bit)."""
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "export" / "model.safetensors")), load_file(str(b / "export" / "model.safetensors"))
    return max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)


def matmul_tflops(device: torch.device, dtype: torch.dtype, n: int = 8192, repeats: int = 20) -> float:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    torch.cuda.synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


def smoke(device: torch.device, work: Path, kd_batch: int) -> dict:
    from bench.bench_train import token_shards
    from train.model import GPT

    on_gpu = ["--device", str(device)]
    results: dict = {"gpu": torch.cuda.get_device_name(device), "torch": torch.__version__, "cuda": torch.version.cuda}
    print(f"{results['gpu']}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    peak = {"fp32": matmul_tflops(device, torch.float32), "bf16": matmul_tflops(device, torch.bfloat16)}
    print(f"matmul rate (8192^2): TF32 {peak['fp32']:.1f} TFLOP/s, bf16 {peak['bf16']:.1f} TFLOP/s")
    results["matmul_tflops"] = peak

    t = step("token shards (the clean demo corpus, or the html sample cleaned here)")
    tokens, _ = token_shards(work)
    print(f"  {time.time() - t:.0f}s")

    t = step("1. pretrain --deterministic on the GPU, SIGKILLed after step 20, rerun == uninterrupted")
    base = [*MODEL, "--max-steps", str(STEPS), "--ckpt-every", str(CKPT), "--deterministic", *on_gpu]
    train(tokens, work / "reference", *base, "--dtype", "bf16")
    train(tokens, work / "resumed", *base, "--dtype", "bf16", kill_at=CKPT)
    train(tokens, work / "resumed", *base, "--dtype", "bf16")
    exact = metrics(work / "resumed") == metrics(work / "reference")
    diff = same_weights(work / "resumed", work / "reference")
    print(f"  metrics identical: {exact}; largest weight difference: {diff:g} ({time.time() - t:.0f}s)")
    results["exact_resume"] = {"metrics_identical": exact, "max_weight_diff": diff}

    t = step("2. a run made on the CPU (killed after step 20) continued on the GPU")
    cpu_made = [*MODEL, "--max-steps", str(STEPS), "--ckpt-every", str(CKPT), "--dtype", "fp32"]
    train(tokens, work / "moved", *cpu_made, "--device", "cpu", kill_at=CKPT)
    out = train(tokens, work / "moved", *cpu_made, *on_gpu)
    moved = json.loads((work / "moved" / "summary.json").read_text())
    print(
        f"  {'resumed' if 'resuming from' in out.stdout else 'NOT resumed'}; val ppl {moved['val_ppl']:.2f} "
        f"({time.time() - t:.0f}s)"
    )
    results["cpu_run_continued_on_gpu"] = {"resumed": "resuming from" in out.stdout, "val_ppl": moved["val_ppl"]}

    t = step("3. tokens/s and MFU: fp32 (TF32), bf16, bf16 + compile")
    speed = {}
    for name, extra in (
        ("fp32", ["--dtype", "fp32"]),
        ("bf16", ["--dtype", "bf16"]),
        ("bf16+compile", ["--dtype", "bf16", "--compile"]),
    ):
        run = work / f"speed-{name}"
        train(tokens, run, *MODEL, "--max-steps", str(STEPS), "--ckpt-every", "1000", *on_gpu, *extra)
        last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
        tps = last["tokens_per_s"]  # the last log interval: compilation and warm-up are over
        model = GPT.from_pretrained(run / "export")
        flops = tps * model.flops_per_token(model.config.block_size) / 1e12
        speed[name] = {
            "tokens_per_s": tps,
            "tflops": flops,
            "mfu": flops / peak["fp32" if name == "fp32" else "bf16"],
            "val_ppl": json.loads((run / "summary.json").read_text())["val_ppl"],
        }
        print(
            f"  {name:<14}{tps:>12,.0f} tokens/s {flops:6.2f} TFLOP/s  MFU {100 * speed[name]['mfu']:5.1f}%  "
            f"val ppl {speed[name]['val_ppl']:.2f}",
            flush=True,
        )
    results["speed"] = speed
    print(f"  ({time.time() - t:.0f}s)")

    t = step("4. a truncated student distilled on the GPU (bf16); eval perplexity, both protocols")
    teacher = work / "reference" / "export"
    student = work / "student"
    train(
        tokens,
        student,
        "--teacher",
        str(teacher),
        "--keep-layers",
        "alt",
        "--distill",
        "--max-steps",
        "30",
        "--batch-size",
        "32",
        "--eval-every",
        "30",
        "--eval-blocks",
        "32",
        *on_gpu,
        "--dtype",
        "bf16",
    )
    results["perplexity"] = {}
    for protocol in ("sliding", "blocks"):
        ppl = subprocess.run(
            [
                sys.executable,
                "-m",
                "eval",
                "perplexity",
                str(student / "export"),
                "--protocol",
                protocol,
                "--max-tokens",
                "20000",
                *on_gpu,
            ],
            capture_output=True,
            text=True,
        )
        if ppl.returncode != 0:
            raise RuntimeError(f"eval perplexity --protocol {protocol} failed:\n{ppl.stderr[-3000:]}")
        line = ppl.stdout.strip().splitlines()[-1]
        results["perplexity"][protocol] = line
        print(f"  {protocol}: {line}", flush=True)
    print(f"  ({time.time() - t:.0f}s)")

    t = step("5. eval glue on SST-2 with each KD technique (the teacher fine-tuned once, then reused)")
    tuned = work / "teacher-sst2"
    glue = [
        "--task",
        "sst2",
        "--max-train",
        "512",
        "--max-dev",
        "256",
        "--epochs",
        "2",
        "--annealing-tau-max",
        "4",
        *on_gpu,
    ]
    results["glue"] = {}
    for kd in ("none", "vanilla", "annealing", "rail"):
        cmd = [
            sys.executable,
            "-m",
            "eval",
            "glue",
            str(student / "export"),
            *glue,
            "--json",
            str(work / f"glue-{kd}.json"),
        ]
        if kd == "none":
            cmd = [
                sys.executable,
                "-m",
                "eval",
                "glue",
                str(teacher),
                *glue,
                "--output",
                str(tuned),
                "--json",
                str(work / "glue-teacher.json"),
            ]
        else:
            cmd += ["--teacher", str(tuned), "--kd", kd]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"eval glue --kd {kd} failed:\n{done.stderr[-3000:]}")
        result = json.loads(Path(cmd[cmd.index("--json") + 1]).read_text())
        label = "teacher (no KD)" if kd == "none" else f"student, {kd}"
        results["glue"][label] = {"accuracy": result["value"], "train_time_s": result["train_time_s"]}
        print(f"  {label:<20} accuracy {result['value']:.3f}  {result['train_time_s']:.0f}s", flush=True)
    print(f"  ({time.time() - t:.0f}s)")

    t = step(f"6. one distillation step of a 124M GPT-2 student (6 of 12 layers), batch {kd_batch} x 1024 tokens, bf16")
    results["distill_124m"] = distill_step(device, kd_batch, peak["bf16"])
    r = results["distill_124m"]
    print(
        f"  peak GPU memory {r['peak_gb']:.1f} GB, {r['tokens_per_s']:,.0f} tokens/s, MFU {100 * r['mfu']:.1f}% "
        f"({time.time() - t:.0f}s)"
    )
    return results


def distill_step(device: torch.device, batch: int, peak_tflops: float, steps: int = 5) -> dict:
    """The training loop's distillation step (CE + DistilGPT-2 loss, backward, AdamW) at GPT-2 124M's shape."""
    import torch.nn.functional as F

    from train.device import autocast
    from train.distill import DistillConfig, distillation_loss
    from train.model import GPT, GPTConfig, GPTOutput
    from train.truncate import parse_keep_layers, truncate

    teacher = GPT(GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)).to(device)
    student = truncate(teacher, parse_keep_layers("alt", 12)).to(device).train()
    teacher.eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
    x = torch.randint(0, 50257, (batch, 1025), device=device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    start = 0.0
    for i in range(steps + 1):
        if i == 1:  # the first step allocates and picks kernels
            torch.cuda.synchronize(device)
            start = time.perf_counter()
        with autocast(device, "bf16"):
            out_s = student(x[:, :-1], output_hidden_states=True)
            clm = F.cross_entropy(out_s.logits.float().reshape(-1, out_s.logits.size(-1)), x[:, 1:].reshape(-1))
            with torch.no_grad():
                out_t = teacher(x[:, :-1], output_hidden_states=True)
            loss, _ = distillation_loss(
                GPTOutput(out_s.logits, clm, out_s.hidden_states), out_t, x[:, 1:], DistillConfig()
            )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        del out_s, out_t, loss, clm
    torch.cuda.synchronize(device)
    tps = steps * batch * 1024 / (time.perf_counter() - start)
    # the student's training FLOPs plus the teacher's forward (a third of its training FLOPs)
    flops = tps * (student.flops_per_token(1024) + teacher.flops_per_token(1024) / 3) / 1e12
    return {
        "batch": batch,
        "block": 1024,
        "peak_gb": torch.cuda.max_memory_allocated(device) / 1e9,
        "tokens_per_s": tps,
        "tflops": flops,
        "mfu": flops / peak_tflops,
    }


if __name__ == "__main__":
    sys.exit(main())
