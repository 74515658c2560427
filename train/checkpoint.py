"""Rolling checkpoints of a run: the newest few are kept (`--keep-checkpoints`).

A checkpoint holds the model, the optimizer, the step (the data position and the learning rate follow
from it) and every RNG state, so a resumed run continues exactly as an uninterrupted one would. It is
written to a temporary file, flushed and renamed: a crash or a full disk never leaves a half-written
checkpoint, and the previous one stays intact. Loading uses `weights_only=True`.
"""

from __future__ import annotations

import errno
import random
from pathlib import Path

import numpy as np
import torch

from safe_output import atomic_file
from train import TrainError  # the package's one user-facing error


def rng_state(device: torch.device = torch.device("cpu")) -> dict:
    """The RNG states a rank draws from: CPU, numpy, Python, and its own GPU's when it computes on one (other GPUs
    are left alone: reading them would open a CUDA context on each, in every rank, even a CPU one)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device = torch.device("cpu")) -> None:
    """Restore `rng_state`'s states on this rank; a GPU state only onto a GPU rank. A run moved between a CPU and a
    GPU keeps its CPU, numpy and Python streams; a GPU's dropout stream it has no saved state for starts from
    torch's default seed."""
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    cuda = state.get("cuda")
    if device.type == "cuda" and cuda is not None:
        if isinstance(cuda, list):  # checkpoints that held every visible GPU's state: this rank's, if it was saved
            index = device.index or 0
            cuda = cuda[index] if index < len(cuda) else None
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, device)


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = sorted(checkpoint_dir(run_dir).glob("step-*.pt"))
    return found[-1] if found else None


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    model,
    optimizer,
    device: torch.device = torch.device("cpu"),
    keep: int = 2,
    extra: dict | None = None,
) -> Path:
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:08d}.pt"
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": rng_state(device),
        **(extra or {}),
    }
    try:
        with atomic_file(final) as tmp:
            torch.save(state, tmp)
    except (OSError, RuntimeError) as e:  # torch reports a short write (full disk, quota, size limit) as RuntimeError
        previous = latest_checkpoint(run_dir)
        if isinstance(e, OSError):
            why = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else e.strerror
        else:
            why = "the write was cut short: is the disk full?"
        raise TrainError(
            f"could not write checkpoint {final} ({why}); nothing half-written was left, "
            f"the last good checkpoint is {previous or 'none'}. Free space and run the same command to resume."
        ) from None
    for old in sorted(folder.glob("step-*.pt"))[:-keep]:
        old.unlink()
    return final


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
