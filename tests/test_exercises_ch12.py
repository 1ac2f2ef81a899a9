"""Chapter 12 checkers: right answers pass, each likely mistake gets its diagnosis."""

import math
import re

import torch

from mmbook.data import CLEVR_ANSWERS
from mmbook.data.clevr import scene_answer
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


# ----------------------------------------------------------------------------- fusion
def _pair_sum(o, q, W_a, W_b, W_q, b, act=torch.relu, reduce="sum", diagonal=True):
    z = (o @ W_a.T)[:, :, None] + (o @ W_b.T)[:, None, :] + (q @ W_q.T + b)[:, None, None]
    h = act(z)  # (N, K, K, H)
    if not diagonal:
        h = h * ~torch.eye(o.shape[1], dtype=torch.bool)[None, :, :, None]
    return h.sum((1, 2)) if reduce == "sum" else h.mean((1, 2))


def test_check_pair_sum():
    assert ch12.check_pair_sum(_pair_sum)
    assert ch12.check_pair_sum(lambda *a: None).pending
    assert "ReLU is missing" in ch12.check_pair_sum(
        lambda *a: _pair_sum(*a, act=lambda z: z)).message
    after = lambda o, q, W_a, W_b, W_q, b: torch.relu(_pair_sum(o, q, W_a, W_b, W_q, b,
                                                                act=lambda z: z))
    assert "before the sum" in ch12.check_pair_sum(after).message
    assert "mean" in ch12.check_pair_sum(lambda *a: _pair_sum(*a, reduce="mean")).message
    assert "(i, i)" in ch12.check_pair_sum(lambda *a: _pair_sum(*a, diagonal=False)).message
    one_index = lambda o, q, W_a, W_b, W_q, b: torch.relu(
        (o @ W_a.T)[:, :, None] + (o @ W_b.T)[:, None, :]
        + (q @ W_q.T + b)[:, None, None]).sum(2)  # (N, K, H)
    assert "both objects" in ch12.check_pair_sum(one_index).message


def _image_attention(Q, V, W_b, W_q, W_v, w_hv, tanh_c=True, tanh_h=True, question=True):
    C = Q @ W_b @ V.T  # (L, S)
    C = torch.tanh(C) if tanh_c else C
    H = V @ W_v.T + (C.T @ (Q @ W_q.T) if question else 0)  # (S, k)
    H = torch.tanh(H) if tanh_h else H
    return torch.softmax(H @ w_hv, dim=0)


def test_check_coattention_step():
    assert ch12.check_coattention_step(_image_attention)
    assert ch12.check_coattention_step(lambda *a: None).pending
    assert "tanh on the affinity" in ch12.check_coattention_step(
        lambda *a: _image_attention(*a, tanh_c=False)).message
    assert "tanh on H^v" in ch12.check_coattention_step(
        lambda *a: _image_attention(*a, tanh_h=False)).message
    assert "question is missing" in ch12.check_coattention_step(
        lambda *a: _image_attention(*a, question=False)).message
    capped = lambda Q, V, W_b, *rest: torch.softmax(torch.tanh(Q @ W_b @ V.T).mean(0), 0)
    assert "cannot concentrate" in ch12.check_coattention_step(capped).message
    scores = lambda *a: torch.log(_image_attention(*a))  # no softmax: does not sum to one
    assert "sum to one" in ch12.check_coattention_step(scores).message
    per_word = lambda Q, V, W_b, *rest: torch.softmax(torch.tanh(Q @ W_b @ V.T), -1)
    assert "one weight per region" in ch12.check_coattention_step(per_word).message


def _blind(scene, qtype, image_size, pick=max, reverse=False):
    votes = [scene_answer(scene, qtype, o["color"], image_size) for o in scene]
    order = sorted(set(votes), key=CLEVR_ANSWERS.index, reverse=reverse)
    return pick(order, key=votes.count)


def test_check_colour_blind():
    assert ch12.check_colour_blind(_blind)
    assert ch12.check_colour_blind(lambda s, t, size: None).pending
    assert "FEWEST" in ch12.check_colour_blind(lambda *a: _blind(*a, pick=min)).message
    assert "comes first" in ch12.check_colour_blind(lambda *a: _blind(*a, reverse=True)).message

    def majority_shape(scene, qtype, size):
        shapes = [o["shape"] for o in scene]
        shape = max(("square", "circle"), key=shapes.count)
        count = ("one", "two", "three", "four", "five", "six")[shapes.count(shape) - 1]
        return {"count": count, "left": "yes", "top": "yes"}.get(qtype, shape)

    assert "majority-shape rule" in ch12.check_colour_blind(majority_shape).message
    counted = lambda s, t, size: [scene_answer(s, t, o["color"], size) for o in s].count(
        _blind(s, t, size))
    assert "not the number" in ch12.check_colour_blind(counted).message
