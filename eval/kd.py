"""Knowledge distillation during downstream fine-tuning (the paper's first study): the losses and schedules.

- none:      cross-entropy on the labels.
- vanilla:   (1 - alpha) * CE + alpha * KL(teacher/T || student/T) * T^2   (Hinton et al. 2015).
- annealing: Annealing-KD (Jafari et al., EACL 2021). Phase 1 cuts its steps into tau_max equal slices; in
             slice T (T = 1, 2, ..., tau_max) the loss is MSE(student logits, teacher logits * T / tau_max), so the
             target steps from a small-scale copy of the teacher up to the teacher itself. The paper gives each
             temperature an epoch; with fewer phase-1 epochs than tau_max the slices are shorter than an epoch
             (the run says so). Phase 2 restarts from the phase-1 checkpoint with the lowest validation loss
             (see `eval.glue`) with a fresh optimizer and learning-rate schedule, and trains on the labels (CE).
- rail:      RAIL-KD (Haidar et al. 2022, arXiv 2109.10164), the layer-wise variant. Each epoch draws, for the
             student's intermediate layers (block outputs except the last: never the embeddings or the final
             output), as many of the teacher's intermediate layers at random, sorted, matched in order. Each
             pair is mean-pooled over real tokens, mapped by its own linear projection (one per student layer,
             one per teacher layer), L2-normalised and matched with the squared distance summed over the
             projected dimensions (in [0, 4]: 2 for unrelated vectors), averaged over examples and layers.
             Total: vanilla KD + rail_weight * that term. The projections have no bias and no weight decay, and
             the normalisation comes after them, so shrinking them to 0 cannot lower the loss.
"""
from __future__ import annotations

import random

import torch
import torch.nn as nn
import torch.nn.functional as F

from eval import EvalError

TECHNIQUES = ("none", "vanilla", "annealing", "rail")


def kl_distill(student_logits, teacher_logits, temperature: float) -> torch.Tensor:
    s = F.log_softmax(student_logits / temperature, dim=-1)
    t = F.log_softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temperature**2


def annealing_temperature(step: int, phase1_steps: int, tau_max: int) -> int:
    """T in 1..tau_max at phase-1 step `step`: phase 1 cut into tau_max equal slices (sizes differ by at most 1)."""
    return step * tau_max // phase1_steps + 1


def annealing_plan(epochs: int, phase2_epochs: int, steps_per_epoch: int, tau_max: int) -> dict:
    """How Annealing-KD spends an epoch budget; raises EvalError (one line) when it cannot."""
    phase1_epochs = epochs - phase2_epochs
    if phase2_epochs < 1 or phase1_epochs < 1:
        raise EvalError(f"Annealing-KD needs >= 1 epoch in each phase: --epochs {epochs} with "
                         f"--annealing-phase2-epochs {phase2_epochs} leaves {phase1_epochs} for phase 1")
    phase1_steps = phase1_epochs * steps_per_epoch
    if phase1_steps < tau_max:
        raise EvalError(f"Annealing-KD: phase 1 has {phase1_steps} steps, fewer than the {tau_max} temperatures: "
                         "raise --epochs or --max-train, or lower --annealing-tau-max")
    ends = [-(-t * phase1_steps // tau_max) for t in range(1, tau_max + 1)]  # the step after which slice t ends
    if phase1_epochs == tau_max:
        fit = "one temperature per epoch, as in the paper"
    else:
        fit = (f"{phase1_epochs} phase-1 epoch(s) for {tau_max} temperatures: each temperature gets an equal slice of "
               f"{phase1_steps / tau_max:.1f} steps (the paper gives each an epoch)")
    return {"phase1_epochs": phase1_epochs, "phase2_epochs": phase2_epochs, "phase1_steps": phase1_steps,
            "tau_max": tau_max, "slice_ends": ends, "fit": fit}


def rail_layers(epoch: int, seed: int, n_teacher: int, n_student: int) -> list[int]:
    """Teacher intermediate hidden-state indices (1..n_teacher-1) for this epoch: one per student intermediate
    layer (n_student - 1 of them), sorted. Index 0 (embeddings) and n_teacher (final output) are never drawn."""
    return sorted(random.Random(seed * 7919 + epoch).sample(range(1, n_teacher), n_student - 1))


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


class KDLoss(nn.Module):
    def __init__(self, cfg, student=None, teacher=None):
        super().__init__()
        self.cfg = cfg
        self.kind = cfg.kd
        if self.kind not in TECHNIQUES:
            raise EvalError(f"unknown KD technique {cfg.kd!r}: choose {', '.join(TECHNIQUES)}")
        self.temperature: int | None = None  # Annealing-KD's current T (phase 1), None in phase 2
        self.layers: list[int] = []
        if self.kind == "rail":
            s_cfg, t_cfg = student.backbone.config, teacher.backbone.config
            self.n_student, self.n_teacher = s_cfg.n_layer, t_cfg.n_layer
            if self.n_student < 2:
                raise EvalError("RAIL-KD needs a student with at least 2 layers (one intermediate layer)")
            if self.n_teacher < self.n_student:
                raise EvalError("RAIL-KD needs a teacher with at least as many layers as the student")
            # layer-wise variant: student_proj[i] maps student layer i + 1, teacher_proj[j] teacher layer j + 1
            self.student_proj = nn.ModuleList(nn.Linear(s_cfg.n_embd, cfg.rail_dim, bias=False) for _ in range(self.n_student - 1))
            self.teacher_proj = nn.ModuleList(nn.Linear(t_cfg.n_embd, cfg.rail_dim, bias=False) for _ in range(self.n_teacher - 1))

    def start_epoch(self, epoch: int) -> None:
        if self.kind == "rail":
            self.layers = rail_layers(epoch, self.cfg.seed, self.n_teacher, self.n_student)

    def rail_pairs(self, hidden, t_hidden, mask):
        """(student, teacher) normalised projections of each matched layer pair, examples in rows."""
        for s_idx, t_idx in zip(range(1, self.n_student), self.layers, strict=True):
            yield (F.normalize(self.student_proj[s_idx - 1](mean_pool(hidden[s_idx], mask)), dim=-1),
                   F.normalize(self.teacher_proj[t_idx - 1](mean_pool(t_hidden[t_idx], mask)), dim=-1))

    def rail_term(self, hidden, t_hidden, mask) -> torch.Tensor:
        total = sum((s - t).pow(2).sum(-1).mean() for s, t in self.rail_pairs(hidden, t_hidden, mask))
        return total / (self.n_student - 1)

    @torch.no_grad()
    def rail_diagnostics(self, hidden, t_hidden, mask) -> dict:
        """The RAIL term and how alike the projections of different examples are (mean cosine similarity between
        distinct examples' projected vectors, over layers; 1 = collapsed: every example maps to the same vector,
        so the term can reach 0 without the student matching the teacher's representations)."""
        def similarity(v: torch.Tensor) -> float:
            n = v.size(0)
            return ((v @ v.T).sum() - n).item() / (n * (n - 1)) if n > 1 else float("nan")

        pairs = list(self.rail_pairs(hidden, t_hidden, mask))
        return {"term": self.rail_term(hidden, t_hidden, mask).item(),
                "student_similarity": sum(similarity(s) for s, _ in pairs) / len(pairs),
                "teacher_similarity": sum(similarity(t) for _, t in pairs) / len(pairs)}

    def forward(self, logits, labels, hidden, t_logits, t_hidden, mask) -> torch.Tensor:
        ce = F.cross_entropy(logits, labels)
        if self.kind == "none":
            return ce
        if self.kind == "annealing":
            if self.temperature is None:  # phase 2
                return ce
            return F.mse_loss(logits, t_logits * self.temperature / self.cfg.annealing_tau_max)
        a = self.cfg.kd_alpha
        loss = (1 - a) * ce + a * kl_distill(logits, t_logits, self.cfg.kd_temperature)
        if self.kind == "rail":
            loss = loss + self.cfg.rail_weight * self.rail_term(hidden, t_hidden, mask)
        return loss


def make_loss(cfg, student, teacher) -> KDLoss:
    return KDLoss(cfg, student, teacher)
