"""A CLIP-style dual encoder: one encoder per modality into one L2-normalised space."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import check_positive, check_positive_int, check_sizes

__all__ = ["DualEncoder"]


class DualEncoder(nn.Module):
    r"""Two encoders and two linear projections into a shared space, with a learnable
    temperature, as in CLIP (Radford et al., 2021).

    .. math::
        \hat z^a = \frac{P_a f_a(x^a)}{\lVert P_a f_a(x^a) \rVert_2}, \quad
        \hat z^b = \frac{P_b f_b(x^b)}{\lVert P_b f_b(x^b) \rVert_2}, \qquad
        \ell_{ij} = e^{t}\, \hat z^a_i \cdot \hat z^b_j

    with :math:`\tau = e^{-t}` the temperature. Like CLIP, the scale is learned as its
    logarithm :math:`t` (a positive scale for any real :math:`t`), starts at
    :math:`t = \log(1/0.07)` and is kept in :math:`[0, \log 100]` (scale in [1, 100])
    so the logits cannot grow without bound.

    The clamp acts on the parameter, not on the computation: CLIP (and open_clip's
    training loop) clamps :math:`t` in place after each optimizer step, so its gradient
    is never cut. (Clamping inside the forward pass, ``t.clamp(0, log 100).exp()``,
    would give :math:`t` a gradient of exactly 0 once a step pushes it out of range: the
    temperature would be stuck for good.) :meth:`clamp_logit_scale_` does the clamp; it
    runs at the start of every forward pass, which is the same as after every step for
    any training loop (:class:`mmbook.train.Trainer` included), and
    :meth:`clamp_after_each_step` also registers it on an optimizer, so that the stored
    value is in range right after each step (as in CLIP). ``forward`` returns the logit
    matrix, which :func:`mmbook.losses.clip_loss` turns into the symmetric InfoNCE loss.

    Args:
        encoder_a, encoder_b: modules with an ``out_features`` attribute (or an
            ``nn.Sequential`` whose last such layer has one), mapping their modality's
            inputs to :math:`(N, \cdot)` vectors.
        embed_dim: E, the size of the shared space.
        arity: how many positional inputs each encoder takes (AV digits: ``(1, 2)`` for
            ``image`` then ``audio, lengths``).
        temperature: initial :math:`\tau` (CLIP: 0.07).
        learn_temperature: ``False`` keeps :math:`\tau` fixed (a buffer).
        max_logit_scale: the clamp on :math:`e^t` (CLIP: 100).

    Shape:
        - inputs: encoder a's ``arity[0]`` tensors, then encoder b's ``arity[1]``, all
          with N rows
        - output: :math:`(N, N)` logits, row i = item i of modality a against every
          item of modality b; ``encode_a``/``encode_b`` give :math:`(N, E)` unit vectors.

    Examples:
        >>> model = DualEncoder(nn.Linear(4, 8), nn.Linear(3, 8), embed_dim=2)
        >>> model(torch.randn(5, 4), torch.randn(5, 3)).shape
        torch.Size([5, 5])
        >>> round(model.temperature, 4)
        0.07
    """

    def __init__(self, encoder_a: nn.Module, encoder_b: nn.Module, embed_dim: int = 32, *,
                 arity: Sequence[int] = (1, 1), temperature: float = 0.07,
                 learn_temperature: bool = True, max_logit_scale: float = 100.0):
        super().__init__()
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.arity = check_sizes(arity, "arity")
        if len(self.arity) != 2:
            raise ValueError(f"arity must have two entries (a, b), got {arity!r}")
        check_positive(temperature, "temperature")
        self.max_log_scale = math.log(check_positive(max_logit_scale, "max_logit_scale"))
        if not 1.0 / max_logit_scale <= temperature <= 1.0:
            raise ValueError(f"temperature must lie in [1/max_logit_scale, 1] = "
                             f"[{1.0 / max_logit_scale:.3g}, 1] (the clamp), got {temperature!r}")
        self.encoder_a, self.encoder_b = encoder_a, encoder_b
        self.proj_a = nn.Linear(self._width(encoder_a, "encoder_a"), self.embed_dim, bias=False)
        self.proj_b = nn.Linear(self._width(encoder_b, "encoder_b"), self.embed_dim, bias=False)
        t = torch.tensor(math.log(1.0 / temperature))
        if learn_temperature:
            self.logit_scale = nn.Parameter(t)
        else:
            self.register_buffer("logit_scale", t)

    @staticmethod
    def _width(encoder: nn.Module, name: str) -> int:
        """``encoder.out_features``, or that of the last layer of an ``nn.Sequential``."""
        width = getattr(encoder, "out_features", None)
        if width is None and isinstance(encoder, nn.Sequential):
            widths = [getattr(m, "out_features", None) for m in encoder]
            width = next((w for w in reversed(widths) if w is not None), None)
        if not isinstance(encoder, nn.Module) or not isinstance(width, int):
            raise TypeError(f"{name} must be an nn.Module with an int out_features (or an "
                            f"nn.Sequential ending in one), got {type(encoder).__name__}")
        return width

    def _check_inputs(self, inputs) -> None:
        want = sum(self.arity)
        if len(inputs) != want:
            raise ValueError(f"expected {want} inputs ({self.arity[0]} for encoder_a, "
                             f"{self.arity[1]} for encoder_b), got {len(inputs)}")

    def encode_a(self, *inputs) -> torch.Tensor:
        """Unit-norm embeddings of modality a, :math:`(N, E)`.

        Examples:
            >>> model = DualEncoder(nn.Linear(4, 8), nn.Linear(3, 8), embed_dim=2)
            >>> z = model.encode_a(torch.randn(5, 4))
            >>> z.shape, torch.allclose(z.norm(dim=1), torch.ones(5))
            (torch.Size([5, 2]), True)
        """
        return F.normalize(self.proj_a(self.encoder_a(*inputs)), dim=1)

    def encode_b(self, *inputs) -> torch.Tensor:
        """Unit-norm embeddings of modality b, :math:`(N, E)`.

        Examples:
            >>> model = DualEncoder(nn.Linear(4, 8), nn.Linear(3, 8), embed_dim=2)
            >>> x_a, x_b = torch.randn(5, 4), torch.randn(5, 3)
            >>> logits = model(x_a, x_b)  # e^t times the cosines, one matrix product
            >>> torch.allclose(logits, model.scale() * model.encode_a(x_a) @ model.encode_b(x_b).T)
            True
        """
        return F.normalize(self.proj_b(self.encoder_b(*inputs)), dim=1)

    @torch.no_grad()
    def clamp_logit_scale_(self) -> DualEncoder:
        r"""Clamp the parameter :math:`t` in place to :math:`[0, \log(\text{max\_logit\_scale})]`.

        CLIP's rule (open_clip's training loop does it after ``optimizer.step()``): the
        value is clamped, its gradient never is. Returns ``self``.

        Examples:
            >>> model = DualEncoder(nn.Linear(4, 8), nn.Linear(3, 8), embed_dim=2)
            >>> with torch.no_grad():
            ...     _ = model.logit_scale.fill_(7.0)  # above log 100 = 4.61
            >>> round(model.clamp_logit_scale_().logit_scale.item(), 2)
            4.61
        """
        self.logit_scale.clamp_(0.0, self.max_log_scale)
        return self

    def clamp_after_each_step(self, optimizer: torch.optim.Optimizer):
        """Register :meth:`clamp_logit_scale_` to run after each ``optimizer.step()``.

        Returns the hook's handle (``handle.remove()`` undoes it). Not needed for correct
        training (every forward pass clamps first); it keeps the stored value in range
        between steps, as CLIP does.

        Examples:
            >>> model = DualEncoder(nn.Linear(4, 8), nn.Linear(3, 8), embed_dim=2)
            >>> opt = torch.optim.SGD(model.parameters(), lr=1.0)
            >>> handle = model.clamp_after_each_step(opt)
            >>> model.logit_scale.grad = torch.tensor(-10.0)  # a step far above log 100
            >>> opt.step()
            >>> round(model.logit_scale.item(), 4) == round(math.log(100), 4)
            True
        """
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        return optimizer.register_step_post_hook(lambda *_: self.clamp_logit_scale_())

    def scale(self) -> torch.Tensor:
        r"""The logit scale :math:`e^t = 1/\tau` (a scalar tensor), after clamping :math:`t`.

        Examples:
            >>> model = DualEncoder(nn.Linear(4, 8), nn.Linear(3, 8), embed_dim=2)
            >>> round(model.scale().item(), 2)  # 1 / 0.07
            14.29
        """
        self.clamp_logit_scale_()
        return self.logit_scale.exp()

    @property
    def temperature(self) -> float:
        r"""The current temperature :math:`\tau` (a float), with :math:`t` clamped.

        Examples:
            >>> model = DualEncoder(nn.Linear(4, 8), nn.Linear(3, 8), embed_dim=2,
            ...                     temperature=0.2, learn_temperature=False)
            >>> round(model.temperature, 4), model.logit_scale.requires_grad
            (0.2, False)
        """
        return math.exp(-min(max(self.logit_scale.item(), 0.0), self.max_log_scale))

    def forward(self, *inputs) -> torch.Tensor:
        self._check_inputs(inputs)
        z_a = self.encode_a(*inputs[: self.arity[0]])  # (N, E)
        z_b = self.encode_b(*inputs[self.arity[0]:])  # (N, E)
        if z_a.shape[0] != z_b.shape[0]:
            raise ValueError(f"the two modalities must have the same number of rows (pairs), "
                             f"got {z_a.shape[0]} and {z_b.shape[0]}")
        return self.scale() * z_a @ z_b.T  # (N, N)
