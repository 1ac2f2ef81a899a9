"""Losses the later chapters add to cross-entropy.

Each is written from its equation and tested against the same formula composed from
``torch.nn.functional`` (``F.cross_entropy``, ``F.kl_div``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .utils import check_positive, check_probability, check_shape

__all__ = ["distillation_loss"]


# --- distillation
def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      target: torch.Tensor | None = None, temperature: float = 4.0,
                      alpha: float = 0.5) -> torch.Tensor:
    r"""Knowledge distillation (Hinton, Vinyals and Dean, 2015).

    .. math::
        \mathcal L = \alpha\, T^2\, \mathrm{KL}\big(\operatorname{softmax}(t / T)\,\|\,
        \operatorname{softmax}(s / T)\big) + (1 - \alpha)\, \mathrm{CE}(s, y)

    with student logits :math:`s`, teacher logits :math:`t` and temperature :math:`T`. The
    :math:`T^2` keeps the soft term's gradients on the scale of the hard one as :math:`T`
    grows (the soft gradients shrink as :math:`1/T^2`). The KL divergence is averaged
    over the batch; without ``target`` only the soft term is returned (``alpha`` ignored).

    Args:
        student_logits: the student's logits.
        teacher_logits: the teacher's logits (detached here: the teacher is not trained).
        target: class indices, optional.
        temperature: :math:`T > 0`.
        alpha: weight of the soft term, in [0, 1].

    Raises:
        ValueError: shapes that differ, or parameters outside their domain.

    Shape:
        - student_logits, teacher_logits: :math:`(N, C)`
        - target: :math:`(N,)`
        - output: scalar

    Examples:
        >>> s = torch.tensor([[2.0, 0.0]]); t = s.clone()
        >>> float(distillation_loss(s, t))  # identical logits: no divergence
        0.0
    """
    T = check_positive(temperature, "temperature")
    alpha = check_probability(alpha, "alpha")
    check_shape(student_logits, ("N", "C"), "student_logits")
    check_shape(teacher_logits, tuple(student_logits.shape), "teacher_logits")
    log_p_student = F.log_softmax(student_logits / T, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / T, dim=1)
    soft = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=1).mean()
    soft = soft * T ** 2
    if target is None:
        return soft
    check_shape(target, (student_logits.shape[0],), "target")
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, target)
