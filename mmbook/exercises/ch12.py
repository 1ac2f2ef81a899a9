"""Checkers for chapter 12 (Vision and language)."""

from __future__ import annotations

import math

import torch

from ..attention import CoAttention
from ..data.clevr import CLEVR_ANSWERS, CLEVR_SHAPES, colour_blind_answer, scene_answer
from ..text import Vocabulary
from ..utils import lengths_to_mask
from . import Feedback, call_student, check_close, check_equal

__all__ = ["check_encode", "check_closest_shape", "check_padding_masks", "check_pair_sum",
           "check_coattention_step", "check_colour_blind"]

_SENTENCES = ("Is the RED object on the left?", "What is the shape of the purple object?",
              "How many objects have the same shape as the red object?")


def check_encode(fn) -> Feedback:
    """Check ``fn(text, stoi) -> list of ids`` against :meth:`Vocabulary.encode`."""
    vocab = Vocabulary.build(["is the red object on the left ?",
                              "what is the shape of the object ?"])
    for text in _SENTENCES:
        got, fail = call_student(fn, text, dict(vocab.stoi), name="encode")
        if fail is not None:
            return fail
        want = vocab.encode(text)
        try:  # a tuple, an array or a tensor of ids is fine; compare as a list of ints
            got = [int(i) for i in got]
        except (TypeError, ValueError):
            return Feedback(False, f"return a list of integer ids, got {got!r}")
        if got == want:
            continue
        if got == want[:-1] and text.endswith("?"):
            return Feedback(False, f"for {text!r} the question mark is missing: split "
                                   "punctuation into its own token (mmbook.text.tokenize)")
        if got == [i for i in want if i != vocab.unk_index]:
            return Feedback(False, f"for {text!r} you dropped a word: an unknown word must "
                                   f"become the <unk> id {vocab.unk_index}, not vanish")
        stoi, unk = vocab.stoi, vocab.unk_index
        if got == [stoi.get(w, unk) for w in text.lower().split()]:
            return Feedback(False, f"for {text!r} str.split() kept the punctuation on the "
                                   "word ('left?'), which then became <unk>: split "
                                   "punctuation marks into their own tokens "
                                   "(mmbook.text.tokenize)")
        if got == [stoi.get(w, unk) for w in text.split()]:
            return Feedback(False, f"for {text!r}: lower-case the text, and split punctuation "
                                   "marks into their own tokens (str.split() keeps 'left?' "
                                   "as one word)")
        if isinstance(got, list) and got.count(vocab.unk_index) > want.count(vocab.unk_index):
            return Feedback(False, f"for {text!r} a known word became <unk>: lower-case the "
                                   "text before looking words up")
        return check_equal(f"encode({text!r})", got, want)
    return Feedback(True, "every sentence is encoded as Vocabulary.encode does it.")


def _scenes():
    g = torch.Generator().manual_seed(12)
    colors = ("red", "green", "blue", "orange", "gray", "yellow")
    scenes = []
    for _ in range(20):
        xy = (torch.rand(6, 2, generator=g) * 60 + 2).tolist()
        shapes = torch.randint(0, 2, (6,), generator=g).tolist()
        scenes.append([{"color": c, "shape": ("square", "circle")[s], "center": tuple(p)}
                       for c, s, p in zip(colors, shapes, xy)])
    return scenes


def _closest_variants(scene, color) -> dict:
    """The right answer and the answers of three likely mistakes."""
    me = next(o for o in scene if o["color"] == color)
    others = [o for o in scene if o is not me]
    near = lambda objs, d: min(objs, key=lambda o: d(o["center"], me["center"]))["shape"]  # noqa: E731
    return {"right": scene_answer(scene, "closest", color, 64),
            "self": near(scene, math.dist),
            "furthest": scene_answer(scene, "furthest", color, 64),
            "x only": near(others, lambda a, b: abs(a[0] - b[0]))}


_CLOSEST_HINTS = {
    "self": "you returned each object's own shape: leave the object itself out (its "
            "distance to itself is 0)",
    "furthest": "that is the shape of the *furthest* object: take the smallest distance",
    "x only": "use the distance between centres, math.dist((x1, y1), (x2, y2)), not x alone",
}


def check_closest_shape(fn) -> Feedback:
    """Check ``fn(scene, color) -> shape of the object closest to that colour``."""
    got, want = [], {k: [] for k in ("right", *_CLOSEST_HINTS)}
    for scene in _scenes():
        for obj in scene:
            answer, fail = call_student(fn, scene, obj["color"], name="closest_shape")
            if fail is not None:
                return fail
            got.append(answer)
            for k, v in _closest_variants(scene, obj["color"]).items():
                want[k].append(v)
    if got == want["right"]:
        return Feedback(True, "right for every object of 20 scenes.")
    if not isinstance(got[0], str) or got[0] not in ("square", "circle"):
        return Feedback(False, f"return the shape, the string 'square' or 'circle', got "
                               f"{got[0]!r}")
    for mistake, hint in _CLOSEST_HINTS.items():
        if got == want[mistake]:
            return Feedback(False, hint)
    wrong = sum(g != w for g, w in zip(got, want["right"]))
    return Feedback(False, f"{wrong} of {len(got)} answers are wrong: the answer is the shape "
                           "of the other object whose centre is nearest")


def check_padding_masks(fn) -> Feedback:
    """Check ``fn(lengths, L) -> (mask, key_padding_mask)``: the package's mask
    (``True`` = real token) and torch's (``True`` = padding)."""
    lengths = torch.tensor([3, 1, 5, 2])
    got, fail = call_student(fn, lengths, 6, name="padding_masks")
    if fail is not None:
        return fail
    if not isinstance(got, tuple) or len(got) != 2:
        return Feedback(False, "return a pair (mask, key_padding_mask)")
    mask, kpm = (torch.as_tensor(m) for m in got)
    want = lengths_to_mask(lengths, 6)
    if mask.shape != want.shape:
        return Feedback(False, f"mask has shape {tuple(mask.shape)}, expected (4, 6): one row "
                               "per sentence, one column per position up to L")
    if mask.dtype != torch.bool or kpm.dtype != torch.bool:
        return Feedback(False, "both masks must be bool tensors")
    if torch.equal(mask, ~want):
        return Feedback(False, "mask is inverted: in mmbook True marks a real token")
    if torch.equal(mask, lengths_to_mask(lengths - 1, 6)) or torch.equal(
            mask, lengths_to_mask(torch.clamp(lengths + 1, max=6), 6)):
        return Feedback(False, "off by one: row i has exactly lengths[i] True entries, "
                               "positions 0 ... lengths[i] - 1")
    if not torch.equal(mask, want):
        return Feedback(False, "mask[i, t] must be t < lengths[i]")
    if torch.equal(kpm, want):
        return Feedback(False, "key_padding_mask must be the opposite of mask: torch marks the "
                               "padding with True (~mask)")
    if not torch.equal(kpm, ~want):
        return Feedback(False, "key_padding_mask must be ~mask")
    return Feedback(True, f"both masks are right ({int(want.sum())} real tokens, "
                          f"{math.prod(want.shape) - int(want.sum())} padding).")



# ----------------------------------------------------------------------------- fusion
def _pair_inputs():
    g = torch.Generator().manual_seed(7)
    N, K, D, Dq, H = 3, 5, 4, 3, 6
    return (torch.randn(N, K, D, generator=g), torch.randn(N, Dq, generator=g),
            torch.randn(H, D, generator=g), torch.randn(H, D, generator=g),
            torch.randn(H, Dq, generator=g), torch.randn(H, generator=g))


def _pair_terms(o, q, W_a, W_b, W_q, b):
    """Every pair's pre-activation W_a o_i + W_b o_j + W_q q + b by a plain loop: (N, K, K, H)."""
    N, K = o.shape[:2]
    out = torch.empty(N, K, K, W_a.shape[0], dtype=o.dtype)
    for n in range(N):
        for i in range(K):
            for j in range(K):
                out[n, i, j] = W_a @ o[n, i] + W_b @ o[n, j] + W_q @ q[n] + b
    return out


def check_pair_sum(fn) -> Feedback:
    """Check ``fn(o, q, W_a, W_b, W_q, b)`` = sum over all pairs (i, j) of
    ReLU(W_a o_i + W_b o_j + W_q q + b), shape (N, H), against a loop over the pairs."""
    args = _pair_inputs()
    got, fail = call_student(fn, *args, name="pair_sum")
    if fail is not None:
        return fail
    z = _pair_terms(*args)  # (N, K, K, H), the naive loop
    K = z.shape[1]
    want = torch.relu(z).sum((1, 2))
    got = torch.as_tensor(got)
    if got.shape != want.shape:
        if got.shape == z.shape or got.shape == z.shape[:2] + z.shape[3:]:
            return Feedback(False, f"pair_sum has shape {tuple(got.shape)}: sum over both "
                                   "objects i and j, to get one vector (N, H) per example")
        return check_close("pair_sum", got, want)
    off_diagonal = ~torch.eye(K, dtype=torch.bool)[None, :, :, None]
    mistakes = {
        "the ReLU is missing: without it the sum splits into K (sum_i W_a o_i) + ..., and "
        "no pair is ever compared with the question": z.sum((1, 2)),
        "the ReLU must act on every pair before the sum, not on the sum":
            torch.relu(z.sum((1, 2))),
        "that is the mean over the pairs: the Relation Network sums them":
            torch.relu(z).mean((1, 2)),
        "the pairs (i, i) are missing: Santoro et al. sum over all K^2 pairs, an object "
        "with itself included": (torch.relu(z) * off_diagonal).sum((1, 2)),
        "each unordered pair is counted once: sum over all ordered pairs (i, j)":
            sum(torch.relu(z[:, i, j]) for i in range(K) for j in range(i, K)),
    }
    if torch.allclose(got.double(), want.double(), rtol=1e-4, atol=1e-4):
        return Feedback(True, f"equal to the loop over the {K * K} pairs of every example.")
    for hint, wrong in mistakes.items():
        if torch.allclose(got.double(), wrong.double(), rtol=1e-4, atol=1e-4):
            return Feedback(False, hint)
    return check_close("pair_sum", got, want, hint="compare with a loop over i and j")


def _coattention_inputs():
    g = torch.Generator().manual_seed(11)
    L, S, dq, dv, k = 4, 9, 5, 3, 6
    with torch.random.fork_rng():  # the reader's random state stays untouched
        co = CoAttention(dq, dv, k)
    with torch.no_grad():
        for par in co.parameters():
            par.copy_(torch.randn(par.shape, generator=g))
    Q, V = torch.randn(L, dq, generator=g), torch.randn(S, dv, generator=g)
    return co, (Q, V, co.W_b.detach(), co.W_q.weight.detach(), co.W_v.weight.detach(),
                co.w_hv.weight.detach()[0])


def check_coattention_step(fn) -> Feedback:
    """Check ``fn(Q, V, W_b, W_q, W_v, w_hv) -> a_v (S,)``, the image side of parallel
    co-attention for one example (rows of Q are words, rows of V regions), against
    :class:`mmbook.attention.CoAttention`."""
    co, args = _coattention_inputs()
    got, fail = call_student(fn, *args, name="image_attention")
    if fail is not None:
        return fail
    Q, V, W_b, W_q, W_v, w_hv = args
    with torch.no_grad():
        want = co(Q[None], V[None])[3][0]  # (S,)
    got = torch.as_tensor(got)
    if got.shape != want.shape:
        return Feedback(False, f"a_v has shape {tuple(got.shape)}: one weight per region, "
                               f"({V.shape[0]},); score every region with w_hv, then take "
                               "the softmax over the regions")
    C = torch.tanh(Q @ W_b @ V.T)  # (L, S)
    score = lambda H: torch.softmax(H @ w_hv, 0)  # noqa: E731
    mistakes = {
        "C = tanh(Q W_b V^T): the tanh on the affinity is missing":
            score(torch.tanh(V @ W_v.T + (Q @ W_b @ V.T).T @ (Q @ W_q.T))),
        "H^v = tanh(W_v V + (W_q Q) C): the tanh on H^v is missing":
            score(V @ W_v.T + C.T @ (Q @ W_q.T)),
        "the question is missing: H^v needs the words' term (W_q Q) C, or every question "
        "attends to the same regions": score(torch.tanh(V @ W_v.T)),
        "that is a softmax of the affinity itself, which lies in [-1, 1] and so cannot "
        "concentrate: score the regions with w_hv^T H^v": torch.softmax(C.sum(0), 0),
        "that is a softmax of the mean affinity, which lies in [-1, 1] and so cannot "
        "concentrate: score the regions with w_hv^T H^v": torch.softmax(C.mean(0), 0),
    }
    if torch.allclose(got.double(), want.double(), atol=1e-5):
        return Feedback(True, f"equal to mmbook.attention.CoAttention's a^v (largest "
                              f"weight {float(want.max()):.2f} here).")
    if not torch.allclose(got.sum().double(), torch.tensor(1.0, dtype=torch.float64),
                          atol=1e-4):
        return Feedback(False, "the weights do not sum to one: take a softmax over the "
                               "regions")
    for hint, wrong in mistakes.items():
        if torch.allclose(got.double(), wrong.double(), atol=1e-5):
            return Feedback(False, hint)
    return check_close("a_v", got, want, hint="follow the three equations step by step")


def _blind_scenes():
    scenes = _scenes()
    for k, counts in enumerate((3, 4, 2, 5, 3)):  # make sure of ties and both majorities
        for i, o in enumerate(scenes[k]):
            o["shape"] = CLEVR_SHAPES[0] if i < counts else CLEVR_SHAPES[1]
    return scenes


_QTYPES = ("shape", "left", "top", "closest", "furthest", "count")


def _blind_variant(scene, qtype, pick=max, tie_first=True, as_count=False):
    """The colour-blind answer, or one of its likely mistakes."""
    votes = [scene_answer(scene, qtype, o["color"], 64) for o in scene]
    order = sorted(set(votes), key=CLEVR_ANSWERS.index, reverse=not tie_first)
    best = pick(order, key=votes.count)
    return votes.count(best) if as_count else best


def _majority_shape_rule(scene, qtype):
    n = {s: sum(o["shape"] == s for o in scene) for s in CLEVR_SHAPES}
    shape = max(CLEVR_SHAPES, key=n.get)
    return {"count": _NUMBER_WORDS[n[shape] - 1], "left": "yes", "top": "yes"}.get(qtype, shape)


_NUMBER_WORDS = ("one", "two", "three", "four", "five", "six")

_BLIND_MISTAKES = {
    "that is the majority-shape rule: it is the best blind answer for 'shape' and 'how "
    "many' only; answer the question for each of the six objects and give the answer "
    "that is right for most of them": _majority_shape_rule,
    "that is the answer right for the FEWEST objects: take the most frequent one":
        lambda sc, t: _blind_variant(sc, t, pick=min),
    "on a tie, give the answer that comes first in CLEVR_ANSWERS":
        lambda sc, t: _blind_variant(sc, t, tie_first=False),
    "return the answer itself, not the number of objects it is right for":
        lambda sc, t: _blind_variant(sc, t, as_count=True),
}


def check_colour_blind(fn) -> Feedback:
    """Check ``fn(scene, qtype, image_size) -> answer`` against
    :func:`mmbook.data.clevr.colour_blind_answer` on 20 scenes and the six types."""
    scenes = _blind_scenes()
    got = {}
    for k, scene in enumerate(scenes):
        for qtype in _QTYPES:
            answer, fail = call_student(fn, scene, qtype, 64, name="colour_blind")
            if fail is not None:
                return fail
            got[k, qtype] = answer
    want = {(k, t): colour_blind_answer(scene, t, 64) for k, scene in enumerate(scenes)
            for t in _QTYPES}
    if got == want:
        return Feedback(True, f"the best colour-blind answer on all {len(scenes)} scenes and "
                              f"{len(_QTYPES)} question types.")
    for hint, variant in _BLIND_MISTAKES.items():
        if got == {(k, t): variant(scene, t) for k, scene in enumerate(scenes)
                   for t in _QTYPES}:
            return Feedback(False, hint)
    wrong = [key for key in want if got[key] != want[key]]
    k, qtype = wrong[0]
    return Feedback(False, f"{len(wrong)} of {len(want)} answers differ, e.g. for a "
                           f"{qtype!r} question on scene {k}: answer the question for each "
                           "object with scene_answer and give the most frequent answer")
