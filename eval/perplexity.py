"""Perplexity of a causal LM on raw text files (two protocols), or on held-out token shards.

    python -m eval perplexity MODEL_DIR [--data FILE ...] [--tokens TOKENS_DIR] [--protocol sliding|blocks]

Text protocols (the whole file is tokenized as one sequence first):
- `sliding` (default) follows Hugging Face's perplexity guide: windows of `context` tokens advance by
  `stride`, and each token is scored once, with up to `context - 1` tokens of left context.
- `blocks` is the protocol of Hugging Face's `run_clm.py`, behind published WikiText-103 numbers such as
  DistilGPT-2's: the tokens are cut into non-overlapping blocks of `context` tokens, the remainder is
  dropped, and perplexity is exp(mean loss over the blocks' tokens); each block's first token is not
  scored and the others see only the tokens of their own block, so it usually reads higher than `sliding`.
MODEL_DIR is our export or any Hugging Face causal-LM directory. The default text is the WikiText-2 raw
test split (identical to WikiText-103's), found by `eval.data` (--eval-data, $EVAL_DATA,
../shared/data, or the hub).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from cli_config import at_least, opt
from eval import EvalError  # the package's one user-facing error (imported from here by the studies)
from safe_output import atomic_json



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
    from train.model import GPT, CheckpointError

    try:
        model_type = json.loads((model_dir / "config.json").read_text()).get("model_type")
    except (ValueError, AttributeError) as e:
        raise EvalError(f"{model_dir / 'config.json'}: not a JSON object ({e})") from None
    if model_type == "gpt2":
        try:
            model = GPT.from_pretrained(model_dir)
        except CheckpointError as e:
            raise EvalError(str(e)) from None
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


PROTOCOLS = ("sliding", "blocks")


def block_perplexity(model, ids: torch.Tensor, context: int, label: str = "") -> dict:
    """run_clm.py's protocol: non-overlapping blocks of `context` tokens, the remainder dropped."""
    n_blocks = ids.numel() // context
    if n_blocks == 0:
        raise EvalError(f"{label or 'text'}: {ids.numel()} tokens, fewer than one block of {context}")
    # disjoint windows of exactly `context` tokens: each scores all but its first token, as run_clm's loss does
    result = ids_perplexity(model, ids[: n_blocks * context], context, stride=context, label=label)
    return {**result, "blocks": n_blocks, "dropped_tokens": ids.numel() - n_blocks * context}


def text_perplexity(model, tokenizer, text: str, context: int | None = None, stride: int | None = None,
                    max_tokens: int = 0, label: str = "", protocol: str = "sliding") -> dict:
    context = context or context_length(model)
    if protocol not in PROTOCOLS:
        raise EvalError(f"unknown perplexity protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    ids = torch.tensor(tokenizer(text).input_ids, dtype=torch.long)
    if max_tokens:
        ids = ids[:max_tokens]
    if protocol == "blocks":
        return {**block_perplexity(model, ids, context, label), "protocol": protocol}
    stride = stride or max(1, context // 2)
    if not 0 < stride <= context:
        raise EvalError(f"stride must be in 1..context ({context}), not {stride}")
    return {**ids_perplexity(model, ids, context, stride, label), "protocol": protocol}


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


@dataclass
class PerplexityConfig:
    model: str = opt("", "model directory (our export or any Hugging Face causal LM)", required=True,
                     positional=True, metavar="MODEL_DIR")
    data: list[str] | None = opt(None, "raw text files (default: the WikiText-2 raw test split of the evaluation data; "
                                 "none with --tokens)", nargs="*", metavar="FILE")
    tokens: str = opt("", "token shards directory: also score its held-out split", metavar="TOKENS_DIR")
    split: str = opt("val", "split of --tokens to score", choices=("val", "train"))
    protocol: str = opt("sliding", "sliding: overlapping windows, each token scored once with up to context-1 tokens "
                        "before it; blocks: Hugging Face run_clm.py's non-overlapping blocks of the context length, "
                        "remainder dropped (the protocol of published WikiText-103 numbers)", choices=PROTOCOLS)
    context: int = opt(0, "window or block length (0: the model's context)", check=at_least(0))
    stride: int = opt(0, "window step of --protocol sliding (0: context/2)", check=at_least(0))
    max_tokens: int = opt(0, "score only the first N tokens of each file (0: all)", check=at_least(0))
    device: str = opt("cpu", "cpu, cuda or cuda:N")
    json: str = opt("", "write the results to this JSON file (default: print them only)", metavar="FILE")

    def validate(self):
        if self.protocol == "blocks" and self.stride:
            raise ValueError("--stride is a setting of --protocol sliding; blocks do not overlap")


Settings = PerplexityConfig


def run(cfg: PerplexityConfig, command=None) -> dict:
    model, tokenizer = load_causal_lm(cfg.model, cfg.device)
    results = {"model": str(cfg.model)}
    from eval.data import wikitext_test

    files = cfg.data if cfg.data is not None else ([] if cfg.tokens else [str(wikitext_test())])
    for path in map(Path, files):
        if not path.is_file():
            raise EvalError(f"text file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise EvalError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
                            "give a UTF-8 text file") from None
        r = text_perplexity(model, tokenizer, text, cfg.context or None, cfg.stride or None,
                            cfg.max_tokens, label=path.name, protocol=cfg.protocol)
        results[str(path)] = r
        how = (f"{r['blocks']:,} blocks of {r['context']}, {r['dropped_tokens']} remainder tokens dropped" if cfg.protocol == "blocks"
               else f"sliding window: context {r['context']}, stride {r['stride']}")
        print(f"{path}: perplexity {r['ppl']:.2f} over {r['tokens']:,} tokens ({how})")
    if cfg.tokens:
        r = shard_perplexity(model, cfg.tokens, cfg.split)
        results[f"{cfg.tokens}:{cfg.split}"] = r
        print(f"{cfg.tokens} [{cfg.split}]: perplexity {r['ppl']:.2f} over {r['tokens']:,} tokens")
    if cfg.json:
        atomic_json(cfg.json, results)
    return results
