"""Knowledge-distillation losses: the Child learns the Parent's (or a teacher's) output distribution."""

from __future__ import annotations

import torch
from torch import Tensor


def soft_cross_entropy(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """-mean_b sum_n softmax(teacher / T)_n * log_softmax(student / T)_n, teacher detached.

    DCP-NAS's -G (spec §5.2, Eq. 4.26 [Rec]) and the released retraining `DistributionLoss`
    (`KD_Loss.py`, spec §5.7). It equals KL(teacher || student) plus the teacher's entropy, a constant.
    """
    target = torch.softmax(teacher_logits.detach() / temperature, dim=-1)
    return -(target * torch.log_softmax(student_logits / temperature, dim=-1)).sum(dim=-1).mean()


def kl_divergence(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """KL(teacher || student), batch mean, teacher detached (0 when the distributions agree)."""
    log_t = torch.log_softmax(teacher_logits.detach(), dim=-1)
    return (log_t.exp() * (log_t - torch.log_softmax(student_logits, dim=-1))).sum(dim=-1).mean()
