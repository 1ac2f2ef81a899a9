"""Checkers for chapter 12 (Vision and language)."""

from __future__ import annotations

import math

import torch

from ..data.clevr import scene_answer
from ..text import Vocabulary
from ..utils import lengths_to_mask
from . import Feedback, call_student, check_equal

__all__ = ["check_encode", "check_closest_shape", "check_padding_masks"]

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

