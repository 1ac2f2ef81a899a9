"""Image captioning (chapter 12): a CNN encoder and an LSTM decoder, with and without
attention over the image.

Seed 004 §6.1 names image captioning as the application of a CNN and an RNN joined: the
CNN turns the image into features, the RNN writes the sentence word by word, each word
conditioned on the image and on the words before it,

.. math:: p(w_1, \\dots, w_T \\mid x) = \\prod_{t=1}^{T} p(w_t \\mid w_{<t}, x).

Two decoders:

* :class:`CaptionModel` reads one image vector :math:`v`, in its initial state and at
  every step beside the previous word (as m-RNN, Mao et al. 2015, and LRCN, Donahue et
  al. 2015, do; Show and Tell, Vinyals et al. 2015, feeds :math:`v` once, as the first
  input);
* :class:`AttentionCaptionModel` keeps one vector per image cell and, at every step,
  attends over them with its previous state (the soft attention of Show, Attend and
  Tell, Xu et al. 2015): each word can look at a different place.

Training uses **teacher forcing**: the decoder reads the true previous words
(``<bos> w_1 ... w_{T-1}``) and is trained to predict ``w_1 ... w_T <eos>``.
Generation reads its own previous word: :meth:`CaptionDecoder.greedy` takes the most
probable word at each step, :meth:`CaptionDecoder.beam_search` keeps the ``beam_size``
most probable prefixes. Both follow fairseq's ``SequenceGenerator`` rules: ``<pad>`` and
``<bos>`` are never generated (their log-probabilities are set to :math:`-\\infty` at
every step), and a hypothesis still unfinished after ``max_len`` words is given
``<eos>`` as its next token, so every caption ends with ``<eos>``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import check_positive_int, check_shape
from .vqa import GridEncoder, grid_coordinates

__all__ = ["CaptionDecoder", "CaptionModel", "AttentionCaptionModel", "caption_loss"]


def caption_loss(logits: torch.Tensor, targets: torch.Tensor, pad_index: int = 0) -> torch.Tensor:
    r"""Mean cross-entropy over the real (non-padding) target words.

    .. math:: \mathcal L = -\frac{1}{|\{(n,t): w_{nt} \ne \text{pad}\}|}
              \sum_{w_{nt} \ne \text{pad}} \log p(w_{nt} \mid w_{n,<t}, v_n)

    Shape:
        - logits: :math:`(N, L, V)`; targets: :math:`(N, L)`
        - output: scalar

    Examples:
        Padding positions do not count, whatever the model predicts there:

        >>> _ = torch.manual_seed(0)
        >>> logits, targets = torch.randn(2, 3, 6), torch.tensor([[4, 5, 3], [4, 3, 0]])
        >>> other = logits.clone()
        >>> other[1, 2] = 100.0                                  # the padded position
        >>> torch.equal(caption_loss(logits, targets), caption_loss(other, targets))
        True
        >>> real = targets != 0
        >>> torch.allclose(caption_loss(logits, targets),
        ...                F.cross_entropy(logits[real], targets[real]))
        True
    """
    check_shape(targets, (logits.shape[0], logits.shape[1]), "targets")
    return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=pad_index)


def _reorder(state: tuple, index: torch.Tensor) -> tuple:
    """Pick rows of every (batch-first) state tensor."""
    return tuple(s.index_select(0, index) for s in state)


class CaptionDecoder(nn.Module):
    """Greedy and beam-search decoding for a decoder that defines :meth:`start` and
    :meth:`step` (ids 0, 2, 3 are ``<pad>``, ``<bos>``, ``<eos>``, as in
    :class:`mmbook.text.Vocabulary`).

    * ``start(features) -> state``: a tuple of batch-first tensors;
    * ``step(word (N,), state) -> (logits (N, V), state, weights (N, S) or None)``.

    The decoding rules are fairseq's: at every step ``<pad>`` and ``<bos>`` get
    log-probability :math:`-\\infty` (never generated), and at step ``max_len`` (after
    ``max_len`` words) every token but ``<eos>`` does, so an unfinished hypothesis is
    closed with ``<eos>``. A caption therefore has at most ``max_len`` words and always
    one ``<eos>``, followed by ``<pad>`` up to the longest caption of the batch.

    Source: the decoding rules of fairseq's ``SequenceGenerator`` (Ott et al. 2019).

    Examples:
        A decoder that always prefers ``<pad>``, then word 5: ``<pad>`` is never chosen,
        and after ``max_len`` words the caption is closed with ``<eos>`` (id 3).

        >>> class Toy(CaptionDecoder):
        ...     def start(self, features):
        ...         return (features,)
        ...     def step(self, word, state):
        ...         logits = torch.zeros(len(word), 8)
        ...         logits[:, 0], logits[:, 5] = 9.0, 1.0   # <pad> best, then word 5
        ...         return logits, state, None
        >>> Toy().greedy(torch.zeros(2, 4), max_len=3)
        tensor([[5, 5, 5, 3],
                [5, 5, 5, 3]])
    """

    bos_index, eos_index, pad_index = 2, 3, 0

    def start(self, features: torch.Tensor) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, word: torch.Tensor, state: tuple):  # pragma: no cover - abstract
        raise NotImplementedError

    def allowed_logp(self, logits: torch.Tensor, t: int, max_len: int) -> torch.Tensor:
        """Log-probabilities of step ``t`` with the forbidden tokens at :math:`-\\infty`:
        ``<pad>`` and ``<bos>`` always, every token but ``<eos>`` at ``t == max_len``."""
        logp = torch.log_softmax(logits, dim=-1)  # (N, V)
        if t >= max_len:
            eos = logp[:, self.eos_index].clone()
            logp = torch.full_like(logp, float("-inf"))
            logp[:, self.eos_index] = eos
        logp[:, [self.pad_index, self.bos_index]] = float("-inf")
        return logp

    @torch.no_grad()
    def greedy(self, features: torch.Tensor, max_len: int = 40,
               return_attention: bool = False):
        """The most probable word at each step, until ``<eos>`` (forced after
        ``max_len`` words).

        Shape:
            - output: :math:`(N, T)` ids with :math:`T \\le` ``max_len + 1``: the words,
              ``<eos>``, then ``<pad>``; with ``return_attention=True`` also the weights
              over the image cells of every step, :math:`(N, T, S)` (attention models only)
        """
        max_len = check_positive_int(max_len, "max_len")
        state = self.start(features)
        N = len(features)
        word = torch.full((N,), self.bos_index, dtype=torch.long, device=features.device)
        done = torch.zeros(N, dtype=torch.bool, device=features.device)
        out, weights = [], []
        for t in range(max_len + 1):
            logits, state, w = self.step(word, state)
            word = self.allowed_logp(logits, t, max_len).argmax(-1)  # (N,)
            word = word.masked_fill(done, self.pad_index)
            out.append(word)
            weights.append(w)
            done = done | (word == self.eos_index)
            if bool(done.all()):
                break
        ids = torch.stack(out, dim=1)  # (N, T)
        if not return_attention:
            return ids
        if weights[0] is None:
            raise ValueError(f"{type(self).__name__} has no attention to return")
        return ids, torch.stack(weights, dim=1)  # (N, T, S)

    @torch.no_grad()
    def beam_search(self, features: torch.Tensor, beam_size: int = 3,
                    max_len: int = 40) -> torch.Tensor:
        """The most probable caption found by keeping the ``beam_size`` best prefixes.

        A prefix's score is the sum of its words' log-probabilities, ``<eos>`` included
        (no length normalisation); a finished prefix keeps its score and extends with
        ``<pad>`` at no cost. With ``beam_size=1`` this is exactly :meth:`greedy`.

        Shape:
            - output: :math:`(N, T)` ids, as :meth:`greedy`
        """
        B = check_positive_int(beam_size, "beam_size")
        max_len = check_positive_int(max_len, "max_len")
        N, device = len(features), features.device
        rows = torch.arange(N, device=device).repeat_interleave(B)  # beams of n: n*B ...
        state = _reorder(self.start(features), rows)
        score = torch.full((N, B), float("-inf"), device=device)
        score[:, 0] = 0.0  # one live beam at the start: no duplicates
        word = torch.full((N * B,), self.bos_index, dtype=torch.long, device=device)
        done = torch.zeros(N * B, dtype=torch.bool, device=device)
        seqs = torch.zeros(N * B, 0, dtype=torch.long, device=device)
        for t in range(max_len + 1):
            logits, state, _ = self.step(word, state)
            logp = self.allowed_logp(logits, t, max_len)  # (N*B, V)
            V = logp.shape[-1]
            logp[done] = float("-inf")
            logp[done, self.pad_index] = 0.0  # a finished beam extends with padding, free
            total = (score.reshape(-1, 1) + logp).view(N, B * V)
            score, flat = total.topk(B, dim=1)  # (N, B)
            parent = (flat // V + torch.arange(N, device=device)[:, None] * B).flatten()
            word = (flat % V).flatten()  # (N*B,)
            seqs = torch.cat([seqs[parent], word[:, None]], dim=1)
            state = _reorder(state, parent)
            done = done[parent] | (word == self.eos_index)
            if bool(done.all()):
                break
        best = score.argmax(1) + torch.arange(N, device=device) * B
        return seqs[best]


class CaptionModel(CaptionDecoder):
    """CNN encoder + LSTM decoder; the image vector starts the state and is read at every
    step (as in m-RNN and LRCN).

    .. math::
        v = \\mathrm{CNN}(x), \\quad h_0 = \\tanh(W_h v), \\; c_0 = \\tanh(W_c v), \\quad
        h_t = \\mathrm{LSTM}([E w_{t-1};\\ v], h_{t-1}), \\quad
        p(w_t \\mid w_{<t}, v) = \\mathrm{softmax}(W_o h_t + b_o)

    Every word is predicted from the same vector :math:`v`: the whole image must be
    squeezed into it before the first word (the single-vector bottleneck that
    :class:`AttentionCaptionModel` removes).

    Args:
        in_channels: C of the image feature map; grid_size: G;
        vocab_size: V (ids 0, 2 and 3 are ``<pad>``, ``<bos>`` and ``<eos>``, as in
        :class:`mmbook.text.Vocabulary`); embed_dim: E; hidden_size: H;
        image_features: size of v.

    Shape:
        - features: :math:`(N, C, G, G)`; ids: :math:`(N, L)` starting with ``<bos>``
        - output: logits :math:`(N, L, V)`

    Examples:
        >>> model = CaptionModel(10, 8, vocab_size=12).eval()
        >>> ids = model.greedy(torch.rand(2, 10, 8, 8), max_len=5)
        >>> ids.shape[1] <= 6, bool((ids == model.eos_index).sum(1).eq(1).all())
        (True, True)
    """

    def __init__(self, in_channels: int, grid_size: int, vocab_size: int, embed_dim: int = 32,
                 hidden_size: int = 128, image_features: int = 128):
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.encoder = GridEncoder(in_channels, grid_size, image_features)
        self.init_h = nn.Linear(image_features, hidden_size)
        self.init_c = nn.Linear(image_features, hidden_size)
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=self.pad_index)
        self.lstm = nn.LSTM(embed_dim + image_features, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)

    def start(self, features: torch.Tensor) -> tuple:
        """``(v (N, F), h_0 (N, H), c_0 (N, H))``."""
        v = self.encoder(features)  # (N, F)
        return v, torch.tanh(self.init_h(v)), torch.tanh(self.init_c(v))

    def decode(self, v, ids, state):
        """Run the decoder over ``ids`` (N, L): logits (N, L, V) and the final
        ``(h, c)``, each (1, N, H)."""
        e = self.embedding(ids)  # (N, L, E)
        x = torch.cat([e, v[:, None].expand(-1, ids.shape[1], -1)], dim=-1)  # (N, L, E + F)
        h, state = self.lstm(x, state)
        return self.out(h), state

    def step(self, word: torch.Tensor, state: tuple):
        v, h, c = state
        logits, (h, c) = self.decode(v, word[:, None], (h[None], c[None]))
        return logits[:, 0], (v, h[0], c[0]), None

    def forward(self, features: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        check_shape(ids, (features.shape[0], None), "ids")
        v, h, c = self.start(features)
        return self.decode(v, ids, (h[None], c[None]))[0]


class AttentionCaptionModel(CaptionDecoder):
    """An LSTM decoder that attends over the image's cells at every step (the soft
    attention of Show, Attend and Tell, Xu et al. 2015).

    .. math::
        \\begin{gathered}
        a_i = \\mathrm{ReLU}(W_a [f_i;\\ x_i, y_i]), \\quad
        h_0 = \\tanh(W_h \\bar a), \\; c_0 = \\tanh(W_c \\bar a), \\\\
        e_{ti} = w^\\top \\tanh(U a_i + W h_{t-1}), \\quad
        \\alpha_t = \\mathrm{softmax}_i(e_t), \\quad z_t = \\textstyle\\sum_i \\alpha_{ti} a_i, \\\\
        h_t = \\mathrm{LSTM}([E w_{t-1};\\ z_t], h_{t-1}), \\quad
        p(w_t \\mid w_{<t}, x) = \\mathrm{softmax}(W_o [h_t;\\ z_t] + b_o)
        \\end{gathered}

    :math:`f_i` are the features of cell :math:`i` of the :math:`G \\times G` map and
    :math:`(x_i, y_i)` its centre in :math:`[-1, 1]`, :math:`\\bar a` the mean of the
    :math:`a_i`. The output layer is a simplification of Xu et al.'s deep output (they
    add :math:`E w_{t-1}` inside it), and there is no doubly stochastic penalty. The
    weights of the last :meth:`forward` are kept in :attr:`last_weights`
    :math:`(N, L, G^2)`: row :math:`t` says where the decoder looked to write word
    :math:`t`.

    Args:
        in_channels: C; grid_size: G; vocab_size: V; embed_dim: E; hidden_size: H;
        annotation_size: D, the size of :math:`a_i`; attention_size: the size of
        :math:`U a_i` and :math:`W h`.

    Shape:
        - features: :math:`(N, C, G, G)`; ids: :math:`(N, L)` starting with ``<bos>``
        - output: logits :math:`(N, L, V)`

    Examples:
        >>> model = AttentionCaptionModel(10, 8, vocab_size=12).eval()
        >>> ids, alpha = model.greedy(torch.rand(2, 10, 8, 8), max_len=5,
        ...                           return_attention=True)
        >>> ones = torch.ones(alpha.shape[:2])     # each step's weights sum to one
        >>> tuple(alpha.shape[::2]), bool(torch.allclose(alpha.sum(-1), ones))
        ((2, 64), True)
    """

    def __init__(self, in_channels: int, grid_size: int, vocab_size: int, embed_dim: int = 32,
                 hidden_size: int = 128, annotation_size: int = 64, attention_size: int = 64):
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.grid_size = check_positive_int(grid_size, "grid_size")
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.register_buffer("coords", grid_coordinates(grid_size))
        self.annotate = nn.Sequential(nn.Linear(in_channels + 2, annotation_size), nn.ReLU())
        self.init_h = nn.Linear(annotation_size, hidden_size)
        self.init_c = nn.Linear(annotation_size, hidden_size)
        self.U = nn.Linear(annotation_size, attention_size, bias=False)
        self.W = nn.Linear(hidden_size, attention_size)
        self.w = nn.Linear(attention_size, 1, bias=False)
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=self.pad_index)
        self.cell = nn.LSTMCell(embed_dim + annotation_size, hidden_size)
        self.out = nn.Linear(hidden_size + annotation_size, vocab_size)
        self.last_weights = None

    def start(self, features: torch.Tensor) -> tuple:
        """``(a (N, S, D), U a (N, S, A), h_0 (N, H), c_0 (N, H))``."""
        check_shape(features, (None, self.in_channels, self.grid_size, self.grid_size),
                    "features")
        cells = features.flatten(2).transpose(1, 2)  # (N, G*G, C)
        a = self.annotate(torch.cat([cells, self.coords.expand(len(cells), -1, -1)], -1))
        a_bar = a.mean(1)  # (N, D)
        return a, self.U(a), torch.tanh(self.init_h(a_bar)), torch.tanh(self.init_c(a_bar))

    def attend(self, a, Ua, h):
        """:math:`\\alpha_t` (N, S) and :math:`z_t` (N, D) from the previous state h."""
        e = self.w(torch.tanh(Ua + self.W(h)[:, None])).squeeze(-1)  # (N, S)
        alpha = torch.softmax(e, dim=-1)
        return alpha, (alpha.unsqueeze(-1) * a).sum(1)  # (N, S), (N, D)

    def _recur(self, e, state: tuple):
        """One step from the previous word's embedding e (N, E): the new state, z_t, alpha_t."""
        a, Ua, h, c = state
        alpha, z = self.attend(a, Ua, h)
        h, c = self.cell(torch.cat([e, z], -1), (h, c))
        return (a, Ua, h, c), z, alpha

    def step(self, word: torch.Tensor, state: tuple):
        state, z, alpha = self._recur(self.embedding(word), state)
        return self.out(torch.cat([state[2], z], -1)), state, alpha

    def forward(self, features: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        check_shape(ids, (features.shape[0], None), "ids")
        state = self.start(features)
        e = self.embedding(ids)  # (N, L, E), all the true previous words at once
        hz, weights = [], []
        for t in range(ids.shape[1]):  # teacher forcing: read the true previous word
            state, z, alpha = self._recur(e[:, t], state)
            hz.append(torch.cat([state[2], z], -1))
            weights.append(alpha)
        self.last_weights = torch.stack(weights, 1).detach()  # (N, L, S)
        return self.out(torch.stack(hz, dim=1))  # (N, L, V)
