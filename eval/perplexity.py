"""Perplexity of a causal LM: sliding window over raw text files, or on held-out token shards.

    python -m eval perplexity MODEL_DIR [--data FILE ...] [--tokens TOKENS_DIR] [--stride 64]

The sliding window follows Hugging Face's perplexity guide: windows of `context` tokens advance by
`stride`, and each token is scored once, with up to `context - 1` tokens of left context. MODEL_DIR is
our export or any Hugging Face causal-LM directory. The default text is the WikiText-2 raw test split
(identical to WikiText-103's), read from `../shared/data/`.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
WIKITEXT_TEST = ROOT.parent / "shared" / "data" / "wikitext-2-raw" / "wiki.test.raw"


class EvalError(Exception):
    pass


def eval_device(name: str) -> torch.device:
    """The device to evaluate or fine-tune on: `cpu`, `cuda` or `cuda:N` (checked, so a typo is one clear line)."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise EvalError(f"unknown device {name!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EvalError(f"--device {name}, but no CUDA device is available")
    return device


def model_directory(name_or_dir: str | Path) -> Path:
    """A local model directory, or a hub name (`gpt2`, `distilgpt2`) fetched when online."""
    path = Path(name_or_dir)
    if (path / "config.json").exists():
        return path
    if path.exists() or str(name_or_dir).startswith((".", "/", "~")):
        raise EvalError(f"{path}: not a model directory (no config.json)")
    from train.model import CheckpointError, resolve_checkpoint

    try:
        return resolve_checkpoint(name_or_dir)
    except CheckpointError as e:
        raise EvalError(str(e)) from None


def load_causal_lm(model_dir: str | Path, device: str = "cpu"):
    """(model, tokenizer) on `device`: our GPT for GPT-2 checkpoints, transformers' AutoModelForCausalLM otherwise."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = model_directory(model_dir)
    if not (model_dir / "tokenizer.json").exists() and not (model_dir / "tokenizer_config.json").exists():
        raise EvalError(f"{model_dir}: no tokenizer files next to the model")
    if json.loads((model_dir / "config.json").read_text()).get("model_type") == "gpt2":
        from train.model import GPT

        model = GPT.from_pretrained(model_dir)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir)
    return model.to(eval_device(device)).eval(), AutoTokenizer.from_pretrained(str(model_dir))


def context_length(model) -> int:
    cfg = model.config
    return getattr(cfg, "block_size", None) or getattr(cfg, "n_positions", None) or cfg.max_position_embeddings


@torch.no_grad()
def ids_perplexity(model, ids: torch.Tensor, context: int, stride: int, label: str = "") -> dict:
    n = ids.numel()
    if n < 2:
        raise EvalError(f"{label or 'text'}: fewer than 2 tokens")
    nll, scored, prev_end = 0.0, 0, 0
    device = next(model.parameters()).device
    start = last = time.time()
    for begin in range(0, n, stride):
        end = min(begin + context, n)
        window = ids[begin:end].unsqueeze(0).to(device)
        new = end - prev_end  # tokens not scored by an earlier window
        logits = model(window).logits[0, :-1].float()
        targets = window[0, 1:]
        first = max(0, targets.numel() - new)  # score only the new tokens (the first token of the text has no context)
        nll += F.cross_entropy(logits[first:], targets[first:], reduction="sum").item()
        scored += targets.numel() - first
        prev_end = end
        if time.time() - last > 10:
            last = time.time()
            rate = end / (last - start)
            print(f"  perplexity {label}: {end:,}/{n:,} tokens, {rate:,.0f} tokens/s, ETA {(n - end) / rate:,.0f}s", flush=True)
        if end == n:
            break
    return {"ppl": math.exp(nll / scored), "nll": nll / scored, "tokens": scored, "context": context, "stride": stride}


def text_perplexity(model, tokenizer, text: str, context: int | None = None, stride: int | None = None,
                    max_tokens: int = 0, label: str = "") -> dict:
    context = context or context_length(model)
    stride = stride or max(1, context // 2)
    if not 0 < stride <= context:
        raise EvalError(f"stride must be in 1..context ({context}), not {stride}")
    ids = torch.tensor(tokenizer(text).input_ids, dtype=torch.long)
    if max_tokens:
        ids = ids[:max_tokens]
    return ids_perplexity(model, ids, context, stride, label)


@torch.no_grad()
def shard_perplexity(model, tokens_dir: str | Path, split: str = "val", max_blocks: int = 0, batch_size: int = 16) -> dict:
    """Mean next-token loss over the blocks of a token-shard split (train's own validation data)."""
    from train.data import DataError, TokenBlocks

    try:
        blocks = TokenBlocks(tokens_dir, split)
    except DataError as e:
        raise EvalError(str(e)) from None
    n = min(len(blocks), max_blocks) if max_blocks else len(blocks)
    nll, count = 0.0, 0
    device = next(model.parameters()).device
    for i in range(0, n, batch_size):
        batch = blocks.batch(range(i, min(n, i + batch_size))).to(device)
        logits = model(batch[:, :-1]).logits.float()
        nll += F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1), reduction="sum").item()
        count += batch[:, 1:].numel()
    return {"ppl": math.exp(nll / count), "nll": nll / count, "tokens": count, "blocks": n}


def add_arguments(p) -> None:
    p.add_argument("model", help="model directory (our export or any Hugging Face causal LM)")
    p.add_argument("--data", nargs="*", default=None, help=f"raw text files (default: {WIKITEXT_TEST})")
    p.add_argument("--tokens", help="token shards directory: also score its held-out split")
    p.add_argument("--split", default="val")
    p.add_argument("--context", type=int, default=0, help="window length (default: the model's context)")
    p.add_argument("--stride", type=int, default=0, help="window step (default: context/2)")
    p.add_argument("--max-tokens", type=int, default=0, help="score only the first N tokens of each file (0: all)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--json", help="write the results here")


def run(args) -> dict:
    model, tokenizer = load_causal_lm(args.model, args.device)
    results = {"model": str(args.model)}
    files = args.data if args.data is not None else ([] if args.tokens else [str(WIKITEXT_TEST)])
    for path in map(Path, files):
        if not path.is_file():
            raise EvalError(f"text file not found: {path}")
        r = text_perplexity(model, tokenizer, path.read_text(encoding="utf-8"), args.context or None, args.stride or None,
                            args.max_tokens, label=path.name)
        results[str(path)] = r
        print(f"{path}: perplexity {r['ppl']:.2f} over {r['tokens']:,} tokens (context {r['context']}, stride {r['stride']})")
    if args.tokens:
        r = shard_perplexity(model, args.tokens, args.split)
        results[f"{args.tokens}:{args.split}"] = r
        print(f"{args.tokens} [{args.split}]: perplexity {r['ppl']:.2f} over {r['tokens']:,} tokens")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results
