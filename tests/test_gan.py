"""mmbook.models.gan: gradient reversal, conditional GAN, imputers, invariant encoder."""

import numpy as np
import pytest
import torch

from mmbook.exercises import ch14
from mmbook.graph import normalize_adjacency
from mmbook.models.gan import (
    ConditionalDiscriminator,
    ConditionalGAN,
    ConditionalGenerator,
    DomainAdversarialNet,
    GeneratorImputer,
    GradientReversal,
    HotDeckImputer,
    ModalityInvariantEncoder,
    class_consistency,
    class_spread,
    compare_imputers,
    grad_reverse,
    impute_predict,
    sample_spread,
    zero_impute,
)
from mmbook.train import Trainer


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


def _two_classes(n=256, seed=0):
    """Condition: a one-hot class; x: N(-2, 0.3) for class 0, N(+2, 0.3) for class 1."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = (4.0 * y - 2.0 + 0.3 * torch.randn(n, generator=g)).unsqueeze(1)
    return torch.nn.functional.one_hot(y, 2).float(), x, y


def _fit_gan(kind="projection", class_weight=0.0, epochs=40, seed=0, lr=3e-3):
    c, x, y = _two_classes()
    torch.manual_seed(seed)
    gan = ConditionalGAN(ConditionalGenerator(2, 1, noise_dim=2, hidden_features=32),
                         ConditionalDiscriminator(2, 1, hidden_features=32, kind=kind,
                                                  num_classes=2 if class_weight else 0),
                         lr=lr, class_weight=class_weight)
    trainer = Trainer(gan, max_epochs=epochs, batch_size=64, progress=False, device="cpu",
                      seed=seed).fit((c, x, y))
    return gan.eval(), trainer, (c, x, y)


def test_projection_discriminator_is_the_formula_and_reads_the_condition():
    torch.manual_seed(0)
    D = ConditionalDiscriminator(3, 4, hidden_features=8)
    c, x = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    D = D.double()
    h = torch.nn.functional.leaky_relu(D.phi[2](torch.nn.functional.leaky_relu(
        D.phi[0](x), 0.2)), 0.2)  # phi(x) by hand
    want = h @ D.psi.weight.T[:, 0] + D.psi.bias + ((c @ D.embed.weight.T) * h).sum(1)
    torch.testing.assert_close(D(c, x), want)
    assert not torch.allclose(D(c, x), D(-c, x))  # the condition changes the output
    concat = ConditionalDiscriminator(3, 4, hidden_features=8, kind="concat")
    assert concat.embed is None and concat.phi[0].in_features == 7
    with pytest.raises(ValueError, match="classify"):
        concat.classify(torch.randn(2, 4))
    with pytest.raises(ValueError, match="kind"):
        ConditionalDiscriminator(3, 4, kind="sum")


def test_conditional_gan_trains_with_the_trainer_and_uses_its_condition():
    gan, trainer, (c, x, y) = _fit_gan()
    assert {"train_loss_d", "train_loss_g"} <= set(trainer.history_)
    with torch.no_grad():
        samples = gan(c).squeeze(1)
    # class 0 near -2, class 1 near +2: the generator reads c (a blind one could not)
    assert samples[y == 0].mean() < -1 and samples[y == 1].mean() > 1
    assert 0.1 < samples[y == 1].std() < 1.0  # spread, not a point (real: 0.3)
    blind = lambda cond: gan(torch.full_like(cond, 0.5))  # noqa: E731 (a wrong model)
    assert class_consistency(gan, c, y, lambda a: (a > 0).long().squeeze(1)) > 0.95
    assert class_consistency(blind, c, y, lambda a: (a > 0).long().squeeze(1)) < 0.75


def test_conditional_gan_is_seeded_and_steps_both_players():
    h1 = _fit_gan(epochs=2)[1].history_
    h2 = _fit_gan(epochs=2)[1].history_
    assert h1["train_loss_d"] == h2["train_loss_d"] and h1["train_loss_g"] == h2["train_loss_g"]
    c, x, y = _two_classes(32)
    gan = ConditionalGAN(ConditionalGenerator(2, 1, noise_dim=2, hidden_features=8),
                         ConditionalDiscriminator(2, 1, hidden_features=8))
    before = [p.detach().clone() for p in gan.parameters()]
    logs = gan.training_step((c, x), 0, gan.configure_optimizers())
    assert all(not v.requires_grad and v.ndim == 0 for v in logs.values())
    assert all(not torch.equal(a, b) for a, b in zip(before, gan.parameters()))
    val = gan.validation_step((c, x), 0)
    assert set(val) == {"d_real", "d_fake", "spread"} and float(val["spread"]) > 0


def test_ac_loss_trains_the_auxiliary_classifier_and_needs_labels():
    gan, trainer, (c, x, y) = _fit_gan(class_weight=1.0, epochs=10)
    with torch.no_grad():
        acc = (gan.discriminator.classify(x).argmax(1) == y).float().mean()
    assert acc > 0.95  # the class of a real x is easy here
    with pytest.raises(ValueError, match="labels"):
        gan.training_step((c, x), 0, gan.configure_optimizers())
    with pytest.raises(ValueError, match="auxiliary classifier"):
        ConditionalGAN(ConditionalGenerator(2, 1), ConditionalDiscriminator(2, 1),
                       class_weight=1.0)
    with pytest.raises(ValueError, match="discriminator reads"):
        ConditionalGAN(ConditionalGenerator(2, 1), ConditionalDiscriminator(3, 1))


def test_class_spread_and_sample_spread_against_numpy():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 3, generator=g, dtype=torch.float64), torch.arange(40) % 4
    want = np.mean([x[y == k].numpy().std(0, ddof=1).mean() for k in range(4)])
    assert class_spread(x, y) == pytest.approx(want)
    with pytest.raises(ValueError, match="two items"):
        class_spread(x[:5], torch.tensor([0, 0, 1, 1, 2]))
    samples = torch.randn(3, 4, 2, generator=g)  # 3 draws for 4 conditions
    draws = iter(samples)
    got = sample_spread(lambda cond: next(draws), torch.zeros(4, 1), num_samples=3)
    assert got == pytest.approx(np.std(samples.numpy(), axis=0, ddof=1).mean(), rel=1e-6)
    with pytest.raises(ValueError, match="num_samples"):
        sample_spread(lambda cond: cond, torch.zeros(4, 1), num_samples=1)


def test_class_consistency_equals_sklearn_accuracy_of_the_probe():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score

    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    real = torch.randn(60, 4, generator=g, dtype=torch.float64) + y[:, None]
    probe = LogisticRegression().fit(real.numpy(), y.numpy())
    fake = real + 0.5 * torch.randn(60, 4, generator=g, dtype=torch.float64)
    want = accuracy_score(y.numpy(), probe.predict(fake.numpy()))
    got = class_consistency(lambda c: fake, torch.zeros(60, 1), y,
                            lambda a: torch.from_numpy(probe.predict(a.numpy())))
    assert got == pytest.approx(want)
    scores = class_consistency(lambda c: fake, torch.zeros(60, 1), y,
                               lambda a: torch.from_numpy(probe.decision_function(a.numpy())))
    assert scores == pytest.approx(want)  # (N, C) scores or (N,) classes
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
    assert rows[1] == {"imputer": "oracle", "accuracy": 1.0, "draws": 1}


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
    assert rows == [{"imputer": "zero-fill", "accuracy": want, "draws": 1}]
    G = ConditionalGenerator(1, 1, noise_dim=0)
    out = GeneratorImputer(G, torch.nn.Identity(), source=0, target=1)([x0, x1], present)
    assert torch.isfinite(out[1]).all()
    with pytest.raises(ValueError, match=r"rows \[0\] have none"):
        zero_impute([x0, x1], torch.tensor([[False, False]] + [[True, True]] * 5))


def test_impute_predict_averages_probabilities_over_draws():
    g = torch.Generator().manual_seed(0)
    draws = [torch.randn(6, 2, generator=g) for _ in range(3)]
    calls = iter(draws)
    impute = lambda xs, present: [xs[0], next(calls)]  # noqa: E731
    classify = lambda xs: xs[1] ** 2 @ torch.tensor([[1.0, -1.0, 0.5], [0.3, 2.0, -1.0]])  # noqa: E731
    xs, present = [torch.zeros(6, 1), None], [True, False]
    want = sum(torch.softmax(classify([xs[0], d]), 1) for d in draws) / 3
    torch.testing.assert_close(impute_predict(impute, classify, xs, present, 3), want)
    one = impute_predict(zero_impute, classify, [torch.zeros(6, 1), draws[0]], present, 1)
    five = impute_predict(zero_impute, classify, [torch.zeros(6, 1), draws[0]], present, 5)
    torch.testing.assert_close(one, five)  # a deterministic imputer: K draws = one
    with pytest.raises(ValueError, match="num_draws"):
        impute_predict(zero_impute, classify, xs, present, 0)


def test_compare_imputers_pools_draws_per_imputer():
    xs = [torch.zeros(4, 1), torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])]
    labels = torch.tensor([1, 0, 1, 0])
    flips = iter([torch.ones(4, 1), -torch.ones(4, 1)] * 10)
    noisy = lambda xs_in, present: [xs_in[0], next(flips)]  # noqa: E731
    classify = lambda xs_in: torch.cat([-xs_in[1], xs_in[1]], 1)  # noqa: E731
    rows = compare_imputers({"one": noisy, "two": noisy}, classify, xs, labels,
                            [True, False], num_draws={"two": 2})
    assert [r["draws"] for r in rows] == [1, 2]
    assert rows[1]["accuracy"] == 0.5  # the two draws cancel: ties go to class 0


def test_hot_deck_imputer_draws_real_donors_of_the_posterior_class():
    donors = torch.arange(20.0).unsqueeze(1)  # donor i has value i
    donor_labels = torch.arange(20) % 2  # even values: class 0
    posterior = lambda x: torch.tensor([0.25, 0.75]).expand(len(x), 2)  # noqa: E731
    imp = HotDeckImputer(donors, donor_labels, posterior,
                         generator=torch.Generator().manual_seed(0))
    out = imp([torch.randn(4000, 3), torch.full((4000, 1), float("nan"))], [True, False])[1]
    assert torch.isin(out, donors).all()
    odd = (out.squeeze(1) % 2 == 1).float().mean().item()
    assert abs(odd - 0.75) < 0.03  # classes drawn from the posterior
    again = HotDeckImputer(donors, donor_labels, posterior,
                           generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again([torch.randn(4000, 3), torch.zeros(4000, 1)],
                                     [True, False])[1], out)  # seeded
    only_two = HotDeckImputer(donors, torch.zeros(20, dtype=torch.long), posterior)
    with pytest.raises(ValueError, match="no donor of class 1"):
        only_two([torch.randn(50, 3), torch.zeros(50, 1)], [True, False])
    with pytest.raises(ValueError, match="differ"):
        HotDeckImputer(donors, donor_labels, posterior, source=1, target=1)


def test_invariant_encoder_trains_with_the_trainer_and_checks_inputs():
    torch.manual_seed(0)
    model = ModalityInvariantEncoder((3, 2), embed_dim=4, num_classes=2, hidden_features=8)
    xs, y = [torch.randn(64, 3), torch.randn(64, 2)], torch.randint(0, 2, (64,))
    h = Trainer(model, max_epochs=2, batch_size=32, progress=False, device="cpu").fit(
        (*xs, y), val_data=(*xs, y)).history_
    assert len(h["train_task"]) == len(h["val_disc_acc"]) == 2
    with pytest.raises(ValueError, match=r"xs\[1\]"):
        model([xs[0], torch.randn(64, 3)])
    parts = model.losses(xs, y)
    assert set(parts) == {"total", "task", "adversarial", "disc_acc"}
    # the adversarial term: the mean cross-entropy of each modality's embeddings
    es = model(xs)
    want = sum(torch.nn.functional.cross_entropy(model.discriminator(e),
                                                 torch.full((64,), m)) for m, e in enumerate(es))
    torch.testing.assert_close(parts["adversarial"], want)


def test_dann_ignores_target_labels_balances_domains_and_reverses_the_gradient():
    torch.manual_seed(0)
    model = DomainAdversarialNet(4, num_classes=3, hidden_features=8, lambda_=0.5)
    x = torch.randn(10, 4)
    domain = torch.tensor([0] * 7 + [1] * 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, -1, -1, -1])
    logs = model.training_step((x, y, domain), 0)
    y2 = y.clone()
    y2[7:] = -5  # the unlabelled rows' labels are never read
    torch.testing.assert_close(model.training_step((x, y2, domain), 0)["loss"], logs["loss"])
    f = model.features(x)
    ce = torch.nn.functional.cross_entropy(model.discriminator(f), domain, reduction="none")
    torch.testing.assert_close(logs["adversarial"], (ce[:7].mean() + ce[7:].mean()) / 2)
    task = torch.nn.functional.cross_entropy(model.head(f[:7]), y[:7])
    torch.testing.assert_close(logs["task"], task.detach())
    # reversal: through R, x receives -lambda times the discriminator loss's gradient
    x_req = x.clone().requires_grad_(True)
    (g_total,) = torch.autograd.grad(model.training_step((x_req, y, domain), 0)["loss"], x_req)
    f = model.features(x_req)
    ce = torch.nn.functional.cross_entropy(model.discriminator(f), domain, reduction="none")
    (g_task,) = torch.autograd.grad(
        torch.nn.functional.cross_entropy(model.head(f[:7]), y[:7]), x_req, retain_graph=True)
    (g_adv,) = torch.autograd.grad((ce[:7].mean() + ce[7:].mean()) / 2, x_req)
    torch.testing.assert_close(g_total, g_task - 0.5 * g_adv)
    assert model(x).shape == (10, 3)


def test_conditional_samples_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mmbook.plot import conditional_samples

    x, y = torch.randn(30, 2), torch.arange(30) % 3
    fig = conditional_samples({"real": (x, y), "generated": (x + 1, y)}, reference=(x, y))
    assert len(fig.axes) == 2
    assert len(fig.axes[1].collections) == 4  # the grey reference and three classes
    plt.close(fig)
    with pytest.raises(ValueError, match="panels"):
        conditional_samples({"bad": (torch.randn(5, 3), torch.zeros(5))})


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


def test_ch14_pooled_prediction_checker_names_mistakes():
    from mmbook.exercises.ch14 import _pooling_case

    assert ch14.check_pooled_prediction(lambda z: torch.softmax(z, -1).mean(0))
    assert ch14.check_pooled_prediction(lambda z: None).pending
    # the right rule as impute_predict computes it, from K draws of a stochastic imputer
    logits = _pooling_case()
    draws = iter(logits)
    pooled = impute_predict(lambda xs, present: next(draws), lambda z: z, None, None,
                            len(logits))
    torch.testing.assert_close(pooled, torch.softmax(logits, -1).mean(0))
    mistakes = {"logits": lambda z: torch.softmax(z.mean(0), 1),
                "one draw": lambda z: torch.softmax(z[0], 1),
                "sum to K": lambda z: torch.softmax(z, -1).sum(0),
                "classes": lambda z: torch.softmax(z, 1).mean(0),
                "not over the draws": lambda z: torch.softmax(z, 0).mean(0),
                "shape": lambda z: torch.softmax(z, -1).mean(0).argmax(1)}
    for words, fn in mistakes.items():
        fb = ch14.check_pooled_prediction(fn)
        assert not fb and words in fb.message, (words, fb.message)

