"""Sort-of-CLEVR (Santoro et al., 2017), generated, with English questions and captions.

Each scene is an image of six objects of distinct colours, each a square or a circle, at
non-overlapping positions on a white background. Every scene gets questions of six types,
three **non-relational** (about one object) and three **relational** (about an object's
relation to the others), each an English sentence with a one-word answer:

=========  ==============  =====================================================  =========
type       kind            question (for the red object)                          answers
=========  ==============  =====================================================  =========
shape      non-relational  What is the shape of the red object?                   square, circle
left       non-relational  Is the red object on the left?                         yes, no
top        non-relational  Is the red object at the top?                          yes, no
closest    relational      What is the shape of the object closest to the ...?    square, circle
furthest   relational      What is the shape of the object furthest from ...?     square, circle
count      relational      How many objects have the same shape as the ...?       one ... six
=========  ==============  =====================================================  =========

"On the left" means the centre's x < S/2 and "at the top" its y < S/2 (y grows
downwards, as in an image); distances are between centres; the count includes the object
itself. Each scene also has a caption that names every object, left to right:
"a red circle, a blue square, ... and an orange square, from left to right."

The original generator (Santoro et al.) draws 75-pixel images and encodes questions as
one-hot vectors; here questions and captions are sentences, so a model must read them
(see :mod:`mmbook.text`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..utils import check_choice, check_positive_int
from .base import ModalityDataset

__all__ = [
    "make_sort_of_clevr", "SortOfCLEVR", "CLEVR_COLORS", "CLEVR_SHAPES", "QUESTION_TYPES",
    "QUESTION_KINDS", "CLEVR_ANSWERS", "scene_answer", "scene_caption", "caption_facts",
    "colour_blind_answer", "blind_caption",
    "question_text", "render_scene",
    "MIN_IMAGE_SIZE",
]

#: colour name -> RGB in [0, 1] (the original set of Santoro et al.)
CLEVR_COLORS = {
    "red": (1.0, 0.0, 0.0), "green": (0.0, 0.8, 0.0), "blue": (0.0, 0.0, 1.0),
    "orange": (1.0, 0.6, 0.0), "gray": (0.5, 0.5, 0.5), "yellow": (0.9, 0.9, 0.0),
}
CLEVR_SHAPES = ("square", "circle")
#: question type -> kind
QUESTION_TYPES = {"shape": "non-relational", "left": "non-relational", "top": "non-relational",
                  "closest": "relational", "furthest": "relational", "count": "relational"}
QUESTION_KINDS = ("non-relational", "relational")
_NUMBERS = ("one", "two", "three", "four", "five", "six")
CLEVR_ANSWERS = ("yes", "no", *CLEVR_SHAPES, *_NUMBERS)
_TEMPLATES = {
    "shape": "What is the shape of the {} object?",
    "left": "Is the {} object on the left?",
    "top": "Is the {} object at the top?",
    "closest": "What is the shape of the object closest to the {} object?",
    "furthest": "What is the shape of the object furthest from the {} object?",
    "count": "How many objects have the same shape as the {} object?",
}
#: the smallest image side that holds six objects of half-size S/10 reliably
MIN_IMAGE_SIZE = 20
_MAX_TRIES = 1000


def _half_size(image_size: int) -> float:
    """An object's half-width r: a square spans 2r + 1 pixels, a circle has radius r."""
    return image_size / 10.0


def question_text(qtype: str, color: str) -> str:
    """The English question of type ``qtype`` about the object of colour ``color``.

    Examples:
        >>> question_text("closest", "red")
        'What is the shape of the object closest to the red object?'
    """
    check_choice(qtype, tuple(QUESTION_TYPES), "qtype")
    check_choice(color, tuple(CLEVR_COLORS), "color")
    return _TEMPLATES[qtype].format(color)


def scene_answer(scene: Sequence[dict], qtype: str, color: str, image_size: int) -> str:
    """The answer to a question, computed from the scene description alone.

    Args:
        scene: the objects, dicts with ``color``, ``shape`` and ``center`` ``(x, y)`` in pixels.
        qtype: a key of :data:`QUESTION_TYPES`.
        color: the colour the question names.
        image_size: S, for "left" (x < S/2) and "top" (y < S/2).

    Examples:
        >>> scene = [{"color": "red", "shape": "circle", "center": (5.0, 5.0)},
        ...          {"color": "blue", "shape": "square", "center": (20.0, 8.0)},
        ...          {"color": "gray", "shape": "circle", "center": (12.0, 25.0)}]
        >>> scene_answer(scene, "closest", "red", 32), scene_answer(scene, "count", "red", 32)
        ('square', 'two')
    """
    check_choice(qtype, tuple(QUESTION_TYPES), "qtype")
    by_color = {o["color"]: o for o in scene}
    if color not in by_color:
        raise ValueError(f"color {color!r} is not in the scene (colours {sorted(by_color)})")
    obj = by_color[color]
    x, y = obj["center"]
    if qtype == "shape":
        return obj["shape"]
    if qtype in ("left", "top"):
        coord = x if qtype == "left" else y
        return "yes" if coord < image_size / 2 else "no"
    if qtype == "count":
        return _NUMBERS[sum(o["shape"] == obj["shape"] for o in scene) - 1]
    others = [o for o in scene if o is not obj]
    dist = [math.dist(obj["center"], o["center"]) for o in others]
    pick = int(np.argmin(dist)) if qtype == "closest" else int(np.argmax(dist))
    return others[pick]["shape"]


def colour_blind_answer(scene: Sequence[dict], qtype: str, image_size: int) -> str:
    """The best answer of a reader that sees the scene and the question's type but not the
    colour: the answer that is right for the most objects of the scene.

    Not knowing which of the six objects is meant, it answers the question about each of
    them (:func:`scene_answer`) and gives the most frequent answer (ties go to the answer
    that comes first in :data:`CLEVR_ANSWERS`). Each colour being equally likely to be
    asked about, no colour-blind answer is right more often. For "shape" this is the
    scene's majority shape; for "how many" that shape's count; for "left" and "top"
    whether most objects are on the left (at the top); for "closest" and "furthest" the
    shape that is closest to (furthest from) most objects, which beats the majority shape.

    Examples:
        >>> scene = [{"color": c, "shape": s, "center": (4.0 + 5 * i, 4.0)} for i, (c, s)
        ...          in enumerate(zip(CLEVR_COLORS, ["circle"] * 4 + ["square"] * 2))]
        >>> [colour_blind_answer(scene, t, 32) for t in ("shape", "count", "left")]
        ['circle', 'four', 'yes']
    """
    check_choice(qtype, tuple(QUESTION_TYPES), "qtype")
    votes = [scene_answer(scene, qtype, o["color"], image_size) for o in scene]
    return max(sorted(set(votes), key=CLEVR_ANSWERS.index), key=votes.count)


def scene_caption(scene: Sequence[dict]) -> str:
    """The caption of a scene: every object, left to right.

    Examples:
        >>> scene_caption([{"color": "orange", "shape": "square", "center": (9.0, 3.0)},
        ...                {"color": "red", "shape": "circle", "center": (2.0, 7.0)}])
        'A red circle and an orange square, from left to right.'
    """
    objs = sorted(scene, key=lambda o: tuple(o["center"]))
    phrases = [("an " if o["color"][0] in "aeiou" else "a ") + f"{o['color']} {o['shape']}"
               for o in objs]
    listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return listed[0].upper() + listed[1:] + ", from left to right."


def blind_caption(scene: Sequence[dict], order: str = "right", shapes: str = "random",
                  rng: np.random.Generator | None = None) -> str:
    """A caption written without seeing which shape each object has: a baseline.

    It names the six colours, in their true left-to-right order (``order="right"``, as if
    the positions and colours were read) or in a random order (``"shuffled"``), each with
    a random shape (``shapes="random"``, every fact a coin flip) or with the scene's
    majority shape (``"majority"``, square in a 3-3 tie: what a reader that counts the
    shapes but cannot bind them to colours would write).
    It has the template's words, so it scores a high BLEU; :func:`caption_facts` tells it
    apart from a caption that read the image.

    Examples:
        >>> scene = [{"color": "red", "shape": "circle", "center": (2.0, 7.0)},
        ...          {"color": "blue", "shape": "circle", "center": (9.0, 3.0)},
        ...          {"color": "gray", "shape": "square", "center": (5.0, 3.0)}]
        >>> blind_caption(scene, "right", "majority")
        'A red circle, a gray circle and a blue circle, from left to right.'
    """
    check_choice(order, ("right", "shuffled"), "order")
    check_choice(shapes, ("random", "majority"), "shapes")
    rng = np.random.default_rng(0) if rng is None else rng
    objs = sorted(scene, key=lambda o: tuple(o["center"]))
    colors = [o["color"] for o in objs]
    if order == "shuffled":
        colors = [colors[i] for i in rng.permutation(len(colors))]
    if shapes == "random":
        drawn = [CLEVR_SHAPES[i] for i in rng.integers(0, len(CLEVR_SHAPES), len(objs))]
    else:
        counts = [sum(o["shape"] == sh for o in scene) for sh in CLEVR_SHAPES]
        drawn = [CLEVR_SHAPES[int(np.argmax(counts))]] * len(objs)  # the first one in a tie
    return scene_caption([{"color": c, "shape": sh, "center": o["center"]}
                          for c, sh, o in zip(colors, drawn, objs)])


def caption_facts(caption: str, scene: Sequence[dict]) -> dict:
    """Check a (generated) caption against its scene.

    A *fact* is a colour word followed by a shape word ("red circle"). The caption is
    read left to right; the result counts the facts, the true ones (that colour is in the
    scene with that shape), whether the colours named are distinct and in left-to-right
    order, and whether all six objects are named.

    Returns:
        ``{"facts": int, "true": int, "in_order": bool, "complete": bool,
        "all_true": bool}``; ``all_true`` means at least one fact, every fact true, and
        the order right.

    Examples:
        >>> scene = [{"color": "red", "shape": "circle", "center": (2.0, 7.0)},
        ...          {"color": "blue", "shape": "square", "center": (9.0, 3.0)}]
        >>> caption_facts("a red circle and a blue square", scene)["all_true"]
        True
        >>> caption_facts("a blue square and a red circle", scene)["in_order"]
        False
    """
    words = caption.lower().replace(",", " ").replace(".", " ").split()
    by_color = {o["color"]: o for o in scene}
    facts = [(c, s) for c, s in zip(words, words[1:]) if c in CLEVR_COLORS and s in CLEVR_SHAPES]
    true = sum(c in by_color and by_color[c]["shape"] == s for c, s in facts)
    named = [c for c, _ in facts]
    xs = [by_color[c]["center"][0] for c in named if c in by_color]
    in_order = len(set(named)) == len(named) and xs == sorted(xs)
    return {"facts": len(facts), "true": true, "in_order": in_order,
            "complete": set(named) == set(by_color),
            "all_true": bool(facts) and true == len(facts) and in_order}


# ----------------------------------------------------------------------------- scenes
def _place(rng: np.random.Generator, image_size: int, k: int) -> np.ndarray | None:
    """``k`` centres whose bounding squares do not touch: every two centres are more than
    2r + 1 pixels apart along x or along y (Chebyshev distance), so objects never overlap."""
    r = _half_size(image_size)
    gap = 2 * r + 1
    centers: list[tuple[float, float]] = []
    for _ in range(_MAX_TRIES // 50):
        for x, y in rng.uniform(r, image_size - 1 - r, size=(50, 2)).round(2).tolist():
            if all(max(abs(x - a), abs(y - b)) > gap for a, b in centers):
                centers.append((x, y))
                if len(centers) == k:
                    return np.array(centers)
    return None


def _scene(rng: np.random.Generator, image_size: int) -> list[dict]:
    for _ in range(_MAX_TRIES):
        centers = _place(rng, image_size, len(CLEVR_COLORS))
        if centers is not None and len(set(centers[:, 0])) == len(centers):
            break
    else:  # pragma: no cover - guarded by MIN_IMAGE_SIZE
        raise ValueError(f"image_size={image_size} is too small to place "
                         f"{len(CLEVR_COLORS)} non-overlapping objects")
    shapes = rng.integers(0, len(CLEVR_SHAPES), size=len(CLEVR_COLORS))
    return [{"color": color, "shape": CLEVR_SHAPES[s], "center": (float(x), float(y))}
            for color, s, (x, y) in zip(CLEVR_COLORS, shapes, centers)]


def render_scene(scene: Sequence[dict], image_size: int) -> np.ndarray:
    """Draw a scene: white background, squares ``max(|dx|, |dy|) <= r`` and discs
    ``dx^2 + dy^2 <= r^2`` with r = S/10, over integer pixel coordinates.

    Shape:
        - output: :math:`(3, S, S)` float32 in [0, 1]

    Examples:
        >>> img = render_scene([{"color": "red", "shape": "square", "center": (5, 5)}], 20)
        >>> img.shape, img[:, 5, 5].tolist(), img[:, 15, 15].tolist()   # [channel, y, x]
        ((3, 20, 20), [1.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    """
    r = _half_size(image_size)
    img = np.ones((3, image_size, image_size), dtype=np.float32)
    ys, xs = np.mgrid[0:image_size, 0:image_size]
    for obj in scene:
        dx, dy = xs - obj["center"][0], ys - obj["center"][1]
        if obj["shape"] == "square":
            inside = np.maximum(np.abs(dx), np.abs(dy)) <= r
        else:
            inside = dx ** 2 + dy ** 2 <= r ** 2
        img[:, inside] = np.asarray(CLEVR_COLORS[obj["color"]], dtype=np.float32)[:, None]
    return img


# ----------------------------------------------------------------------------- dataset
class _Pairs(torch.utils.data.Dataset):
    """Items ``(question, target)``: the question alone (a language-prior baseline)."""

    def __init__(self, questions, targets):
        self.questions, self.targets = questions, targets

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, i):
        return self.questions[i], self.targets[i]


class SortOfCLEVR(ModalityDataset):
    """Sort-of-CLEVR questions: items ``(image, question, target)``.

    Attributes:
        images: float32 ``(n, 3, S, S)`` in [0, 1], one per scene.
        scenes: ``scenes[i]`` lists the objects of scene ``i``, dicts with ``color``,
            ``shape`` and ``center`` ``(x, y)`` in pixels (x to the right, y downwards).
        captions: ``captions[i]`` describes scene ``i`` (see :func:`scene_caption`).
        questions: the English questions (``len(ds)`` of them).
        answers: their one-word answers; ``targets`` int64 ``(len(ds),)`` indexes
            :data:`CLEVR_ANSWERS`.
        types, kinds: each question's type (``"closest"`` ...) and kind
            (``"non-relational"`` or ``"relational"``).
        colors: the colour each question names.
        image_index: int64 ``(len(ds),)``: the scene each question is about.
        image_size: S.

    Shape:
        ``ds[i]`` is ``(image (3, S, S), question str, target ())``; use
        :class:`mmbook.text.Vocabulary` to turn the questions into token ids.

    Examples:
        >>> ds = make_sort_of_clevr(2, image_size=32, seed=0)
        >>> image, question, target = ds[0]
        >>> tuple(image.shape), CLEVR_ANSWERS[int(target)] == ds.answers[0]
        ((3, 32, 32), True)
        >>> int(ds.image_index[0]), len(ds.scenes[0])
        (0, 6)
    """

    modalities = ("image", "question")
    arity = (1, 1)
    num_classes = len(CLEVR_ANSWERS)
    answer_names = CLEVR_ANSWERS

    def __init__(self, images, scenes, captions, questions, answers, types, colors,
                 image_index, image_size: int):
        self.images, self.scenes, self.captions = images, scenes, captions
        self.questions, self.answers, self.types, self.colors = questions, answers, types, colors
        self.kinds = [QUESTION_TYPES[t] for t in types]
        self.targets = torch.tensor([CLEVR_ANSWERS.index(a) for a in answers], dtype=torch.int64)
        self.image_index, self.image_size = image_index, image_size

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, i):
        return self.images[self.image_index[i]], self.questions[i], self.targets[i]

    def __repr__(self) -> str:
        return (f"SortOfCLEVR(scenes={len(self.scenes)}, questions={len(self)}, "
                f"image_size={self.image_size})")

    def modality(self, name: str) -> torch.utils.data.Dataset:
        """One modality alone: ``"image"`` (items ``(image, target)``) or ``"question"``
        (items ``(question, target)``)."""
        check_choice(name, self.modalities, "name")
        if name == "image":
            return torch.utils.data.TensorDataset(self.images[self.image_index], self.targets)
        return _Pairs(self.questions, self.targets)

    def kind_mask(self, kind: str) -> np.ndarray:
        """Bool ``(len(ds),)``: the questions of one kind (or one type)."""
        if kind in QUESTION_TYPES:
            return np.array([t == kind for t in self.types])
        check_choice(kind, QUESTION_KINDS, "kind")
        return np.array([k == kind for k in self.kinds])


def make_sort_of_clevr(n: int, image_size: int = 64, seed: int = 0,
                       questions_per_type: int = 1) -> SortOfCLEVR:
    """Generate ``n`` Sort-of-CLEVR scenes with questions, answers and captions.

    Every scene has the six colours of :data:`CLEVR_COLORS`, each a square or a circle
    drawn at random, centres uniform and more than 2r + 1 pixels apart along x or y (so
    no two objects touch) with distinct x (so "left to right" is well defined). Each scene gets
    ``questions_per_type`` questions of each of the six types, about distinct colours
    drawn at random, so half the questions are relational.

    Args:
        n: number of scenes (> 0).
        image_size: S, the image side in pixels (>= :data:`MIN_IMAGE_SIZE`); objects have
            half-size S/10, so they scale with the image.
        seed: seed of the generator; the same arguments give the same data set.
        questions_per_type: questions of each type per scene (1 to 6).

    Returns:
        a :class:`SortOfCLEVR` with ``6 * questions_per_type * n`` questions.

    Raises:
        ValueError: ``n`` or ``questions_per_type`` out of range, or ``image_size`` too small
            to hold six objects.

    Examples:
        >>> ds = make_sort_of_clevr(2, image_size=32, seed=0)
        >>> len(ds), tuple(ds.images.shape), ds.num_classes
        (12, (2, 3, 32, 32), 10)
        >>> ds.questions[0], ds.answers[0], ds.kinds[0]  # doctest: +SKIP
    """
    n = check_positive_int(n, "n")
    image_size = check_positive_int(image_size, "image_size")
    questions_per_type = check_positive_int(questions_per_type, "questions_per_type")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size={image_size} is too small to hold six non-overlapping "
                         f"objects of half-size S/10: use image_size >= {MIN_IMAGE_SIZE}")
    if questions_per_type > len(CLEVR_COLORS):
        raise ValueError(f"questions_per_type must be at most {len(CLEVR_COLORS)} (one per "
                         f"colour), got {questions_per_type}")
    rng = np.random.default_rng(seed)
    colors = list(CLEVR_COLORS)
    scenes, rows = [], []
    for i in range(n):
        scene = _scene(rng, image_size)
        scenes.append(scene)
        for qtype in QUESTION_TYPES:
            for c in rng.choice(len(colors), size=questions_per_type, replace=False):
                rows.append((i, qtype, colors[c]))
    images = torch.from_numpy(np.stack([render_scene(s, image_size) for s in scenes]))
    questions = [question_text(t, c) for _, t, c in rows]
    answers = [scene_answer(scenes[i], t, c, image_size) for i, t, c in rows]
    return SortOfCLEVR(images, scenes, [scene_caption(s) for s in scenes], questions,
                       answers, [t for _, t, _ in rows], [c for _, _, c in rows],
                       torch.tensor([i for i, _, _ in rows], dtype=torch.int64), image_size)
