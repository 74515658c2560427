"""Reading a clean corpus (corpus-clean's output folder): its documents, batch by batch, from the Arrow shards."""

from __future__ import annotations

from pathlib import Path

from train import TrainError


def iter_documents(clean_dir: Path):
    """(ids, texts) batches of a clean corpus's shards, memory-mapped."""
    import pyarrow as pa

    for shard in sorted((clean_dir / "shards").glob("*.arrow")):
        try:
            with pa.memory_map(str(shard), "r") as src:
                for batch in pa.ipc.open_stream(src):
                    yield batch.column("id").to_pylist(), batch.column("text").to_pylist()
        except (pa.ArrowException, OSError) as e:
            raise TrainError(f"{shard}: corrupt or truncated shard ({e})") from None
