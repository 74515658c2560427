"""Knowledge distillation, the DistilGPT-2 recipe (the paper's baseline for truncation).

    loss = alpha_kl * KL(teacher/T || student/T) * T^2  +  alpha_clm * causal-LM loss
           + alpha_cos * cosine-embedding loss between the last hidden states

with the defaults of DistilGPT-2's training script (5.0, 2.0, 1.0, T = 2). Token positions where the
attention mask is 0 are left out of the KL and cosine terms.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class DistillConfig:
    alpha_kl: float = 5.0
    alpha_clm: float = 2.0
    alpha_cos: float = 1.0
    temperature: float = 2.0


def kl_term(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """KL(softmax(t/T) || softmax(s/T)) * T^2, averaged over (unmasked) token positions."""
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    per_token = (t.exp() * (t - s)).sum(-1)
    if mask is not None:
        per_token = per_token[mask.bool()]
    return per_token.mean() * temperature**2


def cosine_term(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """1 - cos(student, teacher) per token position, averaged (nn.CosineEmbeddingLoss with target 1)."""
    if mask is not None:
        student_hidden, teacher_hidden = student_hidden[mask.bool()], teacher_hidden[mask.bool()]
    s, t = student_hidden.reshape(-1, student_hidden.size(-1)), teacher_hidden.reshape(-1, teacher_hidden.size(-1))
    return (1 - F.cosine_similarity(s.float(), t.float(), dim=-1)).mean()


def distillation_loss(student_out, teacher_out, labels: torch.Tensor, cfg: DistillConfig,
                      attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """student_out/teacher_out: GPTOutput with hidden_states; student_out.loss is the CLM loss on `labels`."""
    kl = kl_term(student_out.logits, teacher_out.logits.detach(), cfg.temperature, attention_mask)
    clm = student_out.loss
    if clm is None:
        raise ValueError("distillation_loss needs the student's CLM loss: call the student with labels=")
    cos = cosine_term(student_out.hidden_states[-1], teacher_out.hidden_states[-1].detach(), attention_mask)
    total = cfg.alpha_kl * kl + cfg.alpha_clm * clm + cfg.alpha_cos * cos
    return total, {"kl": kl.item(), "clm": clm.item(), "cos": cos.item()}
