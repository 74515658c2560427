"""What a run reports as it goes, beside metrics.jsonl: TensorBoard event files, Weights & Biases, and the
model-FLOPs utilisation (MFU) of its progress line.

    <run>/tensorboard/events.out.tfevents.*     always: `tensorboard --logdir runs`
    W&B                                         with --wandb-project (WANDB_MODE=offline or --wandb-mode offline
                                                writes to <run>/wandb/ for a later `wandb sync`)

MFU as nanoGPT estimates it: achieved FLOP/s (training FLOPs per token x tokens/s) over the device's peak. The peak
is the one stated with --peak-flops, else measured at the start as this device's rate on a large matmul in the run's
dtype (on CPUs, which publish no single peak, the measured rate is the honest yardstick); the run says which.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch

from train import TrainError  # the package's one user-facing error

SCALARS = {
    "train_loss": "train/loss",
    "val_loss": "val/loss",
    "lr": "train/lr",
    "tokens_per_s": "perf/tokens_per_s",
    "mfu": "perf/mfu",
}


def measured_peak_flops(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 1024) -> float:
    """FLOP/s of this device on an n x n matmul (best of a few), the yardstick of MFU when no peak is stated."""
    # constant matrices: drawing random ones would move the run's RNG stream (dropout), and resumes would differ
    a = b = torch.full((n, n), 0.5, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(4):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


class RunLog:
    """TensorBoard event files in `<run>/tensorboard`, and a W&B run when a project is given."""

    def __init__(self, out: Path, config: dict, start_step: int, wandb_project: str = "", wandb_mode: str = "online"):
        from torch.utils.tensorboard import SummaryWriter

        # a resumed run drops what it had logged after its checkpoint, as metrics.jsonl does
        self.board = SummaryWriter(str(out / "tensorboard"), purge_step=start_step or None)
        self.wandb = None
        if wandb_project:
            try:
                import wandb
            except ImportError:
                raise TrainError(
                    "--wandb-project needs the wandb package: pip install wandb (or pip install '.[wandb]')"
                ) from None
            # one W&B run per run folder: a resume continues it
            self.wandb = wandb.init(
                project=wandb_project,
                name=out.name,
                dir=str(out),
                config=config,
                mode=wandb_mode,
                id=hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:16],
                resume="allow",
            )

    def log(self, record: dict) -> None:
        step = record["step"]
        scalars = {SCALARS[k]: v for k, v in record.items() if k in SCALARS}
        for name, value in scalars.items():
            self.board.add_scalar(name, value, step)
        self.board.flush()
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def close(self) -> None:
        self.board.close()
        if self.wandb is not None:
            self.wandb.finish()
