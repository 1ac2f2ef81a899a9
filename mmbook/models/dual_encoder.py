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
    :math:`t = \log(1/0.07)` and is clamped to :math:`[0, \log 100]` (scale in [1, 100])
    so the logits cannot grow without bound. CLIP clamps the parameter after each
    optimizer step; here the clamp sits in the forward pass, so any training loop
    (:class:`mmbook.train.Trainer`) gets it. ``forward`` returns the logit matrix, which
    :func:`mmbook.losses.clip_loss` turns into the symmetric InfoNCE loss.

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
        """Unit-norm embeddings of modality a, :math:`(N, E)`."""
        return F.normalize(self.proj_a(self.encoder_a(*inputs)), dim=1)

    def encode_b(self, *inputs) -> torch.Tensor:
        """Unit-norm embeddings of modality b, :math:`(N, E)`."""
        return F.normalize(self.proj_b(self.encoder_b(*inputs)), dim=1)

    def scale(self) -> torch.Tensor:
        r"""The clamped logit scale :math:`e^t = 1/\tau` (a scalar tensor)."""
        return self.logit_scale.clamp(0.0, self.max_log_scale).exp()

    @property
    def temperature(self) -> float:
        r"""The current temperature :math:`\tau` (a float)."""
        return 1.0 / self.scale().item()

    def forward(self, *inputs) -> torch.Tensor:
        self._check_inputs(inputs)
        z_a = self.encode_a(*inputs[: self.arity[0]])  # (N, E)
        z_b = self.encode_b(*inputs[self.arity[0]:])  # (N, E)
        if z_a.shape[0] != z_b.shape[0]:
            raise ValueError(f"the two modalities must have the same number of rows (pairs), "
                             f"got {z_a.shape[0]} and {z_b.shape[0]}")
        return self.scale() * z_a @ z_b.T  # (N, N)
