"""Knowledge distillation during downstream fine-tuning (the paper's first study): the losses.

- plain:     cross-entropy on the labels.
- vanilla:   (1 - alpha) * CE + alpha * KL(teacher/T || student/T) * T^2   (Hinton et al. 2015).
- annealing: Annealing-KD (Jafari et al. 2021). Phase 1 regresses the student's logits onto the
             teacher's scaled by phi(tau) = 1 - (tau - 1) / tau_max, with tau going from tau_max down to
             1, so the target grows from a soft, small-scale version of the teacher to the teacher
             itself; phase 2 trains on the labels (CE). Phase 1 is all epochs but the last.
- rail:      RAIL-KD (Haidar et al. 2022). Each epoch, as many teacher layers as the student has are
             drawn at random (sorted); each student layer's mean-pooled representation is matched to its
             teacher layer's after a linear projection to a common size and L2 normalisation (MSE),
             added to the vanilla loss.
"""
from __future__ import annotations

import random

import torch
import torch.nn as nn
import torch.nn.functional as F


def kl_distill(student_logits, teacher_logits, temperature: float) -> torch.Tensor:
    s = F.log_softmax(student_logits / temperature, dim=-1)
    t = F.log_softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temperature**2


def annealing_phase1_fraction(epochs: int) -> float:
    return 0.5 if epochs <= 1 else (epochs - 1) / epochs


def annealing_factor(progress: float, tau_max: int, phase1: float) -> float | None:
    """phi at training progress in [0, 1]; None once phase 1 is over (phase 2: labels only)."""
    if progress >= phase1:
        return None
    tau = tau_max - (tau_max - 1) * (progress / phase1)  # tau_max -> 1
    return 1.0 - (tau - 1.0) / tau_max


def rail_layers(epoch: int, seed: int, n_teacher: int, n_student: int) -> list[int]:
    """Teacher hidden-state indices (1..n_teacher) for this epoch: n_student of them, sorted."""
    return sorted(random.Random(seed * 7919 + epoch).sample(range(1, n_teacher + 1), n_student))


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


class KDLoss(nn.Module):
    def __init__(self, cfg, student=None, teacher=None):
        super().__init__()
        self.cfg = cfg
        self.kind = cfg.kd or "plain"
        if self.kind not in ("plain", "vanilla", "annealing", "rail"):
            raise ValueError(f"unknown KD technique {cfg.kd!r}: choose vanilla, annealing or rail")
        self.phase1 = annealing_phase1_fraction(cfg.epochs)
        self.layers: list[int] = []
        if self.kind == "rail":
            s_cfg, t_cfg = student.backbone.config, teacher.backbone.config
            self.n_student, self.n_teacher = s_cfg.n_layer, t_cfg.n_layer
            if self.n_teacher < self.n_student:
                raise ValueError("RAIL-KD needs a teacher with at least as many layers as the student")
            self.student_proj = nn.Linear(s_cfg.n_embd, cfg.rail_dim)
            self.teacher_proj = nn.Linear(t_cfg.n_embd, cfg.rail_dim)

    def start_epoch(self, epoch: int) -> None:
        if self.kind == "rail":
            self.layers = rail_layers(epoch, self.cfg.seed, self.n_teacher, self.n_student)

    def rail_term(self, hidden, t_hidden, mask) -> torch.Tensor:
        total = 0.0
        for s_idx, t_idx in zip(range(1, self.n_student + 1), self.layers):
            s = F.normalize(self.student_proj(mean_pool(hidden[s_idx], mask)), dim=-1)
            t = F.normalize(self.teacher_proj(mean_pool(t_hidden[t_idx], mask)), dim=-1)
            total = total + F.mse_loss(s, t)
        return total / self.n_student

    def forward(self, logits, labels, hidden, t_logits, t_hidden, mask, progress: float) -> torch.Tensor:
        ce = F.cross_entropy(logits, labels)
        if self.kind == "plain":
            return ce
        if self.kind == "annealing":
            phi = annealing_factor(progress, self.cfg.annealing_tau_max, self.phase1)
            return ce if phi is None else F.mse_loss(logits, phi * t_logits)
        a = self.cfg.kd_alpha
        loss = (1 - a) * ce + a * kl_distill(logits, t_logits, self.cfg.kd_temperature)
        if self.kind == "rail":
            loss = loss + self.cfg.rail_weight * self.rail_term(hidden, t_hidden, mask)
        return loss


def make_loss(cfg, student, teacher) -> KDLoss:
    return KDLoss(cfg, student, teacher)
