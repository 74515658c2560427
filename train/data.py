"""Training data: memory-mapped token blocks, and a sample order that is a pure function of (seed, k).

Sample k of a run (k = step * global_batch + position in the batch) is block `perm(seed, epoch)[k % n]`
with epoch = k // n: a resumed run, or a run on another number of processes with the same global batch,
sees exactly the same samples in the same order.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch


from train import TrainError  # the package's one user-facing error


class TokenBlocks:
    """Blocks of `block_size + 1` tokens of one split, read from memory-mapped shards."""

    def __init__(self, tokens_dir: str | Path, split: str = "train"):
        self.dir = Path(tokens_dir)
        manifest_path = self.dir / "manifest.json"
        if not manifest_path.exists():
            raise TrainError(f"{self.dir}: no manifest.json (make token shards with `python -m train tokenize`)")
        try:
            self.manifest = json.loads(manifest_path.read_text())
        except ValueError as e:
            raise TrainError(f"{manifest_path}: not valid JSON ({e}); re-run tokenize") from None
        if not isinstance(self.manifest, dict) or "splits" not in self.manifest:
            kind = "a clean corpus" if (self.dir / "shards").is_dir() else "not a token-shard folder"
            raise TrainError(
                f"{self.dir}: {kind}, not token shards (its manifest.json has no splits): give the folder "
                f"`python -m train tokenize` wrote"
            )
        if split not in self.manifest["splits"]:
            raise TrainError(f"{self.dir}: no {split!r} split")
        self.block_size = self.manifest["block_size"]
        self.vocab_size = self.manifest["vocab_size"]
        dtype = np.dtype(self.manifest["dtype"])
        self.arrays, counts = [], []
        for shard in self.manifest["splits"][split]["shards"]:
            path = self.dir / shard["path"]
            expected = shard["tokens"] * dtype.itemsize
            if not path.exists() or path.stat().st_size != expected:
                size = path.stat().st_size if path.exists() else "missing"
                raise TrainError(
                    f"{path}: corrupt or truncated token shard ({size} bytes, manifest says {expected}); "
                    "re-run tokenize"
                )
            self.arrays.append(np.memmap(path, dtype=dtype, mode="r"))
            counts.append(max(0, (shard["tokens"] - 1) // self.block_size))
        self.cum = np.cumsum([0] + counts)
        if self.cum[-1] == 0:
            raise TrainError(f"{self.dir}: the {split} split has no full block of {self.block_size + 1} tokens")

    def __len__(self) -> int:
        return int(self.cum[-1])

    def block(self, i: int) -> np.ndarray:
        shard = int(np.searchsorted(self.cum, i, side="right") - 1)
        start = (i - int(self.cum[shard])) * self.block_size
        return self.arrays[shard][start : start + self.block_size + 1]

    def batch(self, indices) -> torch.Tensor:
        x = torch.from_numpy(np.stack([self.block(int(i)).astype(np.int64) for i in indices]))
        if int(x.max()) >= self.vocab_size:
            raise TrainError(
                f"{self.dir}: token id {int(x.max())} >= vocab size {self.vocab_size}: corrupt token shard"
            )
        return x


@lru_cache(maxsize=4)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def sample_indices(seed: int, n_blocks: int, start: int, count: int) -> list[int]:
    """Blocks for samples start .. start+count-1 of the run."""
    return [int(_permutation(seed, k // n_blocks, n_blocks)[k % n_blocks]) for k in range(start, start + count)]
