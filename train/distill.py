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


CHUNK_ELEMENTS = 2**24  # logits per slice of the KL: 64 MB of fp32 whatever the vocabulary


class _ChunkedKL(torch.autograd.Function):
    """sum_i weight_i * KL(softmax(t_i/T) || softmax(s_i/T)) * T^2 over rows i, computed a slice of rows at a time.

    The gradient has a closed form, (softmax(s/T) - softmax(t/T)) * T * weight, so it is written during the forward
    pass into one tensor shaped like the student's logits; autograd keeps nothing else. Computed as one expression,
    the term kept four fp32 batch x tokens x vocabulary tensors alive for the backward pass (both log-softmaxes, the
    teacher's probabilities, their difference): tens of GB at GPT-2's vocabulary and 1024-token blocks."""

    @staticmethod
    def forward(ctx, student, teacher, weights, temperature: float, chunk: int):
        grad = torch.empty_like(student) if student.requires_grad else None
        total = torch.zeros((), dtype=torch.float32, device=student.device)
        with torch.autocast(student.device.type, enabled=False):
            for start in range(0, student.size(0), chunk):
                rows = slice(start, start + chunk)
                s = F.log_softmax(student[rows].float() / temperature, dim=-1)
                t = F.log_softmax(teacher[rows].float() / temperature, dim=-1)
                p_t = t.exp()
                total += ((p_t * (t - s)).sum(-1) * weights[rows]).sum()
                if grad is not None:
                    grad[rows] = ((s.exp() - p_t) * (weights[rows, None] * temperature)).to(grad.dtype)
        ctx.save_for_backward(grad)
        return total * temperature**2

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output.to(grad.dtype), None, None, None, None


def kl_term(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float,
    mask: torch.Tensor | None = None,
    chunk_tokens: int = 0,
) -> torch.Tensor:
    """KL(softmax(t/T) || softmax(s/T)) * T^2, averaged over (unmasked) token positions; computed `chunk_tokens`
    positions at a time (0: as many as make CHUNK_ELEMENTS logits), so beyond the two logits tensors it needs one
    more of the student logits' size (its gradient) and a slice in fp32."""
    vocab = student_logits.size(-1)
    student, teacher = student_logits.reshape(-1, vocab), teacher_logits.reshape(-1, vocab)
    if mask is None:
        weights = torch.full((student.size(0),), 1.0 / student.size(0), device=student.device)
    else:
        kept = mask.reshape(-1).float()
        weights = kept / kept.sum()  # no host sync: the count stays on the device
    chunk = chunk_tokens or max(1, CHUNK_ELEMENTS // vocab)
    return _ChunkedKL.apply(student, teacher, weights, temperature, chunk)


def cosine_term(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """1 - cos(student, teacher) per token position, averaged over the unmasked ones (nn.CosineEmbeddingLoss with
    target 1); a masked position gets weight 0 rather than being indexed out, which would wait on the device."""
    s, t = student_hidden.reshape(-1, student_hidden.size(-1)), teacher_hidden.reshape(-1, teacher_hidden.size(-1))
    per_token = 1 - F.cosine_similarity(s.float(), t.float(), dim=-1)
    if mask is None:
        return per_token.mean()
    kept = mask.reshape(-1).float()
    return (per_token * kept).sum() / kept.sum()


def distillation_loss(
    student_out, teacher_out, labels: torch.Tensor, cfg: DistillConfig, attention_mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """student_out/teacher_out: GPTOutput with hidden_states; student_out.loss is the CLM loss on `labels`.
    The parts come back as detached tensors on the device (reading them is a host sync: do it at log steps)."""
    kl = kl_term(student_out.logits, teacher_out.logits.detach(), cfg.temperature, attention_mask)
    clm = student_out.loss
    if clm is None:
        raise ValueError("distillation_loss needs the student's CLM loss: call the student with labels=")
    cos = cosine_term(student_out.hidden_states[-1], teacher_out.hidden_states[-1].detach(), attention_mask)
    total = cfg.alpha_kl * kl + cfg.alpha_clm * clm + cfg.alpha_cos * cos
    return total, {"kl": kl.detach(), "clm": clm.detach(), "cos": cos.detach()}
