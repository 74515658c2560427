"""corpus: raw documents -> clean, deduplicated, sharded Arrow (no torch, no train/eval imports)."""
