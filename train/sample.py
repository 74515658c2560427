"""Text from a trained model (after nanoGPT's sample.py): a run folder or an export, a prompt, and how to draw.

    python -m train sample runs/student --prompt "The kernel" --max-new-tokens 100 --temperature 0.8 --top-k 200

A run folder gives its export when the run has finished, else its latest checkpoint (the run's shape comes from
its config.json, the tokenizer from its token shards). Reproducible: every draw comes from one CPU generator
seeded with --seed, so the same model, prompt, settings and seed give the same text.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from train import TrainError  # the package's one user-facing error
from train.checkpoint import latest_checkpoint, load_checkpoint
from train.model import GPT
from train.tokenizer import load_tokenizer


def load_model(path: str | Path) -> tuple[GPT, object, str]:
    """(model, tokenizer, what was loaded) from an export, or a run folder (its export, else its latest checkpoint)."""
    path = Path(path)
    if (path / "config.json").exists() and (path / "tokenizer.json").exists():  # an export
        return GPT.from_pretrained(path), load_tokenizer(path), str(path)
    if (path / "export" / "tokenizer.json").exists():
        return GPT.from_pretrained(path / "export"), load_tokenizer(path / "export"), str(path / "export")
    checkpoint = latest_checkpoint(path)
    if checkpoint is None or not (path / "config.json").exists():
        raise TrainError(f"{path}: neither an export (config.json + tokenizer.json) nor a run folder with a checkpoint")
    from train.config import RunConfig
    from train.data import TokenBlocks
    from train.loop import build_model

    cfg = RunConfig()
    for group, values in json.loads((path / "config.json").read_text()).items():
        if isinstance(values, dict):  # a setting this version does not know cannot shape the model
            for name, value in values.items():
                if hasattr(getattr(cfg, group, None), name):
                    setattr(getattr(cfg, group), name, value)
    tokens = TokenBlocks(cfg.data.tokens, "train")
    model, _ = build_model(cfg, tokens)  # the run's shape (a truncated teacher's too); the weights come next
    model.load_state_dict(load_checkpoint(checkpoint)["model"])
    return model.eval(), load_tokenizer(tokens.dir / "tokenizer"), str(checkpoint)


@torch.no_grad()
def generate(
    model: GPT, ids: list[int], max_new_tokens: int, temperature: float, top_k: int, generator: torch.Generator
) -> list[int]:
    """`ids` followed by `max_new_tokens` drawn one at a time; temperature 0 takes the most likely token."""
    device = next(model.parameters()).device
    x = torch.tensor([ids], device=device)
    for _ in range(max_new_tokens):
        logits = model(x[:, -model.config.block_size :]).logits[0, -1].float().cpu()
        if temperature == 0:
            token = int(logits.argmax())
        else:
            logits = logits / temperature
            if top_k:
                threshold = torch.topk(logits, min(top_k, logits.numel())).values[-1]
                logits[logits < threshold] = -float("inf")
            token = int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator))
        x = torch.cat([x, torch.tensor([[token]], device=device)], dim=1)
    return x[0].tolist()


def sample(
    path: str | Path,
    prompt: str = "",
    max_new_tokens: int = 100,
    temperature: float = 0.8,
    top_k: int = 200,
    seed: int = 0,
    num_samples: int = 1,
    device: str = "cpu",
) -> list[str]:
    """`num_samples` texts (prompt included), each printed as it is done."""
    if temperature < 0 or top_k < 0 or max_new_tokens < 0 or num_samples < 1:
        raise TrainError("--temperature, --top-k and --max-new-tokens must be >= 0, --num-samples >= 1")
    model, tok, source = load_model(path)
    model.to(device)
    ids = tok(prompt).input_ids if prompt else [tok.eos_token_id]  # no prompt: start as a new document
    generator = torch.Generator().manual_seed(seed)
    texts = []
    start = time.time()
    for _ in range(num_samples):
        out = generate(model, ids, max_new_tokens, temperature, top_k, generator)
        text = tok.decode(out if prompt else out[1:])
        texts.append(text)
        print(text, flush=True)
        print("-" * 40, flush=True)
    rate = num_samples * max_new_tokens / max(time.time() - start, 1e-9)
    print(
        f"sampled from {source}: {num_samples} x {max_new_tokens} tokens, {rate:,.0f} tokens/s "
        f"(temperature {temperature}, top-k {top_k}, seed {seed})",
        file=sys.stderr,
        flush=True,
    )
    return texts
