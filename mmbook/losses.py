"""Losses the later chapters add to cross-entropy, grouped in blocks by family.

Each is written from its equation and tested against the same formula composed from
``torch.nn.functional`` (``F.cross_entropy``, ``F.kl_div``).

* contrastive (chapter 11): :func:`info_nce` (InfoNCE / CLIP) on two batches of paired
  embeddings, and :func:`clip_loss` on a precomputed ``(N, N)`` logit matrix (the form a
  model with a learnable temperature returns, and what :class:`mmbook.train.Trainer`
  calls as ``loss_fn(logits, target)``);
* distillation (chapter 15): :func:`distillation_loss` (Hinton et al., 2015).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .utils import check_finite, check_positive, check_probability, check_shape

__all__ = ["info_nce", "clip_loss", "cosine_logits", "distillation_loss"]


# --- contrastive
def cosine_logits(z_a: torch.Tensor, z_b: torch.Tensor, temperature=0.07) -> torch.Tensor:
    r"""Cosine similarities of every row of ``z_a`` with every row of ``z_b``, over :math:`\tau`.

    .. math:: \ell_{ij} = \frac{\hat z^a_i \cdot \hat z^b_j}{\tau}, \qquad
        \hat z = z / \lVert z \rVert_2

    Args:
        z_a, z_b: two batches of embeddings of the same width E.
        temperature: :math:`\tau > 0`, a float or a scalar tensor (then it can be learned).

    Shape:
        - z_a: :math:`(N, E)`, z_b: :math:`(M, E)`
        - output: :math:`(N, M)`

    Examples:
        >>> z = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
        >>> cosine_logits(z, z, temperature=0.5)
        tensor([[2.0000, 1.6000],
                [1.6000, 2.0000]])
    """
    check_shape(z_a, (None, "E"), "z_a")
    check_shape(z_b, (None, z_a.shape[1]), "z_b")
    if torch.is_tensor(temperature):
        if temperature.numel() != 1 or not bool(temperature.detach().reshape(()) > 0):
            raise ValueError(f"temperature must be one positive value, got {temperature}")
    else:
        check_positive(temperature, "temperature")
    check_finite(z_a, "z_a")
    check_finite(z_b, "z_b")
    return F.normalize(z_a, dim=1) @ F.normalize(z_b, dim=1).T / temperature  # (N, M)


def clip_loss(logits: torch.Tensor, target=None, symmetric: bool = True) -> torch.Tensor:
    r"""InfoNCE on a square logit matrix whose diagonal holds the matched pairs.

    Row :math:`i` of ``logits`` scores query :math:`i` of modality a against every item of
    modality b in the batch; its positive is item :math:`i`, the other :math:`N-1` are
    negatives:

    .. math::
        \mathcal L_{a\to b} = -\frac1N \sum_{i=1}^N \log
            \frac{e^{\ell_{ii}}}{\sum_{j=1}^N e^{\ell_{ij}}}, \qquad
        \mathcal L = \tfrac12 (\mathcal L_{a\to b} + \mathcal L_{b\to a})

    with :math:`\mathcal L_{b\to a}` the same on the columns (:math:`\ell^\top`); with
    ``symmetric=False`` only :math:`\mathcal L_{a\to b}` (CPC's one-sided InfoNCE, van den
    Oord et al., 2018). Each term is a cross-entropy whose class is the row's index (CLIP,
    Radford et al., 2021).

    Args:
        logits: :math:`\ell`, e.g. from :func:`cosine_logits` or a
            :class:`mmbook.models.DualEncoder`.
        target: ignored (the diagonal is the target). It is there so that the Trainer's
            ``loss_fn(logits, target)`` call can pass the batch's labels.
        symmetric: average the two directions.

    Shape:
        - logits: :math:`(N, N)`
        - output: scalar

    Examples:
        >>> clip_loss(torch.zeros(4, 4))  # no preference: log N
        tensor(1.3863)
    """
    if not torch.is_tensor(logits):
        raise TypeError(f"logits must be a tensor, got {type(logits).__name__}")
    check_shape(logits, ("N", "N"), "logits")
    if logits.shape[0] == 0:
        raise ValueError("logits is empty: a batch needs at least one pair")
    check_finite(logits.detach(), "logits")
    labels = torch.arange(logits.shape[0], device=logits.device)  # the diagonal
    loss_ab = F.cross_entropy(logits, labels)
    if not symmetric:
        return loss_ab
    return (loss_ab + F.cross_entropy(logits.T, labels)) / 2


def info_nce(z_a: torch.Tensor, z_b: torch.Tensor, temperature=0.07,
             symmetric: bool = True) -> torch.Tensor:
    r"""The contrastive InfoNCE / CLIP loss of N matched pairs (row i of ``z_a`` with row i of
    ``z_b``).

    .. math::
        \mathcal L_{a\to b} = -\frac1N \sum_{i=1}^N \log
        \frac{\exp(\cos(z^a_i, z^b_i)/\tau)}{\sum_{j=1}^N \exp(\cos(z^a_i, z^b_j)/\tau)},
        \qquad \mathcal L = \tfrac12(\mathcal L_{a\to b} + \mathcal L_{b\to a})

    The other :math:`N-1` items of the batch are the negatives, so the batch size sets
    their number; :math:`\log N - \mathcal L_{a\to b}` is a lower bound on the mutual
    information of the two views (van den Oord et al., 2018).

    Args:
        z_a, z_b: the two modalities' embeddings, aligned by row (not necessarily
            normalised: the loss uses cosine similarities).
        temperature: :math:`\tau > 0` (float or scalar tensor); CLIP starts at 0.07.
        symmetric: average both directions (CLIP); ``False``: a -> b only.

    Shape:
        - z_a, z_b: :math:`(N, E)`
        - output: scalar

    Raises:
        ValueError: mismatched shapes, a non-positive temperature, or NaN/inf inputs.

    Examples:
        >>> z = torch.eye(3)
        >>> round(info_nce(z, z, temperature=1.0).item(), 4)  # -log(e / (e + 2))
        0.5514
    """
    check_shape(z_a, ("N", "E"), "z_a")
    check_shape(z_b, (z_a.shape[0], z_a.shape[1]), "z_b")
    return clip_loss(cosine_logits(z_a, z_b, temperature), symmetric=symmetric)


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
    A class with teacher probability 0 (a logit of :math:`-\infty`, a masked class)
    contributes :math:`0 \log(0 / q) = 0`, as in ``F.kl_div`` with a probability target,
    even where the student masks it too.

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
        >>> masked = torch.tensor([[2.0, -float("inf")]])  # both mask class 1
        >>> float(distillation_loss(masked, masked))
        0.0
    """
    T = check_positive(temperature, "temperature")
    alpha = check_probability(alpha, "alpha")
    check_shape(student_logits, ("N", "C"), "student_logits")
    check_shape(teacher_logits, tuple(student_logits.shape), "teacher_logits")
    log_p_student = F.log_softmax(student_logits / T, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / T, dim=1)
    p_teacher = log_p_teacher.exp()
    # 0 log(0 / q) = 0: a class the teacher masks (-inf) adds nothing, whatever the student
    log_ratio = torch.where(p_teacher > 0, log_p_teacher - log_p_student, 0.0)
    soft = (p_teacher * log_ratio).sum(dim=1).mean() * T ** 2
    if target is None:
        return soft
    check_shape(target, (student_logits.shape[0],), "target")
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, target)
