"""Downstream fine-tuning on GLUE tasks (SST-2, CoLA, RTE), optionally distilling from a fine-tuned teacher.

    python -m eval glue MODEL_DIR --task sst2 [--data ../shared/data/glue] [--epochs 3] [--max-train 4000]
    python -m eval glue STUDENT --task sst2 --teacher TEACHER --kd vanilla|annealing|rail

The classifier reads the final hidden state of the last real token (as GPT2ForSequenceClassification
does) through one linear layer. Reported on the dev set: accuracy, or Matthews correlation for CoLA.
With `--teacher`, the teacher is fine-tuned first on the same task (or loaded, if it is a directory this
command saved with `--save`), its dev score reported, and the student trained with one of `eval.kd`'s losses.
"""
from __future__ import annotations

import csv
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from eval.perplexity import ROOT, EvalError, eval_device, model_directory

GLUE_DIR = ROOT.parent / "shared" / "data" / "glue"
TASKS = {
    # name: (folder, has header, sentence columns, label column, label names, metric)
    "sst2": ("SST-2", True, ["sentence"], "label", ["0", "1"], "accuracy"),
    "cola": ("CoLA", False, [3], 1, ["0", "1"], "mcc"),
    "rte": ("RTE", True, ["sentence1", "sentence2"], "label", ["not_entailment", "entailment"], "accuracy"),
}


@dataclass
class GlueConfig:
    epochs: int = 3
    lr: float = 1e-4
    batch_size: int = 32
    max_len: int = 128
    max_train: int = 0  # 0: the whole training set
    max_dev: int = 0
    seed: int = 0
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    # knowledge distillation (see eval.kd)
    kd: str = ""  # "" | vanilla | annealing | rail
    kd_alpha: float = 0.5
    kd_temperature: float = 2.0
    annealing_tau_max: int = 7
    rail_dim: int = 128
    rail_weight: float = 1.0
    device: str = "cpu"  # cpu, cuda or cuda:N


def read_tsv(path: Path, task: str) -> tuple[list[tuple[str, ...]], list[int], int]:
    """(texts, labels, skipped rows); a bad row is skipped and counted, naming file and line."""
    folder, header, text_cols, label_col, names, _ = TASKS[task]
    if not path.exists():
        raise EvalError(f"{path}: not found (GLUE {folder} TSVs expected in --data)")
    texts, labels, skipped = [], [], 0
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        columns = next(rows) if header else None
        for line_no, row in enumerate(rows, start=2 if header else 1):
            try:
                get = (lambda c: row[columns.index(c)]) if header else (lambda c: row[c])
                text = tuple(get(c) for c in text_cols)
                label = names.index(get(label_col).strip())
            except (ValueError, IndexError):
                print(f"  {path}:{line_no}: skipped (malformed row)", file=sys.stderr)
                skipped += 1
                continue
            texts.append(text)
            labels.append(label)
    if not texts:
        raise EvalError(f"{path}: no usable rows")
    return texts, labels, skipped


class Classifier(nn.Module):
    """A GPT backbone + linear head on the last real token's final hidden state."""

    def __init__(self, backbone, n_labels: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.n_embd, n_labels)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor):
        out = self.backbone(ids, attention_mask=mask, output_hidden_states=True, return_logits=False)
        last = mask.sum(1) - 1
        pooled = out.hidden_states[-1][torch.arange(ids.size(0), device=ids.device), last]
        return self.head(pooled), out.hidden_states

    def save(self, directory: Path, tokenizer, task: str) -> None:
        from safetensors.torch import save_file

        self.backbone.save_pretrained(directory)
        tokenizer.save_pretrained(str(directory))
        save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}, str(directory / "classifier.safetensors"))
        (directory / "classifier.json").write_text(json.dumps({"task": task, "n_labels": self.head.out_features}))

    @classmethod
    def load(cls, directory: Path, n_labels: int):
        from safetensors.torch import load_file

        from train.model import GPT

        model = cls(GPT.from_pretrained(directory), n_labels)
        if (directory / "classifier.safetensors").exists():
            model.head.load_state_dict(load_file(str(directory / "classifier.safetensors")))
        return model


def is_finetuned(directory: Path, task: str) -> bool:
    meta = directory / "classifier.json"
    return meta.exists() and json.loads(meta.read_text())["task"] == task


def encode(tokenizer, texts: list[tuple[str, ...]], max_len: int) -> list[list[int]]:
    sep = tokenizer.eos_token_id
    encoded = []
    for parts in texts:
        ids = []
        for i, part in enumerate(parts):
            ids += ([sep] if i else []) + tokenizer(part.strip()).input_ids
        encoded.append(ids[-max_len:] if len(parts) > 1 else ids[:max_len])  # keep the hypothesis of a pair
    return encoded


def batches(ids: list[list[int]], labels: list[int], size: int, order: list[int], pad: int):
    for i in range(0, len(order), size):
        idx = order[i:i + size]
        longest = max(max(len(ids[j]) for j in idx), 1)
        x = torch.full((len(idx), longest), pad, dtype=torch.long)
        m = torch.zeros((len(idx), longest), dtype=torch.long)
        for r, j in enumerate(idx):
            x[r, :len(ids[j])] = torch.tensor(ids[j] or [pad])
            m[r, :max(len(ids[j]), 1)] = 1
        yield x, m, torch.tensor([labels[j] for j in idx])


def matthews(pred: list[int], gold: list[int]) -> float:
    tp = sum(p == g == 1 for p, g in zip(pred, gold))
    tn = sum(p == g == 0 for p, g in zip(pred, gold))
    fp = sum(p == 1 and g == 0 for p, g in zip(pred, gold))
    fn = sum(p == 0 and g == 1 for p, g in zip(pred, gold))
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denom if denom else 0.0


@torch.no_grad()
def evaluate(model: Classifier, ids, labels, cfg: GlueConfig, pad: int, metric: str) -> float:
    model.eval()
    preds = []
    device = next(model.parameters()).device
    for x, m, _ in batches(ids, labels, 64, list(range(len(ids))), pad):
        preds += model(x.to(device), m.to(device))[0].argmax(-1).tolist()
    model.train()
    return matthews(preds, labels) if metric == "mcc" else sum(p == g for p, g in zip(preds, labels)) / len(labels)


def finetune(model_dir: str | Path, task: str, data_dir: str | Path = GLUE_DIR, cfg: GlueConfig | None = None,
             teacher_dir: str | Path | None = None, save: str | Path | None = None) -> dict:
    """Fine-tune `model_dir` on `task`; returns the dev score and what produced it."""
    return _finetune(model_dir, task, data_dir, cfg, teacher_dir, save)[0]


def _finetune(model_dir, task, data_dir, cfg, teacher_dir, save) -> tuple[dict, "Classifier"]:
    from transformers import AutoTokenizer

    from eval import kd

    cfg = cfg or GlueConfig()
    if task not in TASKS:
        raise EvalError(f"unknown task {task!r}; choose {', '.join(TASKS)}")
    if cfg.kd and not teacher_dir:
        raise EvalError(f"--kd {cfg.kd} needs --teacher")
    folder, _, _, _, names, metric = TASKS[task]
    device = eval_device(cfg.device)
    model_dir = model_directory(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    pad = tokenizer.eos_token_id
    train_texts, train_labels, skipped_train = read_tsv(Path(data_dir) / folder / "train.tsv", task)
    dev_texts, dev_labels, skipped_dev = read_tsv(Path(data_dir) / folder / "dev.tsv", task)
    rng = random.Random(cfg.seed)
    if cfg.max_train and cfg.max_train < len(train_texts):
        keep = sorted(rng.sample(range(len(train_texts)), cfg.max_train))
        train_texts, train_labels = [train_texts[i] for i in keep], [train_labels[i] for i in keep]
    if cfg.max_dev:
        dev_texts, dev_labels = dev_texts[:cfg.max_dev], dev_labels[:cfg.max_dev]
    max_len = min(cfg.max_len, json.loads((model_dir / "config.json").read_text())["n_positions"])
    train_ids, dev_ids = encode(tokenizer, train_texts, max_len), encode(tokenizer, dev_texts, max_len)

    teacher, teacher_result = None, None
    if teacher_dir:
        teacher_dir = model_directory(teacher_dir)
        if is_finetuned(teacher_dir, task):
            teacher = Classifier.load(teacher_dir, len(names)).to(device)
            teacher_result = {"dev": evaluate(teacher, dev_ids, dev_labels, cfg, pad, metric), "finetuned_here": False}
        else:
            print(f"fine-tuning the teacher {teacher_dir} on {task} first", flush=True)
            t_out, teacher = _finetune(teacher_dir, task, data_dir, GlueConfig(**{**asdict(cfg), "kd": ""}), None, None)
            teacher_result = {"dev": t_out["value"], "train_time_s": t_out["train_time_s"], "finetuned_here": True}
        teacher.eval().requires_grad_(False)
        if AutoTokenizer.from_pretrained(str(teacher_dir)).get_vocab() != tokenizer.get_vocab():
            raise EvalError(f"teacher {teacher_dir} and student {model_dir} use different tokenizers")

    torch.manual_seed(cfg.seed)
    torch.set_flush_denormal(True)  # denormal floats make CPU training many times slower
    model = Classifier.load(model_dir, len(names)) if is_finetuned(model_dir, task) else Classifier(_load_backbone(model_dir), len(names))
    model.to(device).train()
    loss_fn = kd.make_loss(cfg, model, teacher).to(device)
    params = list(model.parameters()) + list(loss_fn.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_ids) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = max(1, int(cfg.warmup_ratio * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    start = last = time.time()
    step = 0
    for epoch in range(cfg.epochs):
        loss_fn.start_epoch(epoch)
        order = list(range(len(train_ids)))
        random.Random(cfg.seed * 1000 + epoch).shuffle(order)
        for x, m, y in batches(train_ids, train_labels, cfg.batch_size, order, pad):
            x, m, y = x.to(device), m.to(device), y.to(device)
            logits, hidden = model(x, m)
            t_logits = t_hidden = None
            if teacher is not None:
                with torch.no_grad():
                    t_logits, t_hidden = teacher(x, m)
            loss = loss_fn(logits, y, hidden, t_logits, t_hidden, m, step / max(1, total - 1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if time.time() - last > 15:
                last = time.time()
                rate = step / (last - start)
                print(f"  {task} epoch {epoch + 1}/{cfg.epochs} step {step}/{total} loss {loss.item():.4f} "
                      f"{rate * cfg.batch_size:,.0f} examples/s ETA {(total - step) / rate:,.0f}s", flush=True)
    value = evaluate(model, dev_ids, dev_labels, cfg, pad, metric)
    result = {"task": task, "metric": metric, "value": value, "train_examples": len(train_ids), "dev_examples": len(dev_ids),
              "skipped_rows": skipped_train + skipped_dev, "train_time_s": round(time.time() - start, 1), "config": asdict(cfg),
              "model": str(model_dir)}
    if teacher_result is not None:
        result["teacher"] = {**teacher_result, "model": str(teacher_dir)}
    if save:
        model.save(Path(save), tokenizer, task)
        result["saved"] = str(save)
    return result, model


def _load_backbone(model_dir: Path):
    from train.model import GPT, CheckpointError

    try:
        return GPT.from_pretrained(model_dir)
    except CheckpointError as e:
        raise EvalError(str(e)) from None


def add_arguments(p) -> None:
    p.add_argument("model", help="model directory (our export or a GPT-2 checkpoint)")
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--data", default=str(GLUE_DIR), help="folder with SST-2/, CoLA/, RTE/ TSVs")
    p.add_argument("--teacher", help="teacher directory (fine-tuned with --save, or fine-tuned here first)")
    p.add_argument("--save", help="save the fine-tuned model (backbone + classifier head) here")
    p.add_argument("--json", help="write the result here")
    for name, default in asdict(GlueConfig()).items():
        flag = "--" + name.replace("_", "-")
        p.add_argument(flag, type=type(default), default=default, dest=f"cfg.{name}")


def run(args) -> dict:
    cfg = GlueConfig(**{k.split(".", 1)[1]: v for k, v in vars(args).items() if k.startswith("cfg.")})
    result = finetune(args.model, args.task, args.data, cfg, teacher_dir=args.teacher, save=args.save)
    name = "Matthews corr." if result["metric"] == "mcc" else "accuracy"
    if "teacher" in result:
        print(f"teacher dev {name}: {result['teacher']['dev']:.4f}")
    print(f"{args.task} dev {name}: {result['value']:.4f} ({result['train_examples']:,} training examples, {result['train_time_s']:.0f}s)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result
