"""Layer truncation: a student GPT-2 made of chosen blocks of a teacher (Li et al. 2021).

The student keeps the teacher's token and position embeddings, final layer norm and (tied) head, and a
subset of its blocks, copied whole. Their best choice for the 12-layer GPT-2 was every other layer,
`alt` = 0 2 4 6 8 10; DistilGPT-2's initialisation is `distil` = 0 2 4 7 9 11.
"""

from __future__ import annotations

import copy

from train.model import GPT, GPTConfig
from train import TrainError  # the package's one user-facing error

PRESETS_12 = {
    "alt": [0, 2, 4, 6, 8, 10],
    "distil": [0, 2, 4, 7, 9, 11],
    "bottom": [0, 1, 2, 3, 4, 5],
    "top": [6, 7, 8, 9, 10, 11],
}


def parse_keep_layers(spec: str, n_layer: int) -> list[int]:
    """`alt|distil|bottom|top` or a list like `0,2,4`, checked against a teacher of `n_layer` blocks.

    For a teacher that is not 12 layers deep the presets generalise: alt = every other block from 0,
    bottom/top = the lower/upper half; `distil` is defined for 12 layers only."""
    spec = spec.strip()
    if spec in PRESETS_12:
        if n_layer == 12:
            return list(PRESETS_12[spec])
        half = n_layer // 2
        if spec == "alt":
            return list(range(0, n_layer, 2))
        if spec == "bottom":
            return list(range(half))
        if spec == "top":
            return list(range(n_layer - half, n_layer))
        raise TrainError(
            f"keep-layers 'distil' is defined for a 12-layer teacher; this one has {n_layer}: list the layers instead"
        )
    try:
        layers = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise TrainError(
            f"keep-layers {spec!r}: expected one of {', '.join(PRESETS_12)} or a list like 0,2,4"
        ) from None
    if not layers:
        raise TrainError("keep-layers: no layer given")
    bad = [i for i in layers if not 0 <= i < n_layer]
    if bad:
        raise TrainError(f"keep-layers {spec!r}: the teacher has layers 0-{n_layer - 1}, not {bad}")
    if len(set(layers)) != len(layers):
        raise TrainError(f"keep-layers {spec!r}: a layer is listed twice")
    return layers


def truncate(teacher: GPT, keep: list[int]) -> GPT:
    """A new model with the teacher's blocks `keep` (in that order) and all its other weights."""
    cfg = GPTConfig(**{**teacher.config.__dict__, "n_layer": len(keep)})
    student = GPT(cfg)
    state = {k: v for k, v in teacher.state_dict().items() if not k.startswith("transformer.h.")}
    for new, old in enumerate(keep):
        prefix = f"transformer.h.{old}."
        state.update(
            {
                f"transformer.h.{new}.{k[len(prefix) :]}": v
                for k, v in teacher.state_dict().items()
                if k.startswith(prefix)
            }
        )
    student.load_state_dict(copy.deepcopy(state))
    return student
