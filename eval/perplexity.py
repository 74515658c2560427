"""Perplexity of a causal LM on raw text files (two protocols), or on held-out token shards.

    python -m eval perplexity MODEL_DIR [--data FILE ...] [--tokens TOKENS_DIR] [--protocol sliding|blocks]

Text protocols (the whole file is tokenized as one sequence first):
- `sliding` (default) follows Hugging Face's perplexity guide: windows of `context` tokens advance by
  `stride`, and each token is scored once, with up to `context - 1` tokens of left context.
- `blocks` is the protocol of Hugging Face's `run_clm.py`, behind published WikiText-103 numbers such as
  DistilGPT-2's: the tokens are cut into non-overlapping blocks of `context` tokens, the remainder is
  dropped, and perplexity is exp(mean loss over the blocks' tokens); each block's first token is not
  scored and the others see only the tokens of their own block, so it usually reads higher than `sliding`.
- `lines` is the evaluation of the paper's authors (`run_clm.py` over a text file read with the `datasets`
  text loader): the file is read line by line with the newlines dropped, each line tokenized on its own, and
  the lines concatenated in groups of 1,000 (the loader's map batch) before being cut into blocks of
  `context` tokens; each group drops its own remainder. Lines run together without a separator, so it
  scores a slightly different text than `blocks` does.
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
from eval import EvalError  # the package's one user-facing error
from safe_output import atomic_json
from train.device import DEVICE_HELP, DTYPE_HELP, autocast, parse_device, parse_dtype, prepare, sum_buffer, to_device


def execution(device: str, dtype: str = "fp32") -> tuple[torch.device, str]:
    """The device to evaluate or fine-tune on and the autocast dtype there (fp32 | bf16 | fp16), both checked, so a
    typo or a missing GPU is one clear line; TF32 matmuls on NVIDIA GPUs."""
    try:
        checked = parse_device(device)
        dtype = parse_dtype(dtype, checked)
    except ValueError as e:
        raise EvalError(str(e)) from None
    prepare(checked)
    return checked, dtype


def model_directory(name_or_dir: str | Path) -> Path:
    """A local model directory, or a hub name (`gpt2`, `distilgpt2`) fetched when online."""
    path = Path(name_or_dir)
    if (path / "config.json").exists():
        return path
    if path.exists() or str(name_or_dir).startswith((".", "/", "~")):
        raise EvalError(f"{path}: not a model directory (no config.json)")
    from train import TrainError
    from train.model import resolve_checkpoint

    try:
        return resolve_checkpoint(name_or_dir)
    except TrainError as e:
        raise EvalError(str(e)) from None


def load_causal_lm(model_dir: str | Path, device: str = "cpu"):
    """(model, tokenizer) on `device`: our GPT for GPT-2 checkpoints, transformers' AutoModelForCausalLM otherwise."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = model_directory(model_dir)
    if not (model_dir / "tokenizer.json").exists() and not (model_dir / "tokenizer_config.json").exists():
        raise EvalError(f"{model_dir}: no tokenizer files next to the model")
    from train import TrainError
    from train.model import GPT

    try:
        model_type = json.loads((model_dir / "config.json").read_text()).get("model_type")
    except (ValueError, AttributeError) as e:
        raise EvalError(f"{model_dir / 'config.json'}: not a JSON object ({e})") from None
    if model_type == "gpt2":
        try:
            model = GPT.from_pretrained(model_dir)
        except TrainError as e:
            raise EvalError(str(e)) from None
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir)
    return model.to(execution(device)[0]).eval(), AutoTokenizer.from_pretrained(str(model_dir))


def context_length(model) -> int:
    cfg = model.config
    return getattr(cfg, "block_size", None) or getattr(cfg, "n_positions", None) or cfg.max_position_embeddings


@torch.no_grad()
def ids_perplexity(model, ids: torch.Tensor, context: int, stride: int, label: str = "", dtype: str = "fp32",
                   per_item: bool = False) -> dict:
    """Perplexity over windows of `context` tokens advancing by `stride`; with `per_item`, also each window's
    summed loss and scored tokens (`items`), so that models scored on the same text can be compared pairwise."""
    n = ids.numel()
    if n < 2:
        raise EvalError(f"{label or 'text'}: fewer than 2 tokens")
    device = next(model.parameters()).device
    nll, scored, prev_end = sum_buffer(device), 0, 0  # summed on the device: no wait per window
    window_nlls, window_tokens = [], []
    start = last = time.time()
    for begin in range(0, n, stride):
        end = min(begin + context, n)
        window = to_device(ids[begin:end].unsqueeze(0), device)
        new = end - prev_end  # tokens not scored by an earlier window
        with autocast(device, dtype):
            logits = model(window).logits[0, :-1].float()
        targets = window[0, 1:]
        first = max(0, targets.numel() - new)  # score only the new tokens (the first token of the text has no context)
        window_nll = F.cross_entropy(logits[first:], targets[first:], reduction="sum")
        nll += window_nll
        scored += targets.numel() - first
        if per_item:
            window_nlls.append(window_nll)
            window_tokens.append(targets.numel() - first)
        prev_end = end
        if time.time() - last > 10:
            last = time.time()
            rate = end / (last - start)
            print(f"  perplexity {label}: {end:,}/{n:,} tokens, {rate:,.0f} tokens/s, ETA {(n - end) / rate:,.0f}s", flush=True)
        if end == n:
            break
    nll = nll.item()
    result = {"ppl": math.exp(nll / scored), "nll": nll / scored, "tokens": scored, "context": context,
              "stride": stride}
    if per_item:
        result["items"] = [list(pair) for pair in zip(torch.stack(window_nlls).tolist(), window_tokens, strict=True)]
    return result


PROTOCOLS = ("sliding", "blocks", "lines")
LINES_PER_GROUP = 1000  # datasets.map's default batch size, the grouping of run_clm.py's group_texts


def line_group_ids(tokenizer, text: str, context: int,
                   lines_per_group: int = LINES_PER_GROUP) -> tuple[torch.Tensor, int]:
    """The `lines` protocol's blocks, concatenated, and the number of tokens the groups' remainders dropped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":  # the text loader yields no line after a final newline
        lines.pop()
    kept, dropped = [], 0
    for g in range(0, len(lines), lines_per_group):
        group = [t for line in lines[g:g + lines_per_group] for t in tokenizer(line).input_ids]
        usable = len(group) // context * context
        kept.extend(group[:usable])
        dropped += len(group) - usable
    return torch.tensor(kept, dtype=torch.long), dropped


def block_perplexity(model, ids: torch.Tensor, context: int, label: str = "", dtype: str = "fp32",
                     per_item: bool = False) -> dict:
    """run_clm.py's protocol: non-overlapping blocks of `context` tokens, the remainder dropped."""
    n_blocks = ids.numel() // context
    if n_blocks == 0:
        raise EvalError(f"{label or 'text'}: {ids.numel()} tokens, fewer than one block of {context}")
    # disjoint windows of exactly `context` tokens: each scores all but its first token, as run_clm's loss does
    result = ids_perplexity(model, ids[: n_blocks * context], context, stride=context, label=label, dtype=dtype,
                            per_item=per_item)
    return {**result, "blocks": n_blocks, "dropped_tokens": ids.numel() - n_blocks * context}


def text_perplexity(model, tokenizer, text: str, context: int | None = None, stride: int | None = None,
                    max_tokens: int = 0, label: str = "", protocol: str = "sliding", dtype: str = "fp32",
                    per_item: bool = False) -> dict:
    context = context or context_length(model)
    if protocol not in PROTOCOLS:
        raise EvalError(f"unknown perplexity protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if protocol == "lines":
        ids, dropped = line_group_ids(tokenizer, text, context)
        if max_tokens:
            ids = ids[:max_tokens // context * context]
    else:
        ids = torch.tensor(tokenizer(text).input_ids, dtype=torch.long)
        if max_tokens:
            ids = ids[:max_tokens]
    if protocol in ("blocks", "lines"):
        result = block_perplexity(model, ids, context, label, dtype, per_item)
        if protocol == "lines":
            result["dropped_tokens"] = dropped
        spans = [(b * context + 1, (b + 1) * context) for b in range(result["blocks"])]
    else:
        stride = stride or max(1, context // 2)
        if not 0 < stride <= context:
            raise EvalError(f"stride must be in 1..context ({context}), not {stride}")
        result = ids_perplexity(model, ids, context, stride, label, dtype, per_item)
        spans = [(1, ids.numel())]
    scored_bytes = sum(len(tokenizer.decode(ids[a:b].tolist(), clean_up_tokenization_spaces=False).encode("utf-8"))
                       for a, b in spans)
    return {**result, "protocol": protocol, **bits_per_byte(result["nll"] * result["tokens"], scored_bytes)}


def bits_per_byte(nll_sum: float, n_bytes: int) -> dict:
    """Total loss in bits over the UTF-8 bytes of the scored text: unlike perplexity, comparable across tokenizers
    (our 8k BPE and GPT-2's 50k one cut the same text into different numbers of tokens)."""
    return {"bpb": nll_sum / math.log(2) / n_bytes if n_bytes else float("nan"), "bytes": n_bytes}


@torch.no_grad()
def shard_perplexity(model, tokens_dir: str | Path, split: str = "val", max_blocks: int = 0, batch_size: int = 16,
                     dtype: str = "fp32", per_item: bool = False) -> dict:
    """Mean next-token loss over the blocks of a token-shard split (train's own validation data); with
    `per_item`, also each block's summed loss and scored tokens (`items`)."""
    from train import TrainError
    from train.data import TokenBlocks

    try:
        blocks = TokenBlocks(tokens_dir, split)
    except TrainError as e:
        raise EvalError(str(e)) from None
    n = min(len(blocks), max_blocks) if max_blocks else len(blocks)
    device = next(model.parameters()).device
    nll, count, block_nlls = sum_buffer(device), 0, []
    for i in range(0, n, batch_size):
        batch = to_device(blocks.batch(range(i, min(n, i + batch_size))), device)
        with autocast(device, dtype):
            logits = model(batch[:, :-1]).logits.float()
        losses = F.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="none").sum(dim=1)
        nll += losses.sum()
        count += batch[:, 1:].numel()
        if per_item:
            block_nlls.append(losses)
    nll = nll.item()
    result = {"ppl": math.exp(nll / count), "nll": nll / count, "tokens": count, "blocks": n}
    if per_item:
        result["items"] = [[loss, blocks.block_size] for loss in torch.cat(block_nlls).tolist()]
    return result


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
                        "remainder dropped (the protocol of published WikiText-103 numbers); lines: the paper "
                        "authors' run: lines tokenized without their newlines, grouped per 1,000 lines, each group "
                        "cut into blocks", choices=PROTOCOLS)
    context: int = opt(0, "window or block length (0: the model's context)", check=at_least(0))
    stride: int = opt(0, "window step of --protocol sliding (0: context/2)", check=at_least(0))
    max_tokens: int = opt(0, "score only the first N tokens of each file (0: all)", check=at_least(0))
    device: str = opt("cpu", DEVICE_HELP)
    dtype: str = opt("auto", DTYPE_HELP)
    json: str = opt("", "write the results to this JSON file (default: print them only)", metavar="FILE")

    def validate(self):
        if self.protocol != "sliding" and self.stride:
            raise ValueError(f"--stride is a setting of --protocol sliding; {self.protocol} blocks do not overlap")


Settings = PerplexityConfig


def run(cfg: PerplexityConfig, command=None) -> dict:
    _, dtype = execution(cfg.device, cfg.dtype)  # checked before the model is loaded
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
                            cfg.max_tokens, label=path.name, protocol=cfg.protocol, dtype=dtype)
        results[str(path)] = r
        how = (f"sliding window: context {r['context']}, stride {r['stride']}" if cfg.protocol == "sliding" else
               f"{r['blocks']:,} blocks of {r['context']}, {r['dropped_tokens']} remainder tokens dropped")
        print(f"{path}: perplexity {r['ppl']:.2f}, {r['bpb']:.4f} bits per byte, over {r['tokens']:,} tokens "
              f"({r['bytes']:,} bytes; {how})")
    if cfg.tokens:
        r = shard_perplexity(model, cfg.tokens, cfg.split, dtype=dtype)
        results[f"{cfg.tokens}:{cfg.split}"] = r
        print(f"{cfg.tokens} [{cfg.split}]: perplexity {r['ppl']:.2f} over {r['tokens']:,} tokens")
    if cfg.json:
        atomic_json(cfg.json, results)
    return results
