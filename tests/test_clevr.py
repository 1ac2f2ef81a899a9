"""Sort-of-CLEVR: every answer and caption recomputed from the scene, colours in the pixels."""

import math

import numpy as np
import pytest
import torch

from mmbook.data import (
    CLEVR_ANSWERS,
    CLEVR_COLORS,
    CLEVR_SHAPES,
    QUESTION_TYPES,
    blind_caption,
    caption_facts,
    colour_blind_answer,
    make_sort_of_clevr,
)
from mmbook.data.clevr import MIN_IMAGE_SIZE

NUMBERS = ("one", "two", "three", "four", "five", "six")


@pytest.fixture(scope="module")
def ds():
    return make_sort_of_clevr(40, image_size=32, seed=3, questions_per_type=2)


def _answer(scene, qtype, color, size):
    """The answer, recomputed here independently of the package."""
    obj = next(o for o in scene if o["color"] == color)
    (x, y), others = obj["center"], [o for o in scene if o["color"] != color]
    if qtype == "shape":
        return obj["shape"]
    if qtype == "left":
        return "yes" if x < size / 2 else "no"
    if qtype == "top":
        return "yes" if y < size / 2 else "no"
    if qtype == "count":
        return NUMBERS[[o["shape"] for o in scene].count(obj["shape"]) - 1]
    d = {o["color"]: math.hypot(o["center"][0] - x, o["center"][1] - y) for o in others}
    pick = (min if qtype == "closest" else max)(d, key=d.get)
    return next(o["shape"] for o in others if o["color"] == pick)


def test_sizes_and_contract(ds):
    assert len(ds) == 40 * 6 * 2 and ds.images.shape == (40, 3, 32, 32)
    assert ds.images.dtype == torch.float32 and 0 <= ds.images.min() and ds.images.max() <= 1
    assert ds.modalities == ("image", "question") and ds.num_classes == len(CLEVR_ANSWERS)
    image, question, target = ds[5]
    assert torch.equal(image, ds.images[ds.image_index[5]]) and question == ds.questions[5]
    assert CLEVR_ANSWERS[int(target)] == ds.answers[5]
    assert len(ds.modality("image")) == len(ds) and ds.modality("question")[5] == (question,
                                                                                 target)
    assert ds.kind_mask("relational").sum() == len(ds) // 2
    with pytest.raises(ValueError, match="name must be one of"):
        ds.modality("audio")


def test_every_answer_recomputed_from_the_scene(ds):
    for i in range(len(ds)):
        scene, qtype, color = ds.scenes[ds.image_index[i]], ds.types[i], ds.colors[i]
        assert color in ds.questions[i]
        assert ds.answers[i] == _answer(scene, qtype, color, 32), i
        assert ds.kinds[i] == QUESTION_TYPES[qtype]


def test_colour_blind_answer_is_the_most_frequent_answer_over_the_objects(ds):
    right = {t: 0 for t in QUESTION_TYPES}
    for i in range(len(ds)):
        scene, qtype = ds.scenes[ds.image_index[i]], ds.types[i]
        answers = [_answer(scene, qtype, o["color"], 32) for o in scene]  # independent
        best = max(answers.count(a) for a in answers)
        first = min((a for a in answers if answers.count(a) == best), key=CLEVR_ANSWERS.index)
        got = colour_blind_answer(scene, qtype, 32)
        assert got == first
        # no answer that ignores the colour is right for more of the six objects
        assert all(answers.count(got) >= answers.count(a) for a in CLEVR_ANSWERS)
        right[qtype] += got == ds.answers[i]
    shapes = [[o["shape"] for o in sc] for sc in ds.scenes]
    majority = [max(CLEVR_SHAPES, key=sh.count) for sh in shapes]
    for qtype in ("shape", "closest", "furthest"):  # at least the majority-shape rule
        rule = sum(majority[ds.image_index[i]] == ds.answers[i] for i in range(len(ds))
                   if ds.types[i] == qtype)
        assert right[qtype] >= rule
    with pytest.raises(ValueError, match="qtype"):
        colour_blind_answer(ds.scenes[0], "colour", 32)


def test_blind_captions_know_what_they_claim_to_know(ds):
    rng = np.random.default_rng(0)
    for scene in ds.scenes:
        shapes = [o["shape"] for o in scene]
        majority = max(CLEVR_SHAPES, key=shapes.count)
        right = caption_facts(blind_caption(scene, "right", "majority", rng), scene)
        assert right["in_order"] and right["complete"] and right["facts"] == 6
        assert right["true"] == shapes.count(majority)  # true exactly for that shape
        coin = caption_facts(blind_caption(scene, "right", "random", rng), scene)
        assert coin["in_order"] and coin["complete"]
        shuffled = blind_caption(scene, "shuffled", "random", rng)
        assert caption_facts(shuffled, scene)["complete"]
    with pytest.raises(ValueError, match="order"):
        blind_caption(ds.scenes[0], order="left")


def test_every_caption_recomputed_and_true(ds):
    for scene, caption in zip(ds.scenes, ds.captions):
        objs = sorted(scene, key=lambda o: o["center"][0])
        for o in objs:
            assert f"{o['color']} {o['shape']}" in caption
        positions = [caption.index(o["color"]) for o in objs]
        assert positions == sorted(positions)  # left to right
        facts = caption_facts(caption, scene)
        assert facts["all_true"] and facts["complete"] and facts["facts"] == 6


def test_caption_facts_catch_errors(ds):
    scene = ds.scenes[0]
    obj = scene[0]
    other = next(s for s in CLEVR_SHAPES if s != obj["shape"])
    wrong = ds.captions[0].replace(f"{obj['color']} {obj['shape']}", f"{obj['color']} {other}")
    f = caption_facts(wrong, scene)
    assert f["true"] == 5 and not f["all_true"]
    left, right = sorted(scene, key=lambda o: o["center"][0])[:2]
    swapped = f"a {right['color']} {right['shape']} and a {left['color']} {left['shape']}"
    assert not caption_facts(swapped, scene)["in_order"]
    assert not caption_facts("", scene)["all_true"]


def test_objects_distinct_non_overlapping_and_coloured_in_pixels(ds):
    r = 32 / 10
    for scene, image in zip(ds.scenes, ds.images):
        assert sorted(o["color"] for o in scene) == sorted(CLEVR_COLORS)
        assert {o["shape"] for o in scene} <= set(CLEVR_SHAPES)
        for a in scene:
            x, y = a["center"]
            pixel = image[:, round(y), round(x)]
            torch.testing.assert_close(pixel, torch.tensor(CLEVR_COLORS[a["color"]]))
            for b in scene:
                if a is not b:
                    gap = max(abs(x - b["center"][0]), abs(y - b["center"][1]))
                    assert gap > 2 * r + 1
        # every non-white pixel has one of the scene's colours
        colours = image.reshape(3, -1).T.unique(dim=0).tolist()
        allowed = [list(c) for c in CLEVR_COLORS.values()] + [[1.0, 1.0, 1.0]]
        assert all(any(np.allclose(c, a) for a in allowed) for c in colours)
    shapes = {o["shape"] for s in ds.scenes for o in s}
    assert shapes == set(CLEVR_SHAPES)  # both shapes occur


def test_square_and_circle_pixels():
    ds = make_sort_of_clevr(5, image_size=40, seed=0)
    for scene, image in zip(ds.scenes, ds.images):
        for o in scene:
            x, y = o["center"]
            colour = torch.tensor(CLEVR_COLORS[o["color"]])[:, None, None]
            patch = (image == colour).all(0)  # (S, S) pixels of this colour
            rows, cols = patch.any(1).nonzero().flatten(), patch.any(0).nonzero().flatten()
            box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            side = int(rows.max() - rows.min() + 1)  # half-size r = 4: 8 or 9 pixels
            assert 8 <= side <= 9 if o["shape"] == "square" else 7 <= side <= 9, (o, side)
            n = int(patch.sum())
            if o["shape"] == "square":  # fills its bounding box
                assert n == box, (o, n, box)
            else:  # a disc leaves the corners empty: about pi/4 of the box
                assert 0.6 * box < n < 0.9 * box, (o, n, box)


def test_determinism_and_seed_changes_data():
    a, b = make_sort_of_clevr(6, 32, seed=11), make_sort_of_clevr(6, 32, seed=11)
    assert torch.equal(a.images, b.images) and a.questions == b.questions
    assert a.scenes == b.scenes and a.captions == b.captions
    c = make_sort_of_clevr(6, 32, seed=12)
    assert c.scenes != a.scenes


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "n must be a positive int"),
    (dict(n=-3), "n must be a positive int"),
    (dict(n=2.5), "n must be a positive int"),
    (dict(n=2, image_size=MIN_IMAGE_SIZE - 1), "too small"),
    (dict(n=2, questions_per_type=7), "at most 6"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_sort_of_clevr(**kwargs)


def test_smallest_size_works():
    ds = make_sort_of_clevr(20, image_size=MIN_IMAGE_SIZE, seed=0)
    assert ds.images.shape[-1] == MIN_IMAGE_SIZE
