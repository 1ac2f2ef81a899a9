"""A cross-encoder: each modality's tokens attend to the other's, then a classifier.

Seed 003 (§3.2) makes attention the key component of its cross-encoder: similarities
between the modalities' features weight what each modality takes from the other. In the
literature a cross-encoder encodes two inputs *jointly*, every token of one seeing every
token of the other (as in ViLBERT and LXMERT, 2019, and the Multimodal Transformer of
Tsai et al., 2019).
:class:`CrossEncoder` does exactly that with two
:class:`mmbook.attention.CrossModalTransformerBlock` stacks (1 <- 2 and 2 <- 1), pools each
modality over its valid tokens, fuses the two pooled vectors and classifies.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..attention import CrossModalTransformerBlock
from ..fusion import WeightedSumFusion
from ..missing import ModalityDropout
from ..utils import (
    check_positive_int,
    check_present,
    check_shape,
    check_sizes,
    fill_absent,
    lengths_to_mask,
)

__all__ = ["CrossEncoder"]


class CrossEncoder(nn.Module):
    r"""Two token sequences encoded jointly by cross-modal attention, then classified.

    .. math::
        H_m^{(0)} = X_m W_m + P_m, \qquad
        H_1^{(l)} = \mathrm{Block}_{1 \leftarrow 2}^{(l)}\big(H_1^{(l-1)}, H_2^{(l-1)}\big),
        \quad
        H_2^{(l)} = \mathrm{Block}_{2 \leftarrow 1}^{(l)}\big(H_2^{(l-1)}, H_1^{(l-1)}\big)

    (each block: pre-norm multi-head cross-attention, queries from one modality, keys and
    values from the other, then a feed-forward network, both residual; with
    ``self_attention=True`` each layer first applies a block of each modality to itself,
    :math:`H_m \leftarrow \mathrm{Block}_{m \leftarrow m}(H_m, H_m)`), then
    :math:`z_m = \mathrm{mean}_t H_m^{(L)}[t]` over the valid tokens,
    :math:`z = \sum_m \alpha_{nm} z_m` over the present modalities and
    :math:`\hat y = W z + b`. :math:`P_m` are learned position embeddings.

    **Absent modality** (``present[n, m]`` False): the absent input is removed by the
    package's one rule (:func:`mmbook.utils.fill_absent`, so even NaN is ignored); in
    every block that would read modality m, sample n's other modality skips the
    cross-attention sub-layer only and keeps its feed-forward sub-layer,
    :math:`H^{(l)} = H^{(l-1)} + \mathrm{FFN}(\mathrm{LN}(H^{(l-1)}))` (so a single
    modality still passes through the same non-linear layers, not around them); and the
    weights :math:`\alpha` are renormalised over the present modalities. With
    ``modality_dropout=p`` training samples lose each modality with probability p
    (never both), which trains exactly that path.

    Args:
        in_features: :math:`(D_1, D_2)`, the token feature sizes.
        max_lengths: :math:`(L_1, L_2)`, the longest sequences (for the position embeddings).
        num_classes: C.
        embed_dim: E.
        num_heads: h (E must be divisible by h).
        num_layers: L, blocks per direction.
        dropout: dropout inside the blocks.
        modality_dropout: p (training only; 0: off).
        self_attention: if True, each layer first lets each modality's tokens attend to
            each other (a pre-norm transformer layer, the same block with the modality as
            its own source), then to the other modality's.

    Attributes:
        last_weights: the attention weights of the last layer from the last forward pass,
            ``(weights_1_from_2 (N, h, L_1, L_2), weights_2_from_1 (N, h, L_2, L_1))``.

    Shape:
        - x1: :math:`(N, L_1, D_1)`, x2: :math:`(N, L_2, D_2)`
        - lengths1, lengths2: :math:`(N,)` ints, optional (default: every token is real)
        - present: :math:`(N, 2)` or :math:`(2,)` bool, optional
        - output: :math:`(N, C)` logits

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> model = CrossEncoder((28, 64), max_lengths=(28, 41), num_classes=10)
        >>> images, audio = torch.randn(3, 28, 28), torch.randn(3, 41, 64)
        >>> tuple(model(images, audio, None, torch.tensor([41, 30, 12])).shape)
        (3, 10)

    Source: Y.-H. H. Tsai, S. Bai, P. P. Liang, J. Z. Kolter, L.-P. Morency,
    R. Salakhutdinov, "Multimodal Transformer for unaligned multimodal language
    sequences", ACL 2019; two streams that attend to each other (co-attention) as in
    J. Lu, D. Batra, D. Parikh, S. Lee, "ViLBERT", NeurIPS 2019, and H. Tan, M. Bansal,
    "LXMERT", EMNLP 2019 (whose layers also hold a self-attention per stream).
    """

    def __init__(self, in_features: Sequence[int], max_lengths: Sequence[int], num_classes: int,
                 embed_dim: int = 32, num_heads: int = 4, num_layers: int = 1,
                 dropout: float = 0.0, modality_dropout: float = 0.0,
                 self_attention: bool = False):
        super().__init__()
        self.in_features = check_sizes(in_features, "in_features")
        self.max_lengths = check_sizes(max_lengths, "max_lengths")
        if len(self.in_features) != 2 or len(self.max_lengths) != 2:
            raise ValueError(f"in_features and max_lengths must hold 2 entries (two "
                             f"modalities), got {self.in_features} and {self.max_lengths}")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        E = check_positive_int(embed_dim, "embed_dim")
        L = check_positive_int(num_layers, "num_layers")
        self.embed = nn.ModuleList(nn.Linear(d, E) for d in self.in_features)
        self.position = nn.ParameterList(nn.Parameter(0.02 * torch.randn(n, E))
                                         for n in self.max_lengths)
        self.blocks = nn.ModuleList(
            nn.ModuleList(CrossModalTransformerBlock(E, num_heads, dropout=dropout)
                          for _ in range(2)) for _ in range(L))  # [layer][target modality]
        self.self_blocks = nn.ModuleList(
            nn.ModuleList(CrossModalTransformerBlock(E, num_heads, dropout=dropout)
                          for _ in range(2)) for _ in range(L)) if self_attention else None
        self.norms = nn.ModuleList(nn.LayerNorm(E) for _ in range(2))
        self.fusion = WeightedSumFusion((E, E), E, project=False)
        self.head = nn.Linear(E, num_classes)
        self.modality_dropout = ModalityDropout(modality_dropout)
        self.last_weights = None

    def _tokens(self, m: int, x, lengths):
        check_shape(x, ("N", None, self.in_features[m]), f"x{m + 1}")
        n, t = x.shape[:2]
        if t > self.max_lengths[m]:
            raise ValueError(f"x{m + 1} has {t} tokens (shape {tuple(x.shape)}), more than "
                             f"max_lengths[{m}] = {self.max_lengths[m]}")
        if lengths is None:
            mask = torch.ones(n, t, dtype=torch.bool, device=x.device)
        else:
            check_shape(lengths, (n,), f"lengths{m + 1}")
            mask = lengths_to_mask(lengths.to(x.device), t)  # (N, T), True = real token
            if bool((mask.sum(1) < 1).any()):
                raise ValueError(f"lengths{m + 1} must be >= 1 for every sample")
        return self.embed[m](x) + self.position[m][:t], mask  # (N, T, E), (N, T)

    def _present(self, present, n: int, device) -> torch.Tensor:
        mask = check_present(present, 2, n, device) if present is not None \
            else torch.ones(n, 2, dtype=torch.bool, device=device)
        return self.modality_dropout(mask) if self.training else mask

    def forward(self, x1, x2, lengths1=None, lengths2=None, present=None) -> torch.Tensor:
        for m, x in enumerate((x1, x2)):
            check_shape(x, ("N", None, self.in_features[m]), f"x{m + 1}")
        if x1.shape[0] != x2.shape[0]:
            raise ValueError(f"x1 and x2 must share the batch size N, got {tuple(x1.shape)} "
                             f"and {tuple(x2.shape)}")
        p = self._present(present, x1.shape[0], x1.device)  # (N, 2)
        x1, x2 = fill_absent([x1, x2], p)  # an absent modality's tokens (even NaN) are gone
        (h1, mask1), (h2, mask2) = self._tokens(0, x1, lengths1), self._tokens(1, x2, lengths2)
        for layer, (block_1, block_2) in enumerate(self.blocks):
            if self.self_blocks is not None:  # each modality attends to itself first
                self_1, self_2 = self.self_blocks[layer]
                h1 = self_1(h1, h1, key_padding_mask=~mask1)[0]  # (N, L_1, E)
                h2 = self_2(h2, h2, key_padding_mask=~mask2)[0]  # (N, L_2, E)
            # a sample without modality 2: block_1 skips its attention (and vice versa)
            new1, w12 = block_1(h1, h2, key_padding_mask=~mask2, source_present=p[:, 1])
            new2, w21 = block_2(h2, h1, key_padding_mask=~mask1, source_present=p[:, 0])
            h1, h2 = new1, new2  # (N, L_1, E), (N, L_2, E)
        self.last_weights = (w12.detach(), w21.detach())
        zs = [(self.norms[m](h) * k[:, :, None]).sum(1) / k.sum(1, keepdim=True)
              for m, (h, k) in enumerate(((h1, mask1), (h2, mask2)))]  # each (N, E)
        return self.head(self.fusion(zs, present=p))  # (N, C)
