"""Missing modalities (chapter 10): the present mask through every fusion and
MultimodalModel, ModalityDropout, missing_mask, CrossModalAutoencoder, CrossEncoder, and
the chapter's exercise checkers."""

import pytest
import torch
from torch import nn

from mmbook.attention import CrossModalTransformerBlock
from mmbook.exercises import ch10
from mmbook.fusion import (
    ConcatFusion,
    GatedFusion,
    LateFusion,
    LowRankTensorFusion,
    MultimodalModel,
    TensorFusion,
    WeightedSumFusion,
)
from mmbook.missing import ModalityDropout, missing_mask
from mmbook.models import CrossEncoder, CrossModalAutoencoder, fit_cross_modal_autoencoder

N, DIMS, C = 6, (3, 4), 5
PRESENT = torch.tensor([[True, True], [True, False], [False, True],
                        [True, False], [True, True], [False, True]])


def _zs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(N, d, generator=g) for d in DIMS]


def _zeroed(zs, present):
    return [z * present[:, m:m + 1].float() for m, z in enumerate(zs)]


def _nan_absent(zs, present):
    return [torch.where(present[:, m:m + 1], z, torch.tensor(float("nan")))
            for m, z in enumerate(zs)]


@pytest.mark.parametrize("make", [lambda: ConcatFusion(DIMS), lambda: TensorFusion(DIMS),
                                  lambda: LowRankTensorFusion(DIMS, 7, rank=2)],
                         ids=["concat", "tensor", "low-rank"])
def test_fill_fusions_equal_the_fusion_of_zero_filled_inputs(make):
    torch.manual_seed(0)
    f, zs = make(), _zs()
    want = f(_zeroed(zs, PRESENT))
    torch.testing.assert_close(f(zs, present=PRESENT), want)
    torch.testing.assert_close(f(_nan_absent(zs, PRESENT), present=PRESENT), want)  # no NaN leak
    torch.testing.assert_close(f(zs, present=torch.ones(N, 2, dtype=torch.bool)), f(zs))


def test_weighted_sum_renormalises_per_sample():
    torch.manual_seed(0)
    f, zs = WeightedSumFusion(DIMS, 7), _zs()
    with torch.no_grad():
        f.weight_logits.copy_(torch.tensor([0.3, -0.8]))
    proj = [p(z) for p, z in zip(f.projections, zs)]
    w = torch.exp(f.weight_logits)
    r = PRESENT.float()
    alpha = r * w / (r * w).sum(1, keepdim=True)  # the formula, by hand
    want = alpha[:, :1] * proj[0] + alpha[:, 1:] * proj[1]
    torch.testing.assert_close(f(_nan_absent(zs, PRESENT), present=PRESENT), want)


def test_late_fusion_per_sample_mask_equals_one_sample_at_a_time():
    torch.manual_seed(0)
    f, zs = LateFusion(DIMS, C, mode="weighted"), _zs()
    with torch.no_grad():
        f.weight_logits.copy_(torch.tensor([0.5, -1.0]))
    out = f(_nan_absent(zs, PRESENT), present=PRESENT)
    for n in range(N):
        row = [z[n:n + 1] if bool(PRESENT[n, m]) else None for m, z in enumerate(zs)]
        torch.testing.assert_close(out[n:n + 1], f(row, present=PRESENT[n].tolist()))
    out.sum().backward()  # gradients stay finite with -inf weights
    assert all(torch.isfinite(p.grad).all() for p in f.parameters() if p.grad is not None)


def test_gated_fusion_gives_absent_modalities_gate_zero():
    torch.manual_seed(0)
    f, zs = GatedFusion(DIMS, 7), _zs()
    g = f.gates(zs, present=PRESENT)
    torch.testing.assert_close(g.sum(1), torch.ones(N, 7))
    assert (g[~PRESENT] == 0).all()
    only_first = PRESENT[:, 0] & ~PRESENT[:, 1]
    h0 = torch.tanh(f.transforms[0](zs[0]))
    torch.testing.assert_close(f(_nan_absent(zs, PRESENT), present=PRESENT)[only_first],
                               h0[only_first])


def test_present_errors_name_the_argument_and_shape():
    f, zs = ConcatFusion(DIMS), _zs()
    with pytest.raises(ValueError, match=r"present must have shape \(6, 2\)"):
        f(zs, present=torch.ones(N, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="dtype"):
        f(zs, present=torch.ones(N, 2))
    with pytest.raises(ValueError, match="at least one modality; rows"):
        f(zs, present=torch.tensor([[True, True]] * 5 + [[False, False]]))
    with pytest.raises(ValueError, match=r"zs\[1\] is None but present"):
        f([zs[0], None], present=PRESENT)
    out = f([zs[0], None], present=torch.tensor([True, False]))  # absent everywhere: None ok
    torch.testing.assert_close(out, torch.cat([zs[0], torch.zeros(N, 4)], 1))


def test_multimodal_model_carries_present_and_modality_dropout():
    torch.manual_seed(0)
    model = MultimodalModel([nn.Linear(3, 3), nn.Linear(4, 4)], WeightedSumFusion(DIMS, 5),
                            nn.Linear(5, C), modality_dropout=0.5).eval()
    zs = _zs()
    with torch.no_grad():
        z = [e(x) for e, x in zip(model.encoders, zs)]
        torch.testing.assert_close(model(*zs, present=PRESENT),
                                   model.head(model.fusion(z, present=PRESENT)))
        torch.testing.assert_close(model(*zs), model.head(model.fusion(z)))  # eval: no drop
        only = torch.tensor([True, False])
        torch.testing.assert_close(model(zs[0], None, present=only),
                                   model(zs[0], zs[1], present=only))
    model.train()
    torch.manual_seed(1)
    model(*zs).sum().backward()  # trains with random masks
    with pytest.raises(TypeError, match="fusion must be a mmbook.fusion.Fusion"):
        MultimodalModel([nn.Identity()] * 2, nn.Identity(), modality_dropout=0.2)
    with pytest.raises(ValueError, match="probability"):
        MultimodalModel([nn.Identity()] * 2, ConcatFusion(DIMS), modality_dropout=1.0)


def test_modality_dropout_statistics_and_eval_identity():
    torch.manual_seed(0)
    present = torch.ones(20000, 3, dtype=torch.bool)
    present[:5000, 2] = False
    drop = ModalityDropout(0.3).train()
    out = drop(present)
    assert not (out & ~present).any() and out.any(1).all()
    kept = out[5000:].float().mean().item()
    assert abs(kept - (0.7 + 0.3 ** 3 / 3)) < 0.01  # 1 - p plus the rescued rows
    assert torch.equal(drop.eval()(present), present)
    with pytest.raises(ValueError, match="bool"):
        drop(present.float())
    with pytest.raises(ValueError, match="p must be a probability"):
        ModalityDropout(1.0)


def test_missing_mask():
    g = torch.Generator().manual_seed(0)
    m = missing_mask(10, 2, 0, 0.5, generator=g)
    assert m.dtype == torch.bool and int((~m[:, 0]).sum()) == 5 and m[:, 1].all()
    assert missing_mask(10, 2, 1, 0.0).all()
    with pytest.raises(ValueError, match=r"modality must be an index in \[0, 2\)"):
        missing_mask(10, 2, 2, 0.5)
    with pytest.raises(ValueError, match="rate"):
        missing_mask(10, 2, 0, 1.5)
    with pytest.raises(ValueError, match="none left"):
        missing_mask(10, 1, 0, 0.5)


def test_autoencoder_encode_decode_impute():
    torch.manual_seed(0)
    ae = CrossModalAutoencoder((5, 3), latent_dim=4, hidden_features=8, names=("a", "b"))
    xs = [torch.randn(N, 5), torch.randn(N, 3)]
    u = [enc(x) for enc, x in zip(ae.encoders, xs)]
    w = torch.softmax(ae.fusion.weight_logits, 0)
    torch.testing.assert_close(ae.encode(xs), w[0] * u[0] + w[1] * u[1])
    only_a = torch.tensor([True, False])
    torch.testing.assert_close(ae.encode([xs[0], None], only_a), u[0])
    torch.testing.assert_close(ae.encode(xs, only_a), u[0])
    torch.testing.assert_close(ae.decode(u[0], "b"), ae.decoders[1](u[0]))
    filled = ae.impute(xs, PRESENT)
    for m in range(2):
        keep = PRESENT[:, m]
        torch.testing.assert_close(filled[m][keep], xs[m][keep])
        torch.testing.assert_close(filled[m][~keep], ae(xs, PRESENT)[m][~keep])
    with pytest.raises(ValueError, match="modality 'c' is unknown"):
        ae.decode(u[0], "c")
    with pytest.raises(ValueError, match=r"modality must be an index in \[0, 2\)"):
        ae.decode(u[0], 2)
    with pytest.raises(ValueError, match=r"xs\[1\] has shape \(6, 4\)"):
        ae([xs[0], torch.randn(N, 4)])
    with pytest.raises(ValueError, match="NaN"):
        ae([xs[0], torch.full((N, 3), float("nan"))])
    with pytest.raises(ValueError, match="at least one modality"):
        ae(xs, torch.tensor([[False, False]] * N))


def test_autoencoder_learns_cross_modal_reconstruction():
    torch.manual_seed(0)
    latent = torch.randn(400, 2)
    xs = [latent @ torch.randn(2, 6), latent @ torch.randn(2, 5)]  # shared 2-d cause
    ae = CrossModalAutoencoder((6, 5), latent_dim=4, hidden_features=32)
    hist = fit_cross_modal_autoencoder(ae, xs, epochs=25, batch_size=100, lr=1e-2, seed=0)
    assert hist[-1] < 0.2 * hist[0]
    with torch.no_grad():
        from_first = ae([xs[0], None], torch.tensor([True, False]))[1]
    baseline = ((xs[1] - xs[1].mean(0)) ** 2).mean()
    assert ((from_first - xs[1]) ** 2).mean() < 0.2 * baseline
    with pytest.raises(ValueError, match="classifier and labels"):
        fit_cross_modal_autoencoder(ae, xs, epochs=1, classifier=nn.Linear(4, 2))
    with pytest.raises(ValueError, match="no None"):
        fit_cross_modal_autoencoder(ae, [xs[0], None], epochs=1)


def test_cross_encoder_blocks_masks_and_absent_modality():
    torch.manual_seed(0)
    model = CrossEncoder((6, 5), max_lengths=(4, 7), num_classes=C, embed_dim=8,
                         num_heads=2).eval()
    x1, x2 = torch.randn(3, 4, 6), torch.randn(3, 7, 5)
    lengths2 = torch.tensor([7, 3, 5])
    with torch.no_grad():
        out = model(x1, x2, None, lengths2)
        # the first layer by hand, from the chapter 7 blocks
        h1 = model.embed[0](x1) + model.position[0][:4]
        h2 = model.embed[1](x2) + model.position[1][:7]
        pad2 = torch.arange(7)[None] >= lengths2[:, None]
        b1, b2 = model.blocks[0]
        assert isinstance(b1, CrossModalTransformerBlock)
        h1n, _ = b1(h1, h2, key_padding_mask=pad2)
        h2n, _ = b2(h2, h1)
        z1 = model.norms[0](h1n).mean(1)
        keep = (~pad2).float()[:, :, None]
        z2 = (model.norms[1](h2n) * keep).sum(1) / keep.sum(1)
        torch.testing.assert_close(out, model.head(0.5 * z1 + 0.5 * z2))
        # padding is ignored; an absent modality's values are ignored
        x2b = x2.clone()
        x2b[1, 3:] = 100.0
        torch.testing.assert_close(model(x1, x2b, None, lengths2), out)
        p = torch.tensor([[True, False]] * 3)
        torch.testing.assert_close(model(x1, x2, present=p),
                                   model(x1, torch.randn(3, 7, 5), present=p))
    with pytest.raises(ValueError, match=r"x2 must have 3 dimensions"):
        model(x1, torch.randn(3, 5))
    with pytest.raises(ValueError, match="more than max_lengths"):
        model(x1, torch.randn(3, 9, 5))
    with pytest.raises(ValueError, match="2 entries"):
        CrossEncoder((6, 5, 4), (4, 7, 2), C)


def test_cross_encoder_absent_modality_skips_only_the_cross_attention():
    torch.manual_seed(0)
    x1, x2 = torch.randn(3, 4, 6), torch.randn(3, 7, 5)
    no_2 = torch.tensor([[True, False]] * 3)
    for self_attention in (False, True):
        model = CrossEncoder((6, 5), max_lengths=(4, 7), num_classes=C, embed_dim=8,
                             num_heads=2, self_attention=self_attention).eval()
        with torch.no_grad():
            h1 = model.embed[0](x1) + model.position[0][:4]
            if self_attention:  # the modality's own transformer layer still runs
                h1 = model.self_blocks[0][0](h1, h1)[0]
            b1 = model.blocks[0][0]
            h1 = h1 + b1.ff(b1.norm_ff(h1))  # no attention to the absent x2, the FFN kept
            want = model.head(model.norms[0](h1).mean(1))  # the fusion keeps z1 alone
            torch.testing.assert_close(model(x1, x2, present=no_2), want)
            # ... which is not what skipping the whole block would give
            assert not torch.allclose(want, model.head(model.norms[0](
                model.embed[0](x1) + model.position[0][:4]).mean(1)))


def test_block_source_present_skips_attention_per_sample():
    torch.manual_seed(0)
    block = CrossModalTransformerBlock(8, 2, kdim=6).eval()
    x, src = torch.randn(2, 3, 8), torch.randn(2, 5, 6, requires_grad=True)
    keep = torch.tensor([True, False])
    y, _ = block(x, src, source_present=keep)
    torch.testing.assert_close(y[0], block(x[:1], src[:1])[0][0])  # sample 0: the full block
    torch.testing.assert_close(y[1], x[1] + block.ff(block.norm_ff(x[1])))  # sample 1: FFN
    y[1].sum().backward()
    assert src.grad.abs().sum() == 0  # nothing of an absent source reaches the output
    with pytest.raises(ValueError, match="source_present must be bool"):
        block(x, src, source_present=torch.ones(2))
    with pytest.raises(ValueError, match="source_present"):
        block(x, src, source_present=torch.ones(3, dtype=torch.bool))


# ----------------------------------------------------------------------------- exercises
def test_check_masked_concat_diagnoses():
    good = lambda zs, r: torch.cat([torch.where(r[:, m:m + 1], z, torch.zeros(()))  # noqa: E731
                                    for m, z in enumerate(zs)], 1)
    assert ch10.check_masked_concat(good)
    product = ch10.check_masked_concat(
        lambda zs, r: torch.cat([z * r[:, m:m + 1] for m, z in enumerate(zs)], 1))
    assert not product and "torch.where" in product.message
    flipped = ch10.check_masked_concat(
        lambda zs, r: torch.cat([torch.where(~r[:, m:m + 1], torch.nan_to_num(z), 0.0)
                                 for m, z in enumerate(zs)], 1))
    assert not flipped and "present is True where" in flipped.message
    unmasked = ch10.check_masked_concat(lambda zs, r: torch.cat(zs, 1))
    assert not unmasked and "NaN" in unmasked.message
    assert "returned None" in ch10.check_masked_concat(lambda zs, r: None).message  # pending


def test_check_renormalised_average_diagnoses():
    assert ch10.check_renormalised_average(
        lambda p, r: (p * r[:, :, None]).sum(1) / r.sum(1, keepdim=True))
    by_m = ch10.check_renormalised_average(lambda p, r: (p * r[:, :, None]).sum(1) / 3)
    assert not by_m and "number of modalities each sample has" in by_m.message
    all_m = ch10.check_renormalised_average(lambda p, r: p.mean(1))
    assert not all_m and "absent ones too" in all_m.message
    raised = ch10.check_renormalised_average(lambda p, r: p @ r)
    assert not raised and "raised" in raised.message


def test_check_modality_dropout_diagnoses():
    def good(present, p):
        keep = present & (torch.rand(present.shape) >= p)
        empty = ~keep.any(1)
        keep[empty.nonzero().squeeze(1),
             torch.multinomial(present[empty].float(), 1).squeeze(1)] = True
        return keep

    assert ch10.check_modality_dropout(good)
    no_rescue = ch10.check_modality_dropout(
        lambda r, p: r & (torch.rand(r.shape) >= p))
    assert not no_rescue and "lost every modality" in no_rescue.message
    adds = ch10.check_modality_dropout(lambda r, p: good(torch.ones_like(r), p))
    assert not adds and "only drop, never add" in adds.message
    per_batch = ch10.check_modality_dropout(
        lambda r, p: r & torch.tensor([True, True, False]))
    assert not per_batch and "per sample" in per_batch.message
    inverted = ch10.check_modality_dropout(lambda r, p: good(r, 1 - p))
    assert not inverted and "1 - p" in inverted.message


def test_check_modality_dropout_catches_the_rescue_and_the_dtype():
    def drop(present, p):
        return present & (torch.rand(present.shape) >= p)

    def restore_all(present, p):  # passes at p = 0.3 (0.73 kept): caught at p = 0.9
        keep = drop(present, p)
        empty = ~keep.any(1)
        keep[empty] = present[empty]
        return keep

    def restore_first(present, p):
        keep = drop(present, p)
        keep[~keep.any(1), 0] = True
        return keep

    def good(present, p):
        keep = drop(present, p)
        empty = ~keep.any(1)
        keep[empty.nonzero().squeeze(1),
             torch.multinomial(present[empty].float(), 1).squeeze(1)] = True
        return keep

    assert ch10.check_modality_dropout(good)
    fb = ch10.check_modality_dropout(restore_all)
    assert not fb and "EVERY modality back" in fb.message, fb.message
    fb = ch10.check_modality_dropout(restore_first)
    assert not fb and "always give back the same modality" in fb.message, fb.message
    fb = ch10.check_modality_dropout(lambda r, p: good(r, p).float())
    assert not fb and "bool mask" in fb.message and "float32" in fb.message, fb.message


def test_ch10_shape_mistakes_get_a_hint_not_a_runtime_error():
    keepdim = ch10.check_renormalised_average(
        lambda p, r: (p * r[:, :, None]).sum(1) / r.sum(1))  # (N, C) / (N,)
    assert not keepdim and "you forgot keepdim" in keepdim.message, keepdim.message
    other = ch10.check_renormalised_average(lambda p, r: (p * r[:, :, None]).sum(1) / r.sum(0))
    assert not other and "shape mistake" in other.message and "keepdim=True" in other.message
    assert "you forgot keepdim" not in other.message  # not that mistake: no certainty
    rows = ch10.check_masked_concat(lambda zs, r: torch.cat(
        [torch.where(r[:, m], z, 0.0) for m, z in enumerate(zs)], 1))  # r[:, m] is (N,)
    assert not rows and "present[:, m:m + 1]" in rows.message, rows.message
    per_sample = ch10.check_modality_dropout(lambda r, p: r & (torch.rand(r.shape[0]) >= p))
    assert not per_sample and "torch.rand(present.shape)" in per_sample.message
    assert isinstance(per_sample.error, RuntimeError)


def test_check_renormalised_average_names_a_missing_division():
    summed = ch10.check_renormalised_average(lambda p, r: (p * r[:, :, None]).sum(1))
    assert not summed and "did not divide" in summed.message


# ----------------------------------------------------------------------------- the one rule
# Every fusion, by the registry (no list of names kept here), follows the package's one
# absent-modality rule: mmbook.utils.check_present / fill_absent.
DIMS3 = (4, 4, 4)  # equal sizes: "attention" sums the modalities
PRESENT3 = torch.tensor([[True, True, True], [True, False, True], [False, True, False],
                         [True, False, False], [False, False, True], [True, True, False]])
_OFFER = {"out_features": 6, "rank": 2, "num_classes": C}


def _registry():
    from mmbook.fusion import FUSIONS

    return sorted(FUSIONS)


def _build(name, seed=0):
    from mmbook.fusion import FUSIONS

    torch.manual_seed(seed)
    entry = FUSIONS[name]
    return entry.build(DIMS3, **{k: _OFFER[k] for k in entry.needs})


def _absent_filled(zs, present, value):
    return [torch.where(present[:, m:m + 1], z, torch.full_like(z, value))
            for m, z in enumerate(zs)]


def _output_and_grads(fusion, zs, present):
    zs = [z.clone().requires_grad_() for z in zs]
    fusion.zero_grad()
    out = fusion(zs, present=present)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    grads = {n: p.grad.clone() for n, p in fusion.named_parameters() if p.grad is not None}
    return out.detach(), grads, [z.grad for z in zs]


@pytest.mark.parametrize("name", _registry())
def test_every_fusion_discards_nan_and_inf_in_absent_rows_gradients_included(name):
    fusion = _build(name)
    g = torch.Generator().manual_seed(1)
    zs = [torch.randn(N, d, generator=g) for d in DIMS3]
    want, want_grads, _ = _output_and_grads(fusion, _absent_filled(zs, PRESENT3, 0.0), PRESENT3)
    for bad in (float("nan"), float("inf"), 1e4):
        out, grads, z_grads = _output_and_grads(fusion, _absent_filled(zs, PRESENT3, bad),
                                                PRESENT3)
        assert torch.isfinite(out).all(), (name, bad)
        torch.testing.assert_close(out, want)  # equal to zeros (or anything) in those rows
        assert grads.keys() == want_grads.keys()
        for pname, grad in grads.items():
            assert torch.isfinite(grad).all(), (name, bad, pname)
            torch.testing.assert_close(grad, want_grads[pname])
        for m, zg in enumerate(z_grads):
            assert torch.isfinite(zg).all() and (zg[~PRESENT3[:, m]] == 0).all(), (name, m)


@pytest.mark.parametrize("name", _registry())
def test_every_fusion_takes_none_for_a_modality_absent_from_the_whole_batch(name):
    fusion = _build(name).eval()
    zs = [torch.randn(N, d) for d in DIMS3]
    present = torch.tensor([True, False, True])
    with torch.no_grad():
        want = fusion([zs[0], torch.full((N, 4), float("nan")), zs[2]], present=present)
        torch.testing.assert_close(fusion([zs[0], None, zs[2]], present=present), want)
        per_sample = present.expand(N, 3)
        torch.testing.assert_close(fusion([zs[0], None, zs[2]], present=per_sample), want)
    with pytest.raises(ValueError, match=r"\[1\] is None but present\[:, 1\] is True"):
        fusion([zs[0], None, zs[2]], present=PRESENT3)


@pytest.mark.parametrize("name", _registry())
def test_every_fusion_refuses_a_sample_with_no_modality_alike(name):
    fusion = _build(name)
    zs = [torch.randn(N, d) for d in DIMS3]
    empty = PRESENT3.clone()
    empty[4] = False
    with pytest.raises(ValueError, match=r"every sample needs at least one modality; rows "
                                         r"\[4\] have none"):
        fusion(zs, present=empty)
    with pytest.raises(ValueError, match="dtype"):
        fusion(zs, present=PRESENT3.float())


def test_modality_attention_infers_its_modalities_in_a_model_with_modality_dropout():
    from mmbook.fusion import ModalityAttention

    torch.manual_seed(0)
    encoders = [nn.Linear(d, 4) for d in (3, 5, 2)]
    model = MultimodalModel(encoders, ModalityAttention(4), modality_dropout=0.5)  # the issue's
    xs = [torch.randn(5, d) for d in (3, 5, 2)]
    model(*xs).sum().backward()  # training: random masks of shape (5, 3)
    assert all(torch.isfinite(p.grad).all() for p in model.fusion.parameters())
    model.eval()
    with torch.no_grad():
        zs = [e(x) for e, x in zip(encoders, xs)]
        torch.testing.assert_close(model(*xs), model.fusion(zs))
        torch.testing.assert_close(model(*xs, present=PRESENT3[:5]),
                                   model.fusion(zs, present=PRESENT3[:5]))


def test_modality_attention_per_step_mask_follows_the_rule():
    from mmbook.fusion import ModalityAttention

    torch.manual_seed(0)
    fusion = ModalityAttention(4)  # any K
    X = torch.randn(N, 7, 3, 4)  # (N, T, K, E)
    step_mask = torch.rand(N, 7, 3) > 0.4
    step_mask[..., 0] = True
    bad = torch.where(step_mask[..., None], X, torch.tensor(float("nan")))
    want = fusion(torch.where(step_mask[..., None], X, torch.tensor(0.0)), step_mask)
    torch.testing.assert_close(fusion(bad, step_mask), want)
    # a per-sample mask (N, K) holds at every step
    torch.testing.assert_close(fusion(X, PRESENT3),
                               fusion(X, PRESENT3[:, None, :].expand(N, 7, 3)))
    step_mask[2, 5] = False
    with pytest.raises(ValueError, match="at least one modality"):
        fusion(X, step_mask)


def test_modality_graph_attention_discards_absent_nodes():
    from mmbook.graph import ModalityGraphAttention

    torch.manual_seed(0)
    gat = ModalityGraphAttention(4, 3)
    h = torch.randn(N, 3, 4)
    nan = torch.where(PRESENT3[..., None], h, torch.tensor(float("nan"))).requires_grad_()
    out = gat(nan, PRESENT3)
    torch.testing.assert_close(out, gat(torch.where(PRESENT3[..., None], h, 0.0), PRESENT3))
    assert (out[~PRESENT3] == 0).all() and (gat.last_weights[~PRESENT3] == 0).all()
    out.sum().backward()
    assert torch.isfinite(nan.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in gat.parameters())


def test_modality_dropout_validates_present_as_every_fusion_does():
    drop = ModalityDropout(0.5)
    empty = torch.tensor([[True, False], [False, False]])
    for mode in (drop.train(), drop.eval()):
        with pytest.raises(ValueError, match=r"rows \[1\] have none"):
            mode(empty)


def test_autoencoder_impute_accepts_nan_where_absent_only():
    torch.manual_seed(0)
    ae = CrossModalAutoencoder(DIMS, latent_dim=4, hidden_features=8).eval()
    xs = _zs()
    nan = [torch.where(PRESENT[:, m:m + 1], x, torch.tensor(float("nan")))
           for m, x in enumerate(xs)]
    with torch.no_grad():
        filled = ae.impute(nan, PRESENT)
        torch.testing.assert_close(filled, ae.impute(xs, PRESENT))
    assert all(torch.isfinite(x).all() for x in filled)
    with pytest.raises(ValueError, match="NaN"):  # NaN where present: refused
        ae.impute(nan, torch.ones(N, 2, dtype=torch.bool))
