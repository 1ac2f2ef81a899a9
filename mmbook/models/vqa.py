"""Visual question answering models (chapter 12), from baselines to relational reasoning.

Every model answers from the same two inputs and returns answer logits:

* ``features``: the feature map of an image, :math:`(N, C, G, G)`, from a CNN stem (the
  chapter uses a frozen stem that gives, per cell, the probabilities of "no object", of
  each colour and of each shape, so the maps are computed once);
* ``ids, lengths``: the question as padded token ids :math:`(N, L)` and lengths
  :math:`(N,)`, a tensor or a list of ints (see :class:`mmbook.text.Vocabulary`).

Each model reads the question with ``question_encoder="lstm"``
(:class:`~mmbook.text.LSTMTextEncoder`) or ``"bow"``
(:class:`~mmbook.text.BagOfWordsEncoder`, the mean of the word embeddings). The models:

* :class:`QuestionOnlyVQA` and :class:`ImageOnlyVQA`: one modality each, to measure the
  language prior and what the image alone gives;
* :class:`ConcatVQA`: the seeds' CNN + RNN, image vector and question vector concatenated,
  then an MLP (the "CNN + MLP" / "CNN + LSTM" baseline of Santoro et al., 2017);
* :class:`FiLMVQA`: the question scales and shifts the image's feature maps
  (Perez et al., 2018);
* :class:`CoAttentionVQA`: question words and image cells attend to each other with
  parallel co-attention (Lu et al., 2016, :class:`mmbook.attention.CoAttention`);
* :class:`RelationNetworkVQA`: an MLP on every pair of objects and the question, summed
  (Santoro et al., 2017), and :class:`ObjectMLPVQA`, an MLP on the same objects side by
  side; the objects are the ``num_objects`` cells most likely to hold one
  (:func:`object_cells`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..attention import CoAttention
from ..encoders import mlp_head
from ..fusion import ConcatFusion, MultimodalModel
from ..text import BagOfWordsEncoder, make_text_encoder
from ..utils import check_positive_int, check_shape

__all__ = [
    "GridEncoder", "grid_coordinates", "encode_questions", "DistinctQuestions",
    "object_cells", "QuestionOnlyVQA", "ImageOnlyVQA", "ConcatVQA",
    "FiLMVQA", "CoAttentionVQA", "RelationNetworkVQA", "ObjectMLPVQA",
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
        - ids: :math:`(N, L)`, lengths: :math:`(N,)` (a tensor or a list of ints)
        - output: :math:`(N, H)`, or ``(states (N, L, H), mask (N, L))``

    Examples:
        >>> from mmbook.text import make_text_encoder
        >>> _ = torch.manual_seed(0)
        >>> lstm = make_text_encoder("lstm", vocab_size=20, hidden_size=8)
        >>> ids = torch.tensor([[4, 5, 6], [4, 5, 6], [7, 8, 0]])   # rows 0 and 1 repeat
        >>> torch.allclose(encode_questions(lstm, ids, [3, 3, 2]),
        ...                lstm(ids, torch.tensor([3, 3, 2])))
        True
    """
    check_shape(ids, ("N", None), "ids")
    lengths = torch.as_tensor(lengths, device=ids.device)
    check_shape(lengths, (ids.shape[0],), "lengths")
    key = torch.cat([ids, lengths[:, None].to(ids.dtype)], dim=1)
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
    (:func:`encode_questions`); same call and result as the encoder it wraps.

    Examples:
        >>> from mmbook.text import make_text_encoder
        >>> _ = torch.manual_seed(0)
        >>> lstm = make_text_encoder("lstm", vocab_size=20, hidden_size=8)
        >>> ids = torch.tensor([[4, 5, 6], [4, 5, 6], [7, 8, 0]])   # rows 0 and 1 repeat
        >>> lengths = torch.tensor([3, 3, 2])
        >>> torch.allclose(DistinctQuestions(lstm)(ids, lengths), lstm(ids, lengths))
        True
    """

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

    Examples:
        >>> GridEncoder(in_channels=8, grid_size=4, out_features=16)(torch.rand(2, 8, 4, 4)).shape
        torch.Size([2, 16])
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


def object_cells(features: torch.Tensor, num_objects: int, empty_channel: int = 0):
    """The ``num_objects`` cells most likely to hold an object, as object vectors.

    For a stem whose channel ``empty_channel`` is the probability that a cell is empty,
    a cell's *objectness* is one minus it; the ``num_objects`` cells with the largest
    objectness become the objects :math:`o_k = [f_k;\\ x_k, y_k]`: the cell's features and
    its centre in :math:`[-1, 1]` (:func:`grid_coordinates`), in raster order (top row
    first). This is how the chapter gets the six objects of a Sort-of-CLEVR scene from
    its frozen stem, without the scene description.

    Shape:
        - features: :math:`(N, C, G, G)`
        - output: ``(objects (N, K, C + 2), cells (N, K))``, ``cells`` the flat indices
          :math:`g_y G + g_x` of the chosen cells

    Examples:
        >>> f = torch.ones(1, 3, 4, 4)
        >>> f[0, 0, 1, 2] = f[0, 0, 3, 0] = 0.0  # two cells that are not empty
        >>> objects, cells = object_cells(f, num_objects=2)
        >>> cells.tolist(), objects[0, :, -2:].tolist()
        ([[6, 12]], [[0.25, -0.25], [-0.75, 0.75]])
    """
    check_shape(features, (None, None, None, None), "features")
    N, C, G, G2 = features.shape
    if G != G2:
        raise ValueError(f"features must be square (N, C, G, G), got shape "
                         f"{tuple(features.shape)}")
    K = check_positive_int(num_objects, "num_objects")
    if K > G * G:
        raise ValueError(f"num_objects={K} is more than the {G * G} cells of the grid")
    if not 0 <= empty_channel < C:
        raise ValueError(f"empty_channel must be in [0, {C - 1}], got {empty_channel}")
    score = 1 - features[:, empty_channel].flatten(1)  # (N, G*G) objectness
    cells = score.topk(K, dim=1).indices.sort(dim=1).values  # (N, K) raster order
    flat = features.flatten(2).transpose(1, 2)  # (N, G*G, C)
    coords = grid_coordinates(G, features.device, features.dtype).expand(N, -1, -1)
    o = torch.cat([flat, coords], dim=-1)  # (N, G*G, C + 2)
    return o.gather(1, cells[..., None].expand(-1, -1, C + 2)), cells  # (N, K, C + 2)


def _question_states(encoder: nn.Module, ids, lengths):
    """Per-word vectors ``(N, L, H)``, mask ``(N, L)`` and the sentence vector ``(N, H)``:
    the mean of the embeddings for a bag of words, the last real state for an LSTM."""
    lengths = torch.as_tensor(lengths, device=ids.device)
    words, mask = encode_questions(encoder, ids, lengths, return_sequence=True)
    if isinstance(encoder, BagOfWordsEncoder):
        sentence = words.sum(1) / lengths[:, None].to(words.dtype)  # (N, H)
    else:
        sentence = words[torch.arange(len(words), device=words.device), lengths - 1]
    return words, mask, sentence


class QuestionOnlyVQA(nn.Module):
    """The language prior: answer from the question alone (the image is ignored).

    .. math:: \\hat y = \\mathrm{MLP}(\\mathrm{enc}(q))

    Args:
        vocab_size: V; num_answers: the answer classes; embed_dim, hidden_size: of the
        question encoder; question_encoder: ``"lstm"`` or ``"bow"``.

    Shape:
        - features: ignored; ids: :math:`(N, L)`; lengths: :math:`(N,)`
        - output: :math:`(N, \\text{num\\_answers})`

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> features, ids = torch.rand(2, 8, 4, 4), torch.randint(1, 20, (2, 5))  # G = 4
        >>> lengths = torch.tensor([5, 3])
        >>> model = QuestionOnlyVQA(vocab_size=20, num_answers=10)
        >>> logits = model(features, ids, lengths)
        >>> logits.shape, torch.equal(logits, model(torch.zeros_like(features), ids, lengths))
        (torch.Size([2, 10]), True)
    """

    def __init__(self, vocab_size: int, num_answers: int, embed_dim: int = 32,
                 hidden_size: int = 64, question_encoder: str = "lstm"):
        super().__init__()
        self.question = make_text_encoder(question_encoder, vocab_size, embed_dim, hidden_size)
        self.head = mlp_head(hidden_size, hidden_size, num_answers)

    def forward(self, features, ids, lengths) -> torch.Tensor:
        return self.head(encode_questions(self.question, ids, lengths))


class ImageOnlyVQA(nn.Module):
    """Answer from the image alone (the question is ignored): what the scene's
    statistics give without knowing what is asked.

    Shape:
        - features: :math:`(N, C, G, G)`; ids, lengths: ignored
        - output: :math:`(N, \\text{num\\_answers})`

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> features, ids = torch.rand(2, 8, 4, 4), torch.randint(1, 20, (2, 5))  # G = 4
        >>> lengths = torch.tensor([5, 3])
        >>> model = ImageOnlyVQA(in_channels=8, grid_size=4, num_answers=10)
        >>> logits = model(features, ids, lengths)
        >>> logits.shape, torch.equal(logits, model(features, ids.flip(0), lengths.flip(0)))
        (torch.Size([2, 10]), True)
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

    .. math:: \\hat y = \\mathrm{MLP}([\\,\\mathrm{CNN}(x);\\ \\mathrm{enc}(q)\\,])

    A :class:`mmbook.fusion.MultimodalModel` with a :class:`GridEncoder`, a question
    encoder and :class:`~mmbook.fusion.ConcatFusion`.

    Shape:
        - features: :math:`(N, C, G, G)`; ids: :math:`(N, L)`; lengths: :math:`(N,)`
        - output: :math:`(N, \\text{num\\_answers})`

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> features, ids = torch.rand(2, 8, 4, 4), torch.randint(1, 20, (2, 5))  # G = 4
        >>> lengths = torch.tensor([5, 3])
        >>> model = ConcatVQA(in_channels=8, grid_size=4, vocab_size=20, num_answers=10)
        >>> model(features, ids, lengths).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int, grid_size: int, vocab_size: int, num_answers: int,
                 embed_dim: int = 32, hidden_size: int = 64, question_encoder: str = "lstm"):
        image = GridEncoder(in_channels, grid_size, hidden_size)
        question = DistinctQuestions(make_text_encoder(question_encoder, vocab_size, embed_dim,
                                                       hidden_size))
        super().__init__([image, question], ConcatFusion((hidden_size, hidden_size)),
                         mlp_head(2 * hidden_size, 2 * hidden_size, num_answers), arity=(1, 2))

class FiLMVQA(nn.Module):
    """Feature-wise linear modulation: the question scales and shifts every channel of
    the image's feature maps (Perez et al., 2018).

    .. math::
        (\\gamma_k, \\beta_k) = W_k\\, \\mathrm{enc}(q) + b_k, \\qquad
        \\mathrm{FiLM}(F_c) = \\gamma_{k,c} F_c + \\beta_{k,c}

    Each of ``num_blocks`` residual blocks is conv 1x1 -> ReLU -> conv 3x3 ->
    BatchNorm (no affine) -> FiLM -> ReLU, plus its input; as in the paper, the grid
    coordinates are appended as two extra channels. A 1x1 convolution, a max over the
    grid and an MLP give the answer.

    Args:
        in_channels: C; grid_size: G; vocab_size: V; num_answers: classes;
        channels: D, channels of the residual blocks (the stem's map is first halved by a
        stride-2 convolution); num_blocks: K; embed_dim, hidden_size, question_encoder:
        the question encoder (``"lstm"`` or ``"bow"``).

    Shape:
        - features: :math:`(N, C, G, G)`; ids: :math:`(N, L)`; lengths: :math:`(N,)`
        - output: :math:`(N, \\text{num\\_answers})`

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> features, ids = torch.rand(2, 8, 4, 4), torch.randint(1, 20, (2, 5))  # G = 4
        >>> lengths = torch.tensor([5, 3])
        >>> model = FiLMVQA(in_channels=8, grid_size=4, vocab_size=20, num_answers=10)
        >>> model(features, ids, lengths).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int, grid_size: int, vocab_size: int, num_answers: int,
                 channels: int = 32, num_blocks: int = 2, embed_dim: int = 32,
                 hidden_size: int = 64, question_encoder: str = "lstm"):
        super().__init__()
        self.in_channels, self.grid_size = in_channels, grid_size
        self.channels, self.num_blocks = channels, check_positive_int(num_blocks, "num_blocks")
        self.question = make_text_encoder(question_encoder, vocab_size, embed_dim, hidden_size)
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
    """Question words and image cells attend to each other (parallel co-attention,
    Lu et al., 2016), then an MLP answers.

    .. math::
        r_s = \\mathrm{ReLU}(W_r [f_s;\\ x_s, y_s]), \\quad
        (\\hat q, \\hat v, a^q, a^v, C) = \\mathrm{CoAttention}(Q, R), \\quad
        \\hat y = \\mathrm{MLP}\\big([\\,q;\\ \\hat q;\\ \\hat v;\\ \\bar r\\,]\\big)

    :math:`Q` holds one vector per word :math:`(L, H)`: the word embeddings with
    ``question_encoder="bow"`` (Lu et al.'s word level), the LSTM states with ``"lstm"``;
    :math:`q` is the sentence vector (their mean, or the last LSTM state). :math:`R` holds
    every cell of the feature map with its coordinates :math:`(G^2, D)`, :math:`\\bar r`
    their mean. :math:`\\hat v` is what the question's attention :math:`a^v` reads in the
    image (one glimpse: the shape and place of the object the question names);
    :math:`\\bar r` adds a summary of the whole scene, which Lu et al. do not use, so that
    counting questions can be answered. The weights of the last call are kept:
    :attr:`last_weights` :math:`a^v` :math:`(N, G^2)`, :attr:`last_word_weights`
    :math:`a^q` :math:`(N, L)` and :attr:`last_affinity` :math:`C` :math:`(N, L, G^2)`
    (row :math:`l`: how well word :math:`l` matches each cell).

    Args:
        in_channels: C; grid_size: G; vocab_size: V; num_answers: classes;
        region_features: D; hidden_size: H, of the question encoder and the head;
        embed_dim: word embeddings of the LSTM; question_encoder: ``"lstm"`` or ``"bow"``;
        attention_size: :math:`k` of :class:`~mmbook.attention.CoAttention` (default D).

    Shape:
        - features: :math:`(N, C, G, G)`; ids: :math:`(N, L)`; lengths: :math:`(N,)`
        - output: :math:`(N, \\text{num\\_answers})`

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> features, ids = torch.rand(2, 8, 4, 4), torch.randint(1, 20, (2, 5))  # G = 4
        >>> lengths = torch.tensor([5, 3])
        >>> model = CoAttentionVQA(in_channels=8, grid_size=4, vocab_size=20, num_answers=10)
        >>> model(features, ids, [5, 3]).shape  # lengths as a list too
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int, grid_size: int, vocab_size: int, num_answers: int,
                 region_features: int = 32, hidden_size: int = 64, embed_dim: int = 32,
                 question_encoder: str = "lstm", attention_size: int | None = None):
        super().__init__()
        self.in_channels, self.grid_size = in_channels, grid_size
        self.question = make_text_encoder(question_encoder, vocab_size, embed_dim, hidden_size)
        self.register_buffer("coords", grid_coordinates(grid_size))
        self.regions = nn.Sequential(nn.Linear(in_channels + 2, region_features), nn.ReLU())
        self.coattention = CoAttention(hidden_size, region_features,
                                       attention_size or region_features)
        self.head = mlp_head(2 * hidden_size + 2 * region_features, 2 * hidden_size,
                             num_answers)
        self.last_weights = self.last_word_weights = self.last_affinity = None

    def _inputs(self, features, ids, lengths):
        """Word vectors, mask, sentence vector and region vectors."""
        _check_features(features, self.in_channels, self.grid_size)
        words, mask, q = _question_states(self.question, ids, lengths)  # (N, L, H), (N, L)
        cells = features.flatten(2).transpose(1, 2)  # (N, G*G, C)
        r = self.regions(torch.cat([cells, self.coords.expand(len(cells), -1, -1)], -1))
        return words, mask, q, r  # r: (N, G*G, D)

    @torch.no_grad()
    def attention_maps(self, features, ids, lengths) -> dict:
        """Everything the attention explorer shows, for a batch of questions.

        Returns:
            ``{"question": a^v (N, G^2), "words": what each word does to it, a^v minus
            a^v without the word (N, L, G^2)
            (:meth:`~mmbook.attention.CoAttention.word_effects`), "word_weights": a^q
            (N, L), "probs": answer probabilities (N, num_answers)}``
        """
        words, mask, _, r = self._inputs(features, ids, lengths)
        probs = torch.softmax(self(features, ids, lengths), dim=-1)
        return {"question": self.last_weights, "word_weights": self.last_word_weights,
                "words": self.coattention.word_effects(words, r, mask_q=mask),
                "probs": probs}

    def forward(self, features, ids, lengths) -> torch.Tensor:
        words, mask, q, r = self._inputs(features, ids, lengths)
        q_hat, v_hat, a_q, a_v, C = self.coattention(words, r, mask_q=mask)
        self.last_weights, self.last_word_weights = a_v.detach(), a_q.detach()
        self.last_affinity = C.detach()  # (N, L, G*G)
        return self.head(torch.cat([q, q_hat, v_hat, r.mean(1)], dim=1))


class _ObjectModel(nn.Module):
    """Shared parts of the object models: the objects and the question vector."""

    def __init__(self, in_channels, grid_size, vocab_size, num_objects, empty_channel,
                 hidden_size, embed_dim, question_encoder):
        super().__init__()
        self.in_channels, self.grid_size = in_channels, grid_size
        self.num_objects = check_positive_int(num_objects, "num_objects")
        self.empty_channel = empty_channel
        self.question = make_text_encoder(question_encoder, vocab_size, embed_dim, hidden_size)
        self.object_size = in_channels + 2

    def objects(self, features) -> torch.Tensor:
        """:math:`o_k`: (N, K, C + 2), see :func:`object_cells`."""
        _check_features(features, self.in_channels, self.grid_size)
        return object_cells(features, self.num_objects, self.empty_channel)[0]


class RelationNetworkVQA(_ObjectModel):
    """A Relation Network on objects: an MLP :math:`g` on every pair of objects with the
    question, summed, then an MLP :math:`f` (Santoro et al., 2017).

    .. math:: \\hat y = f\\Big(\\sum_{i, j} g([o_i;\\ o_j;\\ q])\\Big)

    The objects :math:`o_k = [f_k;\\ x_k, y_k]` are the ``num_objects`` cells most likely
    to hold an object (:func:`object_cells`). The first layer of :math:`g` is linear in the
    concatenation, :math:`W[o_i; o_j; q] = W_a o_i + W_b o_j + W_q q`, so it is computed
    per object and per question and broadcast over the :math:`K^2` pairs
    (:meth:`pair_hidden`), instead of on :math:`K^2` concatenated vectors.

    Args:
        in_channels: C; grid_size: G; vocab_size: V; num_answers: classes;
        num_objects: K; empty_channel: the channel holding p(empty cell);
        hidden_size: width of g, f and the question vector; embed_dim: word embeddings of
        the LSTM; question_encoder: ``"lstm"`` or ``"bow"``.

    Shape:
        - features: :math:`(N, C, G, G)`; ids: :math:`(N, L)`; lengths: :math:`(N,)`
        - output: :math:`(N, \\text{num\\_answers})`

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> features, ids = torch.rand(2, 8, 4, 4), torch.randint(1, 20, (2, 5))  # G = 4
        >>> lengths = torch.tensor([5, 3])
        >>> model = RelationNetworkVQA(in_channels=8, grid_size=4, vocab_size=20, num_answers=10)
        >>> model(features, ids, lengths).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int, grid_size: int, vocab_size: int, num_answers: int,
                 num_objects: int = 6, empty_channel: int = 0, hidden_size: int = 64,
                 embed_dim: int = 32, question_encoder: str = "lstm"):
        super().__init__(in_channels, grid_size, vocab_size, num_objects, empty_channel,
                         hidden_size, embed_dim, question_encoder)
        self.g1 = nn.Linear(2 * self.object_size + hidden_size, hidden_size)  # [o_i; o_j; q]
        self.g2 = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU())
        self.f = mlp_head(hidden_size, hidden_size, num_answers)

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
        o = self.objects(features)  # (N, K, C + 2)
        q = encode_questions(self.question, ids, lengths)  # (N, H)
        h = self.g2(self.pair_hidden(o, q))  # (N, K, K, H)
        return self.f(h.sum(dim=(1, 2)))


class ObjectMLPVQA(_ObjectModel):
    """The Relation Network's baseline on the same objects: an MLP on all of them side by
    side and the question.

    .. math:: \\hat y = \\mathrm{MLP}([o_1;\\ \\dots;\\ o_K;\\ q])

    The objects come in raster order (:func:`object_cells`), so the object a question
    names sits in a different slot in every scene: the MLP must learn, for each slot
    separately, to check its colour against the question's.

    Shape:
        - features: :math:`(N, C, G, G)`; ids: :math:`(N, L)`; lengths: :math:`(N,)`
        - output: :math:`(N, \\text{num\\_answers})`

    Source: the "CNN + MLP" baseline of Santoro et al. (2017), on the objects of
    :func:`object_cells`.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> model = ObjectMLPVQA(in_channels=8, grid_size=4, vocab_size=20, num_answers=10)
        >>> features, ids = torch.rand(2, 8, 4, 4), torch.randint(1, 20, (2, 5))
        >>> model(features, ids, torch.tensor([5, 3])).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int, grid_size: int, vocab_size: int, num_answers: int,
                 num_objects: int = 6, empty_channel: int = 0, hidden_size: int = 64,
                 embed_dim: int = 32, question_encoder: str = "lstm"):
        super().__init__(in_channels, grid_size, vocab_size, num_objects, empty_channel,
                         hidden_size, embed_dim, question_encoder)
        width = 2 * hidden_size
        self.mlp = nn.Sequential(
            nn.Linear(self.num_objects * self.object_size + hidden_size, width), nn.ReLU(),
            nn.Linear(width, width), nn.ReLU(), nn.Linear(width, num_answers))

    def forward(self, features, ids, lengths) -> torch.Tensor:
        o = self.objects(features).flatten(1)  # (N, K * (C + 2))
        q = encode_questions(self.question, ids, lengths)  # (N, H)
        return self.mlp(torch.cat([o, q], dim=1))
