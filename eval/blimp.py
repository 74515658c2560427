"""BLiMP zero-shot: does the model prefer the grammatical sentence of each minimal pair?

    python -m eval blimp MODEL_DIR [--paradigms NAME ...] [--max-pairs N] [--json FILE]

BLiMP (Warstadt et al. 2020) has 67 paradigms of 1,000 minimal pairs. A pair is right when the good sentence
gets the higher total log-probability. Each sentence is scored after the tokenizer's beginning-of-text token
(`<|endoftext|>` for GPT-2 and our BPE), as lm-evaluation-harness does, so its first word is scored too.
Chance is 50%. Accuracy is reported overall (mean over pairs), per linguistic field and per paradigm, and
the per-pair outcomes are kept, so two models scored on the same pairs can be compared pair by pair.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from cli_config import at_least, opt, positive
from eval import EvalError
from safe_output import atomic_json


def read_paradigms(folder: Path, names: list[str] | None = None, max_pairs: int = 0) -> dict[str, list[dict]]:
    """{paradigm: [pair, ...]} from BLiMP's `<paradigm>.jsonl` files (fields sentence_good, sentence_bad, field)."""
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise EvalError(f"{folder}: no BLiMP *.jsonl files")
    known = {f.stem: f for f in files}
    unknown = sorted(set(names or []) - set(known))
    if unknown:
        raise EvalError(f"unknown BLiMP paradigm(s) {', '.join(unknown)}; {folder} has {len(known)}, e.g. {files[0].stem}")
    paradigms = {}
    for name in names or sorted(known):
        pairs = []
        with open(known[name], encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    row = json.loads(line)
                    pairs.append({"good": row["sentence_good"], "bad": row["sentence_bad"], "field": row["field"]})
                except (ValueError, KeyError, TypeError):
                    raise EvalError(f"{known[name]} line {number}: not a BLiMP pair (sentence_good, sentence_bad, "
                                    "field)") from None
                if max_pairs and len(pairs) == max_pairs:
                    break
        paradigms[name] = pairs
    return paradigms


def begin_token(tokenizer) -> int:
    token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if token is None:
        raise EvalError("the tokenizer has no beginning- or end-of-text token to score a sentence's first word after")
    return token


@torch.no_grad()
def sentence_logprobs(model, tokenizer, sentences: list[str], batch_size: int = 64) -> list[float]:
    """Total log-probability (nats) of each sentence's tokens, each scored after the beginning-of-text token."""
    device = next(model.parameters()).device
    begin = begin_token(tokenizer)
    encoded = [[begin] + tokenizer(s).input_ids for s in sentences]
    totals = [0.0] * len(encoded)
    # longest first, so batches hold sentences of similar length and little padding
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        width = max(len(encoded[i]) for i in chunk)
        # right padding needs no attention mask: causal attention never lets a real token see a later pad
        ids = torch.full((len(chunk), width), begin, dtype=torch.long)
        mask = torch.zeros((len(chunk), width - 1), dtype=torch.bool)
        for row, i in enumerate(chunk):
            ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
            mask[row, : len(encoded[i]) - 1] = True
        ids = ids.to(device)
        logprobs = F.log_softmax(model(ids[:, :-1]).logits.float(), dim=-1)
        picked = logprobs.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        sums = (picked * mask.to(device)).sum(dim=1).tolist()
        for row, i in enumerate(chunk):
            totals[i] = sums[row]
    return totals


def score(model, tokenizer, paradigms: dict[str, list[dict]], batch_size: int = 64) -> dict:
    """Accuracy overall, per field and per paradigm, and each pair's outcome ('1' right, '0' wrong) per paradigm."""
    by_paradigm, by_field, outcomes = {}, {}, {}
    started = time.time()
    for number, (name, pairs) in enumerate(paradigms.items(), 1):
        good = sentence_logprobs(model, tokenizer, [p["good"] for p in pairs], batch_size)
        bad = sentence_logprobs(model, tokenizer, [p["bad"] for p in pairs], batch_size)
        right = [g > b for g, b in zip(good, bad, strict=True)]
        outcomes[name] = "".join("1" if r else "0" for r in right)
        by_paradigm[name] = sum(right) / len(right)
        for pair, r in zip(pairs, right, strict=True):
            by_field.setdefault(pair["field"], []).append(r)
        if number % 10 == 0 or number == len(paradigms):
            rate = number / (time.time() - started)
            print(f"  blimp: {number}/{len(paradigms)} paradigms, ETA {(len(paradigms) - number) / rate:,.0f}s",
                  flush=True)
    every = [c == "1" for o in outcomes.values() for c in o]
    return {"accuracy": sum(every) / len(every), "pairs": len(every),
            "fields": {f: sum(r) / len(r) for f, r in sorted(by_field.items())},
            "paradigms": by_paradigm, "outcomes": outcomes}


@dataclass
class BlimpConfig:
    model: str = opt("", "model directory (our export or any Hugging Face causal LM)", required=True,
                     positional=True, metavar="MODEL_DIR")
    paradigms: list[str] | None = opt(None, "paradigm names to score (default: all 67)", nargs="*", metavar="NAME")
    max_pairs: int = opt(0, "score only the first N pairs of each paradigm (0: all 1,000)", check=at_least(0))
    batch_size: int = opt(64, "sentences per forward pass", check=positive())
    device: str = opt("cpu", "cpu, cuda or cuda:N")
    json: str = opt("", "write the results (with each pair's outcome) to this JSON file (default: print them only)",
                    metavar="FILE")


Settings = BlimpConfig


def run(cfg: BlimpConfig, command=None) -> dict:
    from eval.data import blimp_dir
    from eval.perplexity import load_causal_lm

    paradigms = read_paradigms(blimp_dir(), cfg.paradigms, cfg.max_pairs)
    model, tokenizer = load_causal_lm(cfg.model, cfg.device)
    result = {"model": str(cfg.model), **score(model, tokenizer, paradigms, cfg.batch_size)}
    print(f"BLiMP: {100 * result['accuracy']:.1f}% of {result['pairs']:,} pairs (chance 50%)")
    for field_name, accuracy in result["fields"].items():
        print(f"  {field_name}: {100 * accuracy:.1f}%")
    if cfg.json:
        atomic_json(cfg.json, result)
    return result
