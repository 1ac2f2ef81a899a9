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
