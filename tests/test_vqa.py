"""VQA and captioning models of chapter 12."""

import pytest
import torch
import torch.nn.functional as F

from mmbook.models.captioning import CaptionModel, caption_loss
from mmbook.models.vqa import (
    CoAttentionVQA,
    ConcatVQA,
    FiLMVQA,
    ImageOnlyVQA,
    QuestionOnlyVQA,
    RelationNetworkVQA,
    encode_questions,
    grid_coordinates,
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
    rn = RelationNetworkVQA(C, G, V, A, object_features=3, hidden_size=5)
    o = torch.randn(2, 4, 5)  # (N, K, object_features + 2)
    q = torch.randn(2, 5)
    got = rn.pair_hidden(o, q)
    K = 4
    pairs = torch.cat([o[:, :, None].expand(-1, K, K, -1), o[:, None].expand(-1, K, K, -1),
                       q[:, None, None].expand(-1, K, K, -1)], dim=-1)  # [o_i; o_j; q]
    torch.testing.assert_close(got, torch.relu(rn.g1(pairs)))


def test_relation_network_objects_carry_coordinates():
    rn = RelationNetworkVQA(C, G, V, A)
    o = rn.object_vectors(torch.randn(2, C, G, G))
    assert o.shape == (2, (G // 2) ** 2, 32 + 2)
    torch.testing.assert_close(o[0, :, -2:], grid_coordinates(G // 2))


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


def test_coattention_weights_are_distributions_over_the_regions():
    torch.manual_seed(0)
    model = CoAttentionVQA(C, G, V, A)
    features, ids, lengths = _inputs()
    model(features, ids, lengths)
    w = model.last_weights
    assert w.shape == (6, 4, G * G)
    torch.testing.assert_close(w.sum(-1), torch.ones(6, 4))


# ----------------------------------------------------------------------------- captioning
def _caption_model(seed=0):
    torch.manual_seed(seed)
    return CaptionModel(C, G, vocab_size=12, embed_dim=6, hidden_size=10,
                        image_features=8).eval()


def _sequence_logp(model, features, seqs):
    """Sum of log p of the words up to and including <eos>, by teacher forcing."""
    bos = torch.full((len(seqs), 1), model.bos_index)
    logp = torch.log_softmax(model(features, torch.cat([bos, seqs[:, :-1]], 1)), -1)
    word_logp = logp.gather(-1, seqs[..., None])[..., 0]  # (N, T)
    ended = (seqs == model.eos_index).cumsum(1)
    keep = (ended == 0) | ((ended == 1) & (seqs == model.eos_index))
    return (word_logp * keep).sum(1)


def test_beam_one_is_greedy():
    for seed in range(3):
        model = _caption_model(seed)
        features = torch.randn(5, C, G, G, generator=torch.Generator().manual_seed(seed))
        greedy = model.greedy(features, max_len=12)
        beam = model.beam_search(features, beam_size=1, max_len=12)
        assert torch.equal(greedy, beam)


def test_wider_beams_find_captions_at_least_as_probable():
    model = _caption_model(1)
    with torch.no_grad():  # make <eos> likely enough that sentences end
        model.out.bias[model.eos_index] += 1.5
    features = torch.randn(6, C, G, G, generator=torch.Generator().manual_seed(5))
    greedy = model.greedy(features, max_len=15)
    beam = model.beam_search(features, beam_size=4, max_len=15)
    ended = ((greedy == model.eos_index).any(1) & (beam == model.eos_index).any(1))
    assert ended.sum() >= 3
    lp_g = _sequence_logp(model, features, greedy)[ended]
    lp_b = _sequence_logp(model, features, beam)[ended]
    assert (lp_b >= lp_g - 1e-5).all()


def test_caption_loss_ignores_padding():
    logits = torch.randn(2, 3, 7)
    targets = torch.tensor([[4, 5, 3], [6, 3, 0]])
    keep = targets != 0
    want = F.cross_entropy(logits[keep], targets[keep])
    torch.testing.assert_close(caption_loss(logits, targets), want)
    with pytest.raises(ValueError, match="targets"):
        caption_loss(logits, targets[:, :2])


def test_teacher_forcing_shapes():
    model = _caption_model()
    out = model(torch.randn(3, C, G, G), torch.randint(0, 12, (3, 7)))
    assert out.shape == (3, 7, 12)
    with pytest.raises(ValueError, match="ids"):
        model(torch.randn(3, C, G, G), torch.randint(0, 12, (2, 7)))
