"""The runs chapter 12 quotes but does not make: longer trainings, checkpoint by checkpoint.

Same data, frozen stem and optimiser as the chapter (Adam, learning rate 2e-3, batches of
64), with the per-type test accuracy every ``--every`` steps:

* the Relation Network with the bag of words and with the LSTM (how many steps each
  needs before it finds the named object);
* co-attention with the LSTM, for much longer than the chapter trains it;
* FiLM with the bag of words (why the chapter does not train it);
* the single-vector captioner trained twice as long as in the chapter.

    OMP_NUM_THREADS=1 python benchmarks/ch12_extra.py --seed 0
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import sacrebleu
import torch
import torch.nn.functional as F
from torch import nn

from mmbook.data import (
    CLEVR_ANSWERS,
    CLEVR_COLORS,
    CLEVR_SHAPES,
    QUESTION_TYPES,
    batch_loader,
    blind_caption,
    caption_facts,
    colour_blind_answer,
    make_sort_of_clevr,
)
from mmbook.encoders import ImageEncoder
from mmbook.models.captioning import CaptionModel, caption_loss
from mmbook.models.vqa import CoAttentionVQA, FiLMVQA, RelationNetworkVQA
from mmbook.text import Vocabulary, tokenize
from mmbook.train import Trainer
from mmbook.utils import set_seed

S, G = 32, 8


def cell_targets(ds):
    """As in the chapter: per cell, the colour (0 = none) and shape of the object there."""
    colors = list(CLEVR_COLORS)
    y = torch.zeros(len(ds.scenes), 2, G, G, dtype=torch.long)
    for i, scene in enumerate(ds.scenes):
        for o in scene:
            gx, gy = (int(c * G / S) for c in o["center"])
            y[i, :, gy, gx] = torch.tensor([colors.index(o["color"]) + 1,
                                            CLEVR_SHAPES.index(o["shape"]) + 1])
    return y


def cell_loss(logits, y):
    w7, w3 = (torch.tensor([0.1] + [1.0] * k) for k in (6, 2))
    return (F.cross_entropy(logits[:, :7], y[:, 0], weight=w7)
            + F.cross_entropy(logits[:, 7:], y[:, 1], weight=w3))


def chapter_data(seed: int):
    """The chapter's data and frozen-stem features for one seed."""
    train = make_sort_of_clevr(1000, image_size=S, seed=seed, questions_per_type=2)
    test = make_sort_of_clevr(400, image_size=S, seed=10_000 + seed, questions_per_type=1)
    set_seed(seed)
    stem = nn.Sequential(ImageEncoder(3, channels=(16, 32), image_size=S).features,
                         nn.Conv2d(32, 10, 1))
    Trainer(stem, loss_fn=cell_loss, lr=5e-3, max_epochs=5, batch_size=32, progress=False,
            seed=seed).fit((train.images, cell_targets(train)))
    stem.eval()
    with torch.no_grad():
        def feats(images):
            lg = stem(images)
            return torch.cat([lg[:, :7].softmax(1), lg[:, 7:].softmax(1)], 1)
        return train, test, {"train": feats(train.images), "test": feats(test.images)}


def vqa_curve(name, make, seed, train, test, feats, steps, every):
    vocab = Vocabulary.build(train.questions)
    data = {k: (feats[k][ds.image_index], *vocab.encode_batch(ds.questions), ds.targets)
            for k, ds in (("train", train), ("test", test))}
    types = np.array(test.types)
    set_seed(seed)
    model = make(len(vocab))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loader = batch_loader(data["train"], 64, seed=seed)
    per_epoch = len(loader)
    done, start = 0, time.process_time()
    while done < steps:
        epochs = max(1, min(every, steps - done) // per_epoch)
        Trainer(model, opt, max_epochs=epochs, progress=False, seed=seed).fit(loader)
        done += epochs * per_epoch
        model.eval()
        with torch.no_grad():
            ok = (model(*data["test"][:3]).argmax(1) == test.targets).numpy()
        print(f"{name} seed {seed} step {done} cpu {time.process_time() - start:.0f} s  "
              + " ".join(f"{t} {ok[types == t].mean():.3f}" for t in QUESTION_TYPES),
              flush=True)


def captions(seed, train, test, feats, epochs):
    vocab = Vocabulary.build(train.captions)
    ids, _ = vocab.encode_batch(train.captions, add_bos=True, add_eos=True)
    set_seed(seed)
    model = CaptionModel(10, G, len(vocab), embed_dim=32, hidden_size=128)
    Trainer(model, loss_fn=caption_loss, lr=1e-2, max_epochs=epochs, batch_size=50,
            progress=False, seed=seed).fit((feats["train"], ids[:, :-1], ids[:, 1:]))
    model.eval()
    refs = [" ".join(tokenize(c)) for c in test.captions]
    rng = np.random.default_rng(seed)
    for name, hyps in (("single vector", [vocab.decode(s) for s in model.greedy(feats["test"])]),
                       ("blind majority", [" ".join(tokenize(blind_caption(s, "right",
                                                                           "majority", rng)))
                                           for s in test.scenes])):
        facts = [caption_facts(h, s) for h, s in zip(hyps, test.scenes)]
        print(f"{name} captions, {epochs} epochs, seed {seed}: BLEU "
              f"{sacrebleu.corpus_bleu(hyps, [refs]).score:.1f}, facts true "
              f"{np.mean([f['true'] / max(f['facts'], 1) for f in facts]):.3f}, all true "
              f"{np.mean([f['all_true'] for f in facts]):.3f}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=500)
    args = parser.parse_args(argv)
    train, test, feats = chapter_data(args.seed)
    blind = np.array([colour_blind_answer(test.scenes[k], t, S) == a for k, t, a in
                      zip(test.image_index.tolist(), test.types, test.answers)])
    types = np.array(test.types)
    print("colour-blind answer " + " ".join(f"{t} {blind[types == t].mean():.3f}"
                                            for t in QUESTION_TYPES), flush=True)
    A = len(CLEVR_ANSWERS)
    runs = {
        "RN, bag of words": (lambda V: RelationNetworkVQA(10, G, V, A, question_encoder="bow"),
                             4000),
        "RN, LSTM": (lambda V: RelationNetworkVQA(10, G, V, A, question_encoder="lstm"), 4000),
        "FiLM, bag of words": (lambda V: FiLMVQA(10, G, V, A, channels=24,
                                                 question_encoder="bow"), 2000),
        "co-attention, LSTM": (lambda V: CoAttentionVQA(10, G, V, A, question_encoder="lstm"),
                               6000),
    }
    for name, (make, steps) in runs.items():
        vqa_curve(name, make, args.seed, train, test, feats, steps, args.every)
    captions(args.seed, train, test, feats, epochs=20)


if __name__ == "__main__":
    main()
