r"""Sentiment models of chapter 13 on word-aligned text, voice and face.

Every model is called as ``model(tokens, acoustic, visual, lengths)`` and returns one
score per utterance, shape ``(N,)`` (the MOSI regression target in [-3, 3]):

* :class:`UtteranceFusion`: one :class:`ModalityEncoder` per modality summarises the
  utterance into :math:`z_m` (a GRU over the words' vectors for the text; a per-word
  layer averaged over the words, then a linear layer, for the voice and the face), a
  :class:`mmbook.fusion.Fusion` (concatenation, tensor fusion, low-rank fusion) joins
  them and a head (an MLP by default, or a linear layer) regresses the score; with one
  modality it is a unimodal baseline;
* :class:`WordLevelEarlyFusion`: early fusion on the aligned sequences, one GRU over
  :math:`[\mathrm{emb}(w_t); a_t; v_t]` (the EF-LSTM baseline of the MOSI papers);
* :class:`CrossModalSentiment`: the words' GRU states attend to the voice and to the face
  with :class:`mmbook.attention.CrossModalTransformerBlock` (after the Multimodal
  Transformer, Tsai et al., 2019).
"""

from __future__ import annotations

import torch
from torch import nn

from ..attention import CrossModalTransformerBlock
from ..data.reviews import REVIEW_MODALITIES
from ..fusion import Fusion
from ..utils import check_choice, check_positive_int, check_shape, lengths_to_mask

__all__ = ["ModalityEncoder", "UtteranceFusion", "WordLevelEarlyFusion",
           "CrossModalSentiment", "regression_head"]


def regression_head(in_features: int, hidden_size: int = 32, dropout: float = 0.1) -> nn.Module:
    r"""``Linear -> ReLU -> Dropout -> Linear(1)``: the default score head of every model,
    :math:`\hat y = w_2^\top \mathrm{ReLU}(W_1 h + b_1) + b_2`.

    Args:
        in_features: size of the fused representation h.
        hidden_size: width of the hidden layer.
        dropout: dropout probability after the ReLU.

    Shape:
        - input: :math:`(N, \text{in\_features})`
        - output: :math:`(N, 1)`

    Examples:
        >>> head = regression_head(6, hidden_size=4)
        >>> head(torch.randn(3, 6)).shape
        torch.Size([3, 1])
        >>> sum(p.numel() for p in head.parameters())  # (6 + 1) * 4 + (4 + 1)
        33
    """
    return nn.Sequential(nn.Linear(in_features, hidden_size), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden_size, 1))


def _embedding(word_vectors) -> nn.Embedding:
    if word_vectors is None:
        raise ValueError("a text encoder needs word_vectors (V, E_w), e.g. "
                         "mmbook.data.reviews.word_vectors(vocab)")
    check_shape(word_vectors, (None, None), "word_vectors")
    return nn.Embedding.from_pretrained(word_vectors.clone().float(), freeze=False,
                                        padding_idx=0)


def _check_inputs(tokens, acoustic, visual, lengths) -> None:
    check_shape(tokens, ("N", "L"), "tokens")
    n, L = tokens.shape
    check_shape(acoustic, (n, L, None), "acoustic")
    check_shape(visual, (n, L, None), "visual")
    check_shape(lengths, (n,), "lengths")


class ModalityEncoder(nn.Module):
    r"""One modality's word sequence -> one summary vector :math:`z_m`.

    * text: an ``nn.Embedding``, then a GRU; :math:`z = h_\ell`, the state after the last
      real word (padding sits after it, so a forward GRU never mixes it in);
    * acoustic, visual: per word :math:`u_t = \mathrm{ReLU}(W x_t + b)`, averaged over the
      real words, then a linear layer: :math:`z = W' \frac1\ell \sum_{t \le \ell} u_t + b'`
      (TFN's acoustic and visual subnetworks also average over time first).

    Args:
        modality: ``"text"``, ``"acoustic"`` or ``"visual"``.
        hidden_size: H, the size of :math:`z_m`.
        word_vectors: ``(V, E_w)`` initial word vectors (text only; fine-tuned), e.g.
            :func:`mmbook.data.reviews.word_vectors`.
        in_features: features per word (acoustic, visual).
        embed_dim: size of the per-word layer (acoustic, visual).

    Shape:
        - x: :math:`(N, L)` token ids or :math:`(N, L, D_m)`; lengths :math:`(N,)`
        - output: :math:`(N, H)`, or with ``return_sequence=True`` :math:`(N, L, H)`
          (text: the GRU states; padded steps hold values that must be masked)

    Examples:
        >>> text = ModalityEncoder("text", 5, word_vectors=torch.randn(20, 8))
        >>> tokens, lengths = torch.randint(1, 20, (3, 7)), torch.tensor([7, 4, 1])
        >>> text(tokens, lengths).shape, text(tokens, lengths, return_sequence=True).shape
        (torch.Size([3, 5]), torch.Size([3, 7, 5]))
        >>> face = ModalityEncoder("visual", 5, in_features=4)
        >>> x = torch.randn(3, 7, 4)
        >>> z = face(x, lengths)
        >>> z.shape
        torch.Size([3, 5])
        >>> x[1, 4:] = 99.0  # padding after the 4 real words is ignored
        >>> torch.allclose(face(x, lengths), z)
        True
    """

    def __init__(self, modality: str, hidden_size: int, word_vectors: torch.Tensor | None = None,
                 in_features: int = 4, embed_dim: int = 16):
        super().__init__()
        self.modality = check_choice(modality, REVIEW_MODALITIES, "modality")
        self.out_features = check_positive_int(hidden_size, "hidden_size")
        if modality == "text":
            self.embed = _embedding(word_vectors)
            self.rnn = nn.GRU(self.embed.embedding_dim, hidden_size, batch_first=True)
        else:
            self.embed = nn.Sequential(nn.Linear(in_features, embed_dim), nn.ReLU())
            self.out = nn.Linear(embed_dim, hidden_size)

    def forward(self, x, lengths, return_sequence: bool = False):
        h = self.embed(x)  # (N, L, embed_dim)
        if self.modality == "text":
            h, _ = self.rnn(h)  # (N, L, H)
            if return_sequence:
                return h
            last = (lengths.to(h.device).long() - 1).clamp(min=0)  # (N,)
            return h[torch.arange(h.shape[0], device=h.device), last]  # (N, H)
        if return_sequence:
            raise ValueError("return_sequence is for the text encoder only")
        mask = lengths_to_mask(lengths.to(h.device), h.shape[1])[..., None]  # (N, L, 1)
        return self.out((h * mask).sum(1) / mask.sum(1).clamp(min=1))  # (N, H)


class UtteranceFusion(nn.Module):
    r"""Per-modality encoders, a fusion of their summaries, a regression head.

    .. math:: \hat y = \mathrm{head}\big(\mathrm{fusion}(z_{m_1}, \dots, z_{m_k})\big),
              \qquad z_m = \mathrm{enc}_m(x_m)

    where :math:`\mathrm{enc}_m` is a :class:`ModalityEncoder`: a GRU's state after the
    last word for the text, a per-word layer averaged over the words for the voice and
    the face. With a linear head and :class:`~mmbook.fusion.ConcatFusion`, the score is
    a sum of one term per modality (no interaction); with
    :class:`~mmbook.fusion.TensorFusion` a linear head is already a multilinear function
    of the :math:`z_m`, products included.

    Args:
        encoders: dict modality name -> :class:`ModalityEncoder` (one or more of
            ``"text"``, ``"acoustic"``, ``"visual"``, in that order).
        fusion: a :class:`mmbook.fusion.Fusion` over the encoders' outputs.
        head: maps ``fusion.out_features`` to one score (default
            :func:`regression_head`; ``nn.Linear(fusion.out_features, 1)`` for a
            linear head).

    Raises:
        ValueError: an unknown modality name, a fusion whose number of modalities is not
            the encoders', inputs that are not word-aligned.

    Shape:
        - tokens :math:`(N, L)`, acoustic :math:`(N, L, 4)`, visual :math:`(N, L, 4)`,
          lengths :math:`(N,)`
        - output: :math:`(N,)`

    Examples:
        >>> from mmbook.fusion import TensorFusion
        >>> enc = {"text": ModalityEncoder("text", 4, word_vectors=torch.randn(20, 8)),
        ...        "visual": ModalityEncoder("visual", 2)}
        >>> model = UtteranceFusion(enc, TensorFusion((4, 2)),
        ...                         head=nn.Linear(5 * 3, 1))  # (4 + 1)(2 + 1) products
        >>> tokens, lengths = torch.randint(1, 20, (3, 7)), torch.tensor([7, 4, 1])
        >>> model(tokens, torch.randn(3, 7, 4), torch.randn(3, 7, 4), lengths).shape
        torch.Size([3])
        >>> [z.shape[1] for z in model.encode(tokens, torch.randn(3, 7, 4),
        ...                                    torch.randn(3, 7, 4), lengths)]
        [4, 2]
    """

    def __init__(self, encoders: dict, fusion: Fusion, head: nn.Module | None = None):
        super().__init__()
        unknown = set(encoders) - set(REVIEW_MODALITIES)
        if unknown or not encoders:
            raise ValueError(f"encoders must map some of {REVIEW_MODALITIES} to modules, got "
                             f"{sorted(encoders)}")
        self.names = tuple(m for m in REVIEW_MODALITIES if m in encoders)
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.names})
        if not isinstance(fusion, Fusion) or fusion.num_modalities != len(self.names):
            raise ValueError(f"fusion must be a mmbook.fusion.Fusion over {len(self.names)} "
                             f"modalities {self.names}, got {fusion!r}")
        self.fusion = fusion
        self.head = head if head is not None else regression_head(fusion.out_features)

    def encode(self, tokens, acoustic, visual, lengths) -> list:
        """The summaries :math:`[z_m]`, one ``(N, H_m)`` per modality used (in
        ``self.names`` order)."""
        _check_inputs(tokens, acoustic, visual, lengths)
        x = {"text": tokens, "acoustic": acoustic, "visual": visual}
        return [self.encoders[m](x[m], lengths) for m in self.names]

    def forward(self, tokens, acoustic, visual, lengths) -> torch.Tensor:
        return self.head(self.fusion(self.encode(tokens, acoustic, visual, lengths))).squeeze(-1)


class WordLevelEarlyFusion(nn.Module):
    r"""Early fusion on word-aligned sequences: one GRU over the concatenated features.

    .. math:: h_t = \mathrm{GRU}\big([\mathrm{emb}(w_t); a_t; v_t], h_{t-1}\big), \qquad
              \hat y = \mathrm{head}(h_\ell)

    Args:
        word_vectors: ``(V, E_w)`` initial word vectors (fine-tuned).
        hidden_size: H.
        acoustic_features, visual_features: D_a, D_v.

    Shape:
        - as :class:`UtteranceFusion`; output :math:`(N,)`

    Examples:
        >>> model = WordLevelEarlyFusion(torch.randn(20, 8), hidden_size=6)
        >>> tokens, lengths = torch.randint(1, 20, (3, 7)), torch.tensor([7, 4, 1])
        >>> model(tokens, torch.randn(3, 7, 4), torch.randn(3, 7, 4), lengths).shape
        torch.Size([3])
        >>> model.rnn.input_size  # E_w + D_a + D_v, one vector per word
        16
    """

    def __init__(self, word_vectors: torch.Tensor, hidden_size: int = 32,
                 acoustic_features: int = 4, visual_features: int = 4):
        super().__init__()
        self.embed = _embedding(word_vectors)
        self.rnn = nn.GRU(self.embed.embedding_dim + acoustic_features + visual_features,
                          hidden_size, batch_first=True)
        self.head = regression_head(hidden_size)

    def forward(self, tokens, acoustic, visual, lengths) -> torch.Tensor:
        _check_inputs(tokens, acoustic, visual, lengths)
        x = torch.cat([self.embed(tokens), acoustic, visual], dim=-1)  # (N, L, E + D_a + D_v)
        h, _ = self.rnn(x)  # (N, L, H)
        last = (lengths.long() - 1).clamp(min=0)
        return self.head(h[torch.arange(len(h), device=h.device), last]).squeeze(-1)


class CrossModalSentiment(nn.Module):
    r"""Words attend to the voice and to the face (a small Multimodal Transformer).

    .. math::
        H = \mathrm{GRU}(\mathrm{emb}(w)), \quad
        Y_a = \mathrm{CM}(H \leftarrow A), \quad Y_v = \mathrm{CM}(H \leftarrow V), \quad
        \hat y = \mathrm{head}\Big(\frac{1}{\ell}\sum_{t \le \ell} [Y_a; Y_v]_t\Big)

    where :math:`\mathrm{CM}(X \leftarrow S)` is a :class:`CrossModalTransformerBlock`
    whose queries come from the words and keys/values from the (projected) other
    modality; padded words are masked as keys and left out of the mean.

    Args:
        word_vectors: ``(V, E_w)`` initial word vectors (fine-tuned).
        embed_dim: E, the model width (GRU size and attention size).
        num_heads: attention heads.
        acoustic_features, visual_features: D_a, D_v.

    Attributes:
        last_weights: dict ``"acoustic"`` / ``"visual"`` -> attention weights
            ``(N, h, L, L)`` of the last forward pass.

    Shape:
        - as :class:`UtteranceFusion`; output :math:`(N,)`

    Examples:
        >>> model = CrossModalSentiment(torch.randn(20, 8), embed_dim=8, num_heads=2)
        >>> tokens, lengths = torch.randint(1, 20, (3, 7)), torch.tensor([7, 4, 1])
        >>> model(tokens, torch.randn(3, 7, 4), torch.randn(3, 7, 4), lengths).shape
        torch.Size([3])
        >>> w = model.last_weights["visual"]  # (N, heads, L, L)
        >>> tuple(w.shape), float(w[2, :, 0, 1:].abs().sum())  # padded keys get no weight
        ((3, 2, 7, 7), 0.0)
    """

    def __init__(self, word_vectors: torch.Tensor, embed_dim: int = 16, num_heads: int = 2,
                 acoustic_features: int = 4, visual_features: int = 4):
        super().__init__()
        self.text = ModalityEncoder("text", embed_dim, word_vectors)
        self.project = nn.ModuleDict({"acoustic": nn.Linear(acoustic_features, embed_dim),
                                      "visual": nn.Linear(visual_features, embed_dim)})
        self.blocks = nn.ModuleDict({m: CrossModalTransformerBlock(embed_dim, num_heads,
                                                                   dim_feedforward=2 * embed_dim)
                                     for m in ("acoustic", "visual")})
        self.head = regression_head(2 * embed_dim)
        self.last_weights: dict = {}

    def forward(self, tokens, acoustic, visual, lengths) -> torch.Tensor:
        _check_inputs(tokens, acoustic, visual, lengths)
        mask = lengths_to_mask(lengths, tokens.shape[1])  # (N, L) True = a real word
        h = self.text(tokens, lengths, return_sequence=True)  # (N, L, E)
        ys = []
        for m, x in (("acoustic", acoustic), ("visual", visual)):
            y, weights = self.blocks[m](h, self.project[m](x), key_mask=mask)
            self.last_weights[m] = weights.detach()
            ys.append(y)
        y = torch.cat(ys, dim=-1) * mask[..., None]  # (N, L, 2E), zero on padding
        pooled = y.sum(1) / lengths[:, None].to(y.dtype)  # (N, 2E)
        return self.head(pooled).squeeze(-1)

