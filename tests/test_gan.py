"""mmbook.models.gan: gradient reversal, conditional GAN, imputers, invariant encoder."""

import pytest
import torch

from mmbook.exercises import ch14
from mmbook.graph import normalize_adjacency
from mmbook.models.gan import (
    ConditionalDiscriminator,
    ConditionalGenerator,
    GeneratorImputer,
    GradientReversal,
    ModalityInvariantEncoder,
    compare_imputers,
    grad_reverse,
    sample_spread,
    train_conditional_gan,
    train_invariant,
    zero_impute,
)


def test_grad_reverse_identity_forward_reversed_gradient():
    x = torch.randn(5, 3, requires_grad=True, dtype=torch.float64)
    w = torch.randn(5, 3, dtype=torch.float64)
    y = grad_reverse(x, 0.7)
    torch.testing.assert_close(y, x)
    (g,) = torch.autograd.grad((y * w).sum(), x)
    torch.testing.assert_close(g, -0.7 * w)
    # the module, and lambda_ = 0 blocks the gradient
    (g0,) = torch.autograd.grad((GradientReversal(0.0)(x) * w).sum(), x)
    assert (g0 == 0).all()
    with pytest.raises(ValueError, match="lambda_"):
        GradientReversal(-1.0)


def test_generator_shapes_and_errors():
    G = ConditionalGenerator(4, 3, noise_dim=2)
    assert G(torch.randn(6, 4)).shape == (6, 3)
    z = torch.randn(6, 2)
    torch.testing.assert_close(G(torch.ones(6, 4), z), G(torch.ones(6, 4), z))
    with pytest.raises(ValueError, match="cond"):
        G(torch.randn(6, 5))
    with pytest.raises(ValueError, match="noise"):
        G(torch.randn(6, 4), torch.randn(6, 3))
    D = ConditionalDiscriminator(4, 3)
    assert D(torch.randn(6, 4), torch.randn(6, 3)).shape == (6,)


def _toy(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(n, 2, generator=g)
    x = torch.cat([c.sum(1, keepdim=True), c[:, :1] - c[:, 1:]], 1) + 0.1 * torch.randn(
        n, 2, generator=g)
    return c, x


def test_l2_generator_learns_the_conditional_mean_and_is_seeded():
    c, x = _toy()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        G = ConditionalGenerator(2, 2, noise_dim=0, hidden_features=32)
        h = train_conditional_gan(G, c, x, mode="l2", epochs=60, lr=1e-2, seed=1)
        runs.append(h["l2_loss"])
    assert runs[0] == runs[1]  # same seed, same history
    assert runs[0][-1] < 0.1 * runs[0][0]
    with pytest.raises(ValueError, match="discriminator"):
        train_conditional_gan(G, c, x, mode="gan")
    with pytest.raises(ValueError, match="mode"):
        train_conditional_gan(G, c, x, mode="wgan")


def test_gan_training_runs_and_records_history():
    c, x = _toy()
    torch.manual_seed(0)
    G, D = ConditionalGenerator(2, 2, noise_dim=2, hidden_features=16), ConditionalDiscriminator(
        2, 2, hidden_features=16)
    h = train_conditional_gan(G, c, x, mode="gan", discriminator=D, epochs=3,
                              monitor=lambda g: sample_spread(g, c[:10]))
    assert len(h["d_loss"]) == len(h["g_loss"]) == len(h["monitor"]) == 3
    assert all(torch.isfinite(torch.tensor(v)).all() for v in h.values())


def test_sample_spread_zero_for_a_generator_without_noise():
    G = ConditionalGenerator(3, 2, noise_dim=0)
    assert sample_spread(G, torch.randn(5, 3)) == 0.0
    G2 = ConditionalGenerator(3, 2, noise_dim=4)
    assert sample_spread(G2, torch.randn(5, 3)) > 0.0


def test_imputers_keep_present_entries_and_fill_absent_ones():
    xs = [torch.randn(4, 3), torch.randn(4, 2)]
    present = torch.tensor([[True, True], [True, False], [False, True], [True, False]])
    z = zero_impute(xs, present)
    torch.testing.assert_close(z[1][0], xs[1][0])
    assert (z[1][1] == 0).all() and (z[0][2] == 0).all()
    G = ConditionalGenerator(3, 2, noise_dim=0)
    out = GeneratorImputer(G, torch.nn.Identity())(xs, present)
    torch.testing.assert_close(out[1][[0, 2]], xs[1][[0, 2]])  # present: unchanged
    torch.testing.assert_close(out[1][[1, 3]], G(xs[0][[1, 3]]).detach())
    with pytest.raises(ValueError, match="present"):
        zero_impute(xs, present[:, :1])


def test_compare_imputers_hides_absent_entries():
    xs = [torch.randn(6, 2), torch.randn(6, 2)]
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    present = torch.tensor([[True, False]] * 6)
    seen = {}

    def peek(xs_in, present_in):
        seen["absent"] = xs_in[1].clone()
        return xs_in

    def oracle(xs_in, present_in):  # ignores its input: returns the truth
        return xs

    def classify(xs_in):  # class 1 iff the second modality's first feature > 0
        return torch.stack([-xs_in[1][:, 0], xs_in[1][:, 0]], 1)

    labels = (xs[1][:, 0] > 0).long()
    rows = compare_imputers({"peek": peek, "oracle": oracle}, classify, xs, labels, present)
    assert (seen["absent"] == 0).all()
    assert rows[1] == {"imputer": "oracle", "accuracy": 1.0}


def test_zero_impute_and_compare_imputers_drop_nan_in_absent_entries():
    # issue 23: x * present kept NaN, and compare_imputers scored the NaN logits
    x0 = torch.tensor([[1.0], [-1.0], [2.0], [-2.0], [0.5], [-0.5]])
    x1 = torch.tensor([[0.2], [float("nan")], [float("nan")], [-0.1], [float("nan")], [0.3]])
    present = torch.tensor([[True, True], [True, False], [True, False], [True, True],
                            [True, False], [True, True]])
    labels = torch.tensor([1, 0, 1, 0, 1, 1])

    def classify(xs):  # class 1 iff x0 + x1 > 0
        s = xs[0][:, 0] + xs[1][:, 0]
        return torch.stack([-s, s], 1)

    filled = zero_impute([x0, x1], present)
    assert torch.isfinite(filled[1]).all() and (filled[1][~present[:, 1]] == 0).all()
    torch.testing.assert_close(filled[1][present[:, 1]], x1[present[:, 1]])
    by_hand = torch.where(present[:, 1:], x1, torch.tensor(0.0))  # the reference
    want = (classify([x0, by_hand]).argmax(1) == labels).float().mean().item()
    nan_score = (classify([x0, x1]).argmax(1) == labels).float().mean().item()
    assert want == pytest.approx(5 / 6) and nan_score != want  # NaN logits score otherwise
    rows = compare_imputers({"zero-fill": zero_impute}, classify, [x0, x1], labels, present)
    assert rows == [{"imputer": "zero-fill", "accuracy": want}]
    G = ConditionalGenerator(1, 1, noise_dim=0)
    out = GeneratorImputer(G, torch.nn.Identity(), source=0, target=1)([x0, x1], present)
    assert torch.isfinite(out[1]).all()
    with pytest.raises(ValueError, match=r"rows \[0\] have none"):
        zero_impute([x0, x1], torch.tensor([[False, False]] + [[True, True]] * 5))


def test_invariant_encoder_trains_and_checks_inputs():
    torch.manual_seed(0)
    model = ModalityInvariantEncoder((3, 2), embed_dim=4, num_classes=2, hidden_features=8)
    xs, y = [torch.randn(64, 3), torch.randn(64, 2)], torch.randint(0, 2, (64,))
    h = train_invariant(model, xs, y, epochs=2, batch_size=32)
    assert len(h["task"]) == 2 and not model.training
    with pytest.raises(ValueError, match=r"xs\[1\]"):
        model([xs[0], torch.randn(64, 3)])
    parts = model.losses(xs, y)
    assert set(parts) == {"total", "task", "adversarial"}


# ----------------------------------------------------------------------------- exercises
def test_ch14_gcn_normalization_checker_names_mistakes():
    assert ch14.check_gcn_normalization(normalize_adjacency)
    no_loops = ch14.check_gcn_normalization(lambda A: normalize_adjacency(A, False))
    assert not no_loops and "self-loops" in no_loops.message

    def rows(A):
        A = A + torch.eye(len(A))
        return A / A.sum(1, keepdim=True)

    assert "by rows" in ch14.check_gcn_normalization(rows).message

    def nan(A):
        d = A.sum(1).rsqrt()
        return d[:, None] * (A + torch.eye(len(A))) * d[None, :]

    assert "NaN" in ch14.check_gcn_normalization(nan).message
    assert "None" in ch14.check_gcn_normalization(lambda A: None).message


def test_ch14_gradient_reversal_checker_names_mistakes():
    assert ch14.check_gradient_reversal(grad_reverse)
    assert "unchanged" in ch14.check_gradient_reversal(lambda x, lam: x * 1).message
    assert "identity" in ch14.check_gradient_reversal(lambda x, lam: -lam * x).message
    assert "detached" in ch14.check_gradient_reversal(lambda x, lam: x.detach()).message
    assert "not scaled" in ch14.check_gradient_reversal(lambda x, lam: grad_reverse(x, 1.0)).message


def test_ch14_cross_diffusion_checker_names_mistakes():
    assert ch14.check_cross_diffusion(ch14.cross_diffusion_step)

    def own(P1, P2, S1, S2, alpha):
        return ch14.cross_diffusion_step(P2, P1, S1, S2, alpha)

    assert "OTHER" in ch14.check_cross_diffusion(own).message

    def bare(P1, P2, S1, S2, alpha):
        return S1 @ P2 @ S1.T, S2 @ P1 @ S2.T

    assert "alpha" in ch14.check_cross_diffusion(bare).message
    assert "returned None" in ch14.check_cross_diffusion(lambda *a: None).message  # pending


def test_ch14_checkers_name_backward_arity_wrong_local_kernel_and_sequential_update():
    class OneGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, lam):
            ctx.lam = lam
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad_output):
            return -ctx.lam * grad_output  # forgot the None for lambda_

    message = ch14.check_gradient_reversal(lambda x, lam: OneGradient.apply(x, lam)).message
    assert "one gradient per input" in message

    def other_local(P1, P2, S1, S2, alpha):
        return ch14.cross_diffusion_step(P1, P2, S2, S1, alpha)

    assert "OWN" in ch14.check_cross_diffusion(other_local).message

    def sequential(P1, P2, S1, S2, alpha):
        new1 = ch14.cross_diffusion_step(P1, P2, S1, S2, alpha)[0]
        return new1, ch14.cross_diffusion_step(new1, P2, S1, S2, alpha)[1]

    assert "old kernels" in ch14.check_cross_diffusion(sequential).message
