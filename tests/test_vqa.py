"""VQA and captioning models of chapter 12."""

import pytest
import torch
import torch.nn.functional as F

from mmbook.models.captioning import AttentionCaptionModel, CaptionModel, caption_loss
from mmbook.models.vqa import (
    CoAttentionVQA,
    ConcatVQA,
    FiLMVQA,
    ImageOnlyVQA,
    ObjectMLPVQA,
    QuestionOnlyVQA,
    RelationNetworkVQA,
    encode_questions,
    grid_coordinates,
    object_cells,
)
from mmbook.text import LSTMTextEncoder
from mmbook.utils import lengths_to_mask

C, G, V, A = 5, 8, 15, 10


def _inputs(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, C, G, G, generator=g)
    lengths = torch.tensor([4, 3, 4, 2, 4, 3][:n])
    ids = torch.randint(4, V, (n, 4), generator=g)
    ids[~lengths_to_mask(lengths, 4)] = 0
    ids[3] = ids[0]  # repeated questions, as in Sort-of-CLEVR
    lengths[3] = lengths[0]
    return features, ids, lengths


MODELS = {
    "question only": lambda: QuestionOnlyVQA(V, A),
    "image only": lambda: ImageOnlyVQA(C, G, A),
    "concat": lambda: ConcatVQA(C, G, V, A),
    "film": lambda: FiLMVQA(C, G, V, A),
    "coattention": lambda: CoAttentionVQA(C, G, V, A),
    "relation network": lambda: RelationNetworkVQA(C, G, V, A),
    "object mlp": lambda: ObjectMLPVQA(C, G, V, A),
    "coattention, bag of words": lambda: CoAttentionVQA(C, G, V, A, question_encoder="bow"),
    "relation network, bag of words": lambda: RelationNetworkVQA(C, G, V, A,
                                                                 question_encoder="bow"),
}


@pytest.mark.parametrize("name", MODELS)
def test_shapes_and_what_each_model_reads(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    features, ids, lengths = _inputs()
    out = model(features, ids, lengths)
    assert out.shape == (6, A) and torch.isfinite(out).all()
    other_image = model(torch.randn_like(features), ids, lengths)
    other_q = model(features, ids.roll(1, dims=0), lengths.roll(1, dims=0))
    reads_image = not torch.allclose(out, other_image)
    reads_question = not torch.allclose(out, other_q)
    assert reads_image == (name != "question only")
    assert reads_question == (name != "image only")


@pytest.mark.parametrize("name", [n for n in MODELS if n != "question only"])
def test_wrong_feature_map_is_refused(name):
    model = MODELS[name]()
    features, ids, lengths = _inputs()
    with pytest.raises(ValueError, match="features"):
        model(features[:, :, :4, :4], ids, lengths)


@pytest.mark.parametrize("name", MODELS)
def test_lengths_as_a_list_give_the_same_answer(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    features, ids, lengths = _inputs()
    torch.testing.assert_close(model(features, ids, lengths.tolist()),
                               model(features, ids, lengths))


@pytest.mark.parametrize("name", [n for n in MODELS if n != "image only"])
def test_bad_lengths_are_refused_by_name(name):
    model = MODELS[name]()
    features, ids, lengths = _inputs()
    with pytest.raises(ValueError, match="lengths"):
        model(features, ids, lengths.tolist()[:3])
    with pytest.raises(ValueError, match="lengths"):
        model(features, ids, [0] * 6)


@pytest.mark.parametrize("name", MODELS)
def test_one_batch_can_be_learned(name):
    torch.manual_seed(0)
    model = MODELS[name]()
    features, ids, lengths = _inputs()
    y = torch.tensor([0, 1, 2, 0, 4, 5])
    if name == "image only":  # its input must tell the rows apart: rows 0 and 3 differ
        y = torch.tensor([0, 1, 2, 3, 4, 5])
    if name == "question only":  # rows 0 and 3 ask the same question
        y = torch.tensor([0, 1, 2, 0, 4, 5])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        loss = F.cross_entropy(model(features, ids, lengths), y)
        loss.backward()
        opt.step()
    assert (model.eval()(features, ids, lengths).argmax(1) == y).all(), name


def test_encode_questions_equals_encoding_every_row_with_gradients():
    torch.manual_seed(0)
    enc = LSTMTextEncoder(V, 4, 6)
    _, ids, lengths = _inputs()
    shared = encode_questions(enc, ids, lengths)
    every = enc(ids, lengths)
    torch.testing.assert_close(shared, every)
    g1 = torch.autograd.grad(shared.square().sum(), enc.lstm.weight_hh_l0)[0]
    g2 = torch.autograd.grad(every.square().sum(), enc.lstm.weight_hh_l0)[0]
    torch.testing.assert_close(g1, g2)
    states, mask = encode_questions(enc, ids, lengths, return_sequence=True)
    ref_states, ref_mask = enc(ids, lengths, return_sequence=True)
    torch.testing.assert_close(states, ref_states)
    assert torch.equal(mask, ref_mask)


def test_relation_network_pairs_equal_the_concatenation():
    torch.manual_seed(0)
    rn = RelationNetworkVQA(3, G, V, A, hidden_size=5)
    o = torch.randn(2, 4, 5)  # (N, K, C + 2)
    q = torch.randn(2, 5)
    got = rn.pair_hidden(o, q)
    K = 4
    pairs = torch.cat([o[:, :, None].expand(-1, K, K, -1), o[:, None].expand(-1, K, K, -1),
                       q[:, None, None].expand(-1, K, K, -1)], dim=-1)  # [o_i; o_j; q]
    torch.testing.assert_close(got, torch.relu(rn.g1(pairs)))


def test_object_cells_are_the_least_empty_cells_with_their_coordinates():
    features = torch.rand(3, C, G, G, generator=torch.Generator().manual_seed(0))
    objects, cells = object_cells(features, num_objects=6, empty_channel=0)
    xy = grid_coordinates(G)
    for n in range(3):  # the naive way: sort the cells by p(empty), keep 6, raster order
        empty = features[n, 0].flatten().tolist()
        want = sorted(sorted(range(G * G), key=lambda k: empty[k])[:6])
        assert cells[n].tolist() == want
        for k, cell in enumerate(want):
            gy, gx = divmod(cell, G)
            torch.testing.assert_close(objects[n, k], torch.cat([features[n, :, gy, gx],
                                                                 xy[cell]]))
    with pytest.raises(ValueError, match="num_objects"):
        object_cells(features, num_objects=G * G + 1)
    with pytest.raises(ValueError, match="empty_channel"):
        object_cells(features, 6, empty_channel=C)


def test_relation_network_is_invariant_to_the_order_of_the_objects_and_the_mlp_is_not():
    torch.manual_seed(0)
    features, ids, lengths = _inputs()
    models = {"rn": RelationNetworkVQA(C, G, V, A), "mlp": ObjectMLPVQA(C, G, V, A)}
    o = models["rn"].objects(features)
    q = encode_questions(models["rn"].question, ids, lengths)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    rn = models["rn"]
    summed = rn.f(rn.g2(rn.pair_hidden(o, q)).sum((1, 2)))
    permuted = rn.f(rn.g2(rn.pair_hidden(o[:, perm], q)).sum((1, 2)))
    torch.testing.assert_close(summed, permuted)
    torch.testing.assert_close(summed, rn(features, ids, lengths))
    mlp = models["mlp"]
    q = encode_questions(mlp.question, ids, lengths)
    slots = mlp.mlp(torch.cat([o.flatten(1), q], 1))
    torch.testing.assert_close(slots, mlp(features, ids, lengths))
    assert not torch.allclose(slots, mlp.mlp(torch.cat([o[:, perm].flatten(1), q], 1)))


def test_film_applies_gamma_and_beta():
    torch.manual_seed(0)
    film = FiLMVQA(C, G, V, A, num_blocks=1).eval()
    features, ids, lengths = _inputs()
    gb = film.film_parameters(ids, lengths)
    assert gb.shape == (6, 1, 2, 32)
    with torch.no_grad():  # gamma = 0, beta = 0 switches the block off: x stays the stem's
        film.film.weight.zero_()
        film.film.bias.zero_()
        x = film.down(features)
        x = film.stem(torch.cat([x, film.coords.expand(6, -1, -1, -1)], 1))
        want = film.head(film.out(x).amax(dim=(2, 3)))
        torch.testing.assert_close(film(features, ids, lengths), want)


@pytest.mark.parametrize("encoder", ["lstm", "bow"])
def test_coattention_weights_are_distributions_over_the_cells_and_words(encoder):
    torch.manual_seed(0)
    model = CoAttentionVQA(C, G, V, A, question_encoder=encoder)
    features, ids, lengths = _inputs()
    model(features, ids, lengths)
    a_v, a_q, affinity = model.last_weights, model.last_word_weights, model.last_affinity
    assert a_v.shape == (6, G * G) and a_q.shape == (6, 4) and affinity.shape == (6, 4, G * G)
    torch.testing.assert_close(a_v.sum(-1), torch.ones(6))
    torch.testing.assert_close(a_q.sum(-1), torch.ones(6))
    padding = ~lengths_to_mask(lengths, 4)
    assert (a_q[padding] == 0).all() and (affinity[padding] == 0).all()
    if encoder == "bow":  # the words are the embeddings themselves (Lu et al.'s word level)
        words, _ = model.question(ids, lengths, return_sequence=True)
        torch.testing.assert_close(words, model.question.embedding(ids) * ~padding[..., None])


# ----------------------------------------------------------------------------- captioning
CAPTIONERS = {
    "single vector": lambda: CaptionModel(C, G, vocab_size=12, embed_dim=6, hidden_size=10,
                                          image_features=8),
    "attention": lambda: AttentionCaptionModel(C, G, vocab_size=12, embed_dim=6,
                                               hidden_size=10, annotation_size=8,
                                               attention_size=7),
}


def _caption_model(seed=0, kind="single vector"):
    torch.manual_seed(seed)
    return CAPTIONERS[kind]().eval()


def _sequence_logp(model, features, seqs):
    """Sum of log p of the words up to and including <eos>, by teacher forcing."""
    bos = torch.full((len(seqs), 1), model.bos_index)
    logp = torch.log_softmax(model(features, torch.cat([bos, seqs[:, :-1]], 1)), -1)
    word_logp = logp.gather(-1, seqs[..., None])[..., 0]  # (N, T)
    ended = (seqs == model.eos_index).cumsum(1)
    keep = (ended == 0) | ((ended == 1) & (seqs == model.eos_index))
    return (word_logp * keep).sum(1)


def _fairseq_rules(logp, t, max_len, model):
    """fairseq's SequenceGenerator: never <pad> (our <bos> is a separate id: never it
    either); at step max_len only <eos>."""
    logp = logp.clone()
    logp[:, [model.pad_index, model.bos_index]] = float("-inf")
    if t == max_len:
        keep = logp[:, model.eos_index].clone()
        logp[:] = float("-inf")
        logp[:, model.eos_index] = keep
    return logp


@torch.no_grad()
def _reference_greedy(model, features, max_len):
    """Greedy decoding the slow way: the whole prefix through forward() at every step."""
    rows = []
    for n in range(len(features)):
        prefix = [model.bos_index]
        for t in range(max_len + 1):
            logits = model(features[n:n + 1], torch.tensor([prefix]))[:, -1]
            word = int(_fairseq_rules(torch.log_softmax(logits, -1), t, max_len, model).argmax())
            prefix.append(word)
            if word == model.eos_index:
                break
        rows.append(prefix[1:])
    T = max(map(len, rows))
    return torch.tensor([r + [model.pad_index] * (T - len(r)) for r in rows])


@pytest.mark.parametrize("kind", CAPTIONERS)
def test_greedy_equals_the_reference_decoder(kind):
    for seed in range(3):
        model = _caption_model(seed, kind)
        features = torch.randn(4, C, G, G, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(model.greedy(features, max_len=7),
                                   _reference_greedy(model, features, max_len=7))


@pytest.mark.parametrize("kind", CAPTIONERS)
def test_beam_one_is_greedy(kind):
    for seed in range(3):
        model = _caption_model(seed, kind)
        features = torch.randn(5, C, G, G, generator=torch.Generator().manual_seed(seed))
        greedy = model.greedy(features, max_len=12)
        beam = model.beam_search(features, beam_size=1, max_len=12)
        assert torch.equal(greedy, beam)


@pytest.mark.parametrize("kind", CAPTIONERS)
def test_pad_and_bos_are_never_generated(kind):
    """A model that prefers <pad> and <bos> above all: fairseq never selects pad."""
    model = _caption_model(0, kind)
    with torch.no_grad():
        model.out.bias[[model.pad_index, model.bos_index]] += 50.0
    features = torch.randn(4, C, G, G, generator=torch.Generator().manual_seed(1))
    for out in (model.greedy(features, max_len=6), model.beam_search(features, 3, max_len=6)):
        assert not (out == model.bos_index).any()
        ended = (out == model.eos_index).cumsum(1) > 0
        before_eos = ~ended | (out == model.eos_index)
        assert not (out[before_eos] == model.pad_index).any()
        assert ((out == model.eos_index).sum(1) == 1).all()
    torch.testing.assert_close(model.greedy(features, max_len=6),
                               _reference_greedy(model, features, max_len=6))


@pytest.mark.parametrize("kind", CAPTIONERS)
def test_an_unfinished_hypothesis_gets_eos_after_max_len_words(kind):
    """fairseq's rule: at step max_len every token but <eos> is forbidden."""
    model = _caption_model(0, kind)
    with torch.no_grad():
        model.out.bias[model.eos_index] -= 50.0  # <eos> would never win on its own
    features = torch.randn(3, C, G, G, generator=torch.Generator().manual_seed(2))
    for out in (model.greedy(features, max_len=5), model.beam_search(features, 3, max_len=5)):
        assert out.shape == (3, 6)  # five words, then the forced <eos>
        assert (out[:, -1] == model.eos_index).all()
        assert not (out[:, :-1] == model.eos_index).any()


def _exhaustive_best(model, features, max_len):
    """The most probable caption under the rules, by trying every one (tiny vocabulary)."""
    allowed = [i for i in range(model.vocab_size) if i not in (model.pad_index,
                                                                model.bos_index,
                                                                model.eos_index)]
    candidates = [[model.eos_index]]
    frontier = [[]]
    for _ in range(max_len):
        frontier = [p + [w] for p in frontier for w in allowed]
        candidates += [p + [model.eos_index] for p in frontier]
    T = max_len + 1
    seqs = torch.tensor([c + [model.pad_index] * (T - len(c)) for c in candidates])
    best = []
    for n in range(len(features)):
        lp = _sequence_logp(model, features[n:n + 1].expand(len(seqs), -1, -1, -1), seqs)
        best.append(seqs[int(lp.argmax())])
    return torch.stack(best)


@pytest.mark.parametrize("kind", CAPTIONERS)
def test_a_beam_as_wide_as_every_hypothesis_finds_the_most_probable_caption(kind):
    torch.manual_seed(0)
    model = (CaptionModel(C, G, vocab_size=6, embed_dim=4, hidden_size=6, image_features=5)
             if kind == "single vector" else
             AttentionCaptionModel(C, G, vocab_size=6, embed_dim=4, hidden_size=6,
                                   annotation_size=5, attention_size=4)).eval()
    features = torch.randn(3, C, G, G, generator=torch.Generator().manual_seed(3))
    want = _exhaustive_best(model, features, max_len=3)  # 3 words of 3 allowed: 40 captions
    got = model.beam_search(features, beam_size=64, max_len=3)
    got = torch.cat([got, torch.zeros(3, 4 - got.shape[1], dtype=torch.long)], 1)
    assert torch.equal(got, want)


@pytest.mark.parametrize("kind", CAPTIONERS)
def test_wider_beams_find_captions_at_least_as_probable(kind):
    model = _caption_model(1, kind)
    with torch.no_grad():  # make <eos> likely enough that sentences end
        model.out.bias[model.eos_index] += 1.5
    features = torch.randn(6, C, G, G, generator=torch.Generator().manual_seed(5))
    greedy = model.greedy(features, max_len=15)
    beam = model.beam_search(features, beam_size=4, max_len=15)
    lp_g = _sequence_logp(model, features, greedy)
    lp_b = _sequence_logp(model, features, beam)
    assert (lp_b >= lp_g - 1e-5).all()


def test_caption_loss_ignores_padding():
    logits = torch.randn(2, 3, 7)
    targets = torch.tensor([[4, 5, 3], [6, 3, 0]])
    keep = targets != 0
    want = F.cross_entropy(logits[keep], targets[keep])
    torch.testing.assert_close(caption_loss(logits, targets), want)
    with pytest.raises(ValueError, match="targets"):
        caption_loss(logits, targets[:, :2])


@pytest.mark.parametrize("kind", CAPTIONERS)
def test_teacher_forcing_shapes(kind):
    model = _caption_model(0, kind)
    out = model(torch.randn(3, C, G, G), torch.randint(0, 12, (3, 7)))
    assert out.shape == (3, 7, 12)
    with pytest.raises(ValueError, match="ids"):
        model(torch.randn(3, C, G, G), torch.randint(0, 12, (2, 7)))
    with pytest.raises(ValueError, match="features"):
        model(torch.randn(3, C, G + 1, G + 1), torch.randint(0, 12, (3, 7)))


def test_attention_captioner_weights_per_word():
    model = _caption_model(0, "attention")
    features = torch.randn(3, C, G, G)
    ids, alpha = model.greedy(features, max_len=6, return_attention=True)
    assert alpha.shape == (3, ids.shape[1], G * G)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3, ids.shape[1]))
    bos = torch.full((3, 1), model.bos_index)
    model(features, torch.cat([bos, ids[:, :-1]], 1))  # teacher forcing on its own words
    torch.testing.assert_close(model.last_weights, alpha)
    with pytest.raises(ValueError, match="no attention"):
        _caption_model(0, "single vector").greedy(features, return_attention=True)
