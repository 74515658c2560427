"""The pre-training loop: a lean PyTorch loop, read top to bottom (after nanoGPT's train.py).

    init model (truncated teacher | scratch | teacher) -> AdamW, warmup + cosine -> for each step:
    grad-accumulated micro-batches (DDP: each rank its slice of the global batch) -> clip -> step
    -> log / eval / checkpoint -> at the end: final eval, Hugging Face export, summary.json

Run it again with the same command and it resumes from the last checkpoint, exactly: the sample order
and the learning rate are functions of the step, and the RNG states are restored. Ctrl-C saves a
checkpoint first. `torchrun --nproc_per_node N -m train pretrain ...` runs data parallel (gloo on CPU,
NCCL on GPU); only rank 0 writes.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

from safe_output import atomic_folder, atomic_json, atomic_write, use_output
from train import TrainError  # the package's one user-facing error
from train.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from cli_config import RECORD
from train.config import RunConfig
from train.data import TokenBlocks, sample_indices
from train.device import autocast as autocast_context
from train.device import DTYPES, grad_scaler, parse_device, parse_dtype, prepare, sum_buffer, to_device
from train.distill import DistillConfig, distillation_loss
from train.fingerprint import describe_change, fingerprint, model_fingerprint, tokens_fingerprint
from train.model import GPT, GPTConfig, GPTOutput
from train.run_log import RunLog, measured_peak_flops
from train.tokenizer import copy_tokenizer, load_encoder, vocab_fingerprint
from train.truncate import parse_keep_layers, truncate

COMMAND = "train pretrain"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


# ----------------------------------------------------------------------------------------- setup
def execution(cfg: RunConfig) -> tuple[torch.device, str]:
    """The checked --device and the autocast dtype there (fp32 | bf16 | fp16); a mistake is one line."""
    try:
        device = parse_device(cfg.system.device)
        return device, parse_dtype(cfg.system.dtype, device)
    except ValueError as e:
        raise TrainError(str(e)) from None


def setup_distributed(cfg: RunConfig) -> tuple[int, int, torch.device, str]:
    """(rank, world size, this rank's device, autocast dtype)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device, dtype = execution(cfg)
    if device.type != "cpu" and device.index is None:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = parse_device(f"{device.type}:{local_rank}") if world > 1 else torch.device(device.type, 0)
    elif device.type != "cpu" and world > 1:
        raise TrainError(
            f"--device {cfg.system.device} under torchrun: pass --device {device.type} "
            f"(each rank uses {device.type}:LOCAL_RANK)"
        )
    prepare(device, cfg.system.deterministic)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if cfg.system.threads:
        torch.set_num_threads(cfg.system.threads)
    torch.set_flush_denormal(True)  # denormal floats make CPU matmuls many times slower as weights move
    return rank, world, device, dtype


def load_teacher(cfg: RunConfig, tokens: TokenBlocks) -> GPT:
    try:
        teacher = GPT.from_pretrained(cfg.model.teacher)
    except TrainError as e:  # already names the file; say which role it plays
        raise TrainError(f"teacher: {e}") from None
    if teacher.config.vocab_size != tokens.vocab_size:
        raise TrainError(
            f"teacher {cfg.model.teacher} has a vocabulary of {teacher.config.vocab_size:,} tokens, the token shards "
            f"{tokens.vocab_size:,}: tokenize the corpus with the teacher's tokenizer"
        )
    teacher_dir = Path(cfg.model.teacher)
    if (teacher_dir / "tokenizer.json").exists():
        fingerprint = vocab_fingerprint(load_encoder(teacher_dir)[0])  # (as `train tokenize` reads it)
        if fingerprint != tokens.manifest["fingerprint"]:
            raise TrainError(
                f"teacher {teacher_dir} uses another tokenizer than the token shards {tokens.dir}: "
                f"tokenize with `--tokenizer {teacher_dir}`"
            )
    if teacher.config.block_size < tokens.block_size:
        raise TrainError(
            f"token blocks of {tokens.block_size} exceed the teacher's context of {teacher.config.block_size}"
        )
    return teacher


def build_model(cfg: RunConfig, tokens: TokenBlocks) -> tuple[GPT, GPT | None]:
    """(model to train, teacher or None)."""
    m = cfg.model
    if m.init == "scratch":
        torch.manual_seed(cfg.system.seed)
        model = GPT(
            GPTConfig(
                vocab_size=tokens.vocab_size,
                block_size=m.n_positions or tokens.block_size,
                n_layer=m.n_layer,
                n_head=m.n_head,
                n_embd=m.n_embd,
                dropout=m.dropout,
                bos_token_id=tokens.manifest["eos_id"],
                eos_token_id=tokens.manifest["eos_id"],
            )
        )
        teacher = load_teacher(cfg, tokens) if cfg.distill.distill else None
        return model, teacher
    if not m.teacher:
        raise TrainError(f"--init {m.init} needs --teacher (a GPT-2 directory or hub name)")
    teacher = load_teacher(cfg, tokens)
    if m.init == "teacher":
        return teacher, None
    if m.init != "truncate":
        raise TrainError(f"--init {m.init!r}: choose truncate, scratch or teacher")
    keep = parse_keep_layers(m.keep_layers, teacher.config.n_layer)
    return truncate(teacher, keep), teacher if cfg.distill.distill else None


def total_steps(cfg: RunConfig, world: int, block_size: int) -> int:
    tokens_per_step = cfg.optim.batch_size * cfg.optim.grad_accum * world * block_size
    if cfg.optim.max_tokens:
        return max(1, math.ceil(cfg.optim.max_tokens / tokens_per_step))
    return cfg.optim.max_steps


def lr_at(step: int, cfg: RunConfig, steps: int) -> float:
    o = cfg.optim
    if step < o.warmup:
        return o.lr * (step + 1) / o.warmup
    progress = min(1.0, (step - o.warmup) / max(1, steps - o.warmup))
    return o.lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: GPT, cfg: RunConfig) -> torch.optim.AdamW:
    trained = [p for p in model.parameters() if p.requires_grad]  # frozen ones (position embeddings) stay as they are
    decay = [p for p in trained if p.dim() >= 2]
    no_decay = [p for p in trained if p.dim() < 2]  # biases and layer norms
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused: one kernel over all parameters per step instead of a dozen per tensor (CPU and CUDA alike)
    return torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2), fused=True)


@torch.no_grad()
def evaluate(model, val: TokenBlocks, n_blocks: int, batch_size: int, device, autocast) -> float:
    model.eval()
    n = min(n_blocks, len(val))
    total, count = sum_buffer(device), 0
    for start in range(0, n, batch_size):
        blocks = to_device(val.batch(range(start, min(n, start + batch_size))), device)
        with autocast:
            loss = model(blocks[:, :-1], targets=blocks[:, 1:]).loss  # the mean over the batch's positions
        total += loss * blocks[:, 1:].numel()
        count += blocks[:, 1:].numel()
    model.train()
    return total.item() / count


# ----------------------------------------------------------------------------------------- the run
def run_inputs(cfg: RunConfig, tokens: TokenBlocks) -> dict:
    """Fingerprints of what the run learns from: its token shards, their tokenizer, the teacher."""
    inputs = {"tokens": tokens_fingerprint(tokens.dir), "tokenizer": tokens.manifest["fingerprint"]}
    if cfg.data.val_tokens:
        inputs["val_tokens"] = tokens_fingerprint(Path(cfg.data.val_tokens))
    if cfg.model.init != "scratch" or cfg.distill.distill:
        teacher = Path(cfg.model.teacher)
        inputs["teacher"] = (
            model_fingerprint(teacher) if (teacher / "config.json").exists() else fingerprint(cfg.model.teacher)
        )
    return inputs


EXECUTION = ("device", "dtype", "compile", "threads", "deterministic")  # system.*: how a run computes, not what


def learning_settings(cfg: RunConfig) -> dict:
    """The settings that shape the weights: the config without the output path and the execution settings."""
    settings = cfg.to_dict()
    settings.pop("output")
    settings["system"] = {k: v for k, v in settings["system"].items() if k not in EXECUTION}
    return settings


def run_fingerprint(cfg: RunConfig, inputs: dict) -> str:
    """The run's identity: every setting that shapes the weights, and its inputs' fingerprints (not paths)."""
    settings = learning_settings(cfg)
    settings["data"] = {k: v for k, v in settings["data"].items() if k not in ("tokens", "val_tokens")}
    # dtype and compile at the values earlier fingerprints held, so runs and the studies' caches keep their identity
    settings["system"] = {**settings["system"], "dtype": "fp32", "compile": False}
    return fingerprint({"settings": settings, "inputs": inputs})


def check_inputs(out: Path, inputs: dict, is_main: bool) -> None:
    """A run resumes (or reports itself finished) only on its own data, tokenizer and teacher."""
    path = out / "inputs.json"
    if path.exists() and not finished_nothing(out):
        recorded = json.loads(path.read_text())
        if recorded != inputs:
            raise TrainError(
                f"{out} was trained on other inputs than now ({describe_change(recorded, inputs)}): "
                "pass the run's own --tokens/--teacher to resume, or another --output for a new run"
            )
    elif is_main:
        atomic_json(path, inputs)


def finished_nothing(out: Path) -> bool:
    """A run folder with no checkpoint and no summary: a run that stopped before its first step (a bad option,
    a bad teacher) left nothing to resume, so a corrected command may start afresh there."""
    return latest_checkpoint(out) is None and not (out / "summary.json").exists()


def prepare_run_dir(cfg: RunConfig, is_main: bool, settings: str = "") -> Path:
    """`settings`: the resolved settings as config.toml text, written beside config.json."""
    out = Path(cfg.output)
    config_path = out / "config.json"
    if config_path.exists() and not finished_nothing(out):
        # options added since that run was started count as their defaults; execution settings may differ
        defaults = RunConfig().to_dict()
        previous = {
            group: ({**defaults[group], **values} if isinstance(values, dict) else values)
            for group, values in {**defaults, **json.loads(config_path.read_text())}.items()
        }
        previous["system"] = {k: v for k, v in previous["system"].items() if k not in EXECUTION}
        previous.pop("out", None)
        previous.pop("output", None)
        now = learning_settings(cfg)
        if previous != now:
            # each changed setting with the run's value and the one asked for now, so the fix is in the message
            changed = sorted(
                f"{g}.{k} {previous[g][k]} in the run, {now.get(g, {}).get(k)} now"
                for g in previous
                if isinstance(previous[g], dict)
                for k in previous[g]
                if previous[g][k] != now.get(g, {}).get(k)
            )
            raise TrainError(
                f"{out} holds a run with other settings ({'; '.join(changed) or 'config'}): "
                "use the same settings to resume, or another --output"
            )
    elif is_main:
        atomic_json(config_path, cfg.to_dict())
        if settings:
            atomic_write(out / RECORD, settings)
    return out


def train(cfg: RunConfig, wait: bool = False, settings: str = "") -> dict:
    """Run (or resume, or find finished) the training run `cfg.output`. The first process claims and locks
    the run folder (`safe_output.use_output`): it holds only this run's files, and one run at a time."""
    execution(cfg)  # a mistyped device or dtype stops before the run folder is made
    if int(os.environ.get("RANK", "0")) != 0:
        return _train(cfg)
    inputs = {"--tokens": [cfg.data.tokens], "--val-tokens": [cfg.data.val_tokens], "--teacher": [cfg.model.teacher]}
    with use_output(cfg.output, COMMAND, wait=wait, inputs=inputs):
        return _train(cfg, settings)


def _train(cfg: RunConfig, settings: str = "") -> dict:
    rank, world, device, dtype = setup_distributed(cfg)
    is_main = rank == 0
    tokens = TokenBlocks(cfg.data.tokens, "train")
    val = TokenBlocks(cfg.data.val_tokens or cfg.data.tokens, "val")
    if val.manifest["fingerprint"] != tokens.manifest["fingerprint"]:
        raise TrainError(
            f"--val-tokens {cfg.data.val_tokens}: made with another tokenizer than --tokens {cfg.data.tokens}"
        )
    out = prepare_run_dir(cfg, is_main, settings)
    inputs = run_inputs(cfg, tokens)
    check_inputs(out, inputs, is_main)
    if (out / "summary.json").exists():
        summary = json.loads((out / "summary.json").read_text())
        if is_main:
            print(f"already finished: validation perplexity {summary['val_ppl']:.2f}; model in {summary['export']}")
        return summary
    model, teacher = build_model(cfg, tokens)
    if tokens.block_size > model.config.block_size:
        raise TrainError(f"token blocks of {tokens.block_size} exceed the model's context of {model.config.block_size}")
    model.to(device).train()
    model.transformer.wpe.weight.requires_grad_(not cfg.distill.freeze_pos_embeddings)
    if teacher is not None:
        teacher.to(device).eval().requires_grad_(False)
    optimizer = make_optimizer(model, cfg)
    steps = total_steps(cfg, world, tokens.block_size)
    global_batch = cfg.optim.batch_size * cfg.optim.grad_accum * world

    start_step, prior_elapsed = 0, 0.0  # prior_elapsed: training seconds before a resume
    checkpoint = latest_checkpoint(out)
    if checkpoint is not None:
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        per_rank = state.get("rng_per_rank") or []
        set_rng_state(per_rank[rank] if len(per_rank) == world else state["rng"], device)
        start_step = state["step"]
        prior_elapsed = float(state.get("elapsed_s", 0.0))
        if is_main:
            print(f"resuming from {checkpoint} (step {start_step})", flush=True)
            truncate_metrics(out / "metrics.jsonl", start_step)
    else:
        # dropout etc.; the init seed is separate. Each rank its own stream (as nanoGPT): the same masks on
        # every rank would make the data-parallel batch less random than the single-process one
        torch.manual_seed(cfg.system.seed + 1 + rank)
        if is_main:
            (out / "metrics.jsonl").unlink(missing_ok=True)

    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            train_model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.system.compile:  # after wrapping: DDP's gradient all-reduce then overlaps the compiled backward
        train_model = torch.compile(train_model)
    autocast = autocast_context(device, dtype)
    scaler = grad_scaler(device, dtype)
    if checkpoint is not None and "grad_scaler" in state:
        scaler.load_state_dict(state["grad_scaler"])
    distill_cfg = DistillConfig(
        cfg.distill.alpha_kl, cfg.distill.alpha_clm, cfg.distill.alpha_cos, cfg.distill.temperature
    )

    metrics = open(out / "metrics.jsonl", "a") if is_main else None
    run_log = RunLog(out, cfg.to_dict(), start_step, cfg.log.wandb_project, cfg.log.wandb_mode) if is_main else None
    flops_per_token = model.flops_per_token(tokens.block_size)
    # measured in the dtype the matmuls run in (autocast), as a stated peak would be
    peak_flops = cfg.log.peak_flops or measured_peak_flops(device, DTYPES[dtype])
    if is_main:
        print(
            f"MFU against {'the stated' if cfg.log.peak_flops else f'a measured {dtype} matmul'} peak of "
            f"{peak_flops / 1e9:,.0f} GFLOP/s per process",
            flush=True,
        )
    # Ctrl-C, SIGTERM (a batch system's time limit) and SIGHUP end the step, save a checkpoint, and stop. Under
    # torchrun every rank notes its signal and the ranks agree at each step's all-reduce, so all stop at the same
    # step (one rank left inside a collective would wait for the others forever)
    interrupted = []
    stop_signals = [s for s in STOP_SIGNALS if signal.getsignal(s) != signal.SIG_IGN]
    previous_handlers = {s: signal.signal(s, lambda signum, _: interrupted.append(signum)) for s in stop_signals}
    tokens_per_step = global_batch * tokens.block_size
    t0 = time.time()
    last_log_time, last_log_step = t0, start_step
    val_loss = None
    step = start_step
    unread_losses: list[torch.Tensor] = []  # steps' losses still on the device: read (one sync) at the next check
    try:
        for step in range(start_step, steps):
            lr = lr_at(step, cfg, steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            step_loss = torch.zeros((), device=device)
            for micro in range(cfg.optim.grad_accum):
                first = step * global_batch + micro * cfg.optim.batch_size * world + rank * cfg.optim.batch_size
                blocks = to_device(
                    tokens.batch(sample_indices(cfg.system.seed, len(tokens), first, cfg.optim.batch_size)), device
                )
                x, y = blocks[:, :-1], blocks[:, 1:]
                sync = micro == cfg.optim.grad_accum - 1 or world == 1
                with nullcontext() if sync else train_model.no_sync(), autocast:
                    if teacher is None:  # the loss alone: the fused head, no logits held
                        loss = clm = train_model(x, targets=y).loss
                    else:
                        out_s = train_model(x, output_hidden_states=True)
                        clm = F.cross_entropy(out_s.logits.float().reshape(-1, out_s.logits.size(-1)), y.reshape(-1))
                        with torch.no_grad():
                            out_t = teacher(x, output_hidden_states=True)
                        loss, _ = distillation_loss(
                            GPTOutput(out_s.logits, clm, out_s.hidden_states), out_t, y, distill_cfg
                        )
                    scaler.scale(loss / cfg.optim.grad_accum).backward()
                step_loss += clm.detach() / cfg.optim.grad_accum
            if world > 1:  # the global batch's loss (logged, and checked alike on every rank) and the stop signals
                reduced = torch.stack((step_loss, torch.tensor(float(len(interrupted)), device=device)))
                torch.distributed.all_reduce(reduced)
                step_loss = reduced[0] / world
                stop = reduced[1].item() > 0  # (read now, a host sync per step: each rank must stop at this step)
            else:
                stop = bool(interrupted)
            unread_losses.append(step_loss)
            if cfg.optim.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip, foreach=True)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            done = step + 1
            is_eval = done % cfg.log.eval_every == 0 or done == steps
            is_log = done % cfg.log.log_every == 0 or is_eval or done == 1
            # the last step too: an interruption during the final evaluation or export then redoes no step
            is_ckpt = done % cfg.log.ckpt_every == 0 or stop or done == steps
            if is_log or is_ckpt:  # the losses come to the host here only: no wait on the device at other steps
                # a NaN on any rank is on every rank after the all-reduce: each stops here, rank 0 says why,
                # before a checkpoint could hold the broken weights
                losses, unread_losses = torch.stack(unread_losses).tolist(), []
                bad = next((i for i, value in enumerate(losses) if not math.isfinite(value)), None)
                if bad is not None:
                    if not is_main:
                        sys.exit(2)
                    raise TrainError(
                        f"the loss became {losses[bad]} at step {done - len(losses) + bad}: lower --lr or "
                        f"check the data; the last checkpoint in {out / 'checkpoints'} is intact"
                    )
                step_loss = losses[-1]
            if is_eval:
                val_loss = evaluate(model, val, cfg.log.eval_blocks, cfg.optim.batch_size, device, autocast)
            if is_main and is_log:
                now = time.time()
                rate = (done - last_log_step) * tokens_per_step / max(now - last_log_time, 1e-9)
                last_log_time, last_log_step = now, done
                record = {
                    "step": done,
                    "tokens": done * tokens_per_step,
                    "train_loss": round(step_loss, 6),
                    "lr": lr,
                    "tokens_per_s": round(rate, 1),
                    "elapsed_s": round(prior_elapsed + now - t0, 2),
                }
                if is_eval:
                    record["val_loss"] = round(val_loss, 6)
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
                mfu = rate / world * flops_per_token / peak_flops
                run_log.log({**record, "mfu": mfu})
                eta = (steps - done) * tokens_per_step / rate if rate else float("nan")
                val_text = f" val {val_loss:.4f}" if is_eval else ""
                print(
                    f"step {done}/{steps} loss {step_loss:.4f}{val_text} lr {lr:.2e} {rate:,.0f} tok/s MFU {mfu:.0%} "
                    f"ETA {eta / 60:,.1f} min",
                    flush=True,
                )
            if is_ckpt:
                rng_per_rank = gather_rng_states(world, device)  # every rank takes part
                if is_main:
                    extra = {"elapsed_s": prior_elapsed + time.time() - t0, "rng_per_rank": rng_per_rank}
                    if scaler.is_enabled():
                        extra["grad_scaler"] = scaler.state_dict()
                    save_checkpoint(out, done, model, optimizer, device, keep=cfg.log.keep_checkpoints, extra=extra)
            if stop:
                signum = interrupted[0] if interrupted else signal.SIGTERM  # (under torchrun: another rank's)
                if is_main:
                    print(
                        f"interrupted ({signal.Signals(signum).name}): checkpoint saved at step {done}; "
                        "run the same command to resume",
                        flush=True,
                    )
                if world > 1:
                    torch.distributed.destroy_process_group()
                return {"interrupted": True, "step": done, "exit_code": 128 + signum}
    finally:
        if metrics:
            metrics.close()
            run_log.close()
        for s, handler in previous_handlers.items():
            signal.signal(s, handler)

    summary = {}
    if is_main:
        if val_loss is None:
            val_loss = evaluate(model, val, cfg.log.eval_blocks, cfg.optim.batch_size, device, autocast)
        export = out / "export"
        # what a later unit (a student of this teacher, an evaluation) keys its own fingerprint on
        run_fp = run_fingerprint(cfg, inputs)
        with atomic_folder(export) as tmp:
            model.save_pretrained(tmp)
            atomic_json(tmp / "provenance.json", {"fingerprint": run_fp, "inputs": inputs})
            copy_tokenizer(tokens.dir / "tokenizer", tmp)
        elapsed = prior_elapsed + time.time() - t0  # over all resumed parts of the run
        summary = {
            "val_loss": val_loss,
            "val_ppl": math.exp(val_loss),
            "steps": steps,
            "tokens": steps * tokens_per_step,
            "train_time_s": round(elapsed, 2),  # as metrics.jsonl's elapsed_s, so the two compare
            "tokens_per_s": round(steps * tokens_per_step / max(elapsed, 1e-9), 1),
            "n_params": model.num_parameters(),
            "n_layer": model.config.n_layer,
            "init": cfg.model.init,
            "keep_layers": cfg.model.keep_layers if cfg.model.init == "truncate" else None,
            "distill": cfg.distill.distill,
            "dropout": model.config.dropout,
            "freeze_pos_embeddings": cfg.distill.freeze_pos_embeddings,
            "world_size": world,
            "export": str(export),
            "fingerprint": run_fp,
            "inputs": inputs,
        }
        atomic_json(out / "summary.json", summary)
        print(
            f"validation perplexity {summary['val_ppl']:.2f} (loss {val_loss:.4f}); model exported to {export}",
            flush=True,
        )
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return summary


def gather_rng_states(world: int, device: torch.device) -> list[dict]:
    """Every rank's RNG states (its own dropout stream), for the checkpoint; [] in a single process."""
    if world == 1:
        return []
    states = [None] * world
    torch.distributed.all_gather_object(states, rng_state(device))
    return states


def truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (the re-run writes them again)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    atomic_write(path, "".join(line + "\n" for line in keep))  # a kill here must not lose the earlier lines
