"""Image captioning (chapter 12): a CNN encoder and an LSTM decoder (Vinyals et al., 2015).

Seed 004 §6.1 names image captioning as the application of a CNN and an RNN joined: the
CNN turns the image into a vector :math:`v`, the RNN writes the sentence word by word,
each word conditioned on :math:`v` and on the words before it,

.. math:: p(w_1, \\dots, w_T \\mid x) = \\prod_{t=1}^{T} p(w_t \\mid w_{<t}, v).

Training uses **teacher forcing**: the decoder reads the true previous words
(``<bos> w_1 ... w_{T-1}``) and is trained to predict ``w_1 ... w_T <eos>``. Generation
reads its own previous word: :meth:`CaptionModel.greedy` takes the most probable word
at each step, :meth:`CaptionModel.beam_search` keeps the ``beam_size`` most probable
prefixes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import check_positive_int, check_shape
from .vqa import GridEncoder

__all__ = ["CaptionModel", "caption_loss"]


def caption_loss(logits: torch.Tensor, targets: torch.Tensor, pad_index: int = 0) -> torch.Tensor:
    """Mean cross-entropy over the real (non-padding) target words.

    Shape:
        - logits: :math:`(N, L, V)`; targets: :math:`(N, L)`
        - output: scalar
    """
    check_shape(targets, (logits.shape[0], logits.shape[1]), "targets")
    return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=pad_index)


class CaptionModel(nn.Module):
    """CNN encoder + LSTM decoder; the image vector starts the state and is read at every step.

    .. math::
        v = \\mathrm{CNN}(x), \\quad h_0 = \\tanh(W_h v), \\; c_0 = \\tanh(W_c v), \\quad
        h_t = \\mathrm{LSTM}([E w_{t-1};\\ v], h_{t-1}), \\quad
        p(w_t \\mid w_{<t}, v) = \\mathrm{softmax}(W_o h_t + b_o)

    Args:
        in_channels: C of the image feature map; grid_size: G;
        vocab_size: V (ids 2 and 3 are ``<bos>`` and ``<eos>``, as in
        :class:`mmbook.text.Vocabulary`); embed_dim: E; hidden_size: H;
        image_features: size of v.

    Shape:
        - features: :math:`(N, C, G, G)`; ids: :math:`(N, L)` starting with ``<bos>``
        - output: logits :math:`(N, L, V)`
    """

    bos_index, eos_index, pad_index = 2, 3, 0

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

    def start(self, features: torch.Tensor):
        """The image vector and the initial state ``(h_0, c_0)``, each (1, N, H)."""
        v = self.encoder(features)  # (N, F)
        return v, (torch.tanh(self.init_h(v))[None], torch.tanh(self.init_c(v))[None])

    def decode(self, v, ids, state):
        """Run the decoder over ``ids`` (N, L): logits (N, L, V) and the final state."""
        e = self.embedding(ids)  # (N, L, E)
        x = torch.cat([e, v[:, None].expand(-1, ids.shape[1], -1)], dim=-1)  # (N, L, E + F)
        h, state = self.lstm(x, state)
        return self.out(h), state

    def forward(self, features: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        check_shape(ids, (features.shape[0], None), "ids")
        v, state = self.start(features)
        return self.decode(v, ids, state)[0]

    @torch.no_grad()
    def greedy(self, features: torch.Tensor, max_len: int = 40) -> torch.Tensor:
        """The most probable word at each step, until ``<eos>`` or ``max_len`` words.

        Shape:
            - output: :math:`(N, T)` ids, ``<eos>`` then padding after a sentence ends
        """
        v, state = self.start(features)
        word = torch.full((len(v), 1), self.bos_index, dtype=torch.long, device=v.device)
        done = torch.zeros(len(v), dtype=torch.bool, device=v.device)
        out = []
        for _ in range(check_positive_int(max_len, "max_len")):
            logits, state = self.decode(v, word, state)
            word = logits[:, -1].argmax(-1, keepdim=True)  # (N, 1)
            word[done] = self.pad_index
            out.append(word)
            done |= word[:, 0] == self.eos_index
            if bool(done.all()):
                break
        return torch.cat(out, dim=1)

    @torch.no_grad()
    def beam_search(self, features: torch.Tensor, beam_size: int = 3,
                    max_len: int = 40) -> torch.Tensor:
        """The most probable caption found by keeping the ``beam_size`` best prefixes.

        A prefix's score is the sum of its words' log-probabilities (no length
        normalisation); a finished prefix (ended by ``<eos>``) keeps its score and only
        extends with padding. With ``beam_size=1`` this is exactly :meth:`greedy`.

        Shape:
            - output: :math:`(N, T)` ids, as :meth:`greedy`
        """
        B = check_positive_int(beam_size, "beam_size")
        v, (h, c) = self.start(features)
        N, V = len(v), self.vocab_size
        rep = lambda t: t.repeat_interleave(B, dim=-2 if t.dim() == 3 else 0)  # noqa: E731
        v, state = rep(v), (rep(h), rep(c))  # beams of item n at rows n*B ... n*B + B - 1
        score = torch.full((N, B), float("-inf"), device=v.device)
        score[:, 0] = 0.0  # one live beam at the start: no duplicates
        word = torch.full((N * B, 1), self.bos_index, dtype=torch.long, device=v.device)
        done = torch.zeros(N * B, dtype=torch.bool, device=v.device)
        seqs = torch.zeros(N * B, 0, dtype=torch.long, device=v.device)
        for _ in range(check_positive_int(max_len, "max_len")):
            logits, state = self.decode(v, word, state)
            logp = torch.log_softmax(logits[:, -1], -1)  # (N*B, V)
            logp[done] = float("-inf")
            logp[done, self.pad_index] = 0.0  # a finished beam extends with padding, free
            total = (score.reshape(-1, 1) + logp).view(N, B * V)
            score, flat = total.topk(B, dim=1)  # (N, B)
            parent = (flat // V + torch.arange(N, device=v.device)[:, None] * B).flatten()
            word = (flat % V).reshape(-1, 1)
            seqs = torch.cat([seqs[parent], word], dim=1)
            state = (state[0][:, parent], state[1][:, parent])
            done = done[parent] | (word[:, 0] == self.eos_index)
            if bool(done.all()):
                break
        best = score.argmax(1) + torch.arange(N, device=v.device) * B
        return seqs[best]
