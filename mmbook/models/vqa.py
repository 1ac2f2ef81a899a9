"""Visual question answering models (chapter 12), from baselines to relational reasoning.

Every model answers from the same two inputs and returns answer logits:

* ``features``: the feature map of an image, :math:`(N, C, G, G)`, from a CNN stem (the
  chapter uses a frozen ``ImageEncoder(...).features``, so the maps are computed once);
* ``ids, lengths``: the question as padded token ids :math:`(N, L)` and lengths
  :math:`(N,)` (see :class:`mmbook.text.Vocabulary`).

The models:

* :class:`QuestionOnlyVQA` and :class:`ImageOnlyVQA`: one modality each, to measure the
  language prior and what the image alone gives;
* :class:`ConcatVQA`: the seeds' CNN + RNN, image vector and question vector concatenated,
  then an MLP (the "CNN + MLP" / "CNN + LSTM" baseline of Santoro et al., 2017);
* :class:`FiLMVQA`: the question scales and shifts the image's feature maps
  (Perez et al., 2018);
* :class:`CoAttentionVQA`: question words and image regions attend to each other
  (Lu et al., 2016, with :class:`mmbook.attention.CoAttention`);
* :class:`RelationNetworkVQA`: an MLP on every pair of image cells and the question,
  summed (Santoro et al., 2017).
"""

from __future__ import annotations

import torch
from torch import nn

from ..attention import CoAttention
from ..encoders import mlp_head
from ..fusion import ConcatFusion, MultimodalModel
from ..text import LSTMTextEncoder
from ..utils import check_positive_int, check_shape

__all__ = [
    "GridEncoder", "grid_coordinates", "encode_questions", "DistinctQuestions",
    "QuestionOnlyVQA", "ImageOnlyVQA", "ConcatVQA",
    "FiLMVQA", "CoAttentionVQA", "RelationNetworkVQA",
]



def grid_coordinates(grid_size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The (x, y) centre of every cell of a G x G grid, in [-1, 1], row by row.

    Shape:
        - output: :math:`(G^2, 2)`

    Examples:
        >>> grid_coordinates(2).tolist()
        [[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]]
    """
    t = (torch.arange(grid_size, device=device, dtype=dtype) + 0.5) / grid_size * 2 - 1
    ys, xs = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)  # (G*G, 2)


def encode_questions(encoder: nn.Module, ids: torch.Tensor, lengths: torch.Tensor,
                     return_sequence: bool = False):
    """Run a text encoder once per *distinct* question of the batch and share the result.

    Generated questions repeat (Sort-of-CLEVR has 36 distinct ones), so a batch of 256
    questions needs at most 36 LSTM runs; the result, and its gradient, is what encoding
    every row would give.

    Shape:
        - ids: :math:`(N, L)`, lengths: :math:`(N,)`
        - output: :math:`(N, H)`, or ``(states (N, L, H), mask (N, L))``
    """
    key = torch.cat([ids, torch.as_tensor(lengths, device=ids.device)[:, None]], dim=1)
    uniq, inverse = torch.unique(key, dim=0, return_inverse=True)
    out = encoder(uniq[:, :-1], uniq[:, -1], return_sequence=return_sequence)
    if return_sequence:
        return out[0][inverse], out[1][inverse]
    return out[inverse]


def _check_features(features, in_channels: int, grid_size: int) -> None:
    check_shape(features, (None, in_channels, grid_size, grid_size), "features")


def _down(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 3x3 convolution with stride 2 and a ReLU: halves the grid."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1), nn.ReLU())


class DistinctQuestions(nn.Module):
    """A text encoder that encodes each distinct question of a batch once
    (:func:`encode_questions`); same call and result as the encoder it wraps."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.out_features = encoder.out_features

    def forward(self, ids, lengths, return_sequence: bool = False):
        return encode_questions(self.encoder, ids, lengths, return_sequence)


class GridEncoder(nn.Module):
    """A feature map to one vector: a stride-2 convolution, flatten, linear, ReLU.

    .. math:: v = \\mathrm{ReLU}(W \\operatorname{vec}(\\mathrm{ReLU}(\\mathrm{conv}_{s=2}(F))) + b)

    Args:
        in_channels: C of the feature map; grid_size: G (even); out_features: size of v;
        channels: channels after the convolution.

    Shape:
        - features: :math:`(N, C, G, G)`
        - output: :math:`(N, \\text{out\\_features})`
    """

    def __init__(self, in_channels: int, grid_size: int, out_features: int = 64,
                 channels: int = 32):
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.grid_size = check_positive_int(grid_size, "grid_size")
        self.out_features = check_positive_int(out_features, "out_features")
        self.conv = _down(in_channels, channels)
        side = (grid_size + 1) // 2
        self.proj = nn.Linear(channels * side * side, out_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        _check_features(features, self.in_channels, self.grid_size)
        return torch.relu(self.proj(self.conv(features).flatten(1)))  # (N, out_features)


class QuestionOnlyVQA(nn.Module):
    """The language prior: answer from the question alone (the image is ignored).

    .. math:: \\hat y = \\mathrm{MLP}(\\mathrm{LSTM}(q))

    Args:
        vocab_size: V; num_answers: the answer classes; embed_dim, hidden_size: of the
        question encoder.

    Shape:
        - features: ignored; ids: :math:`(N, L)`; lengths: :math:`(N,)`
        - output: :math:`(N, \\text{num\\_answers})`
    """

    def __init__(self, vocab_size: int, num_answers: int, embed_dim: int = 32,
                 hidden_size: int = 64):
        super().__init__()
        self.question = LSTMTextEncoder(vocab_size, embed_dim, hidden_size)
        self.head = mlp_head(hidden_size, hidden_size, num_answers)

    def forward(self, features, ids, lengths) -> torch.Tensor:
        return self.head(encode_questions(self.question, ids, lengths))


class ImageOnlyVQA(nn.Module):
    """Answer from the image alone (the question is ignored): what the scene's
    statistics give without knowing what is asked.

    Shape:
        - features: :math:`(N, C, G, G)`; ids, lengths: ignored
        - output: :math:`(N, \\text{num\\_answers})`
    """

    def __init__(self, in_channels: int, grid_size: int, num_answers: int,
                 hidden_size: int = 64):
        super().__init__()
        self.image = GridEncoder(in_channels, grid_size, hidden_size)
        self.head = mlp_head(hidden_size, hidden_size, num_answers)

    def forward(self, features, ids, lengths) -> torch.Tensor:
        return self.head(self.image(features))


class ConcatVQA(MultimodalModel):
    """The seeds' CNN + RNN: an image vector and a question vector, concatenated, then an MLP.

    .. math:: \\hat y = \\mathrm{MLP}([\\,\\mathrm{CNN}(x);\\ \\mathrm{LSTM}(q)\\,])

    A :class:`mmbook.fusion.MultimodalModel` with a :class:`GridEncoder`, an
    :class:`~mmbook.text.LSTMTextEncoder` and :class:`~mmbook.fusion.ConcatFusion`.

    Shape:
        - features: :math:`(N, C, G, G)`; ids: :math:`(N, L)`; lengths: :math:`(N,)`
        - output: :math:`(N, \\text{num\\_answers})`
    """

    def __init__(self, in_channels: int, grid_size: int, vocab_size: int, num_answers: int,
                 embed_dim: int = 32, hidden_size: int = 64):
        image = GridEncoder(in_channels, grid_size, hidden_size)
        question = DistinctQuestions(LSTMTextEncoder(vocab_size, embed_dim, hidden_size))
        super().__init__([image, question], ConcatFusion((hidden_size, hidden_size)),
                         mlp_head(2 * hidden_size, 2 * hidden_size, num_answers), arity=(1, 2))


class FiLMVQA(nn.Module):
    """Feature-wise linear modulation: the question scales and shifts every channel of
    the image's feature maps (Perez et al., 2018).

    .. math::
        (\\gamma_k, \\beta_k) = W_k\\, \\mathrm{LSTM}(q) + b_k, \\qquad
        \\mathrm{FiLM}(F_c) = \\gamma_{k,c} F_c + \\beta_{k,c}

    Each of ``num_blocks`` residual blocks is conv 1x1 -> ReLU -> conv 3x3 ->
    BatchNorm (no affine) -> FiLM -> ReLU, plus its input; as in the paper, the grid
    coordinates are appended as two extra channels. A 1x1 convolution, a max over the
    grid and an MLP give the answer.

    Args:
        in_channels: C; grid_size: G; vocab_size: V; num_answers: classes;
        channels: D, channels of the residual blocks (the stem's map is first halved by a
        stride-2 convolution); num_blocks: K; embed_dim, hidden_size: question encoder.

    Shape:
        - features: :math:`(N, C, G, G)`; ids: :math:`(N, L)`; lengths: :math:`(N,)`
        - output: :math:`(N, \\text{num\\_answers})`
    """

    def __init__(self, in_channels: int, grid_size: int, vocab_size: int, num_answers: int,
                 channels: int = 32, num_blocks: int = 2, embed_dim: int = 32,
                 hidden_size: int = 64):
        super().__init__()
        self.in_channels, self.grid_size = in_channels, grid_size
        self.channels, self.num_blocks = channels, check_positive_int(num_blocks, "num_blocks")
        self.question = LSTMTextEncoder(vocab_size, embed_dim, hidden_size)
        self.film = nn.Linear(hidden_size, num_blocks * 2 * channels)  # all (gamma, beta)
        self.down = _down(in_channels, channels)
        self.side = (grid_size + 1) // 2
        self.register_buffer("coords", grid_coordinates(self.side).T.reshape(2, self.side,
                                                                              self.side))
        self.stem = nn.Sequential(nn.Conv2d(channels + 2, channels, 1), nn.ReLU())
        self.conv1 = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(num_blocks))
        self.conv2 = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1)
                                   for _ in range(num_blocks))
        self.norm = nn.ModuleList(nn.BatchNorm2d(channels, affine=False)
                                  for _ in range(num_blocks))
        self.out = nn.Sequential(nn.Conv2d(channels, 2 * channels, 1), nn.ReLU())
        self.head = mlp_head(2 * channels, hidden_size, num_answers)

    def film_parameters(self, ids, lengths) -> torch.Tensor:
        """:math:`(\\gamma, \\beta)` of every block: (N, K, 2, D)."""
        q = encode_questions(self.question, ids, lengths)
        return self.film(q).view(len(q), self.num_blocks, 2, self.channels)

    def forward(self, features, ids, lengths) -> torch.Tensor:
        _check_features(features, self.in_channels, self.grid_size)
        gb = self.film_parameters(ids, lengths)  # (N, K, 2, D)
        x = self.down(features)  # (N, D, G', G')
        x = self.stem(torch.cat([x, self.coords.expand(len(x), -1, -1, -1)], 1))
        for k in range(self.num_blocks):
            h = self.norm[k](self.conv2[k](torch.relu(self.conv1[k](x))))
            gamma, beta = gb[:, k, 0, :, None, None], gb[:, k, 1, :, None, None]  # (N, D, 1, 1)
            x = x + torch.relu(gamma * h + beta)
        return self.head(self.out(x).amax(dim=(2, 3)))  # max over the grid -> (N, 2D)


class CoAttentionVQA(nn.Module):
    """Question words and image regions attend to each other through one affinity matrix.

    .. math::
        C = \\tanh(Q W R^\\top), \\quad \\hat Q = \\mathrm{softmax}_s(C)\\, R, \\quad
        \\hat R = \\mathrm{softmax}_l(C^\\top)\\, Q, \\quad
        \\hat y = \\mathrm{MLP}\\big([\\,q;\\ \\overline{\\hat Q};\\ \\overline{\\hat R}\\,]\\big)

    :math:`Q` holds the LSTM state of every word :math:`(L, H)`, :math:`R` every cell of
    the feature map with its coordinates, projected to :math:`D` :math:`(G^2, D)`; bars are
    means (over the real words for :math:`\\hat Q`), :math:`q` the question vector. The
    word-to-region weights of the last call are kept in :attr:`last_weights`
    :math:`(N, L, G^2)`: row :math:`l` says where word :math:`l` looks in the image.

    Shape:
        - features: :math:`(N, C, G, G)`; ids: :math:`(N, L)`; lengths: :math:`(N,)`
        - output: :math:`(N, \\text{num\\_answers})`
    """

    def __init__(self, in_channels: int, grid_size: int, vocab_size: int, num_answers: int,
                 region_features: int = 64, embed_dim: int = 32, hidden_size: int = 64):
        super().__init__()
        self.in_channels, self.grid_size = in_channels, grid_size
        self.question = LSTMTextEncoder(vocab_size, embed_dim, hidden_size)
        self.register_buffer("coords", grid_coordinates(grid_size))
        self.regions = nn.Sequential(nn.Linear(in_channels + 2, region_features), nn.ReLU())
        self.coattention = CoAttention(hidden_size, region_features)
        self.head = mlp_head(2 * hidden_size + region_features, 2 * hidden_size, num_answers)
        self.last_weights = None

    def forward(self, features, ids, lengths) -> torch.Tensor:
        _check_features(features, self.in_channels, self.grid_size)
        words, mask = encode_questions(self.question, ids, lengths,
                                       return_sequence=True)  # (N, L, H), (N, L)
        q = words[torch.arange(len(words)), lengths.to(words.device) - 1]  # last state (N, H)
        cells = features.flatten(2).transpose(1, 2)  # (N, G*G, C)
        r = self.regions(torch.cat([cells, self.coords.expand(len(cells), -1, -1)], -1))
        q_hat, r_hat, w_qr, _, _ = self.coattention(words, r, mask_a=mask)
        self.last_weights = w_qr.detach()  # (N, L, G*G)
        w = mask.to(q_hat.dtype).unsqueeze(-1)
        q_bar = (q_hat * w).sum(1) / w.sum(1)  # mean over the real words (N, D)
        return self.head(torch.cat([q, q_bar, r_hat.mean(1)], dim=1))


class RelationNetworkVQA(nn.Module):
    """A Relation Network: an MLP :math:`g` on every pair of objects with the question,
    summed, then an MLP :math:`f` (Santoro et al., 2017).

    .. math:: \\hat y = f\\Big(\\sum_{i, j} g([o_i;\\ o_j;\\ q])\\Big)

    The objects :math:`o_i` are the :math:`K = (G/2)^2` cells of the feature map after a
    stride-2 convolution, each with its (x, y) coordinates. The first layer of :math:`g`
    is linear in the concatenation, :math:`W[o_i; o_j; q] = W_a o_i + W_b o_j + W_q q`, so
    it is computed per object and per question and broadcast over the :math:`K^2` pairs
    (:meth:`pair_hidden`), instead of on :math:`K^2` concatenated vectors.

    Args:
        in_channels: C; grid_size: G; vocab_size: V; num_answers: classes;
        object_features: channels of an object; hidden_size: width of g, f and the
        question encoder; embed_dim: word embeddings.

    Shape:
        - features: :math:`(N, C, G, G)`; ids: :math:`(N, L)`; lengths: :math:`(N,)`
        - output: :math:`(N, \\text{num\\_answers})`
    """

    def __init__(self, in_channels: int, grid_size: int, vocab_size: int, num_answers: int,
                 object_features: int = 32, hidden_size: int = 64, embed_dim: int = 32):
        super().__init__()
        self.in_channels, self.grid_size = in_channels, grid_size
        self.question = LSTMTextEncoder(vocab_size, embed_dim, hidden_size)
        self.objects = _down(in_channels, object_features)
        side = (grid_size + 1) // 2
        self.register_buffer("coords", grid_coordinates(side))
        d_o = object_features + 2
        self.g1 = nn.Linear(2 * d_o + hidden_size, hidden_size)  # on [o_i; o_j; q]
        self.g2 = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU())
        self.f = mlp_head(hidden_size, hidden_size, num_answers)

    def object_vectors(self, features) -> torch.Tensor:
        """:math:`o_i`: (N, K, object_features + 2)."""
        o = self.objects(features).flatten(2).transpose(1, 2)  # (N, K, D)
        return torch.cat([o, self.coords.expand(len(o), -1, -1)], dim=-1)

    def pair_hidden(self, o: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """First layer of g on every pair: :math:`\\mathrm{ReLU}(W_a o_i + W_b o_j + W_q q + b)`.

        Shape:
            - o: :math:`(N, K, D_o)`, q: :math:`(N, H)`
            - output: :math:`(N, K, K, H)`, entry ``[n, i, j]`` for the pair (i, j)
        """
        d_o = o.shape[-1]
        W_a, W_b, W_q = self.g1.weight.split([d_o, d_o, q.shape[-1]], dim=1)
        a, b = o @ W_a.T, o @ W_b.T  # (N, K, H) each
        c = q @ W_q.T + self.g1.bias  # (N, H)
        return torch.relu(a[:, :, None] + b[:, None, :] + c[:, None, None])  # (N, K, K, H)

    def forward(self, features, ids, lengths) -> torch.Tensor:
        _check_features(features, self.in_channels, self.grid_size)
        o = self.object_vectors(features)
        q = encode_questions(self.question, ids, lengths)  # (N, H)
        h = self.g2(self.pair_hidden(o, q))  # (N, K, K, H)
        return self.f(h.sum(dim=(1, 2)))
