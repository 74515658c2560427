"""Where and how a command computes: the --device and --dtype options of every command, checked in one place.

    parse_device("cuda:1") -> torch.device("cuda", 1)     (cpu, cuda, cuda:N, mps, xpu, ...; refused: unknown names,
                                                            a backend that is not available, a GPU index out of range)
    parse_dtype("bfloat16", device) -> "bf16"              (fp32 | bf16 | fp16 and torch's long names; auto: bf16 on a
                                                            GPU that has it, else fp16 on a GPU, fp32 elsewhere)

The errors are ValueError with one line saying what to pass; each command reports it as its own user error
(exit 2). None of this changes what a run learns: device, dtype, compile and threads are execution settings.
"""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DTYPE_ALIASES = {"float32": "fp32", "float": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}
DEVICE_HELP = "cpu | cuda | cuda:N | mps | any torch device"
DTYPE_HELP = (
    "fp32 | bf16 | fp16 (autocast; bfloat16/float16 also accepted) | auto: bf16 on a GPU that supports it, "
    "else fp16 on a GPU, fp32 on CPU"
)


def parse_device(name: str) -> torch.device:
    """A torch device that exists on this machine, or ValueError naming what to pass instead."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"--device {name!r}: not a torch device; use {DEVICE_HELP}") from None
    if device.type == "cpu":
        return device
    module = getattr(torch, device.type, None)  # torch.cuda, torch.mps, torch.xpu, ...
    available = getattr(module, "is_available", None)
    if available is None or not available():
        raise ValueError(f"--device {name}: no {device.type} device is available on this machine (use cpu)")
    count = getattr(module, "device_count", lambda: 1)()
    if device.index is not None and device.index >= count:
        raise ValueError(
            f"--device {name}: this machine has {count} {device.type} device(s), "
            f"{device.type}:0 to {device.type}:{count - 1}"
        )
    return device


def parse_dtype(name: str, device: torch.device) -> str:
    """The canonical name (fp32, bf16 or fp16) of the autocast dtype `name` on `device`, or ValueError."""
    key = name.lower()
    if key == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    key = DTYPE_ALIASES.get(key, key)
    if key not in DTYPES:
        raise ValueError(f"--dtype {name!r}: use fp32, bf16, fp16 or auto")
    return key


def autocast(device: torch.device, dtype: str):
    """The mixed-precision context of `dtype` on `device` (nothing for fp32)."""
    if dtype == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[dtype])


def grad_scaler(device: torch.device, dtype: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16 training (its small exponent range underflows gradients); a no-op otherwise."""
    return torch.amp.GradScaler(device.type, enabled=dtype == "fp16")


def prepare(device: torch.device, deterministic: bool = False) -> None:
    """Per-process settings, before the device is first used: TF32 matmuls on NVIDIA GPUs (fp32 accumulation of
    10-bit-mantissa products, several times faster than fp32 from Ampere on; CPUs are unaffected), and with
    `deterministic` the kernels that give the same bits on every run (needed for a bit-exact resume on a GPU)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32 kernels are deterministic too
        torch.backends.cudnn.allow_tf32 = True
    if deterministic:
        # cuBLAS picks reduction orders by workspace unless it is fixed; read when the CUDA context is made
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        # an op without a deterministic kernel warns, naming itself, rather than stopping the run
        torch.use_deterministic_algorithms(True, warn_only=True)


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU batch on `device`: through pinned memory and without waiting on a GPU (the copy overlaps the compute)."""
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


def sum_buffer(device: torch.device) -> torch.Tensor:
    """A zero to sum losses into on `device` (no host sync per addition): float64 as a Python float, where the device
    has it (Apple's MPS does not)."""
    return torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
