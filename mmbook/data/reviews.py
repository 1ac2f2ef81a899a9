r"""Spoken reviews: a generated tri-modal sentiment set (text, voice, face) with sarcasm.

CMU-MOSI and CMU-MOSEI, the benchmarks on which tensor fusion and low-rank fusion were
introduced, can no longer be downloaded and carry no licence to redistribute them. This
module generates a stand-in whose structure is known by construction and that keeps what
makes the task multimodal: the words carry most of the sentiment, the voice and the face
carry part of it, each speaker has their own style, and some utterances are
**incongruent** (sarcastic), so that only the voice and the face tell what is meant.

Generative process (one utterance; every draw from one ``numpy`` generator seeded by
``seed``):

1. **Speaker** :math:`s`, uniformly among ``n_speakers``; each speaker has a style: a
   baseline :math:`b_s \in \mathbb R^{8}` (one offset per acoustic and visual feature,
   :math:`\mathcal N(0, \sigma_b^2)`) and an expressiveness :math:`g_s \sim U(0.5, 1.5)`.
2. **Intended sentiment** as MOSI annotates it: a latent :math:`y^* \sim U(-3.2, 3.2)`,
   three annotators rate :math:`r_k = \mathrm{clip}(\mathrm{round}(y^* + \epsilon_k), -3, 3)`,
   :math:`\epsilon_k \sim \mathcal N(0, 0.5^2)`, and the label is their mean
   :math:`y = \frac13 \sum_k r_k \in \{-3, -\frac83, \dots, 3\}` (so exact zeros occur).
3. **Incongruent** (sarcastic) with probability ``incongruent`` when :math:`y \le -1`:
   the *surface* polarity of the words is :math:`u = -y` (positive words), the voice and
   the face express the intended :math:`y`; the label stays :math:`y`. Otherwise
   :math:`u = y`.
4. **Text**: one or two clauses ("the plot was not very good"), clause :math:`j`
   realising :math:`c_j = u + \mathcal N(0, \sigma_t^2)`: a clause with :math:`|c_j| < 0.5`
   is neutral ("the film was long"); otherwise the word, an optional intensifier
   ("very": :math:`|v| + 0.293`), dampener ("slightly": :math:`|v| - 0.293`) or negation
   ("not": :math:`\times (-0.74)`) are chosen so that the clause's value under VADER's
   rules is near :math:`c_j`. Words and valences :math:`v` come from the **VADER lexicon**
   (Hutto & Gilbert, 2014) shipped by the ``vaderSentiment`` package (MIT licence), read
   from the installed package; the constants 0.293 and -0.74 are VADER's.
5. **Voice and face, word-aligned**: for word :math:`t`, with valence
   :math:`\nu = y / 3`, arousal :math:`a = |y| / 3` and emphasis :math:`e_t = 1` on the
   sentiment word and its modifiers (0.5 elsewhere), each feature is
   :math:`x_{t,f} = b_{s,f} + g_s e_t\, (W \phi)_f + \mathcal N(0, \sigma^2)` with
   :math:`\phi = (\nu^+, \nu^-, a, \nu)`: acoustic (pitch, pitch range, energy,
   speaking rate) and visual action-unit intensities (AU4 brow lowerer, AU6 cheek raiser,
   AU12 lip-corner puller, i.e. the smile, AU15 lip-corner depressor). Each row of ``W``
   is listed in :data:`ACOUSTIC_FEATURES` / :data:`VISUAL_FEATURES`. They stand for the
   frame features averaged over each word's interval, the word-aligned form in which
   MOSI's features are distributed.
6. **Splits by speaker**: the speakers are shuffled and split 55 / 15 / 30 % into train,
   validation and test, so no test speaker is ever seen in training (MOSI's protocol;
   MOSI's standard split puts 52, 10 and 31 of its 93 videos in train, validation and
   test, which hold 1284, 229 and 686 of its 2199 utterances: 58 / 10 / 31 %).

What a model can and cannot do, by construction: the words alone give the surface
polarity, so on incongruent utterances a text-only model reads the opposite of the label;
the face and the voice alone are noisy (and a speaker's baseline is unknown for a new
speaker); fused, they recover the intended sentiment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from typing import ClassVar

import numpy as np
import torch

from ..utils import (
    check_finite,
    check_positive,
    check_positive_int,
    check_probability,
    check_shape,
    to_numpy,
)
from .base import ModalityDataset

__all__ = [
    "make_spoken_reviews", "SpokenReviews", "check_speaker_splits", "review_lexicon",
    "REVIEW_WORDS", "ACOUSTIC_FEATURES", "VISUAL_FEATURES", "REVIEW_MODALITIES",
    "word_vectors",
]

REVIEW_MODALITIES = ("text", "acoustic", "visual")

#: Review adjectives taken from the VADER lexicon (valences are read from the package).
REVIEW_WORDS = tuple("""
good nice great excellent amazing wonderful fantastic brilliant superb awesome perfect
beautiful lovely enjoyable fun funny charming delightful pleasant impressive outstanding
clever fine okay interesting sweet cool exciting strong smart entertaining fresh
bad poor terrible awful horrible boring dull weak stupid ugly annoying disappointing worst
painful sad lame pathetic ridiculous dumb messy disgusting dreadful unpleasant confusing
wrong worse""".split())

_SUBJECTS = ("the movie", "the film", "the plot", "the acting", "the ending", "the music",
             "the cast", "the story", "it", "this film")
_NEUTRAL = ("long", "short", "loud", "quiet", "new", "slow")  # not in the lexicon
_BOOST, _DAMP, _NEGATE = ("very", "really", "extremely", "so"), ("slightly", "somewhat"), "not"
_B_INCR, _N_SCALAR = 0.293, -0.74  # VADER's booster increment and negation scalar
_FILLERS = ("i", "think", "honestly", "well", "and", "but", "was", "is", "the", "a")

#: name and row of W (weights on nu+, nu-, arousal, nu) of each acoustic feature.
ACOUSTIC_FEATURES = {"pitch": (0.6, -0.2, 0.8, 0.0), "pitch range": (0.0, 0.0, 1.2, 0.0),
                     "energy": (0.4, 0.0, 0.9, 0.0), "speaking rate": (0.0, -0.9, 0.0, 0.0)}
#: name and row of W of each visual feature (facial action-unit intensities).
VISUAL_FEATURES = {"AU4 brow lowerer": (0.0, 1.6, 0.0, 0.0),
                   "AU6 cheek raiser": (1.1, 0.0, 0.0, 0.0),
                   "AU12 lip corner puller": (1.6, 0.0, 0.0, 0.0),
                   "AU15 lip corner depressor": (0.0, 1.1, 0.0, 0.0)}


def review_lexicon() -> dict:
    """The valence of each word of :data:`REVIEW_WORDS`, read from VADER's lexicon.

    The lexicon (``vader_lexicon.txt``, Hutto & Gilbert 2014) ships with the
    ``vaderSentiment`` package under the MIT licence; valences lie in [-4, 4].

    Returns:
        dict word -> valence (float).

    Examples:
        >>> review_lexicon()["good"]
        1.9
    """
    try:
        path = resources.files("vaderSentiment") / "vader_lexicon.txt"
        text = path.read_text(encoding="utf-8")
    except ModuleNotFoundError:
        raise ImportError("the spoken-reviews data need the VADER lexicon: "
                          "pip install vaderSentiment") from None
    wanted, lex = set(REVIEW_WORDS), {}
    for line in text.splitlines():
        parts = line.split("\t")
        if parts[0] in wanted:
            lex[parts[0]] = float(parts[1])
    missing = wanted - set(lex)
    if missing:
        raise ValueError(f"words missing from the VADER lexicon: {sorted(missing)}")
    return {w: lex[w] for w in REVIEW_WORDS}


def _vocabulary() -> tuple:
    words = set(REVIEW_WORDS) | set(_NEUTRAL) | set(_BOOST) | set(_DAMP) | set(_FILLERS)
    words |= {_NEGATE} | {w for s in _SUBJECTS for w in s.split()}
    return ("<pad>", *sorted(words))


def word_vectors(vocab, dim: int = 8, seed: int = 0) -> torch.Tensor:
    r"""Fixed "pretrained" word vectors, standing in for the GloVe vectors MOSI models use.

    Coordinates: the word's VADER valence / 4 (0 outside the lexicon), whether it is the
    negation, an intensifier, a dampener, then ``dim - 4`` random coordinates
    (:math:`\mathcal N(0, 0.5^2)`, seeded) that tell the words apart. Row 0 (padding) is 0.
    Like GloVe's, these vectors say a word's polarity but not how words compose: "not
    good" must still be learned.

    Shape:
        output: :math:`(V, \text{dim})` float32, V = ``len(vocab)``.

    Examples:
        >>> v = word_vectors(make_spoken_reviews(50)["train"].vocab)
        >>> v.shape[1], float(v[0].abs().sum())
        (8, 0.0)
    """
    dim = check_positive_int(dim, "dim")
    if dim < 5:
        raise ValueError(f"dim must be >= 5 (4 fixed coordinates and one random), got {dim}")
    lex = review_lexicon()
    rng = np.random.default_rng(seed)
    out = np.zeros((len(vocab), dim), dtype=np.float32)
    for i, w in enumerate(vocab):
        if i == 0:
            continue
        out[i, :4] = (lex.get(w, 0.0) / 4, w == _NEGATE, w in _BOOST, w in _DAMP)
        out[i, 4:] = 0.5 * rng.standard_normal(dim - 4)
    return torch.from_numpy(out)


# ----------------------------------------------------------------------------- text
def _candidates(lex: dict) -> dict:
    r"""Every (word, modifier) pair by sign: words, modifiers (0 none, 1 boost, 2 damp),
    and the magnitude :math:`|v| + \Delta` of each."""
    out = {}
    for sign in (-1.0, 1.0):
        words = [w for w, v in lex.items() if np.sign(v) == sign]
        mags = np.array([abs(lex[w]) for w in words])
        out[sign] = (np.repeat(words, 3), np.tile([0, 1, 2], len(words)),
                     (mags[:, None] + np.array([0.0, _B_INCR, -_B_INCR])).ravel())
    return out


def _clause(rng, c: float, cands: dict) -> tuple[list, list, float]:
    """Realise clause value ``c``: (words, emphasis flags, VADER value of the clause)."""
    subject = _SUBJECTS[rng.integers(len(_SUBJECTS))].split()
    verb = ["was" if rng.random() < 0.6 else "is"]
    if abs(c) < 0.5:
        words = subject + verb + [_NEUTRAL[rng.integers(len(_NEUTRAL))]]
        return words, [0] * len(words), 0.0
    negate = abs(c) < 2.0 and rng.random() < 0.3
    target = abs(c / _N_SCALAR) if negate else abs(c)
    sign = float(-np.sign(c) if negate else np.sign(c))
    words, mods, mags = cands[sign]
    k = np.argsort(np.abs(mags - target), kind="stable")[rng.integers(4)]  # one of the 4 best
    word, mod, value = str(words[k]), int(mods[k]), sign * float(mags[k])
    pre = [_NEGATE] if negate else []
    mid = [] if mod == 0 else [(_BOOST if mod == 1 else _DAMP)[rng.integers(2)]]
    article = ["the"] if word == "worst" else []
    body = pre + mid + article + [word]
    value = value * _N_SCALAR if negate else value
    return subject + verb + body, [0] * (len(subject) + 1) + [1] * len(body), value


def _text(rng, u: float, cands: dict, sigma_t: float) -> tuple[list, list, float]:
    n_clauses = 1 + int(rng.random() < 0.5)
    words, emph, values = [], [], []
    if rng.random() < 0.3:
        opener = ["i", "think"] if rng.random() < 0.5 else ["honestly"]
        words, emph = opener, [0] * len(opener)
    for j in range(n_clauses):
        if j:
            words.append("and" if rng.random() < 0.7 else "but")
            emph.append(0)
        w, e, v = _clause(rng, u + sigma_t * rng.standard_normal(), cands)
        words, emph, values = words + w, emph + e, values + [v]
    return words, emph, float(np.mean(values))


# ----------------------------------------------------------------------------- dataset
@dataclass(kw_only=True, eq=False, repr=False)
class SpokenReviews(ModalityDataset):
    """One split of the spoken-reviews set: word-aligned text, voice and face, and a score.

    A :class:`~mmbook.data.base.ModalityDataset` whose items are
    ``(tokens, acoustic, visual, length, score)``: the three modalities, then the number
    of real words (an input, not a modality: ``modalities`` names the first three), then
    the target. A sentiment model is called as ``model(tokens, acoustic, visual,
    lengths)``. Fields are given by name (keyword-only); a modified copy is
    ``dataclasses.replace(ds, acoustic=...)``, which validates again.

    Args:
        tokens: int64 ``(N, L)``, word ids into ``vocab``, 0 = padding.
        acoustic: float32 ``(N, L, 4)``: per-word pitch, pitch range, energy, rate.
        visual: float32 ``(N, L, 4)``: per-word AU4, AU6, AU12, AU15 intensities.
        lengths: int64 ``(N,)``: words of each utterance (the rest is padding).
        scores: float32 ``(N,)``: intended sentiment in [-3, 3].
        speakers: int64 ``(N,)``: speaker ids.
        incongruent: bool ``(N,)``: sarcastic utterances (words contradict voice and face).
        texts: the N sentences.
        vocab: the word list (``vocab[0] == "<pad>"``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        surface: float32 ``(N,)``: VADER value of the words (their surface polarity), or
            ``None``.

    Attributes:
        tensors: ``(tokens, acoustic, visual, lengths, scores)``: what a Trainer consumes.
        modalities: ``("text", "acoustic", "visual")``.
        num_classes: ``None``, the target is a score (metrics binarise it,
            :mod:`mmbook.metrics`).

    Raises:
        ValueError: scores outside [-3, 3] or not finite, modalities whose batch or
            sequence lengths disagree, lengths outside 1..L, a per-utterance field (or
            ``texts``) whose length is not N.

    Shape:
        ``ds[i]`` is ``(tokens (L,), acoustic (L, 4), visual (L, 4), length (), score ())``.

    Examples:
        >>> ds = make_spoken_reviews(60, seed=0)["train"]
        >>> isinstance(ds, ModalityDataset), ds.modalities, ds.num_classes
        (True, ('text', 'acoustic', 'visual'), None)
        >>> [tuple(t.shape) for t in ds[0]] == [(ds.tokens.shape[1],),
        ...                                     (ds.tokens.shape[1], 4),
        ...                                     (ds.tokens.shape[1], 4), (), ()]
        True
        >>> quiet = dataclasses.replace(ds, visual=torch.zeros_like(ds.visual))
        >>> quiet.split == ds.split and float(quiet.visual.abs().sum())
        0.0
    """

    modalities: ClassVar[tuple] = REVIEW_MODALITIES
    num_classes: ClassVar[None] = None  # a regression target; metrics binarise it

    tokens: torch.Tensor
    acoustic: torch.Tensor
    visual: torch.Tensor
    lengths: torch.Tensor
    scores: torch.Tensor
    speakers: torch.Tensor
    incongruent: torch.Tensor
    texts: list
    vocab: tuple
    split: str
    surface: torch.Tensor | None = None

    def __post_init__(self) -> None:
        check_shape(self.tokens, ("N", "L"), "tokens")
        check_shape(self.acoustic, ("N", "L", None), "acoustic")
        check_shape(self.visual, ("N", "L", None), "visual")
        self._check_aligned(self.tokens, self.acoustic, self.visual)
        n, L = self.tokens.shape
        for name in ("lengths", "scores", "speakers", "incongruent"):
            check_shape(getattr(self, name), (n,), name)
        if self.surface is not None:
            check_shape(self.surface, (n,), "surface")
        if len(self.texts) != n:
            raise ValueError(f"texts must hold one sentence per utterance (N={n}), got "
                             f"{len(self.texts)}")
        check_finite(self.acoustic, "acoustic"), check_finite(self.visual, "visual")
        _check_scores(self.scores)
        if n and (int(self.lengths.min()) < 1 or int(self.lengths.max()) > L):
            raise ValueError(f"lengths must lie in 1..{L} (the padded length L), got "
                             f"{int(self.lengths.min())}..{int(self.lengths.max())}")
        inputs = dict(zip(REVIEW_MODALITIES, (self.tokens, self.acoustic, self.visual)))
        super().__init__({**inputs, "lengths": self.lengths}, self.scores, num_classes=0)
        self.modalities = REVIEW_MODALITIES  # the lengths are an input, not a modality
        self.num_classes = None

    @staticmethod
    def _check_aligned(tokens, acoustic, visual) -> None:
        for name, x in (("acoustic", acoustic), ("visual", visual)):
            if tuple(x.shape[:2]) != tuple(tokens.shape):
                raise ValueError(
                    f"{name} has shape {tuple(x.shape)} but tokens has {tuple(tokens.shape)}: "
                    f"word-aligned modalities must share (N, L), one feature vector per word")

    def __repr__(self) -> str:
        return (f"SpokenReviews(split={self.split!r}, n={len(self)}, L={self.tokens.shape[1]}, "
                f"speakers={len(set(self.speakers.tolist()))}, "
                f"incongruent={int(self.incongruent.sum())})")

    def _inputs(self) -> dict:
        return {"text": self.tokens, "acoustic": self.acoustic, "visual": self.visual}

    def modality(self, name: str) -> torch.utils.data.TensorDataset:
        """One modality alone: items ``(x, length, score)`` (``x`` tokens or frames)."""
        if name not in self.modalities:
            raise ValueError(f"name must be one of {self.modalities}, got {name!r}")
        return torch.utils.data.TensorDataset(self._inputs()[name], self.lengths, self.scores)

    def pooled(self, name: str) -> np.ndarray:
        """Utterance-level features for scikit-learn: word counts ``(N, V)`` for text,
        the mean over the words ``(N, 4)`` for acoustic and visual."""
        if name == "text":
            counts = np.zeros((len(self), len(self.vocab)), dtype=np.float32)
            np.add.at(counts, (np.arange(len(self))[:, None], to_numpy(self.tokens)), 1.0)
            counts[:, 0] = 0.0  # padding
            return counts
        x = to_numpy(self.modality(name).tensors[0])
        mask = np.arange(x.shape[1])[None, :] < to_numpy(self.lengths)[:, None]
        return (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)

    def subset(self, index) -> SpokenReviews:
        """The items at ``index`` (a bool mask or integer indices), as a new split."""
        idx = torch.as_tensor(index)
        if idx.dtype == torch.bool:
            idx = torch.nonzero(idx).flatten()
        per_item = {name: getattr(self, name)[idx] for name in _PER_UTTERANCE}
        surface = None if self.surface is None else self.surface[idx]
        return dataclasses.replace(self, **per_item, surface=surface,
                                   texts=[self.texts[i] for i in idx.tolist()])

    def standardized_by_speaker(self) -> SpokenReviews:
        r"""A copy whose acoustic and visual features are z-scored per speaker.

        For each speaker, every feature is centred and scaled with the mean and standard
        deviation over all the real words of that speaker's utterances in this split,
        :math:`\tilde x_{t,f} = (x_{t,f} - \mu_{s,f}) / \sigma_{s,f}`. No score is used,
        so this is allowed on the test speakers too (it needs several utterances of each
        speaker). It removes a speaker's baseline, which a model cannot learn for a new
        speaker. Padding stays 0.
        """
        out = {}
        real = torch.arange(self.tokens.shape[1])[None, :] < self.lengths[:, None]  # (N, L)
        for name in ("acoustic", "visual"):
            x = getattr(self, name)
            y = torch.zeros_like(x)
            for s in self.speakers.unique():
                rows = self.speakers == s
                m = real[rows]  # (n_s, L)
                words = x[rows][m]  # (words of s, F)
                mu, sd = words.mean(0), words.std(0, unbiased=False).clamp(min=1e-6)
                z = (x[rows] - mu) / sd
                y[rows] = z * m[..., None]
            out[name] = y
        return dataclasses.replace(self, **out)

    def with_permuted(self, name: str, seed: int = 0) -> SpokenReviews:
        """A copy whose modality ``name`` is shuffled among utterances of equal length.

        Permutation ablation: the modality keeps its distribution (and its alignment with
        the words' count) but no longer belongs to the utterance, so its link with the
        score is broken. The drop in a metric measures how much a model relies on it.
        """
        if name not in self.modalities:
            raise ValueError(f"name must be one of {self.modalities}, got {name!r}")
        rng = np.random.default_rng(seed)
        lengths = to_numpy(self.lengths)
        perm = np.arange(len(self))
        for L in np.unique(lengths):
            rows = np.flatnonzero(lengths == L)
            perm[rows] = rng.permutation(rows)
        field = {"text": "tokens", "acoustic": "acoustic", "visual": "visual"}[name]
        return dataclasses.replace(self, **{field: getattr(self, field)[torch.from_numpy(perm)]})


#: the tensor fields with one row per utterance (what ``subset`` indexes).
_PER_UTTERANCE = ("tokens", "acoustic", "visual", "lengths", "scores", "speakers",
                  "incongruent")


def _check_scores(scores) -> None:
    s = to_numpy(scores)
    check_finite(s, "scores")
    if s.size and (s.min() < -3.0 or s.max() > 3.0):
        bad = int(((s < -3.0) | (s > 3.0)).sum())
        raise ValueError(f"scores must lie in [-3, 3] (MOSI's scale), got {bad} outside, "
                         f"range [{s.min():.3g}, {s.max():.3g}]")


def check_speaker_splits(splits: dict) -> None:
    """Raise ``ValueError`` if a speaker appears in two splits.

    Args:
        splits: dict split name -> :class:`SpokenReviews` (or any object with ``speakers``).

    Examples:
        >>> d = make_spoken_reviews(60, seed=0, n_speakers=10)
        >>> check_speaker_splits(d)  # disjoint by construction: nothing raised
    """
    seen: dict = {}
    for name, ds in splits.items():
        for s in sorted(set(to_numpy(ds.speakers).tolist())):
            if s in seen and seen[s] != name:
                raise ValueError(f"speaker {s} appears in both {seen[s]!r} and {name!r}: "
                                 f"splits must be disjoint by speaker (MOSI's protocol)")
            seen[s] = name


# ----------------------------------------------------------------------------- generator
def _scores(rng, n: int) -> np.ndarray:
    latent = rng.uniform(-3.2, 3.2, n)
    ratings = np.clip(np.round(latent[:, None] + 0.5 * rng.standard_normal((n, 3))), -3, 3)
    return ratings.mean(1)


def _nonverbal(rng, y, emph, style, W, noise: float) -> np.ndarray:
    base, gain = style
    nu = y / 3.0
    phi = np.array([max(nu, 0.0), max(-nu, 0.0), abs(nu), nu])
    e = np.where(np.asarray(emph) > 0, 1.0, 0.5)[:, None]  # (L, 1)
    x = base[None, :] + gain * e * (W @ phi)[None, :]  # (L, F)
    return x + noise * rng.standard_normal(x.shape)


def make_spoken_reviews(n: int = 2000, seed: int = 0, *, n_speakers: int = 60,
                        incongruent: float = 0.3, text_noise: float = 0.6,
                        noise: float = 0.7, style: float = 0.3) -> dict:
    """Generate the spoken-reviews set (see the module docstring for the process).

    Args:
        n: utterances in all (>= 1), split by speaker about 55 / 15 / 30.
        seed: seed of the generator; the same arguments give the same data.
        n_speakers: speakers (>= 3, so that each split has one).
        incongruent: probability that a clearly negative utterance (y <= -1) is sarcastic.
        text_noise: :math:`\\sigma_t`, how far a clause's value strays from the surface
            polarity.
        noise: :math:`\\sigma`, per-word noise of the acoustic and visual features.
        style: :math:`\\sigma_b`, spread of the speakers' baselines.

    Returns:
        ``{"train": ds, "val": ds, "test": ds}``, three :class:`SpokenReviews` with
        disjoint speakers, padded to the same length L.

    Examples:
        >>> d = make_spoken_reviews(200, seed=0)
        >>> d["train"].tokens.shape[1] == d["test"].tokens.shape[1]
        True
        >>> bool(d["train"].scores.abs().max() <= 3)
        True
    """
    n = check_positive_int(n, "n")
    n_speakers = check_positive_int(n_speakers, "n_speakers")
    if n_speakers < 3:
        raise ValueError(f"n_speakers must be >= 3 (one per split at least), got {n_speakers}")
    check_probability(incongruent, "incongruent")
    for name, v in (("text_noise", text_noise), ("noise", noise), ("style", style)):
        check_positive(v, name, allow_zero=True)
    rng = np.random.default_rng(seed)
    cands, vocab = _candidates(review_lexicon()), _vocabulary()
    W = {"a": np.array(list(ACOUSTIC_FEATURES.values())),
         "v": np.array(list(VISUAL_FEATURES.values()))}
    styles = [(style * rng.standard_normal(8), rng.uniform(0.5, 1.5)) for _ in range(n_speakers)]
    speakers = rng.integers(n_speakers, size=n)
    y = _scores(rng, n)
    sarcastic = (y <= -1.0) & (rng.random(n) < incongruent)
    utterances = []
    for i in range(n):
        words, emph, surface = _text(rng, -y[i] if sarcastic[i] else y[i], cands, text_noise)
        base, gain = styles[speakers[i]]
        a = _nonverbal(rng, y[i], emph, (base[:4], gain), W["a"], noise)
        v = _nonverbal(rng, y[i], emph, (base[4:], gain), W["v"], noise)
        utterances.append(_Utterance(words=words, acoustic=a, visual=v, surface=surface))
    return _split(utterances, y, speakers, sarcastic, vocab, rng, n_speakers)


@dataclass(frozen=True)
class _Utterance:
    """One generated utterance before padding: its words, their (L_i, 4) voice and face
    features, and the VADER value of the words."""

    words: list
    acoustic: np.ndarray
    visual: np.ndarray
    surface: float


def _padded(utterances, vocab) -> dict:
    """Tokens (N, L), acoustic and visual (N, L, 4), zero-padded, and lengths (N,)."""
    index = {w: i for i, w in enumerate(vocab)}
    lengths = np.array([len(u.words) for u in utterances], dtype=np.int64)
    N, L = len(utterances), int(lengths.max())
    out = {"tokens": np.zeros((N, L), dtype=np.int64), "lengths": lengths,
           "acoustic": np.zeros((N, L, 4), dtype=np.float32),
           "visual": np.zeros((N, L, 4), dtype=np.float32)}
    for i, u in enumerate(utterances):
        out["tokens"][i, :lengths[i]] = [index[w] for w in u.words]
        out["acoustic"][i, :lengths[i]], out["visual"][i, :lengths[i]] = u.acoustic, u.visual
    return out


def _split(utterances, y, speakers, sarcastic, vocab, rng, n_speakers) -> dict:
    padded = _padded(utterances, vocab)
    columns = {**padded, "scores": y.astype(np.float32), "speakers": speakers.astype(np.int64),
               "incongruent": sarcastic,
               "surface": np.array([u.surface for u in utterances], dtype=np.float32)}
    order = rng.permutation(n_speakers)
    n_train = max(1, min(n_speakers - 2, int(0.55 * n_speakers + 0.5)))
    n_val = max(1, min(n_speakers - n_train - 1, int(0.15 * n_speakers + 0.5)))
    groups = {"train": order[:n_train], "val": order[n_train:n_train + n_val],
              "test": order[n_train + n_val:]}
    out = {}
    for name, spk in groups.items():
        idx = np.flatnonzero(np.isin(speakers, spk))
        out[name] = SpokenReviews(
            **{k: torch.from_numpy(v[idx]) for k, v in columns.items()},
            texts=[" ".join(utterances[i].words) for i in idx], vocab=vocab, split=name)
    check_speaker_splits(out)
    return out
