"""mmbook.attention against torch: F.scaled_dot_product_attention, nn.MultiheadAttention."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from mmbook.attention import (
    CoAttention,
    CrossModalAttention,
    CrossModalTransformerBlock,
    MultiheadCrossModalAttention,
    attention_entropy,
    lengths_to_mask,
    masked_softmax,
    scaled_dot_product_attention,
    seed_cross_modal_attention,
)
from mmbook.fusion import ModalityAttention

torch.manual_seed(0)


# ----------------------------------------------------------------------------- masked softmax
def test_masked_softmax_sums_to_one_and_zeroes_masked():
    s = torch.randn(4, 5, 7)
    mask = torch.rand(4, 5, 7) > 0.4
    mask[..., 0] = True
    w = masked_softmax(s, mask)
    assert_close(w.sum(-1), torch.ones(4, 5))
    assert (w[~mask] == 0).all()
    # equals softmax with -inf on the masked entries
    assert_close(w, torch.softmax(s.masked_fill(~mask, float("-inf")), -1))


def test_masked_softmax_other_dim_and_temperature():
    s = torch.randn(3, 6, 2)
    w = masked_softmax(s, dim=1, temperature=2.5)
    assert_close(w, torch.softmax(s / 2.5, dim=1))
    assert_close(w.sum(1), torch.ones(3, 2))


def test_masked_softmax_fully_masked_row_is_zero_and_grad_finite():
    s = torch.randn(2, 4, requires_grad=True)
    mask = torch.tensor([[False] * 4, [True, False, True, True]])
    w = masked_softmax(s, mask)
    assert (w[0] == 0).all()
    assert_close(w[1].sum(), torch.tensor(1.0))
    (w * torch.randn(2, 4)).sum().backward()
    assert torch.isfinite(s.grad).all()


def test_masked_softmax_bad_inputs():
    with pytest.raises(ValueError, match="temperature"):
        masked_softmax(torch.randn(3), temperature=0)
    with pytest.raises(ValueError, match="bool .* or floating"):
        masked_softmax(torch.randn(3), torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        masked_softmax(torch.randn(3), torch.tensor([0.0, float("nan"), 0.0]))
    with pytest.raises(ValueError, match="broadcast"):
        masked_softmax(torch.randn(2, 3), torch.ones(2, 4, dtype=torch.bool))


def test_lengths_to_mask_and_entropy():
    m = lengths_to_mask(torch.tensor([2, 0, 3]), 4)
    assert m.tolist() == [[True, True, False, False], [False] * 4, [True, True, True, False]]
    with pytest.raises(ValueError, match="integers"):
        lengths_to_mask(torch.tensor([1.0]))
    uniform = torch.full((5,), 0.2)
    assert_close(attention_entropy(uniform), torch.log(torch.tensor(5.0)))
    assert_close(attention_entropy(torch.tensor([1.0, 0.0])), torch.tensor(0.0))


# ----------------------------------------------------------------------------- scaled dot product
@pytest.mark.parametrize("shape", [((5, 8), (7, 8), (7, 3)), ((2, 5, 8), (2, 7, 8), (2, 7, 8)),
                                   ((2, 4, 6, 16), (2, 4, 9, 16), (2, 4, 9, 5))])
@pytest.mark.parametrize("masked", [False, True])
def test_sdpa_matches_torch(shape, masked):
    q, k, v = (torch.randn(*s) for s in shape)
    L, S = q.shape[-2], k.shape[-2]
    mask = None
    if masked:
        mask = torch.rand(*q.shape[:-2], L, S) > 0.3
        mask[..., 0] = True
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out, w = scaled_dot_product_attention(q, k, v, mask)
    assert_close(out, ref)
    assert w.shape == (*q.shape[:-2], L, S)
    assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
    if masked:
        assert (w[~mask] == 0).all()
    fast, none = scaled_dot_product_attention(q, k, v, mask, need_weights=False)
    assert none is None
    assert_close(fast, ref)


def test_sdpa_scale_float_mask_and_broadcast_mask():
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 6, 4), torch.randn(2, 6, 4)
    fmask = torch.randn(3, 6)
    assert_close(scaled_dot_product_attention(q, k, v, fmask, scale=0.3)[0],
                 F.scaled_dot_product_attention(q, k, v, attn_mask=fmask, scale=0.3))
    pad = lengths_to_mask(torch.tensor([4, 6]), 6)[:, None, :]  # (N, 1, S)
    out, w = scaled_dot_product_attention(q, k, v, pad)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=pad))
    assert (w[0, :, 4:] == 0).all()


def test_sdpa_temperature_sharpens():
    q, k, v = torch.randn(4, 10, 8), torch.randn(4, 12, 8), torch.randn(4, 12, 8)
    ents = [attention_entropy(scaled_dot_product_attention(q, k, v, temperature=t)[1]).mean()
            for t in (0.2, 1.0, 5.0)]
    assert ents[0] < ents[1] < ents[2]
    _, w = scaled_dot_product_attention(q, k, v, temperature=2.0)
    assert_close(w, torch.softmax(q @ k.transpose(1, 2) / (8 ** 0.5 * 2.0), -1))


def test_sdpa_bad_inputs():
    q = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="last dimension"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 3), torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="k and v"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 4), torch.randn(2, 6, 4))
    with pytest.raises(ValueError, match="batch"):
        scaled_dot_product_attention(q, torch.randn(3, 5, 4), torch.randn(3, 5, 4))
    with pytest.raises(ValueError, match="broadcast"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 4), torch.randn(2, 5, 4),
                                     torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least 2"):
        scaled_dot_product_attention(torch.randn(4), torch.randn(4), torch.randn(4))


# ----------------------------------------------------------------------------- the seed's attention
def test_seed_code_gives_all_ones():
    H = 6
    states = [torch.randn(5, H) for _ in range(3)]
    layers = nn.ModuleList(nn.Linear(2 * H, 1) for _ in range(3))
    contexts, weights = seed_cross_modal_attention(states, layers)
    assert len(weights) == 6
    for w in weights:
        assert_close(w, torch.ones(5, 1))
    # the seed's index i*(M-1)+j: modality 0 ends up with h^1 + h^2 (all weights are one)
    assert_close(contexts[0], states[1] + states[2])
    # and W_a gets no gradient signal at all
    sum(c.sum() for c in contexts).backward()
    assert all(lay.weight.grad.abs().max() == 0 for lay in layers)


def test_cross_modal_attention_matches_formula():
    N, T, H, M = 3, 4, 5, 3
    att = CrossModalAttention(H, M)
    states = [torch.randn(N, T, H) for _ in range(M)]
    c, alpha = att(states)
    assert c.shape == (N, T, M, H) and alpha.shape == (N, T, M, M)
    for m in range(M):
        others = [n for n in range(M) if n != m]
        e = torch.stack([att.score[m](torch.cat([states[m], states[n]], -1)).squeeze(-1)
                         for n in others], -1)  # (N, T, M-1)
        a = torch.softmax(e, -1)
        assert_close(alpha[:, :, m, others], a)
        assert (alpha[:, :, m, m] == 0).all()
        ref = sum(a[..., i:i + 1] * states[n] for i, n in enumerate(others))
        assert_close(c[:, :, m], ref)
    assert not torch.allclose(alpha.sum(-2), torch.ones(N, T, M))  # not trivially one


def test_cross_modal_attention_seed_bug_and_two_modalities():
    states = [torch.randn(2, 3, 4) for _ in range(3)]
    buggy = CrossModalAttention(4, 3, seed_bug=True)
    _, alpha = buggy(states)
    assert_close(alpha, (~torch.eye(3, dtype=torch.bool)).float().expand(2, 3, 3, 3))
    # even done right, two modalities leave one candidate: alpha = 1
    _, alpha2 = CrossModalAttention(4, 2)(states[:2])
    assert_close(alpha2, torch.tensor([[0.0, 1.0], [1.0, 0.0]]).expand(2, 3, 2, 2))


def test_cross_modal_attention_bad_inputs():
    att = CrossModalAttention(4, 2)
    with pytest.raises(ValueError, match="same T"):
        att([torch.randn(2, 3, 4), torch.randn(2, 5, 4)])
    with pytest.raises(ValueError, match="hidden_size"):
        att([torch.randn(2, 3, 5), torch.randn(2, 3, 5)])
    with pytest.raises(ValueError, match="list"):
        att(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="num_modalities"):
        CrossModalAttention(4, 1)


# ----------------------------------------------------------------------------- co-attention
def _lu_reference(co, q, v):
    """Lu et al. (2016), eq. 3-4, in the paper's layout: one column per word or region."""
    Q, V = q.transpose(1, 2), v.transpose(1, 2)  # (N, d_q, L), (N, d_v, S)
    C = torch.tanh(Q.transpose(1, 2) @ co.W_b @ V)  # Q^T W_b V: (N, L, S)
    W_q, W_v = co.W_q.weight, co.W_v.weight  # (k, d_q), (k, d_v)
    H_v = torch.tanh(W_v @ V + (W_q @ Q) @ C)  # (N, k, S)
    H_q = torch.tanh(W_q @ Q + (W_v @ V) @ C.transpose(1, 2))  # (N, k, L)
    a_v = torch.softmax(co.w_hv.weight @ H_v, dim=-1)[:, 0]  # w_hv^T H^v: (N, S)
    a_q = torch.softmax(co.w_hq.weight @ H_q, dim=-1)[:, 0]  # (N, L)
    return (Q @ a_q[..., None])[..., 0], (V @ a_v[..., None])[..., 0], a_q, a_v, C


def test_coattention_equals_lu_et_al_in_the_papers_layout():
    torch.manual_seed(0)
    co = CoAttention(6, 4, hidden_size=5)
    q, v = torch.randn(3, 5, 6), torch.randn(3, 7, 4)
    for got, want in zip(co(q, v), _lu_reference(co, q, v)):
        assert_close(got, want)


def test_coattention_masks_padding_on_both_sides():
    torch.manual_seed(0)
    co = CoAttention(6, 4)
    q, v = torch.randn(2, 5, 6), torch.randn(2, 7, 4)
    mask_q = lengths_to_mask(torch.tensor([5, 2]), 5)
    mask_v = lengths_to_mask(torch.tensor([7, 3]), 7)
    q_hat, v_hat, a_q, a_v, C = co(q, v, mask_q, mask_v)
    assert (a_q[1, 2:] == 0).all() and (a_v[1, 3:] == 0).all()
    assert_close(a_q.sum(-1), torch.ones(2)) and assert_close(a_v.sum(-1), torch.ones(2))
    # the padding's values do not matter: the same result as on the cut sequences
    cut = co(q[1:, :2], v[1:, :3])
    for got, want in zip((q_hat[1:], v_hat[1:], a_q[1:, :2], a_v[1:, :3], C[1:, :2, :3]), cut):
        assert_close(got, want)
    noisy = co(q + 100 * (~mask_q)[..., None], v - 50 * (~mask_v)[..., None], mask_q, mask_v)
    assert_close(noisy[0], q_hat) and assert_close(noisy[1], v_hat)


def test_word_effects_are_the_attention_minus_the_attention_without_the_word():
    torch.manual_seed(0)
    co = CoAttention(6, 4, hidden_size=5)
    q, v = torch.randn(2, 5, 6), torch.randn(2, 7, 4)
    mask_q = lengths_to_mask(torch.tensor([5, 3]), 5)
    effects = co.word_effects(q, v, mask_q)
    a_v = co(q, v, mask_q)[3]
    for word in range(5):  # the reference: the same layer with that word masked out
        without = mask_q.clone()
        without[:, word] = False
        want = (a_v - co(q, v, without)[3]) * mask_q[:, word, None]
        assert_close(effects[:, word], want)
    assert_close(effects.sum(-1), torch.zeros(2, 5), atol=1e-6, rtol=0)
    assert (effects[1, 3:] == 0).all()


def test_coattention_refuses_bad_input():
    co = CoAttention(6, 4)
    q, v = torch.randn(2, 5, 6), torch.randn(2, 7, 4)
    with pytest.raises(ValueError, match="v"):
        co(q, torch.randn(2, 7, 5))
    with pytest.raises(ValueError, match="share N"):
        co(q, torch.randn(3, 7, 4))
    with pytest.raises(ValueError, match="mask_q"):
        co(q, v, mask_q=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        co(q, v, mask_v=torch.ones(2, 7))


def _fit_to_one_region(weights_of, params, target, steps=300):
    """Adam on -log(weight of region ``target``); returns the weight reached."""
    opt = torch.optim.Adam(params, lr=0.05)
    for _ in range(steps):
        loss = -torch.log(weights_of()[0, target])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return weights_of()[0, target].item()


def test_one_query_can_put_nearly_all_its_weight_on_one_of_64_regions():
    torch.manual_seed(0)
    q, v = torch.randn(1, 1, 8), torch.randn(1, 64, 8)  # one query word, 64 regions
    co = CoAttention(8, 8, hidden_size=8)
    reached = _fit_to_one_region(lambda: co(q, v)[3], co.parameters(), target=17)
    assert reached > 0.9, reached


def test_a_softmax_of_the_tanh_affinity_cannot_exceed_its_cap():
    """The old form, softmax_s(tanh(q W v^T)): logits in [-1, 1], so over S = 64 regions
    no weight exceeds e^2 / (e^2 + 63) ~ 0.105, however W is trained."""
    torch.manual_seed(0)
    q, v = torch.randn(1, 1, 8), torch.randn(1, 64, 8)
    W = nn.Parameter(torch.randn(8, 8) * 0.1)
    capped = lambda: torch.softmax(torch.tanh(q @ W @ v.transpose(1, 2)), -1)[0]  # noqa: E731
    reached = _fit_to_one_region(capped, [W], target=17)
    cap = math.e ** 2 / (math.e ** 2 + 63)
    assert reached <= cap + 1e-6, reached
    best = torch.softmax(torch.tensor([1.0] + [-1.0] * 63), 0)[0]  # C = +1 there, -1 elsewhere
    assert_close(best, torch.tensor(cap, dtype=torch.float32)) and float(cap) < 0.106


# ----------------------------------------------------------------------------- modality attention
def test_modality_attention_weights_and_mask():
    ma = ModalityAttention(8, 5)
    xs = [torch.randn(4, 8) for _ in range(3)]
    Z, alpha = ma(xs, return_weights=True)
    assert alpha.shape == (4, 3)
    assert_close(ma(xs), Z)  # one tensor by default, the weights kept as an attribute
    assert_close(ma.last_weights, alpha.detach())
    assert_close(alpha.sum(-1), torch.ones(4))
    assert_close(Z, sum(alpha[:, k:k + 1] * xs[k] for k in range(3)))
    assert alpha.std(0).max() > 0  # input-dependent
    mask = torch.tensor([[True, False, True]]).expand(4, 3)
    _, alpha_m = ma(xs, mask, return_weights=True)
    assert (alpha_m[:, 1] == 0).all()
    # removing a modality renormalises the others: their ratios do not change
    assert_close(alpha_m[:, 0] / alpha_m[:, 2], alpha[:, 0] / alpha[:, 2])
    Zs, alpha_s = ma(torch.randn(4, 6, 3, 8), return_weights=True)  # (N, T, K, E)
    assert Zs.shape == (4, 6, 8) and alpha_s.shape == (4, 6, 3)
    with pytest.raises(ValueError, match="same shape"):
        ma([torch.randn(4, 8), torch.randn(4, 7)])
    with pytest.raises(ValueError, match="E = 8"):
        ma(torch.randn(4, 3, 7))


# ----------------------------------------------------------------------------- multi-head
@pytest.mark.parametrize("kdim", [None, 12])
@pytest.mark.parametrize("bias", [True, False])
def test_multihead_matches_torch(kdim, bias):
    E, h, N, L, S = 16, 4, 3, 5, 7
    mha = nn.MultiheadAttention(E, h, batch_first=True, kdim=kdim, vdim=kdim, bias=bias).eval()
    ours = MultiheadCrossModalAttention.from_torch(mha)
    q = torch.randn(N, L, E)
    kv = torch.randn(N, S, kdim or E)
    pad = ~lengths_to_mask(torch.tensor([7, 4, 6]), S)  # True = padding, as in torch
    ref_out, ref_w = mha(q, kv, kv, key_padding_mask=pad, average_attn_weights=False)
    out, w = ours(q, kv, kv, key_padding_mask=pad)
    assert_close(out, ref_out)
    assert_close(w, ref_w)
    assert w.shape == (N, h, L, S)
    assert (w[1, :, :, 4:] == 0).all()
    fast, none = ours(q, kv, key_padding_mask=pad, need_weights=False)
    assert none is None
    assert_close(fast, ref_out)


def test_multihead_attn_mask_matches_torch():
    E, h = 8, 2
    mha = nn.MultiheadAttention(E, h, batch_first=True).eval()
    ours = MultiheadCrossModalAttention.from_torch(mha)
    x, y = torch.randn(2, 4, E), torch.randn(2, 6, E)
    allow = torch.rand(4, 6) > 0.3
    allow[:, 0] = True
    ref_out, ref_w = mha(x, y, y, attn_mask=~allow, average_attn_weights=False)
    out, w = ours(x, y, attn_mask=allow)
    assert_close(out, ref_out)
    assert_close(w, ref_w)


def test_multihead_bad_inputs():
    with pytest.raises(ValueError, match="divisible"):
        MultiheadCrossModalAttention(10, 3)
    m = MultiheadCrossModalAttention(8, 2, kdim=5, vdim=5)
    with pytest.raises(ValueError, match="key"):
        m(torch.randn(2, 3, 8), torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match="query"):
        m(torch.randn(2, 3, 7), torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match="key_padding_mask"):
        m(torch.randn(2, 3, 8), torch.randn(2, 4, 5), key_padding_mask=torch.zeros(2, 5).bool())


def test_transformer_block_shapes_and_residual():
    blk = CrossModalTransformerBlock(8, 2, kdim=6, dim_feedforward=16).eval()
    x, src = torch.randn(2, 5, 8), torch.randn(2, 9, 6)
    y, w = blk(x, src, key_padding_mask=~lengths_to_mask(torch.tensor([9, 3]), 9))
    assert y.shape == (2, 5, 8) and w.shape == (2, 2, 5, 9)
    assert (w[1, :, :, 3:] == 0).all()
    # with the output projections zeroed, the block is the identity (pure residual)
    with torch.no_grad():
        blk.attn.out_proj.weight.zero_()
        blk.attn.out_proj.bias.zero_()
        blk.ff[-1].weight.zero_()
        blk.ff[-1].bias.zero_()
    assert_close(blk(x, src)[0], x)


# ----------------------------------------------------------------------------- the fusion model
def _av_batch(N=4, T=11, F_=6, lengths=(11, 7, 3, 9)):
    g = torch.Generator().manual_seed(1)
    images = torch.randn(N, 1, 8, 8, generator=g)
    audio = torch.randn(N, T, F_, generator=g)
    return images, audio, torch.tensor(lengths)


def _model(**kw):
    from mmbook.models import LSTMAttentionFusion

    torch.manual_seed(0)
    return LSTMAttentionFusion((8, 6), 8, num_classes=3, **kw)


def test_image_to_sequence_rows_and_patches():
    from mmbook.models.lstm_attention import image_to_sequence

    x = torch.randn(2, 3, 8, 8)
    rows = image_to_sequence(x, "rows")
    assert_close(rows, x.permute(0, 2, 1, 3).reshape(2, 8, 24))
    patches = image_to_sequence(x, "patches", patch_size=4)
    ref = F.unfold(x, kernel_size=4, stride=4).transpose(1, 2)  # (N, L, C*p*p), channel-major
    assert_close(patches, ref)
    with pytest.raises(ValueError, match="patch_size"):
        image_to_sequence(x, "patches", patch_size=3)
    with pytest.raises(ValueError, match="image_as"):
        image_to_sequence(x, "columns")


def test_lstm_attention_fusion_shapes_and_weights():
    model = _model(num_heads=2).eval()
    images, audio, lengths = _av_batch()
    logits, att = model(images, audio, lengths, return_attention=True)
    assert logits.shape == (4, 3)
    w_ia, w_ai = att["cross"][0, 1], att["cross"][1, 0]
    assert w_ia.shape == (4, 2, 8, 11) and w_ai.shape == (4, 2, 11, 8)
    assert_close(w_ia.sum(-1), torch.ones(4, 2, 8))
    for i, n in enumerate(lengths.tolist()):
        assert (w_ia[i, ..., n:] == 0).all()
    beta = att["modality"][0]
    assert beta.shape == (4, 8, 2)
    assert_close(beta.sum(-1), torch.ones(4, 8))
    assert not torch.allclose(beta, torch.ones_like(beta))  # not the seed's all-ones
    assert beta.std() > 0  # input-dependent
    assert model.last_attention_["cross"][0, 1].requires_grad is False


def test_lstm_attention_fusion_ignores_padding():
    model = _model().eval()
    images, audio, lengths = _av_batch()
    noisy = audio.clone()
    noisy[~lengths_to_mask(lengths, 11)] = 100.0
    assert_close(model(images, audio, lengths), model(images, noisy, lengths))
    # without lengths every frame counts
    assert not torch.allclose(model(images, audio), model(images, noisy))


def test_lstm_attention_fusion_seed_bug_and_concat():
    images, audio, lengths = _av_batch()
    buggy = _model(seed_bug=True)
    _, att = buggy(images, audio, lengths, return_attention=True)
    for beta in att["modality"].values():
        assert_close(beta, torch.ones_like(beta))
    concat = _model(attention=False)
    assert concat(images, audio, lengths).shape == (4, 3)
    assert not hasattr(concat, "cross")
    assert concat.last_attention_["cross"] == {}


def test_lstm_attention_fusion_temperature_flattens():
    model = _model().eval()
    images, audio, lengths = _av_batch()
    with torch.no_grad():
        for p in model.cross.parameters():
            p.mul_(4.0)  # make the scores sharp enough to see the effect
    ents = []
    for t in (0.3, 1.0, 10.0):
        _, att = model(images, audio, lengths, return_attention=True, temperature=t)
        ents.append(attention_entropy(att["cross"][1, 0]).mean())
    assert ents[0] < ents[1] < ents[2]


def test_lstm_attention_fusion_learns():
    model = _model()
    images, audio, lengths = _av_batch(N=4)
    y = torch.tensor([0, 1, 2, 1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = F.cross_entropy(model(images, audio, lengths), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    # every attention parameter received a gradient (registered and used)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.cross.parameters())


def test_lstm_attention_fusion_bad_inputs():
    from mmbook.models import LSTMAttentionFusion

    model = _model()
    images, audio, lengths = _av_batch()
    with pytest.raises(ValueError, match="expected 2 modalities"):
        model(images)
    with pytest.raises(ValueError, match="D=6"):
        model(images, audio[..., :5])
    with pytest.raises(ValueError, match="does not follow"):
        model(lengths, images, audio)
    with pytest.raises(ValueError, match="sequence"):
        model(images, audio[0, 0])
    with pytest.raises(ValueError, match="fusion"):
        LSTMAttentionFusion((8, 6), 8, fusion="sum")
    with pytest.raises(ValueError, match="at least 2"):
        LSTMAttentionFusion((8,), 8)


# ----------------------------------------------------------------------------- exercise checkers
def test_chapter7_checkers():
    from mmbook.exercises.ch07 import check_masked_softmax, check_removed_modality

    assert check_masked_softmax(masked_softmax)
    assert not check_masked_softmax(lambda s, m: torch.softmax(s.masked_fill(~m, -1e30), -1)
                                    * 1.0 + 0.0 * m)  # fully masked row is uniform, not zero
    assert not check_masked_softmax(lambda s, m: torch.softmax(s, -1))
    assert not check_masked_softmax(lambda s, m: None)
    alpha = torch.tensor([0.5, 0.3, 0.2])
    assert check_removed_modality([0.625, 0.375, 0.0], alpha, 2)
    assert not check_removed_modality([0.6, 0.4, 0.0], alpha, 2)
    assert not check_removed_modality([0.5, 0.3, 0.0], alpha, 2)


# ------------------------------------------------------------------ masks: one rule (issue 11)
def _qkv(N=2, L=4, S=6, E=8, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(N, L, E, generator=g, dtype=dtype),
            torch.randn(N, S, E, generator=g, dtype=dtype),
            torch.randn(N, S, E, generator=g, dtype=dtype))


def _masks(N=2, L=4, S=6):
    """Every kind of mask, each with a fully masked row where the kind can express one."""
    g = torch.Generator().manual_seed(1)
    allowed = torch.rand(N, L, S, generator=g) > 0.4
    allowed[:, :, 0] = True
    allowed[0, 2] = False  # a fully masked row
    ninf = float("-inf")
    additive = torch.zeros(N, L, S).masked_fill(~allowed, ninf)
    biased = torch.randn(N, L, S, generator=g)  # finite: a bias, nothing forbidden
    mixed = biased.masked_fill(~allowed, ninf)
    return {"none": None, "bool": allowed, "bool (L, S)": allowed[0],
            "float -inf": additive, "float bias": biased, "float bias and -inf": mixed,
            "all -inf row (issue example)": torch.zeros(L, S).index_fill(0, torch.tensor([1]),
                                                                          ninf)}


@pytest.mark.parametrize("kind", list(_masks()))
def test_both_paths_equal_torch_sdpa_on_every_mask(kind):
    mask = _masks()[kind]
    q, k, v = _qkv()
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.isfinite(ref).all()
    out_w, weights = scaled_dot_product_attention(q, k, v, mask)  # readable path
    out_f, none = scaled_dot_product_attention(q, k, v, mask, need_weights=False)  # fast path
    assert none is None
    assert_close(out_w, ref)
    assert_close(out_f, ref)
    # weights: each row sums to 1, or to 0 where every key is forbidden (never NaN)
    sums = weights.sum(-1)
    assert torch.isfinite(weights).all()
    assert ((sums - 1).abs() < 1e-5).logical_or(sums == 0).all()
    # the temperature path (weights only) agrees with an explicit rescaling
    out_t, _ = scaled_dot_product_attention(q, k, v, mask, temperature=2.0)
    assert torch.isfinite(out_t).all()


def test_issue_example_all_minus_inf_row_is_zero_on_both_paths():
    q, k, v = _qkv()
    mask = torch.zeros(4, 6)
    mask[1] = float("-inf")
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    for need in (True, False):
        out, _ = scaled_dot_product_attention(q, k, v, mask, need_weights=need)
        assert_close(out, ref)
        assert (out[:, 1] == 0).all()


def test_masked_softmax_float_mask_is_added():
    s = torch.randn(3, 5)
    bias = torch.randn(3, 5)
    assert_close(masked_softmax(s, bias), torch.softmax(s + bias, -1))
    bias[0] = float("-inf")
    w = masked_softmax(s, bias)
    assert (w[0] == 0).all()
    assert_close(w[1:], torch.softmax(s[1:] + bias[1:], -1))


@pytest.mark.parametrize("bad, match", [
    (torch.tensor([0.0, float("inf"), 0.0]), r"\+inf"),
    (torch.tensor([0.0, float("nan"), 0.0]), "NaN"),
    (torch.tensor([1, 0, 1]), "bool .* or floating"),
])
def test_bad_masks_are_refused_on_both_paths(bad, match):
    q, k, v = _qkv(S=3)
    for need in (True, False):
        with pytest.raises(ValueError, match=match):
            scaled_dot_product_attention(q, k, v, bad, need_weights=need)


def _kpm_kinds(N=3, S=7):
    pad = ~lengths_to_mask(torch.tensor([7, 4, 6]), S)  # True = padding (torch)
    g = torch.Generator().manual_seed(2)
    bias = torch.randn(N, S, generator=g)
    return {"bool": pad,
            "float finite bias (issue example)": torch.zeros(N, S).index_fill(1, torch.tensor([2]),
                                                                             1.0),
            "float bias": bias,
            "float -inf": torch.zeros(N, S).masked_fill(pad, float("-inf")),
            "float bias and -inf": bias.masked_fill(pad, float("-inf"))}


@pytest.mark.parametrize("kind", list(_kpm_kinds()))
def test_key_padding_mask_is_read_as_nn_multiheadattention_reads_it(kind):
    kpm = _kpm_kinds()[kind]
    E, h = 16, 4
    mha = nn.MultiheadAttention(E, h, batch_first=True).eval()
    ours = MultiheadCrossModalAttention.from_torch(mha)
    q, kv = torch.randn(3, 5, E), torch.randn(3, 7, E)
    ref_out, ref_w = mha(q, kv, kv, key_padding_mask=kpm, average_attn_weights=False)
    out, w = ours(q, kv, kv, key_padding_mask=kpm)
    assert_close(out, ref_out)
    assert_close(w, ref_w)
    fast, _ = ours(q, kv, kv, key_padding_mask=kpm, need_weights=False)
    assert_close(fast, ref_out)


def test_a_fully_padded_key_row_gives_zero_attention_not_nan():
    E = 8
    mha = nn.MultiheadAttention(E, 2, batch_first=True).eval()
    ours = MultiheadCrossModalAttention.from_torch(mha)
    q, kv = torch.randn(2, 3, E), torch.randn(2, 5, E)
    pad = torch.zeros(2, 5, dtype=torch.bool)
    pad[0] = True  # every key of sample 0 is padding
    ref_fast, _ = mha(q, kv, kv, key_padding_mask=pad, need_weights=False)  # torch: 0 -> bias
    for need in (True, False):
        out, w = ours(q, kv, kv, key_padding_mask=pad, need_weights=need)
        assert torch.isfinite(out).all()
        assert_close(out, ref_fast)
        if need:
            assert (w[0] == 0).all()


def test_key_mask_is_the_package_convention_of_key_padding_mask():
    E = 8
    att = MultiheadCrossModalAttention(E, 2)
    q, kv = torch.randn(2, 3, E), torch.randn(2, 5, E)
    keep = lengths_to_mask(torch.tensor([5, 2]), 5)  # True = attend
    a, wa = att(q, kv, key_mask=keep)
    b, wb = att(q, kv, key_padding_mask=~keep)
    assert_close(a, b)
    assert_close(wa, wb)
    with pytest.raises(ValueError, match="not both"):
        att(q, kv, key_mask=keep, key_padding_mask=~keep)
    block = CrossModalTransformerBlock(E, 2)
    assert_close(block(q, kv, key_mask=keep)[0], block(q, kv, key_padding_mask=~keep)[0])


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
def test_float_attn_mask_with_bool_key_padding_mask_matches_torch():
    E, h = 8, 2
    mha = nn.MultiheadAttention(E, h, batch_first=True).eval()
    ours = MultiheadCrossModalAttention.from_torch(mha)
    x, y = torch.randn(2, 4, E), torch.randn(2, 6, E)
    attn = torch.randn(4, 6)
    attn[3, 1:] = float("-inf")
    pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    ref_out, ref_w = mha(x, y, y, attn_mask=attn, key_padding_mask=pad,
                         average_attn_weights=False)
    out, w = ours(x, y, attn_mask=attn, key_padding_mask=pad)
    assert_close(out, ref_out)
    assert_close(w, ref_w)
