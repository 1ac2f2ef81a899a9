"""mmbook.losses, contrastive block: InfoNCE against the formula written with F.cross_entropy
and by hand, its gradient (gradcheck), and bad input."""

import math

import pytest
import torch
import torch.nn.functional as F

from mmbook.losses import clip_loss, cosine_logits, info_nce


def _pairs(n=6, e=4, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, e, generator=g, dtype=dtype),
            torch.randn(n, e, generator=g, dtype=dtype))


def _reference(z_a, z_b, tau, symmetric):
    """CLIP's pseudo-code: normalise, logits = a @ b.T / tau, cross-entropy both ways."""
    a, b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    logits = a @ b.T / tau
    labels = torch.arange(len(a))
    loss = F.cross_entropy(logits, labels)
    return (loss + F.cross_entropy(logits.T, labels)) / 2 if symmetric else loss


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("tau", [0.07, 0.5, 2.0])
def test_info_nce_matches_cross_entropy_formula(symmetric, tau):
    z_a, z_b = _pairs()
    torch.testing.assert_close(info_nce(z_a, z_b, tau, symmetric), _reference(z_a, z_b, tau,
                                                                               symmetric))


def test_info_nce_by_hand_loops():
    """The sum over i of -log(exp(s_ii / tau) / sum_j exp(s_ij / tau)), written as loops."""
    z_a, z_b = _pairs(n=4, e=3, seed=1, dtype=torch.float64)
    tau = 0.3
    cos = [[float(F.cosine_similarity(z_a[i], z_b[j], dim=0)) for j in range(4)] for i in range(4)]
    ab = -sum(cos[i][i] / tau - math.log(sum(math.exp(cos[i][j] / tau) for j in range(4)))
              for i in range(4)) / 4
    ba = -sum(cos[i][i] / tau - math.log(sum(math.exp(cos[j][i] / tau) for j in range(4)))
              for i in range(4)) / 4
    assert info_nce(z_a, z_b, tau, symmetric=False).item() == pytest.approx(ab, rel=1e-10)
    assert info_nce(z_a, z_b, tau).item() == pytest.approx((ab + ba) / 2, rel=1e-10)


def test_info_nce_gradient():
    z_a, z_b = _pairs(n=5, e=3, seed=2, dtype=torch.float64)
    z_a.requires_grad_(True)
    z_b.requires_grad_(True)
    tau = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, t: info_nce(a, b, t), (z_a, z_b, tau))
    # and the same gradient as the reference formula
    g_ours = torch.autograd.grad(info_nce(z_a, z_b, 0.2), (z_a, z_b))
    g_ref = torch.autograd.grad(_reference(z_a, z_b, 0.2, True), (z_a, z_b))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)


def test_clip_loss_limits_and_scale_invariance():
    n = 8
    assert clip_loss(torch.zeros(n, n)).item() == pytest.approx(math.log(n))  # uniform: log N
    assert clip_loss(20 * torch.eye(n)).item() < 1e-6  # confident and right
    z_a, z_b = _pairs()
    torch.testing.assert_close(info_nce(3 * z_a, 0.5 * z_b), info_nce(z_a, z_b))  # cosine
    logits = cosine_logits(z_a, z_b, 0.1)
    torch.testing.assert_close(clip_loss(logits, torch.zeros(6)), clip_loss(logits))


def test_follows_device_and_dtype():
    z_a, z_b = _pairs(dtype=torch.float64)
    assert info_nce(z_a, z_b).dtype == torch.float64


@pytest.mark.parametrize("call, match", [
    (lambda a, b: info_nce(a, b[:3]), "z_b"),
    (lambda a, b: info_nce(a, b[:, :2]), "z_b"),
    (lambda a, b: info_nce(a[0], b), "z_a"),
    (lambda a, b: info_nce(a, b, temperature=0.0), "temperature"),
    (lambda a, b: info_nce(a, b, temperature=-1.0), "temperature"),
    (lambda a, b: info_nce(a, b, temperature=torch.tensor([0.1, 0.2])), "temperature"),
    (lambda a, b: info_nce(a * float("nan"), b), "z_a"),
    (lambda a, b: clip_loss(a @ b[:4].T), "logits"),
    (lambda a, b: clip_loss(torch.full((3, 3), float("nan"))), "logits"),
    (lambda a, b: clip_loss(torch.zeros(0, 0)), "empty"),
])
def test_bad_input(call, match):
    z_a, z_b = _pairs()
    with pytest.raises(ValueError, match=match):
        call(z_a, z_b)


# ------------------------------------------------------- 0 log 0 = 0: masked classes (issue 23)
def _kl_reference(s, t, T):
    """Hinton's soft term with F.kl_div and a probability target (which takes 0 log 0 = 0)."""
    return F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T ** 2


def _xlogy_reference(s, t, T):
    """The same sum written with xlogy: sum_c p log p - p log q, with xlogy(0, .) = 0."""
    p, q = F.softmax(t / T, 1), F.softmax(s / T, 1)
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(1).mean() * T ** 2


def _issue_23_logits():
    """The issue's example: a class masked with -inf in the teacher, T = 4."""
    torch.manual_seed(0)
    s, t = torch.randn(4, 5), torch.randn(4, 5)
    t[:, -1] = -math.inf
    return s, t


def test_distillation_loss_with_a_class_masked_by_the_teacher():
    from mmbook.losses import distillation_loss

    s, t = _issue_23_logits()
    s.requires_grad_()
    got = distillation_loss(s, t, temperature=4.0)
    want = _kl_reference(s, t, 4.0)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got, _xlogy_reference(s, t, 4.0))
    assert round(got.item(), 3) == 3.954  # the value the issue expected
    got.backward()
    assert torch.isfinite(s.grad).all()
    g_want, = torch.autograd.grad(_kl_reference(s, t, 4.0), s)
    torch.testing.assert_close(s.grad, g_want)
    y = torch.tensor([0, 1, 2, 3])
    torch.testing.assert_close(distillation_loss(s, t, y, temperature=4.0, alpha=0.3),
                               0.3 * want + 0.7 * F.cross_entropy(s, y))


def test_distillation_loss_with_a_class_masked_by_both():
    """F.kl_div is NaN here too (0 * -inf); the class has no mass: drop it for the reference."""
    from mmbook.losses import distillation_loss

    s, t = _issue_23_logits()
    s[:, -1] = -math.inf
    s.requires_grad_()
    got = distillation_loss(s, t, temperature=4.0)
    torch.testing.assert_close(got, _kl_reference(s[:, :-1], t[:, :-1], 4.0))
    torch.testing.assert_close(got, _xlogy_reference(s, t, 4.0))
    got.backward()
    assert torch.isfinite(s.grad).all() and (s.grad[:, -1] == 0).all()
    # the student alone masking a class the teacher uses: an infinite divergence, not NaN
    s2, t2 = _issue_23_logits()
    assert distillation_loss(t2, s2).item() == math.inf


def test_scratch_cross_entropy_with_probability_targets_and_a_masked_class():
    from mmbook.optim import cross_entropy

    s, t = _issue_23_logits()
    p = F.softmax(t, 1)  # probability 0 on the last class
    z = s.clone()
    z[:, -1] = -math.inf  # the logits mask it too
    z.requires_grad_()
    got = cross_entropy(z, p)
    want = -torch.special.xlogy(p, F.softmax(z, 1)).sum(1).mean()  # xlogy(0, 0) = 0
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got, F.cross_entropy(z[:, :-1], p[:, :-1]))
    assert torch.isnan(F.cross_entropy(z, p))  # torch's own is NaN here
    got.backward()
    assert torch.isfinite(z.grad).all()


def test_attention_entropy_of_masked_weights_equals_scipy_and_has_finite_gradients():
    """attention_entropy already takes 0 log 0 = 0 (log of a clamped weight): checked here."""
    from scipy.stats import entropy

    from mmbook.attention import attention_entropy

    scores = torch.tensor([[1.0, 2.0, -math.inf, 0.5], [-math.inf, 3.0, -math.inf, -math.inf]],
                          requires_grad=True)
    weights = torch.softmax(scores, 1)
    got = attention_entropy(weights)
    torch.testing.assert_close(got, torch.tensor(entropy(weights.detach().numpy(), axis=1),
                                                 dtype=torch.float32))
    got.sum().backward()
    assert torch.isfinite(scores.grad).all()
