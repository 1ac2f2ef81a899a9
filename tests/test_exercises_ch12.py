"""Chapter 12 checkers: right answers pass, each likely mistake gets its diagnosis."""

import math
import re

from mmbook.exercises import ch12
from mmbook.utils import lengths_to_mask


def _encode(text, stoi):
    return [stoi.get(t, 1) for t in re.findall(r"[a-z0-9]+|[^\sa-z0-9]", text.lower())]


def test_check_encode():
    assert ch12.check_encode(_encode)
    no_punct = lambda text, stoi: [stoi.get(t, 1) for t in re.findall(r"[a-z0-9]+", text.lower())]
    assert "question mark" in ch12.check_encode(no_punct).message
    drop = lambda text, stoi: [i for i in _encode(text, stoi) if i != 1]
    assert "<unk>" in ch12.check_encode(drop).message
    no_lower = lambda text, stoi: [stoi.get(t, 1) for t in re.findall(r"\w+|[^\s\w]", text)]
    assert "lower-case" in ch12.check_encode(no_lower).message
    assert "raised" in ch12.check_encode(lambda text, stoi: 1 / 0).message


def _closest(scene, color, pick=min, skip_self=True, dist=math.dist):
    me = next(o for o in scene if o["color"] == color)
    others = [o for o in scene if o is not me or not skip_self]
    return pick(others, key=lambda o: dist(o["center"], me["center"]))["shape"]


def test_check_closest_shape():
    assert ch12.check_closest_shape(_closest)
    assert "own shape" in ch12.check_closest_shape(
        lambda s, c: _closest(s, c, skip_self=False)).message
    assert "furthest" in ch12.check_closest_shape(lambda s, c: _closest(s, c, pick=max)).message
    x_only = lambda s, c: _closest(s, c, dist=lambda a, b: abs(a[0] - b[0]))
    assert "not x alone" in ch12.check_closest_shape(x_only).message


def test_check_padding_masks():
    right = lambda lengths, L: (lengths_to_mask(lengths, L), ~lengths_to_mask(lengths, L))
    assert ch12.check_padding_masks(right)
    inverted = lambda lengths, L: (~lengths_to_mask(lengths, L), lengths_to_mask(lengths, L))
    assert "inverted" in ch12.check_padding_masks(inverted).message
    off = lambda lengths, L: (lengths_to_mask(lengths - 1, L), ~lengths_to_mask(lengths - 1, L))
    assert "off by one" in ch12.check_padding_masks(off).message
    same = lambda lengths, L: (lengths_to_mask(lengths, L), lengths_to_mask(lengths, L))
    assert "opposite" in ch12.check_padding_masks(same).message
    assert ch12.check_padding_masks(lambda lengths, L: None).pending  # the starter: not red
    floats = lambda lengths, L: tuple(m.float() for m in right(lengths, L))
    assert "bool" in ch12.check_padding_masks(floats).message
    assert "shape" in ch12.check_padding_masks(
        lambda lengths, L: right(lengths, L + 1)).message


def test_check_encode_names_str_split_and_wrong_return_type():
    lower_split = lambda text, stoi: [stoi.get(w, 1) for w in text.lower().split()]
    assert "punctuation" in ch12.check_encode(lower_split).message
    plain_split = lambda text, stoi: [stoi.get(w, 1) for w in text.split()]
    message = ch12.check_encode(plain_split).message
    assert "lower-case" in message and "punctuation" in message
    whole_object = lambda s, c: min((o for o in s if o["color"] != c), key=lambda o: math.dist(
        o["center"], next(p for p in s if p["color"] == c)["center"]))
    assert "'square' or 'circle'" in ch12.check_closest_shape(whole_object).message


def test_check_encode_accepts_a_tensor_of_ids_and_refuses_words():
    import torch

    assert ch12.check_encode(lambda text, stoi: torch.tensor(_encode(text, stoi)))
    assert "list of integer ids" in ch12.check_encode(lambda text, stoi: text.split()).message
