"""Tests of mmbook.fusion: shapes, gradients, parameter counts, exact references."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from mmbook.fusion import (
    ConcatFusion,
    GatedFusion,
    LateFusion,
    LowRankTensorFusion,
    MultimodalModel,
    TensorFusion,
    WeightedSumFusion,
    check_modalities,
)

DIMS = (3, 5, 4)
N, E, C, R = 6, 7, 4, 3


def _inputs(dims=DIMS, n=N, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=dtype) for d in dims]


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _all_fusions(dims=DIMS):
    return {
        "concat": ConcatFusion(dims),
        "weighted_sum": WeightedSumFusion(dims, E),
        "late_mean": LateFusion(dims, C, mode="mean"),
        "late_weighted": LateFusion(dims, C, mode="weighted"),
        "late_meta": LateFusion(dims, C, mode="meta"),
        "tensor": TensorFusion(dims),
        "low_rank": LowRankTensorFusion(dims, E, rank=R),
        "gated": GatedFusion(dims, E),
    }


EXPECTED_OUT = {
    "concat": sum(DIMS),
    "weighted_sum": E,
    "late_mean": C,
    "late_weighted": C,
    "late_meta": C,
    "tensor": math.prod(d + 1 for d in DIMS),
    "low_rank": E,
    "gated": E,
}


# ----------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", list(EXPECTED_OUT))
def test_output_shape_and_out_features(name):
    fusion = _all_fusions()[name]
    out = fusion(_inputs())
    assert out.shape == (N, EXPECTED_OUT[name])
    assert fusion.out_features == EXPECTED_OUT[name]


@pytest.mark.parametrize("name", list(EXPECTED_OUT))
def test_two_modalities_and_float64_follow_input(name):
    dims = (2, 3)
    fusion = _all_fusions(dims)[name].double()
    out = fusion(_inputs(dims, dtype=torch.float64))
    assert out.dtype == torch.float64


# ----------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", list(EXPECTED_OUT))
def test_gradient_reaches_every_parameter_and_input(name):
    torch.manual_seed(0)
    fusion = _all_fusions()[name]
    zs = [z.requires_grad_() for z in _inputs()]
    out = fusion(zs)
    # a loss that depends on every output unit non-trivially
    (out * torch.randn_like(out)).sum().backward()
    for pname, p in fusion.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert p.grad.abs().sum() > 0, f"{pname} got a zero gradient"
    for m, z in enumerate(zs):
        assert z.grad is not None and z.grad.abs().sum() > 0, f"modality {m} got no gradient"


def test_low_rank_factors_are_registered_and_move_with_module():
    f = LowRankTensorFusion(DIMS, E, rank=R)
    names = {n for n, _ in f.named_parameters()}
    assert {f"factors.{m}" for m in range(len(DIMS))} <= names
    f = f.double()
    assert all(W.dtype == torch.float64 for W in f.factors)
    # an optimizer sees (and changes) the factors
    before = [W.detach().clone() for W in f.factors]
    opt = torch.optim.SGD(f.parameters(), lr=0.1)
    f(_inputs(dtype=torch.float64)).pow(2).sum().backward()
    opt.step()
    assert all(not torch.equal(b, W) for b, W in zip(before, f.factors))


# ----------------------------------------------------------------------- parameter counts
def test_parameter_counts_match_closed_forms():
    M = len(DIMS)
    f = _all_fusions()
    assert _n_params(f["concat"]) == 0
    assert _n_params(f["tensor"]) == 0
    assert _n_params(f["weighted_sum"]) == sum((d + 1) * E for d in DIMS) + M
    assert _n_params(f["late_mean"]) == sum((d + 1) * C for d in DIMS)
    assert _n_params(f["late_weighted"]) == sum((d + 1) * C for d in DIMS) + M
    assert _n_params(f["late_meta"]) == sum((d + 1) * C for d in DIMS) + (M * C + 1) * C
    assert _n_params(f["low_rank"]) == R * sum((d + 1) * E for d in DIMS) + E
    assert _n_params(LowRankTensorFusion(DIMS, E, R, bias=False)) == R * sum(
        (d + 1) * E for d in DIMS)
    assert _n_params(f["gated"]) == sum((d + 1) * E for d in DIMS) + (sum(DIMS) + 1) * M * E


def test_low_rank_is_far_smaller_than_full_tensor_layer():
    dims, e, r = (32, 32, 32), 16, 4
    full = (math.prod(d + 1 for d in dims) + 1) * e
    low = _n_params(LowRankTensorFusion(dims, e, r))
    assert low == r * sum(d + 1 for d in dims) * e + e
    assert low < full / 50


# ----------------------------------------------------------------------- exact references
def test_concat_equals_torch_cat():
    zs = _inputs()
    torch.testing.assert_close(ConcatFusion(DIMS)(zs), torch.cat(zs, dim=1))


def test_weighted_sum_equals_formula():
    torch.manual_seed(0)
    f = WeightedSumFusion(DIMS, E)
    with torch.no_grad():
        f.weight_logits.copy_(torch.tensor([0.3, -1.0, 2.0]))
    zs = _inputs()
    alpha = torch.exp(f.weight_logits) / torch.exp(f.weight_logits).sum()
    expected = sum(a * (z @ p.weight.T + p.bias) for a, z, p in zip(alpha, zs, f.projections))
    torch.testing.assert_close(f(zs), expected)


def test_weighted_sum_without_projection_is_seed_formula():
    f = WeightedSumFusion((4, 4), 4, project=False)
    assert _n_params(f) == 2
    zs = _inputs((4, 4))
    torch.testing.assert_close(f(zs), 0.5 * zs[0] + 0.5 * zs[1])
    with pytest.raises(ValueError, match="project=False"):
        WeightedSumFusion((4, 5), 4, project=False)


def test_tensor_fusion_equals_explicit_outer_product_loops():
    zs = _inputs(dtype=torch.float64)
    out = TensorFusion(DIMS)(zs)
    aug = [torch.cat([z, torch.ones(N, 1, dtype=z.dtype)], 1) for z in zs]
    for n in range(N):
        expected = torch.tensor([aug[0][n, i] * aug[1][n, j] * aug[2][n, k]
                                 for i, j, k in itertools.product(
                                     *(range(d + 1) for d in DIMS))], dtype=torch.float64)
        torch.testing.assert_close(out[n], expected)


def test_tensor_fusion_equals_einsum_and_holds_unimodal_terms():
    zs = _inputs(dtype=torch.float64)
    aug = [torch.cat([z, torch.ones(N, 1, dtype=z.dtype)], 1) for z in zs]
    expected = torch.einsum("ni,nj,nk->nijk", *aug).reshape(N, -1)
    out = TensorFusion(DIMS)(zs)
    torch.testing.assert_close(out, expected)
    t = out.view(N, *(d + 1 for d in DIMS))
    torch.testing.assert_close(t[:, :-1, -1, -1], zs[0])  # z_1 (times 1 times 1)
    torch.testing.assert_close(t[:, -1, -1, -1], torch.ones(N, dtype=torch.float64))


@pytest.mark.parametrize("dims", [(3, 5), DIMS])
def test_low_rank_equals_tensor_fusion_with_cp_weight(dims):
    """A rank-R weight tensor W = sum_i outer(W_1^(i), ..., W_M^(i)): the low-rank layer and
    a linear layer with W on the tensor-fusion output must agree exactly."""
    torch.manual_seed(1)
    f = LowRankTensorFusion(dims, E, rank=R).double()
    with torch.no_grad():
        f.bias.normal_()
    # the full weight, built independently of the module: W[i1, ..., iM, e]
    letters = "abcd"[:len(dims)]
    spec = ",".join(f"r{c}e" for c in letters) + f"->{letters}e"
    W = torch.einsum(spec, *f.factors).reshape(-1, E)  # (prod(D_m + 1), E)
    zs = _inputs(dims, dtype=torch.float64)
    expected = TensorFusion(dims)(zs) @ W + f.bias
    torch.testing.assert_close(f(zs), expected)
    torch.testing.assert_close(f.full_weight(), W)


def test_low_rank_full_rank_reproduces_any_bilinear_layer():
    """Every full weight of a 2-modality layer has a CP form with R = (D_1 + 1) factors
    per output; set the factors from W and compare with nn.Linear on the tensor fusion."""
    torch.manual_seed(2)
    dims, e = (3, 2), 5
    P1, P2 = dims[0] + 1, dims[1] + 1
    linear = nn.Linear(P1 * P2, e).double()
    W = linear.weight.detach().T.reshape(P1, P2, e)  # W[i, j, e]
    f = LowRankTensorFusion(dims, e, rank=P1).double()
    with torch.no_grad():
        f.factors[0].copy_(torch.eye(P1, dtype=torch.float64)[:, :, None].expand(P1, P1, e))
        f.factors[1].copy_(W)  # factor i is row i of W: W = sum_i e_i (x) W[i]
        f.bias.copy_(linear.bias)
    zs = _inputs(dims, dtype=torch.float64)
    torch.testing.assert_close(f(zs), linear(TensorFusion(dims)(zs)))


def test_gated_fusion_equals_formula_and_gates_sum_to_one():
    torch.manual_seed(0)
    f = GatedFusion((3, 5), E)
    zs = _inputs((3, 5))
    g = f.gates(zs)
    torch.testing.assert_close(g.sum(1), torch.ones(N, E))
    # for M = 2 the softmax gate is a sigmoid of the logit difference
    logits = f.gate(torch.cat(zs, 1)).view(N, 2, E)
    g1 = torch.sigmoid(logits[:, 0] - logits[:, 1])
    h1, h2 = (torch.tanh(t(z)) for t, z in zip(f.transforms, zs))
    torch.testing.assert_close(f(zs), g1 * h1 + (1 - g1) * h2)


# ----------------------------------------------------------------------- late fusion
def test_late_mean_is_log_of_average_probability():
    torch.manual_seed(0)
    f = LateFusion(DIMS, C, mode="mean")
    zs = _inputs()
    probs = [torch.softmax(h(z), 1) for h, z in zip(f.heads, zs)]
    torch.testing.assert_close(f(zs).exp(), sum(probs) / len(probs))
    torch.testing.assert_close(f.weights, torch.full((3,), 1 / 3))


def test_late_weighted_and_meta_match_formulas():
    torch.manual_seed(0)
    logits = _inputs((C, C))
    w = LateFusion([nn.Identity(), nn.Identity()], C, mode="weighted")
    with torch.no_grad():
        w.weight_logits.copy_(torch.tensor([1.0, -0.5]))
    beta = torch.softmax(w.weight_logits, 0)
    expected = beta[0] * torch.softmax(logits[0], 1) + beta[1] * torch.softmax(logits[1], 1)
    torch.testing.assert_close(w(logits).exp(), expected)
    meta = LateFusion([nn.Identity(), nn.Identity()], C, mode="meta")
    log_p = torch.cat([torch.log_softmax(ll, 1) for ll in logits], 1)
    torch.testing.assert_close(meta(logits), meta.meta(log_p))
    with pytest.raises(AttributeError):
        _ = meta.weights


def test_late_fusion_output_trains_with_cross_entropy():
    """log of the mean probability is a valid logit vector: cross_entropy = -log p[y]."""
    torch.manual_seed(0)
    f = LateFusion((3, 5), C)
    zs, y = _inputs((3, 5)), torch.randint(0, C, (N,))
    out = f(zs)
    torch.testing.assert_close(nn.functional.cross_entropy(out, y),
                               -out.gather(1, y[:, None]).mean())


def test_late_fusion_cannot_learn_xor_but_tensor_fusion_can():
    """XOR of two binary modalities: additive late fusion stays at 3/4 at best on the
    four points, a linear layer on the tensor fusion is exact."""
    torch.manual_seed(0)
    x = torch.tensor([[0.0], [1.0]])
    x1, x2 = x.repeat_interleave(2, 0), x.repeat(2, 1)  # the 4 combinations
    y = (x1 != x2).long().squeeze(1)
    results = {}
    for name, model in {
        "late": MultimodalModel([nn.Identity(), nn.Identity()],
                                LateFusion((1, 1), 2, mode="meta")),
        "tensor": MultimodalModel([nn.Identity(), nn.Identity()], TensorFusion((1, 1)),
                                  nn.Linear(4, 2)),
    }.items():
        opt = torch.optim.Adam(model.parameters(), lr=0.1)
        for _ in range(500):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x1, x2), y).backward()
            opt.step()
        results[name] = (model(x1, x2).argmax(1) == y).float().mean().item()
    assert results["tensor"] == 1.0
    assert results["late"] <= 0.75


# ----------------------------------------------------------------------- the model
def test_multimodal_model_routes_inputs_by_arity():
    class TwoInputs(nn.Module):
        def forward(self, a, b):
            return a * b

    enc = [nn.Linear(3, 4), TwoInputs()]
    model = MultimodalModel(enc, ConcatFusion((4, 2)), nn.Linear(6, C), arity=(1, 2))
    a, b, c = torch.randn(N, 3), torch.randn(N, 2), torch.randn(N, 2)
    zs = model.encode(a, b, c)
    torch.testing.assert_close(zs[0], enc[0](a))
    torch.testing.assert_close(zs[1], b * c)
    torch.testing.assert_close(model(a, b, c), model.head(torch.cat(zs, 1)))
    with pytest.raises(ValueError, match="expected 3 positional inputs"):
        model(a, b)


def test_multimodal_model_with_late_fusion_has_no_head():
    model = MultimodalModel([nn.Identity(), nn.Identity()], LateFusion((3, 5), C))
    assert isinstance(model.head, nn.Identity)
    assert model(*_inputs((3, 5))).shape == (N, C)


def test_multimodal_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="arity"):
        MultimodalModel([nn.Identity(), nn.Identity()], ConcatFusion((1, 1)), arity=(1,))
    with pytest.raises(ValueError, match="encoders"):
        MultimodalModel(nn.Linear(2, 2), ConcatFusion((2,)))


# ----------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("name", list(EXPECTED_OUT))
def test_wrong_number_of_modalities_rejected(name):
    f = _all_fusions()[name]
    with pytest.raises(ValueError, match="must hold 3 modalities, got 2"):
        f(_inputs()[:2])


@pytest.mark.parametrize("name", list(EXPECTED_OUT))
def test_mismatched_batch_rejected(name):
    f = _all_fusions()[name]
    zs = _inputs()
    zs[1] = zs[1][:4]
    with pytest.raises(ValueError, match=r"zs\[1\] has batch size 4"):
        f(zs)


@pytest.mark.parametrize("name", list(EXPECTED_OUT))
def test_wrong_feature_size_rejected(name):
    f = _all_fusions()[name]
    zs = _inputs()
    zs[2] = torch.randn(N, 9)
    with pytest.raises(ValueError, match=r"zs\[2\] has shape \(6, 9\) but expected \(N, 4\)"):
        f(zs)


def test_non_list_and_non_2d_inputs_rejected():
    f = ConcatFusion((3, 5))
    with pytest.raises(ValueError, match="list of 2 modality tensors"):
        f(torch.randn(N, 8))
    with pytest.raises(ValueError, match=r"zs\[0\] must have 2 dimensions"):
        f([torch.randn(N, 1, 3), torch.randn(N, 5)])
    with pytest.raises(ValueError, match="must be a tensor"):
        check_modalities([torch.randn(N, 3), [1.0]], (3, 1))


def test_bad_constructor_arguments_rejected():
    with pytest.raises(ValueError, match="in_features"):
        ConcatFusion(5)
    with pytest.raises(ValueError, match=r"in_features\[1\]"):
        TensorFusion((3, 0))
    with pytest.raises(ValueError, match="rank"):
        LowRankTensorFusion((3, 4), 5, rank=0)
    with pytest.raises(ValueError, match="mode"):
        LateFusion((3, 4), 2, mode="vote")
    with pytest.raises(ValueError, match="out_features"):
        GatedFusion((3, 4), 0)


def test_late_fusion_checks_head_outputs():
    f = LateFusion([nn.Linear(3, 5), nn.Linear(4, C)], C)
    with pytest.raises(ValueError, match=r"head outputs\[0\] has shape \(6, 5\)"):
        f(_inputs((3, 4)))


def test_late_fusion_with_a_missing_modality_renormalises_the_weights():
    torch.manual_seed(0)
    zs = _inputs()
    f = LateFusion(DIMS, C, mode="weighted")
    with torch.no_grad():
        f.weight_logits.copy_(torch.tensor([0.5, -1.0, 1.5]))
    probs = [torch.softmax(h(z), 1) for h, z in zip(f.heads, zs)]
    beta = torch.softmax(f.weight_logits[[0, 2]], 0)
    out = f([zs[0], None, zs[2]], present=[True, False, True])
    torch.testing.assert_close(out.exp(), beta[0] * probs[0] + beta[1] * probs[2])
    # one modality left: its own prediction
    only = LateFusion(DIMS, C, mode="mean")
    torch.testing.assert_close(only([None, zs[1], None], present=[False, True, False]),
                               torch.log_softmax(only.heads[1](zs[1]), 1))
    with pytest.raises(ValueError, match="at least one"):
        f(zs, present=[False, False, False])
    with pytest.raises(ValueError, match=r"present must have shape \(6, 3\) or \(3,\)"):
        f(zs, present=[True, False])
    with pytest.raises(ValueError, match="meta"):
        LateFusion(DIMS, C, mode="meta")(zs, present=[True, True, False])
    with pytest.raises(ValueError, match="logits must be a list of 3"):
        f.combine(torch.randn(N, C))


# ----------------------------------------------------------------------- the hybrid model
def test_hybrid_cnn_rnn_shapes_gradients_and_parts():
    from mmbook.encoders import AudioEncoder, ImageEncoder
    from mmbook.models import HybridCNNRNN

    torch.manual_seed(0)
    model = HybridCNNRNN(num_classes=10, image_channels=(4,), image_features=8,
                         audio_input_size=6, audio_hidden_size=5)
    images, audio = torch.randn(N, 1, 28, 28), torch.randn(N, 7, 6)
    lengths = torch.tensor([7, 3, 5, 1, 7, 2])
    out = model(images, audio, lengths)
    assert out.shape == (N, 10)
    assert model(images, audio).shape == (N, 10)  # lengths optional: all frames
    nn.functional.cross_entropy(out, torch.arange(N)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    parts = (_n_params(ImageEncoder(1, (4,), 8)) + _n_params(AudioEncoder(6, 5))
             + (8 + 5 + 1) * 10)
    assert _n_params(model) == parts
    # the same computation as its parts, by hand
    z = torch.cat([model.encoders[0](images), model.encoders[1](audio, lengths)], 1)
    torch.testing.assert_close(out, model.head(z))
    with pytest.raises(ValueError, match="images"):
        model(torch.randn(N, 28, 28), audio, lengths)


# ----------------------------------------------------------------------- chapter 6 checkers
def test_ch06_checkers_accept_right_and_explain_wrong_answers():
    from mmbook.exercises import ch06

    dims, e, r = (32, 16, 8), 64, 4
    full = (math.prod(d + 1 for d in dims) + 1) * e
    assert full == _n_params(nn.Linear(TensorFusion(dims).out_features, e))
    assert ch06.check_tensor_fusion_parameters(full)
    wrong = ch06.check_tensor_fusion_parameters((math.prod(dims) + 1) * e)
    assert not wrong and "D_m + 1" in wrong.message
    assert not ch06.check_tensor_fusion_parameters("many")
    assert ch06.check_low_rank_parameters(_n_params(LowRankTensorFusion(dims, e, r)))
    assert not ch06.check_low_rank_parameters(0)

    def tensor_fusion(z1, z2):
        return TensorFusion((z1.shape[1], z2.shape[1]))([z1, z2])

    assert ch06.check_two_way_tensor_fusion(tensor_fusion)
    assert not ch06.check_two_way_tensor_fusion(lambda z1, z2: torch.cat([z1, z2], 1))
    assert not ch06.check_two_way_tensor_fusion(lambda z1, z2: 1 / 0)
    assert ch06.check_average_probabilities(
        lambda ls: torch.stack([torch.softmax(x, 1) for x in ls]).mean(0))
    averaged_logits = ch06.check_average_probabilities(lambda ls: sum(ls) / len(ls))
    assert not averaged_logits and "logits" in averaged_logits.message
    assert not ch06.check_average_probabilities(lambda ls: None)


# ----------------------------------------------------------------------------- the contract
def _public_fusion_classes():
    import inspect

    from mmbook import fusion

    found = {name: getattr(fusion, name) for name in fusion.__all__
             if inspect.isclass(getattr(fusion, name))
             and issubclass(getattr(fusion, name), nn.Module)}
    found.pop("MultimodalModel")
    found.pop("Fusion")
    return found


def _contract_instances():
    from mmbook.fusion import ModalityAttention, ModalityGraphFusion

    return {**_all_fusions(), "modality_attention": ModalityAttention(4, num_modalities=3),
            "graph": ModalityGraphFusion(DIMS, E)}


def _dims_of(fusion):
    return fusion.in_features if fusion.in_features[0] is not None else DIMS


def test_every_public_fusion_class_is_a_fusion_registered_and_tested_here():
    from mmbook.fusion import FUSIONS, Fusion

    classes = _public_fusion_classes()
    assert all(issubclass(cls, Fusion) for cls in classes.values()), classes
    tested = {type(f).__name__ for f in _contract_instances().values()}
    assert tested == set(classes)
    assert {entry.cls.__name__ for entry in FUSIONS.values()} == set(classes)


@pytest.mark.parametrize("name", list(_contract_instances()))
def test_every_fusion_returns_one_tensor_through_multimodal_model(name):
    fusion = _contract_instances()[name]
    dims = _dims_of(fusion)
    model = MultimodalModel([nn.Identity() for _ in dims], fusion)
    out = model(*_inputs(dims))
    assert isinstance(out, torch.Tensor) and out.shape == (N, fusion.out_features)
    torch.testing.assert_close(out, fusion(_inputs(dims)))


@pytest.mark.parametrize("name", list(_contract_instances()))
@pytest.mark.parametrize("device, dtype", [("cpu", torch.float64), ("meta", torch.float32),
                                           ("meta", torch.float64)])
def test_every_fusion_follows_its_inputs_device_and_dtype(name, device, dtype):
    fusion = _contract_instances()[name].to(device=device, dtype=dtype)
    dims = _dims_of(fusion)
    zs = [z.to(device=device, dtype=dtype) for z in _inputs(dims)]
    out = MultimodalModel([nn.Identity() for _ in dims], fusion)(*zs)
    assert out.device.type == device and out.dtype == dtype
    if hasattr(fusion, "weights") and getattr(fusion, "mode", "") != "meta":
        w = fusion.weights  # LateFusion's mean weights used to be created on the CPU
        assert w.device.type == device and w.dtype == dtype


def test_multimodal_model_takes_any_fusion_and_refuses_other_modules():
    from mmbook.fusion import ModalityAttention

    with pytest.raises(TypeError, match="must be a mmbook.fusion.Fusion"):
        MultimodalModel([nn.Identity(), nn.Identity()], nn.Linear(2, 2))
    with pytest.raises(ValueError, match="takes 3 modalities but 2 encoders"):
        MultimodalModel([nn.Identity(), nn.Identity()], ConcatFusion(DIMS))
    model = MultimodalModel([nn.Identity(), nn.Identity()], ModalityAttention(5))  # any K
    assert model(torch.randn(2, 5), torch.randn(2, 5)).shape == (2, 5)


def test_modality_attention_weights_behind_a_flag_or_an_attribute():
    from mmbook.fusion import ModalityAttention

    fusion = ModalityAttention(4, num_modalities=3)
    zs = _inputs((4, 4, 4))
    z = fusion(zs)
    z2, alpha = fusion(zs, return_weights=True)
    torch.testing.assert_close(z, z2)
    torch.testing.assert_close(fusion.last_weights, alpha.detach())
    with pytest.raises(ValueError, match="K = 3"):
        fusion(zs[:2])


# every registry entry, built from what it declares (no list of names kept here)
_OFFER = {"out_features": 6, "rank": 2, "num_classes": C}


def _registry_fusion(name, dims=(4, 4, 4)):
    from mmbook.fusion import FUSIONS

    entry = FUSIONS[name]
    return entry.build(dims, **{k: _OFFER[k] for k in entry.needs})


def _registry_names():
    import mmbook.fusion  # noqa: F401 (fills the registry)
    from mmbook.fusion.base import FUSIONS

    return sorted(FUSIONS)


def test_registry_holds_every_family():
    assert set(_registry_names()) == {"concat", "weighted_sum", "late", "tensor", "low_rank",
                                      "gated", "attention", "graph"}


@pytest.mark.parametrize("name", _registry_names())
def test_registry_builds_every_named_fusion(name):
    from mmbook.fusion import FUSIONS, Fusion, make_fusion

    fusion = _registry_fusion(name)
    assert isinstance(fusion, Fusion) and isinstance(fusion, FUSIONS[name].cls)
    assert fusion(_inputs((4, 4, 4))).shape == (N, fusion.out_features)
    needs = {k: _OFFER[k] for k in FUSIONS[name].needs}
    out = needs.pop("out_features", None)
    assert type(make_fusion(name, (4, 4, 4), out, **needs)) is type(fusion)
    for missing in FUSIONS[name].needs:  # each declared need is really needed
        with pytest.raises(ValueError, match=f"needs {missing}"):
            FUSIONS[name].build((4, 4, 4), **{k: v for k, v in _OFFER.items() if k != missing})
    if "rank" not in FUSIONS[name].needs + FUSIONS[name].accepts:  # strict: refused ...
        with pytest.raises(ValueError, match="takes"):
            make_fusion(name, (4, 4, 4), out, rank=2, **needs)
    # ... and ignored when a model offers everything it has
    offered = make_fusion(name, (4, 4, 4), 6, strict=False, rank=2, num_classes=C)
    assert type(offered) is type(fusion)


def test_registry_errors_and_modules():
    from mmbook.fusion import Fusion, make_fusion, register_fusion

    g = GatedFusion((4, 4), 3)
    assert make_fusion(g, (4, 4)) is g
    with pytest.raises(ValueError, match="takes 2 modalities, expected 3"):
        make_fusion(g, (4, 4, 4))
    with pytest.raises(ValueError, match="needs out_features"):
        make_fusion("gated", (4, 4))
    with pytest.raises(ValueError, match="needs out_features and rank"):
        make_fusion("low_rank", (4, 4))
    with pytest.raises(ValueError, match="has out_features=8"):
        make_fusion("concat", (4, 4), 5)
    with pytest.raises(ValueError, match="equal in_features"):
        make_fusion("attention", (4, 5))
    with pytest.raises(ValueError, match="taken by ConcatFusion"):
        register_fusion("concat")(type("Other", (Fusion,), {}))
    with pytest.raises(ValueError, match="needs a Fusion subclass"):
        register_fusion("linear")(nn.Linear)


def test_lstm_attention_fusion_takes_a_fusion_module_or_name():
    from mmbook.models import LSTMAttentionFusion

    images, audio = torch.randn(2, 1, 8, 8), torch.randn(2, 5, 6)
    for fusion in (*_registry_names(), GatedFusion((8, 8), 4)):  # every name, no list
        model = LSTMAttentionFusion((8, 6), 8, num_classes=3, fusion=fusion)
        assert model(images, audio).shape == (2, 3)
    model = LSTMAttentionFusion((8, 6), 8, num_classes=3, fusion="low_rank", rank=2)
    assert model.fusion.rank == 2
