"""The seeds' LSTM fusion model with cross-modal attention, done right (chapter 7)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..attention import MultiheadCrossModalAttention
from ..encoders import AudioEncoder
from ..fusion import ModalityAttention, make_fusion
from ..utils import check_positive_int, check_probability, check_sizes

__all__ = ["LSTMAttentionFusion", "image_to_sequence"]


def image_to_sequence(images: torch.Tensor, image_as: str = "rows",
                      patch_size: int = 4) -> torch.Tensor:
    """Read an image as a sequence: its rows top to bottom, or its patches row by row.

    Shape:
        - images: :math:`(N, C, H, W)`
        - output: :math:`(N, H, C W)` for rows; :math:`(N, (H/p)(W/p), C p^2)` for patches

    Examples:
        >>> images = torch.arange(2 * 3 * 4 * 4.0).view(2, 3, 4, 4)
        >>> image_to_sequence(images).shape  # 4 rows of 3 x 4 values
        torch.Size([2, 4, 12])
        >>> seq = image_to_sequence(images, "patches", patch_size=2)  # 2 x 2 patches
        >>> seq.shape, torch.equal(seq[0, 0, :4], images[0, 0, :2, :2].flatten())
        (torch.Size([2, 4, 12]), True)
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    N, C, H, W = images.shape
    if image_as == "rows":
        return images.permute(0, 2, 1, 3).reshape(N, H, C * W)  # (N, H, C*W)
    if image_as != "patches":
        raise ValueError(f"image_as must be 'rows' or 'patches', got {image_as!r}")
    p = patch_size
    if H % p or W % p:
        raise ValueError(f"patch_size {p} must divide the image size ({H}, {W})")
    x = images.unfold(2, p, p).unfold(3, p, p)  # (N, C, H/p, W/p, p, p)
    return x.permute(0, 2, 3, 1, 4, 5).reshape(N, (H // p) * (W // p), C * p * p)


class LSTMAttentionFusion(nn.Module):
    r"""One LSTM per modality, cross-modal attention at every step, pooling, a classifier.

    For modalities :math:`m = 1..M` with sequences :math:`x^{(m)}_{1..T_m}`:

    .. math::
        h^{(m)}_{1..T_m} &= \mathrm{LSTM}_m\big(x^{(m)}_{1..T_m}\big) \\
        c^{(m \leftarrow n)}_t &= \sum_{s=1}^{T_n} \alpha^{(m,n)}_{t,s}\, v^{(n)}_s, \quad
        \alpha^{(m,n)}_{t,s} = \mathrm{softmax}_s\!\left(
        \frac{q^{(m)}_t \cdot k^{(n)}_s}{\sqrt{d_k}}\right) \quad (n \neq m) \\
        z^{(m)}_t &= \beta^{(m)}_{t,m} h^{(m)}_t + \sum_{n \neq m} \beta^{(m)}_{t,n}
        c^{(m \leftarrow n)}_t, \quad \beta^{(m)}_t = \mathrm{softmax}_n\big(
        w^\top \tanh(W [\cdot])\big) \\
        \hat y &= \mathrm{MLP}\Big(\mathrm{fuse}\big(\bar z^{(1)}, \dots,
        \bar z^{(M)}\big)\Big), \quad
        \bar z^{(m)} = \frac{1}{\ell_m} \sum_{t \le \ell_m} z^{(m)}_t

    How the steps are aligned: the seed pairs step :math:`t` of every modality, which
    needs equal lengths and a shared clock. AV digits has neither (41 audio frames,
    32 ms windows every 25 ms; 28 image rows), so step :math:`t` of modality :math:`m`
    attends over *all* steps :math:`s` of modality :math:`n` (scaled dot-product, multi-head,
    padding masked), and the seed's per-step weights over modalities become :math:`\beta`:
    how much step :math:`t` keeps of its own state versus what it read in the other
    modalities (softmax over the M candidates, never trivially 1 even for M = 2).
    ``attention=False`` skips both attentions (:math:`z^{(m)}_t = h^{(m)}_t`): the same
    model without attention, the fair baseline. The pooled vectors are joined by
    ``fusion``, any :class:`~mmbook.fusion.Fusion` (default: concatenation, the seeds'
    choice). ``seed_bug=True`` takes the
    :math:`\beta` softmax over a size-one axis as the seed's code does (all weights 1).

    Args:
        input_dims: :math:`D_m`, features per step of each modality (an image read by
            rows has :math:`C W`, by patches :math:`C p^2`).
        hidden_dim: H, the LSTM state size (and attention size).
        num_layers: stacked LSTM layers per modality.
        num_classes: C, classes of the classifier.
        num_heads: heads of each cross-modal attention (H must be divisible by it).
        fusion: how the M pooled vectors :math:`\bar z^{(m)}` ``(N, H)`` become one: a
            name in :data:`mmbook.fusion.FUSIONS` (``"concat"``, ``"gated"``,
            ``"low_rank"`` ...; each takes what its registry entry declares among
            ``out_features=H``, ``rank`` and ``num_classes``) or a
            :class:`~mmbook.fusion.Fusion` over M inputs of H features.
        attention: cross-modal and modality attention at every step (False: the
            baseline without attention).
        image_as: how a 4-D input :math:`(N, C, H, W)` is read: ``"rows"`` or ``"patches"``.
        patch_size: p, for ``image_as="patches"``.
        dropout: dropout on the pooled features.
        seed_bug: reproduce the seed's size-one softmax in the modality weights.
        modality_names: names for plots (default ``"m0", "m1", ...``).
        rank: R, for ``fusion="low_rank"``.

    Inputs:
        ``model(x_1, [lengths_1], x_2, [lengths_2], ...)``: each :math:`x_m` is a
        sequence :math:`(N, T_m, D_m)` or an image :math:`(N, C, H, W)` (read as a
        sequence); an integer tensor :math:`(N,)` right after a modality gives its
        lengths. So an AV digits batch ``(image, audio, length)`` is passed as it comes.
        Keywords: ``return_attention`` (also return the weights), ``temperature``
        (divides the scores of every softmax; 1 is the trained model).

    Attributes:
        last_attention_: the weights of the last forward pass (detached), a dict with
            ``"cross"``: ``{(m, n): (N, h, T_m, T_n)}``, ``"modality"``:
            ``{m: (N, T_m, M)}`` (:math:`\beta^{(m)}_{t,n}`, column :math:`m` is the
            own state) and ``"mask"``: ``{m: (N, T_m)}`` (True = real step).

    Shape:
        - output: :math:`(N, C)` logits, or ``(logits, attention)`` with
          ``return_attention=True``

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> model = LSTMAttentionFusion((28, 64), hidden_dim=16, num_classes=10,
        ...                             num_heads=2, fusion="gated")
        >>> images = torch.randn(3, 1, 28, 28)  # read as 28 rows of 28 pixels
        >>> audio, lengths = torch.randn(3, 41, 64), torch.tensor([41, 30, 12])
        >>> logits, att = model(images, audio, lengths, return_attention=True)
        >>> logits.shape, att["cross"][0, 1].shape, att["modality"][1].shape
        (torch.Size([3, 10]), torch.Size([3, 2, 28, 41]), torch.Size([3, 41, 2]))
        >>> bool(torch.allclose(att["modality"][0].sum(-1), torch.ones(3, 28)))
        True
    """

    def __init__(self, input_dims: Sequence[int], hidden_dim: int, num_layers: int = 1,
                 num_classes: int = 10, num_heads: int = 1, fusion="concat",
                 attention: bool = True, image_as: str = "rows", patch_size: int = 4,
                 dropout: float = 0.0, seed_bug: bool = False,
                 modality_names: Sequence[str] | None = None, rank: int = 4):
        super().__init__()
        self.input_dims = check_sizes(input_dims, "input_dims")
        if len(self.input_dims) < 2:
            raise ValueError(f"input_dims must list at least 2 modalities, got {input_dims}")
        hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
        check_positive_int(num_classes, "num_classes")
        check_probability(dropout, "dropout", allow_one=False)
        M = self.num_modalities = len(self.input_dims)
        self.hidden_dim, self.num_heads, self.attention = hidden_dim, num_heads, bool(attention)
        self.image_as, self.patch_size = image_as, patch_size
        self.modality_names = tuple(modality_names or (f"m{m}" for m in range(M)))
        self.encoders = nn.ModuleList(AudioEncoder(d, hidden_dim, num_layers)
                                      for d in self.input_dims)
        self.pairs = [(m, n) for m in range(M) for n in range(M) if m != n]
        if self.attention:
            self.cross = nn.ModuleList(MultiheadCrossModalAttention(hidden_dim, num_heads)
                                       for _ in self.pairs)
            self.modality_attention = nn.ModuleList(
                ModalityAttention(hidden_dim, seed_bug=seed_bug, num_modalities=M)
                for _ in range(M))
        # offer what this model has; each registry entry takes the arguments it declares
        self.fusion = make_fusion(fusion, (hidden_dim,) * M, hidden_dim, strict=False,
                                  rank=rank, num_classes=num_classes)
        self.head = nn.Sequential(nn.Dropout(dropout),
                                  nn.Linear(self.fusion.out_features, hidden_dim),
                                  nn.ReLU(), nn.Linear(hidden_dim, num_classes))
        self.last_attention_ = None

    # -- inputs
    def _split_inputs(self, inputs) -> tuple[list, list]:
        seqs, lengths = [], []
        for i, x in enumerate(inputs):
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"input {i} must be a tensor, got {type(x).__name__}")
            if x.dim() == 1 and not x.is_floating_point():
                if not seqs or lengths[-1] is not None:
                    raise ValueError(f"input {i} looks like lengths (N,) but does not follow a "
                                     "modality")
                lengths[-1] = x
                continue
            if x.dim() == 4:
                x = image_to_sequence(x, self.image_as, self.patch_size)  # (N, T, D)
            elif x.dim() != 3:
                raise ValueError(f"input {i} must be a sequence (N, T, D), an image (N, C, H, W) "
                                 f"or lengths (N,), got shape {tuple(x.shape)}")
            seqs.append(x)
            lengths.append(None)
        if len(seqs) != self.num_modalities:
            raise ValueError(f"expected {self.num_modalities} modalities, got {len(seqs)}")
        for m, (x, d) in enumerate(zip(seqs, self.input_dims)):
            if x.shape[-1] != d or x.shape[0] != seqs[0].shape[0]:
                raise ValueError(f"modality {m} must be (N={seqs[0].shape[0]}, T, D={d}) as a "
                                 f"sequence, got shape {tuple(x.shape)}")
        return seqs, lengths

    def encode(self, *inputs) -> tuple[list, list]:
        """The LSTM states :math:`h^{(m)}` ``(N, T_m, H)`` and masks ``(N, T_m)``."""
        seqs, lengths = self._split_inputs(inputs)
        states, masks = [], []
        for enc, x, lens in zip(self.encoders, seqs, lengths):
            h, mask = enc(x, lens, return_sequence=True)  # (N, T, H), (N, T)
            states.append(h)
            masks.append(mask)
        return states, masks

    # -- fusion
    def _attend(self, states, masks, temperature):
        M = self.num_modalities
        contexts = {}
        cross = {}
        for (m, n), att in zip(self.pairs, self.cross):
            c, w = att(states[m], states[n], key_mask=masks[n],
                       temperature=temperature)  # (N, T_m, H), (N, h, T_m, T_n)
            contexts[m, n], cross[m, n] = c, w
        fused, beta = [], {}
        for m in range(M):
            cands = [states[m] if n == m else contexts[m, n] for n in range(M)]
            z, b = self.modality_attention[m](cands, temperature=temperature,
                                              return_weights=True)  # (N, T, H), (N, T, M)
            fused.append(z)
            beta[m] = b
        return fused, {"cross": cross, "modality": beta}

    def forward(self, *inputs, return_attention: bool = False, temperature: float = 1.0):
        states, masks = self.encode(*inputs)
        if self.attention:
            fused, attention = self._attend(states, masks, temperature)
        else:
            fused, attention = states, {"cross": {}, "modality": {}}
        attention["mask"] = dict(enumerate(masks))
        pooled = [(z * mk.unsqueeze(-1)).sum(1) / mk.sum(1, keepdim=True).clamp_min(1)
                  for z, mk in zip(fused, masks)]  # M x (N, H), masked mean over time
        logits = self.head(self.fusion(pooled))  # (N, C)
        self.last_attention_ = _detach(attention)
        return (logits, attention) if return_attention else logits


def _detach(tree):
    if isinstance(tree, dict):
        return {k: _detach(v) for k, v in tree.items()}
    return tree.detach()
