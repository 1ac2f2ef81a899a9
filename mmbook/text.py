"""Text as a modality: tokens, a vocabulary, padded batches, and two text encoders.

The pipeline of chapter 12, one step per function:

1. :func:`tokenize`: a sentence becomes a list of tokens (lower-cased words and
   punctuation marks);
2. :class:`Vocabulary`: tokens become integer ids, with special tokens for padding
   (``<pad>`` = 0), unknown words (``<unk>``, and every unknown word is counted), the
   start and the end of a sentence (``<bos>``, ``<eos>``);
3. :func:`pad_batch`: sentences of different lengths become one ``(N, L)`` tensor of ids
   and their lengths; ``mmbook.utils.lengths_to_mask`` turns the lengths into the
   package's mask (``True`` = a real token);
4. :class:`BagOfWordsEncoder`, :class:`LSTMTextEncoder` and
   :class:`TransformerTextEncoder`: word embeddings, then nothing (their mean), an LSTM or
   a small Transformer encoder, one vector per sentence (or one per token).

The tokenizer is deliberately simple and exact for the generated sentences of the book
(Sort-of-CLEVR): real text needs a subword tokenizer from a library (Hugging Face
``tokenizers``, SentencePiece), which handles rare words, casing and languages that do
not separate words with spaces.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .utils import check_nonempty_batch, check_positive_int, check_shape, lengths_to_mask

__all__ = [
    "tokenize", "Vocabulary", "pad_batch", "BagOfWordsEncoder", "LSTMTextEncoder",
    "TransformerTextEncoder", "make_text_encoder",
    "PAD", "UNK", "BOS", "EOS",
]

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
_ASCII_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def _is_word_char(ch: str) -> bool:
    """A letter or digit of any script (``str.isalnum``), or a combining mark (Unicode
    category M: an accent or vowel sign that belongs to the letter before it)."""
    return ch.isalnum() or unicodedata.category(ch)[0] == "M"


def tokenize(text: str) -> list[str]:
    """Split a sentence into lower-cased words and single punctuation marks.

    A word is a run of letters or digits of any script (with their combining marks);
    every other non-space character is a token of its own. The text is first put in
    Unicode normal form NFC, so an accented letter typed as letter + combining accent
    and the same letter typed precomposed give the same token. An empty or blank string
    gives ``[]``.

    Raises:
        TypeError: ``text`` is not a string.

    Examples:
        >>> tokenize("Is the red object on the left?")
        ['is', 'the', 'red', 'object', 'on', 'the', 'left', '?']
        >>> tokenize("Naïve café, Straße!")
        ['naïve', 'café', ',', 'straße', '!']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text).lower()
    if text.isascii():  # the same rule, fast: letters and digits are [a-z0-9] here
        return _ASCII_TOKEN.findall(text)
    return _unicode_tokens(text)


def _unicode_tokens(text: str) -> list[str]:
    """Runs of word characters, and each other non-space character alone."""
    tokens, word = [], []
    for ch in text:
        if _is_word_char(ch):
            word.append(ch)
            continue
        if word:
            tokens.append("".join(word))
            word = []
        if not ch.isspace():
            tokens.append(ch)  # a punctuation mark or symbol: a token of its own
    if word:
        tokens.append("".join(word))
    return tokens


class Vocabulary:
    """A two-way map between tokens and integer ids.

    Ids 0-3 are the special tokens ``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``; the other
    tokens follow, most frequent first (ties alphabetical), so the map is deterministic.
    A token that is not in the vocabulary is encoded as ``<unk>`` and counted in
    :attr:`unknown_counts`, so a reader can see which words a model never learned.

    Args:
        tokens: the ordinary tokens (no special ones), in id order.

    Attributes:
        unknown_counts: a ``Counter`` of the unknown tokens met by :meth:`encode`.

    Examples:
        >>> vocab = Vocabulary.build(["Is the red object on the left?"])
        >>> vocab.encode("Is the purple object on the left?")
        [6, 4, 1, 8, 9, 4, 7, 5]
        >>> vocab.unknown_counts
        Counter({'purple': 1})
        >>> vocab.decode(vocab.encode("the red object", add_eos=True))
        'the red object'
    """

    specials = (PAD, UNK, BOS, EOS)
    pad_index, unk_index, bos_index, eos_index = 0, 1, 2, 3

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        clash = [t for t in tokens if t in self.specials]
        if clash:
            raise ValueError(f"tokens must not contain the special tokens, got {clash}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("tokens must be distinct")
        self.itos = [*self.specials, *tokens]
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.unknown_counts: Counter = Counter()

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1) -> Vocabulary:
        """The vocabulary of the tokens that occur at least ``min_freq`` times in ``texts``."""
        min_freq = check_positive_int(min_freq, "min_freq")
        counts = Counter(tok for text in texts for tok in tokenize(text))
        kept = sorted((t for t, c in counts.items() if c >= min_freq),
                      key=lambda t: (-counts[t], t))
        return cls(kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens, {len(self) - len(self.specials)} ordinary)"

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Token ids of ``text``; unknown tokens become ``<unk>`` and are counted."""
        ids = []
        for tok in tokenize(text):
            if tok not in self.stoi:
                self.unknown_counts[tok] += 1
            ids.append(self.stoi.get(tok, self.unk_index))
        return [self.bos_index] * add_bos + ids + [self.eos_index] * add_eos

    def decode(self, ids: Iterable[int], strip_special: bool = True) -> str:
        """Tokens of ``ids`` joined by spaces; stops at ``<eos>`` and drops ``<pad>`` /
        ``<bos>`` when ``strip_special`` (``<unk>`` is kept: it stands for a word)."""
        out = []
        for i in (int(i) for i in ids):
            if not 0 <= i < len(self):
                raise ValueError(f"id {i} is outside the vocabulary (0 to {len(self) - 1})")
            if strip_special and i == self.eos_index:
                break
            if strip_special and i in (self.pad_index, self.bos_index):
                continue
            out.append(self.itos[i])
        return " ".join(out)

    def encode_batch(self, texts: Sequence[str], add_bos: bool = False, add_eos: bool = False,
                     max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and pad several texts: ``(ids (N, L) int64, lengths (N,) int64)``.

        Raises:
            ValueError: a text without any token (an empty question has nothing to
                encode: an encoder would read only padding), naming its position.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, got one string")
        seqs = [self.encode(t, add_bos, add_eos) for t in texts]
        empty = [i for i, t in enumerate(texts) if not tokenize(t)]
        if empty:
            raise ValueError(f"texts {empty[:5]} have no tokens (empty or blank): every "
                             f"text needs at least one word")
        return pad_batch(seqs, self.pad_index, max_len)


def pad_batch(sequences: Sequence[Sequence[int]], pad_index: int = 0,
              max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad id sequences on the right to one tensor and return it with the lengths.

    Args:
        sequences: N lists of ints.
        pad_index: the id written into the padding.
        max_len: L; default the longest sequence. Longer sequences raise ``ValueError``.

    Shape:
        - output: ``ids`` :math:`(N, L)` int64, ``lengths`` :math:`(N,)` int64

    Examples:
        >>> ids, lengths = pad_batch([[5, 6, 7], [8]])
        >>> ids.tolist(), lengths.tolist()
        ([[5, 6, 7], [8, 0, 0]], [3, 1])
        >>> lengths_to_mask(lengths).tolist()  # True = a real token
        [[True, True, True], [True, False, False]]
    """
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    longest = int(lengths.max()) if len(lengths) else 0
    L = longest if max_len is None else check_positive_int(max_len, "max_len")
    if longest > L:
        raise ValueError(f"max_len={L} is shorter than the longest sequence ({longest})")
    ids = torch.full((len(sequences), L), pad_index, dtype=torch.int64)
    for i, s in enumerate(sequences):
        ids[i, :len(s)] = torch.as_tensor(list(s), dtype=torch.int64)
    return ids, lengths


def _check_ids(ids, lengths, vocab_size: int) -> torch.Tensor:
    check_shape(ids, ("N", None), "ids")
    check_nonempty_batch(ids, "ids", what="sentence")
    if ids.is_floating_point():
        raise ValueError(f"ids must be integer token ids, got dtype {ids.dtype}")
    lengths = torch.as_tensor(lengths, device=ids.device)
    check_shape(lengths, (ids.shape[0],), "lengths")
    if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > ids.shape[1]):
        raise ValueError(f"lengths must lie in [1, L={ids.shape[1]}] (an empty text cannot be "
                         f"encoded), got values from {int(lengths.min())} to "
                         f"{int(lengths.max())}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"ids must lie in [0, {vocab_size}), got values from "
                         f"{int(ids.min())} to {int(ids.max())}")
    return lengths


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real steps: (N, L, E), (N, L) -> (N, E)."""
    w = mask.to(x.dtype).unsqueeze(-1)  # (N, L, 1)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


class BagOfWordsEncoder(nn.Module):
    """Word embeddings and their mean over the real tokens: the order of the words is lost.

    .. math:: e_t = E[w_t], \\qquad z = \\frac{1}{\\ell} \\sum_{t \\le \\ell} e_t

    The same as ``nn.EmbeddingBag(mode="mean")`` over each sentence's real tokens (the
    tests compare them). Each word reaches the output through its own embedding, with no
    recurrence to learn; the price is that "the cup left of the plate" and "the plate
    left of the cup" get the same vector.

    Args:
        vocab_size: V; embed_dim: E (the size of ``z``); padding_idx: the id of ``<pad>``.

    Shape:
        - ids: :math:`(N, L)` int64; lengths: :math:`(N,)` with :math:`1 \\le \\ell_n \\le L`
        - output: :math:`(N, E)`, or with ``return_sequence=True`` the pair
          ``(embeddings (N, L, E), mask (N, L))`` (zero at the padding)

    Examples:
        >>> enc = BagOfWordsEncoder(vocab_size=10, embed_dim=4)
        >>> z = enc(torch.tensor([[5, 6, 7], [6, 5, 0]]), [3, 2])
        >>> z.shape, bool(torch.allclose(z[0], enc.embedding.weight[[5, 6, 7]].mean(0)))
        (torch.Size([2, 4]), True)
    """

    def __init__(self, vocab_size: int, embed_dim: int = 64, padding_idx: int = 0):
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.embed_dim = self.out_features = check_positive_int(embed_dim, "embed_dim")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)

    def forward(self, ids: torch.Tensor, lengths, return_sequence: bool = False):
        lengths = _check_ids(ids, lengths, self.vocab_size)
        mask = lengths_to_mask(lengths, ids.shape[1])  # (N, L), True = real token
        e = self.embedding(ids) * mask.unsqueeze(-1)  # (N, L, E), zero at the padding
        return (e, mask) if return_sequence else _masked_mean(e, mask)


def make_text_encoder(kind: str, vocab_size: int, embed_dim: int = 32,
                      hidden_size: int = 64) -> nn.Module:
    """A question encoder by name: ``"lstm"`` (:class:`LSTMTextEncoder`, output H) or
    ``"bow"`` (:class:`BagOfWordsEncoder` with embeddings of size H, output H).

    Raises:
        ValueError: an unknown ``kind``.

    Examples:
        >>> ids, lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
        >>> [tuple(make_text_encoder(k, vocab_size=10, hidden_size=16)(ids, lengths).shape)
        ...  for k in ("lstm", "bow")]
        [(2, 16), (2, 16)]
        >>> make_text_encoder("gru", vocab_size=10)
        Traceback (most recent call last):
        ValueError: question_encoder must be 'lstm' or 'bow', got 'gru'
    """
    if kind == "lstm":
        return LSTMTextEncoder(vocab_size, embed_dim, hidden_size)
    if kind == "bow":
        return BagOfWordsEncoder(vocab_size, hidden_size)
    raise ValueError(f"question_encoder must be 'lstm' or 'bow', got {kind!r}")


class LSTMTextEncoder(nn.Module):
    """Word embeddings and an LSTM that stops at each sentence's last real token.

    .. math:: e_t = E[w_t], \\qquad (h_t, c_t) = \\mathrm{LSTM}(e_t, h_{t-1}, c_{t-1}),
              \\qquad z = h_{\\ell}

    Args:
        vocab_size: V, the number of token ids.
        embed_dim: E, the size of a word embedding.
        hidden_size: H, the size of the LSTM state (and of ``z``).
        padding_idx: the id of ``<pad>`` (its embedding stays zero).

    Shape:
        - ids: :math:`(N, L)` int64; lengths: :math:`(N,)` with :math:`1 \\le \\ell_n \\le L`
        - output: :math:`(N, H)`, or with ``return_sequence=True`` the pair
          ``(states (N, L, H), mask (N, L))`` (zero states and ``False`` at the padding)

    Examples:
        >>> enc = LSTMTextEncoder(vocab_size=10, embed_dim=4, hidden_size=6)
        >>> enc(torch.tensor([[5, 6, 7], [8, 0, 0]]), torch.tensor([3, 1])).shape
        torch.Size([2, 6])
    """

    def __init__(self, vocab_size: int, embed_dim: int = 32, hidden_size: int = 64,
                 padding_idx: int = 0):
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.hidden_size = self.out_features = check_positive_int(hidden_size, "hidden_size")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        self.lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, return_sequence: bool = False):
        lengths = _check_ids(ids, lengths, self.vocab_size)
        e = self.embedding(ids)  # (N, L, E)
        packed = pack_padded_sequence(e, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        if not return_sequence:
            return h_n[-1]  # (N, H): the state after each sentence's last token
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        return states, lengths_to_mask(lengths, ids.shape[1])  # (N, L, H), (N, L)


class TransformerTextEncoder(nn.Module):
    """Word and position embeddings, then ``nn.TransformerEncoder`` layers, mean-pooled.

    .. math:: x_t = E[w_t] + P_t, \\qquad (y_1, \\dots, y_L) =
              \\mathrm{TransformerEncoder}(x_1, \\dots, x_L), \\qquad
              z = \\frac{1}{\\ell} \\sum_{t \\le \\ell} y_t

    The package's mask says ``True`` for a real token; torch's ``src_key_padding_mask``
    says ``True`` for padding, so it receives ``~mask``. Padding never changes the
    encoding of the real tokens.

    Args:
        vocab_size: V; embed_dim: E (divisible by ``num_heads``); num_heads: heads per layer;
        num_layers: encoder layers; dim_feedforward: width of each layer's MLP;
        max_len: the longest sentence (learned positions); dropout: inside the layers;
        padding_idx: the id of ``<pad>``.

    Shape:
        - ids: :math:`(N, L)`, lengths: :math:`(N,)`
        - output: :math:`(N, E)`, or ``(states (N, L, E), mask (N, L))`` with
          ``return_sequence=True``

    Raises:
        ValueError: ``embed_dim`` not divisible by ``num_heads``; ids longer than
            ``max_len``, out of the vocabulary, or lengths that do not fit ``ids``.

    Source:
        A. Vaswani et al., "Attention Is All You Need", NeurIPS 2017.

    Examples:
        Two sentences of 3 and 2 tokens; more padding leaves the encodings unchanged:

        >>> _ = torch.manual_seed(0)
        >>> enc = TransformerTextEncoder(vocab_size=10, embed_dim=8, num_heads=2).eval()
        >>> ids, lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
        >>> z = enc(ids, lengths)
        >>> z.shape
        torch.Size([2, 8])
        >>> padded = torch.cat([ids, torch.zeros(2, 4, dtype=torch.long)], 1)  # (N, 7)
        >>> torch.allclose(enc(padded, lengths), z, atol=1e-6)
        True
        >>> states, mask = enc(ids, lengths, return_sequence=True)
        >>> tuple(states.shape), mask.tolist()
        ((2, 3, 8), [[True, True, True], [True, True, False]])
    """

    def __init__(self, vocab_size: int, embed_dim: int = 32, num_heads: int = 2,
                 num_layers: int = 1, dim_feedforward: int = 64, max_len: int = 32,
                 dropout: float = 0.0, padding_idx: int = 0):
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.embed_dim = self.out_features = check_positive_int(embed_dim, "embed_dim")
        num_heads = check_positive_int(num_heads, "num_heads")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.max_len = check_positive_int(max_len, "max_len")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        self.position = nn.Parameter(torch.randn(max_len, embed_dim) / math.sqrt(embed_dim))
        layer = nn.TransformerEncoderLayer(embed_dim, num_heads, dim_feedforward, dropout,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, check_positive_int(num_layers, "num_layers"),
                                             enable_nested_tensor=False)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """:math:`x_t = E[w_t] + P_t`, shape (N, L, E)."""
        return self.embedding(ids) + self.position[:ids.shape[1]]

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, return_sequence: bool = False):
        lengths = _check_ids(ids, lengths, self.vocab_size)
        if ids.shape[1] > self.max_len:
            raise ValueError(f"ids has L={ids.shape[1]} tokens but max_len={self.max_len}")
        mask = lengths_to_mask(lengths, ids.shape[1])  # (N, L), True = real token
        y = self.encoder(self.embed(ids), src_key_padding_mask=~mask)  # (N, L, E)
        y = y * mask.unsqueeze(-1)  # zero states at the padding
        return (y, mask) if return_sequence else _masked_mean(y, mask)
