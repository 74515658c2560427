"""Downstream fine-tuning on GLUE tasks (SST-2, CoLA, RTE), optionally distilling from a fine-tuned teacher.

    python -m eval glue MODEL_DIR --task sst2 [--data ../shared/data/glue] [--epochs 3] [--max-train 4000]
    python -m eval glue STUDENT --task sst2 --teacher TEACHER --kd vanilla|annealing|rail

The classifier reads the final hidden state of the last real token (as GPT2ForSequenceClassification
does) through one linear layer. Reported on the dev set: accuracy, or Matthews correlation for CoLA.
With `--teacher`, the teacher is fine-tuned first on the same task (or loaded, if it is a directory this
command saved with `--output`), its dev score reported, and the student trained with one of `eval.kd`'s losses.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import math
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import cli_config
from cli_config import at_least, between, opt, positive
from eval import EvalError, kd
from eval.data import glue_dir
from eval.perplexity import execution, model_directory
from safe_output import atomic_contents, atomic_json, claim_output, use_output
from train.device import DEVICE_HELP, DTYPE_HELP, autocast, grad_scaler, to_device

TASKS = {
    # name: (folder, has header, sentence columns, label column, label names, metric)
    "sst2": ("SST-2", True, ["sentence"], "label", ["0", "1"], "accuracy"),
    "cola": ("CoLA", False, [3], 1, ["0", "1"], "mcc"),
    "rte": ("RTE", True, ["sentence1", "sentence2"], "label", ["not_entailment", "entailment"], "accuracy"),
}


ANNEALING_SELECTIONS = ("dev_metric", "teacher_mse")
# mean cosine similarity between different examples' RAIL projections above which they count as collapsed
RAIL_COLLAPSE = 0.95


@dataclass
class GlueConfig:
    epochs: int = opt(3, "passes over the training examples (Annealing-KD: both phases together)", check=positive())
    lr: float = opt(1e-4, "peak learning rate (AdamW; linear warmup, then linear decay to 0)", check=positive())
    batch_size: int = opt(32, "examples per step", check=positive())
    max_len: int = opt(128, "tokens per example at most (a pair keeps its end)", check=at_least(2))
    max_train: int = opt(0, "training examples, drawn at random with --seed (0: the whole training set)",
                        check=at_least(0))
    max_dev: int = opt(0, "first dev examples scored (0: all)", check=at_least(0))
    seed: int = opt(0, "initialisation of the head, example order, RAIL-KD's layer draws", check=at_least(0))
    weight_decay: float = opt(0.01, "AdamW weight decay of the model (none on RAIL-KD's projections)",
                               check=at_least(0.0))
    warmup_ratio: float = opt(0.06, "fraction of the steps (of each Annealing-KD phase) spent warming up",
                               check=between(0.0, 1.0, high_open=True))
    kd: str = opt("none", "knowledge distillation from --teacher: none (labels only) | vanilla (CE + KL, "
                          "Hinton et al.) | annealing (Annealing-KD, Jafari et al.) | rail (RAIL-KD, Haidar et al.)",
              choices=kd.TECHNIQUES)
    kd_alpha: float = opt(0.5, "vanilla, rail: weight of the KL term; the labels' CE gets 1 - alpha",
                           check=between(0.0, 1.0))
    kd_temperature: float = opt(2.0, "vanilla, rail: softmax temperature T of the KL term (scaled by T^2)",
                                 check=positive())
    annealing_tau_max: int = opt(7, "annealing: temperatures T = 1..tau_max in phase 1, the target is teacher "
                                    "logits * T / tau_max; phase 1 is cut into tau_max equal slices (one per "
                                    "epoch when it has tau_max epochs, shorter slices when it has fewer)",
                                 check=positive())
    annealing_phase2_epochs: int = opt(1, "annealing: epochs of phase 2 (labels only, from the phase-1 checkpoint "
                                          "chosen by --annealing-selection; fresh optimizer and schedule); phase 1 "
                                          "gets the other epochs", check=positive())
    annealing_selection: str = opt("dev_metric", "annealing: which phase-1 checkpoint (one per temperature) phase 2 "
                                                 "starts from: dev_metric (the best dev score, as the authors' code "
                                                 "picks it) | teacher_mse (the lowest MSE to the teacher's logits on "
                                                 "the dev inputs: the dev labels are not read)",
                                   choices=ANNEALING_SELECTIONS)
    rail_dim: int = opt(128, "rail: size of the space the layer-wise linear projections map into", check=positive())
    rail_weight: float = opt(0.1, "rail: weight of the intermediate-layer term (per layer: squared distance "
                                  "of the normalised projections, summed over dimensions, in [0, 4]); at 0.1 its "
                                  "gradient on the student's intermediate layers starts of the order of the KL term's",
                              check=at_least(0.0))
    device: str = opt("cpu", DEVICE_HELP)
    dtype: str = opt("auto", DTYPE_HELP + " (the teacher's and student's forward passes)")
    compile: bool = opt(False, "torch.compile the student's training forward pass (shapes vary with the batch's "
                               "longest example: compiled once for dynamic shapes; no gain on CPU)")


EXECUTION = ("device", "dtype", "compile")  # how a fine-tuning run computes, not what it learns


def learning_settings(cfg: GlueConfig) -> dict:
    """The settings that shape a fine-tuned model, for cache keys: a result made on one device is reused on another.
    `device` stays in at the value earlier keys held, so results cached before are found again."""
    return {**{k: v for k, v in asdict(cfg).items() if k not in EXECUTION}, "device": "cpu"}


def read_tsv(path: Path, task: str) -> tuple[list[tuple[str, ...]], list[int], int]:
    """(texts, labels, skipped rows); a bad row is skipped and counted, naming file and line."""
    folder, header, text_cols, label_col, names, _ = TASKS[task]
    if not path.exists():
        raise EvalError(f"{path}: not found (GLUE {folder} TSVs expected in --data)")
    texts, labels, skipped = [], [], 0
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = e.object[:e.start].count(b"\n") + 1
        raise EvalError(f"{path}:{line}: not UTF-8 text (byte {e.object[e.start]:#04x}); GLUE TSVs are UTF-8") from None
    if not content.strip():
        raise EvalError(f"{path}: empty file (GLUE {folder} TSV expected)")
    rows = csv.reader(io.StringIO(content, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    columns = next(rows) if header else None
    for line_no, row in enumerate(rows, start=2 if header else 1):
        try:
            get = (lambda c: row[columns.index(c)]) if header else (lambda c: row[c])
            text = tuple(get(c) for c in text_cols)
            label = names.index(get(label_col).strip())
        except (ValueError, IndexError):
            cols = [c if isinstance(c, str) else f"column {c + 1}" for c in (*text_cols, label_col)]
            print(f"  {path}:{line_no}: skipped (malformed row: needs {', '.join(cols[:-1])} and {cols[-1]} "
                  f"= {' or '.join(names)})", file=sys.stderr)
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

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, padded: bool = True):
        """padded: whether any mask entry is 0 (known where the batch is made; asking the mask would wait on the GPU)."""
        out = self.backbone(ids, attention_mask=mask if padded else None, output_hidden_states=True, return_logits=False)
        last = mask.sum(1) - 1
        pooled = out.hidden_states[-1][torch.arange(ids.size(0), device=ids.device), last]
        return self.head(pooled), out.hidden_states

    def save(self, directory: Path, tokenizer, task: str) -> None:
        """Into a folder made for it (or empty, or an earlier save), complete or not at all."""
        from safetensors.torch import save_file

        claim_output(directory, "eval glue --save", option="--output")
        with atomic_contents(directory, finished="classifier.json") as tmp:
            self.backbone.save_pretrained(tmp)
            tokenizer.save_pretrained(str(tmp))
            save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}, str(tmp / "classifier.safetensors"))
            atomic_json(tmp / "classifier.json", {"task": task, "n_labels": self.head.out_features})

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
    """(token ids, attention mask, labels, whether any example is padded) per batch, on the CPU."""
    for i in range(0, len(order), size):
        idx = order[i:i + size]
        longest = max(max(len(ids[j]) for j in idx), 1)
        padded = any(len(ids[j]) < longest for j in idx)
        x = torch.full((len(idx), longest), pad, dtype=torch.long)
        m = torch.zeros((len(idx), longest), dtype=torch.long)
        for r, j in enumerate(idx):
            x[r, :len(ids[j])] = torch.tensor(ids[j] or [pad])
            m[r, :max(len(ids[j]), 1)] = 1
        yield x, m, torch.tensor([labels[j] for j in idx]), padded


def matthews(pred: list[int], gold: list[int]) -> float:
    tp = sum(p == g == 1 for p, g in zip(pred, gold))
    tn = sum(p == g == 0 for p, g in zip(pred, gold))
    fp = sum(p == 1 and g == 0 for p, g in zip(pred, gold))
    fn = sum(p == 0 and g == 1 for p, g in zip(pred, gold))
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denom if denom else 0.0


@torch.no_grad()
def dev_logits(model: Classifier, ids, pad: int, dtype: str = "fp32") -> torch.Tensor:
    """The model's fp32 logits on `ids` in eval mode (dropout off, autocast to `dtype`), in order."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for x, m, _, padded in batches(ids, [0] * len(ids), 64, list(range(len(ids))), pad):
        with autocast(device, dtype):
            out.append(model(to_device(x, device), to_device(m, device), padded)[0].float())
    model.train(was_training)
    return torch.cat(out)


def score(preds: list[int], labels: list[int], metric: str) -> float:
    return matthews(preds, labels) if metric == "mcc" else sum(p == g for p, g in zip(preds, labels)) / len(labels)


def evaluate(model: Classifier, ids, labels, pad: int, metric: str, dtype: str = "fp32") -> float:
    return score(dev_logits(model, ids, pad, dtype).argmax(-1).tolist(), labels, metric)


def finetune(model_dir: str | Path, task: str, data_dir: str | Path | None = None, cfg: GlueConfig | None = None,
             teacher_dir: str | Path | None = None, save: str | Path | None = None) -> dict:
    """Fine-tune `model_dir` on `task` (GLUE TSVs in `data_dir`, default `eval.data.glue_dir()`); returns the dev score."""
    return _finetune(model_dir, task, data_dir or glue_dir(), cfg, teacher_dir, save)[0]


def _finetune(model_dir, task, data_dir, cfg, teacher_dir, save) -> tuple[dict, "Classifier"]:
    from transformers import AutoTokenizer

    cfg = cfg or GlueConfig()
    if task not in TASKS:
        raise EvalError(f"unknown task {task!r}; choose {', '.join(TASKS)}")
    if cfg.kd not in kd.TECHNIQUES:
        raise EvalError(f"--kd {cfg.kd!r}: choose {', '.join(kd.TECHNIQUES)}")
    if cfg.kd != "none" and not teacher_dir:
        raise EvalError(f"--kd {cfg.kd} needs --teacher")
    folder, _, _, _, names, metric = TASKS[task]
    device, dtype = execution(cfg.device, cfg.dtype)
    if save:
        claim_output(save, "eval glue --save", option="--output")  # before the work: a folder of the user's is refused now
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
    steps_per_epoch = math.ceil(len(train_ids) / cfg.batch_size)
    plan = None
    if cfg.kd == "annealing":  # checked before the teacher is fine-tuned
        if cfg.annealing_selection not in ANNEALING_SELECTIONS:
            raise EvalError(f"--annealing-selection {cfg.annealing_selection!r}: choose "
                            f"{', '.join(ANNEALING_SELECTIONS)}")
        plan = kd.annealing_plan(cfg.epochs, cfg.annealing_phase2_epochs, steps_per_epoch, cfg.annealing_tau_max)

    teacher, teacher_result = None, None
    if teacher_dir:
        teacher_dir = model_directory(teacher_dir)
        if is_finetuned(teacher_dir, task):
            teacher = Classifier.load(teacher_dir, len(names)).to(device)
            teacher_result = {"dev": evaluate(teacher, dev_ids, dev_labels, pad, metric, dtype), "finetuned_here": False}
        else:
            print(f"fine-tuning the teacher {teacher_dir} on {task} first", flush=True)
            t_out, teacher = _finetune(teacher_dir, task, data_dir, replace(cfg, kd="none"), None, None)
            teacher_result = {"dev": t_out["value"], "train_time_s": t_out["train_time_s"], "finetuned_here": True}
        teacher.eval().requires_grad_(False)
        if AutoTokenizer.from_pretrained(str(teacher_dir)).get_vocab() != tokenizer.get_vocab():
            raise EvalError(f"teacher {teacher_dir} and student {model_dir} use different tokenizers")

    torch.manual_seed(cfg.seed)
    torch.set_flush_denormal(True)  # denormal floats make CPU training many times slower
    model = Classifier.load(model_dir, len(names)) if is_finetuned(model_dir, task) else Classifier(_load_backbone(model_dir), len(names))
    model.to(device).train()
    loss_fn = kd.make_loss(cfg, model, teacher).to(device)
    train = Trainer(model, teacher, loss_fn, train_ids, train_labels, cfg, pad, device, task, dtype)
    extra = {}
    if plan is None:
        train.phase(range(cfg.epochs))
        if cfg.kd == "rail":
            start, end = train.rail_trace[0], train.rail_trace[-1]
            collapsed = end["student_similarity"] > RAIL_COLLAPSE and end["teacher_similarity"] > RAIL_COLLAPSE
            extra["rail"] = {"variant": "layer-wise", "teacher_layers_per_epoch": train.rail_draws, "start": start,
                             "end": end, "collapsed": collapsed}
            if collapsed:
                print(f"  RAIL-KD: the projections collapsed (different examples' projected vectors have cosine "
                      f"similarity {end['student_similarity']:.2f} / {end['teacher_similarity']:.2f} at the end): "
                      f"the intermediate-layer term ({start['term']:.3f} -> {end['term']:.3f}) no longer shapes "
                      "the student", flush=True)
    else:
        extra["annealing"] = annealing(train, loss_fn, plan, dev_ids, dev_labels, pad, metric)
    preds = dev_logits(model, dev_ids, pad, dtype).argmax(-1).tolist()
    value = score(preds, dev_labels, metric)
    result = {"task": task, "metric": metric, "value": value, "train_examples": len(train_ids), "dev_examples": len(dev_ids),
              # per example, for paired tests (McNemar)
              "dev_correct": [int(p == g) for p, g in zip(preds, dev_labels, strict=True)],
              "skipped_rows": skipped_train + skipped_dev, "train_time_s": round(time.time() - train.start, 1), "config": asdict(cfg),
              "model": str(model_dir), **extra}
    if teacher_result is not None:
        result["teacher"] = {**teacher_result, "model": str(teacher_dir)}
    if save:
        model.save(Path(save), tokenizer, task)
        result["saved"] = str(save)
    return result, model


def param_groups(model, loss_fn, weight_decay: float) -> list[dict]:
    """The model decays; the loss's own parameters (RAIL-KD's projections) do not: decay would pull them to 0."""
    return [{"params": list(model.parameters()), "weight_decay": weight_decay},
            {"params": list(loss_fn.parameters()), "weight_decay": 0.0}]


class Trainer:
    """Runs epochs of fine-tuning; each `phase` has its own optimizer and warmup + linear-decay schedule."""

    def __init__(self, model, teacher, loss_fn, ids, labels, cfg: GlueConfig, pad: int, device, task: str, dtype: str = "fp32"):
        self.model, self.teacher, self.loss_fn = model, teacher, loss_fn
        self.ids, self.labels, self.cfg, self.pad, self.device, self.task = ids, labels, cfg, pad, device, task
        self.dtype = dtype
        # the compiled forward shares the model's parameters; the model itself stays plain for saving and evaluation
        self.forward = torch.compile(model, dynamic=True) if cfg.compile else model
        self.steps_per_epoch = math.ceil(len(ids) / cfg.batch_size)
        self.start = time.time()
        self.rail_draws: list[list[int]] = []
        self.rail_trace: list[dict] = []

    def phase(self, epochs: range, after_step=None) -> None:
        """Train `epochs` (global epoch numbers: they fix the example order); after_step(steps done in this phase)."""
        cfg = self.cfg
        groups = param_groups(self.model, self.loss_fn, cfg.weight_decay)
        params = [p for g in groups for p in g["params"]]
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
        scaler = grad_scaler(self.device, self.dtype)
        total = self.steps_per_epoch * len(epochs)
        warmup = max(1, int(cfg.warmup_ratio * total))
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
        start = last = time.time()
        step = 0
        for epoch in epochs:
            self.loss_fn.start_epoch(epoch)
            if self.loss_fn.layers:
                self.rail_draws.append(self.loss_fn.layers)
            order = list(range(len(self.ids)))
            random.Random(cfg.seed * 1000 + epoch).shuffle(order)
            for x, m, y, padded in batches(self.ids, self.labels, cfg.batch_size, order, self.pad):
                x, m, y = (to_device(t, self.device) for t in (x, m, y))
                with autocast(self.device, self.dtype):
                    logits, hidden = self.forward(x, m, padded)
                    t_logits = t_hidden = None
                    if self.teacher is not None:
                        with torch.no_grad():
                            t_logits, t_hidden = self.teacher(x, m, padded)
                    loss = self.loss_fn(logits, y, hidden, t_logits, t_hidden, m)
                    if self.loss_fn.kind == "rail" and (step == 0 or step == total - 1):  # the term at start, end
                        self.rail_trace.append({"step": step, **self.loss_fn.rail_diagnostics(hidden, t_hidden, m)})
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                if after_step is not None:
                    after_step(step)
                if time.time() - last > 15:
                    last = time.time()
                    rate = step / (last - start)
                    print(f"  {self.task} epoch {epoch + 1}/{cfg.epochs} step {step}/{total} loss {loss.item():.4f} "
                          f"{rate * cfg.batch_size:,.0f} examples/s ETA {(total - step) / rate:,.0f}s", flush=True)




def annealing(train: Trainer, loss_fn, plan: dict, dev_ids, dev_labels, pad: int, metric: str) -> dict:
    """Annealing-KD's two phases (see eval.kd). Phase 2 starts from one of the phase-1 checkpoints taken at the ends
    of the tau_max temperature slices: the one with the best dev score (`dev_metric`, as the authors' code picks
    it), or the one closest to the teacher (`teacher_mse`: MSE between the student's and the teacher's logits on
    the dev inputs, the target of the last temperature; the dev labels are not read)."""
    selection = train.cfg.annealing_selection
    print(f"  Annealing-KD: {plan['fit']}; then {plan['phase2_epochs']} epoch(s) on the labels", flush=True)
    teacher_dev = dev_logits(train.teacher, dev_ids, pad, train.dtype)
    val_losses, dev_scores, best = [], [], {"key": -math.inf}

    def after_step(done: int) -> None:
        if done in plan["slice_ends"]:
            val_losses.append(F.mse_loss(dev_logits(train.model, dev_ids, pad, train.dtype), teacher_dev).item())
            dev_scores.append(evaluate(train.model, dev_ids, dev_labels, pad, metric, train.dtype))
            key = dev_scores[-1] if selection == "dev_metric" else -val_losses[-1]
            if key > best["key"]:  # ties keep the earlier checkpoint
                best.update(key=key, temperature=loss_fn.temperature, state=copy.deepcopy(train.model.state_dict()))
        if done < plan["phase1_steps"]:
            loss_fn.temperature = kd.annealing_temperature(done, plan["phase1_steps"], plan["tau_max"])

    loss_fn.temperature = 1
    train.phase(range(plan["phase1_epochs"]), after_step)
    train.model.load_state_dict(best["state"])
    loss_fn.temperature = None  # phase 2: the labels, with a fresh optimizer and schedule
    start_loss = F.mse_loss(dev_logits(train.model, dev_ids, pad, train.dtype), teacher_dev).item()
    train.phase(range(plan["phase1_epochs"], plan["phase1_epochs"] + plan["phase2_epochs"]))
    how = {"dev_metric": f"best phase-1 dev {metric}",
           "teacher_mse": "lowest phase-1 validation loss (MSE to the teacher's logits on the dev inputs)"}
    return {**plan, "selection": how[selection], "val_loss_per_temperature": val_losses,
            "dev_score_per_temperature": dev_scores, "best_temperature": best["temperature"],
            "phase2_start_val_loss": start_loss}


def _load_backbone(model_dir: Path):
    from train import TrainError
    from train.model import GPT

    try:
        return GPT.from_pretrained(model_dir)
    except TrainError as e:
        raise EvalError(str(e)) from None


@dataclass
class GlueCommand(GlueConfig):
    """`python -m eval glue`: a model, a task, where the results go, and the fine-tuning settings."""

    model: str = opt("", "model directory (our export or a GPT-2 checkpoint)", required=True, positional=True,
                     metavar="MODEL_DIR")
    task: str = opt("", "GLUE task", required=True, choices=tuple(sorted(TASKS)))
    data: str = opt("", "folder with SST-2/, CoLA/, RTE/ TSVs (default: glue/ of the evaluation data)", metavar="DIR")
    teacher: str = opt("", "teacher directory (fine-tuned with --output, or fine-tuned here first)", metavar="DIR")
    output: str = opt("", "save the fine-tuned model (backbone + classifier head) in this folder (default: not saved)",
                    metavar="DIR")
    json: str = opt("", "write the result to this JSON file (default: print it only)", metavar="FILE")

    def validate(self):
        if self.kd != "none" and not self.teacher:
            raise ValueError(f"--kd {self.kd} needs --teacher")

    def finetuning(self) -> GlueConfig:
        return GlueConfig(**{f.name: getattr(self, f.name) for f in fields(GlueConfig)})


Settings = GlueCommand


def run(cfg: GlueCommand, command) -> dict:
    wait = command.wait
    # one run per --output folder at a time, as for every other output folder
    inputs = {"MODEL_DIR": [cfg.model], "--teacher": [cfg.teacher], "--data": [cfg.data]}
    output = (use_output(cfg.output, "eval glue --save", wait=wait, option="--output", inputs=inputs) if cfg.output
              else nullcontext())
    with output:
        if cfg.output:
            cli_config.write_record(cfg, cfg.output, "python -m eval glue")
        result = finetune(cfg.model, cfg.task, cfg.data or None, cfg.finetuning(), teacher_dir=cfg.teacher or None,
                          save=cfg.output or None)
    name = "Matthews corr." if result["metric"] == "mcc" else "accuracy"
    if "teacher" in result:
        print(f"teacher dev {name}: {result['teacher']['dev']:.4f}")
    print(f"{cfg.task} dev {name}: {result['value']:.4f} ({result['train_examples']:,} training examples, {result['train_time_s']:.0f}s)")
    if cfg.json:
        atomic_json(cfg.json, result)
    return result
