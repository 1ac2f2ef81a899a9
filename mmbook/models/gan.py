r"""Generative and adversarial fusion (chapter 14).

* :class:`ConditionalGenerator` / :class:`ConditionalDiscriminator` and
  :func:`train_conditional_gan`: a conditional GAN (Mirza & Osindero, 2014) that generates
  one modality's features from the other's embedding, or the same generator trained with
  an L2 loss only (a deterministic regression imputer);
* :class:`GeneratorImputer`, :func:`zero_impute` and :func:`compare_imputers`: impute a
  missing modality and compare imputers by the accuracy of one downstream classifier;
  any callable ``impute(xs, present) -> list of M tensors`` can be compared;
* :func:`grad_reverse`, :class:`GradientReversal` and :class:`ModalityInvariantEncoder`:
  an encoder made modality-invariant by a modality discriminator trained through a
  gradient-reversal layer (Ganin & Lempitsky, 2015).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from ..utils import (
    check_choice,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_present,
    check_shape,
    check_sizes,
    fill_absent,
)

__all__ = [
    "ConditionalGenerator", "ConditionalDiscriminator", "train_conditional_gan",
    "sample_spread", "GeneratorImputer", "zero_impute", "compare_imputers",
    "grad_reverse", "GradientReversal", "ModalityInvariantEncoder", "train_invariant",
]


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.LeakyReLU(0.2),
                         nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, d_out))


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


# ----------------------------------------------------------------------------- conditional GAN
class ConditionalGenerator(nn.Module):
    r"""Generator of a conditional GAN: :math:`\hat x = G(c, z)`, :math:`z \sim \mathcal N(0, I)`.

    Args:
        cond_features: size of the condition c (the other modality's embedding).
        out_features: size of the generated features.
        noise_dim: size of the noise z (0: a deterministic map).
        hidden_features: width of the two hidden layers.

    Shape:
        - cond: :math:`(N, D_c)`
        - noise: :math:`(N, D_z)`, optional (drawn from torch's global generator if None)
        - output: :math:`(N, D_{out})`

    Examples:
        >>> G = ConditionalGenerator(8, 5, noise_dim=4)
        >>> G(torch.randn(3, 8)).shape
        torch.Size([3, 5])
    """

    def __init__(self, cond_features: int, out_features: int, noise_dim: int = 16,
                 hidden_features: int = 128):
        super().__init__()
        self.cond_features = check_positive_int(cond_features, "cond_features")
        self.out_features = check_positive_int(out_features, "out_features")
        self.noise_dim = check_nonnegative_int(noise_dim, "noise_dim")
        hidden = check_positive_int(hidden_features, "hidden_features")
        self.net = _mlp(cond_features + noise_dim, hidden, out_features)

    def forward(self, cond: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        check_shape(cond, ("N", self.cond_features), "cond")
        if noise is None:
            noise = torch.randn(len(cond), self.noise_dim, device=cond.device, dtype=cond.dtype)
        check_shape(noise, (len(cond), self.noise_dim), "noise")
        return self.net(torch.cat([cond, noise], dim=1))  # (N, D_out)


class ConditionalDiscriminator(nn.Module):
    r"""Discriminator of a conditional GAN: the logit of :math:`D(c, x)`, "x is real for c".

    Shape:
        - cond: :math:`(N, D_c)`, x: :math:`(N, D)`
        - output: :math:`(N,)` logits
    """

    def __init__(self, cond_features: int, in_features: int, hidden_features: int = 128):
        super().__init__()
        self.cond_features = check_positive_int(cond_features, "cond_features")
        self.in_features = check_positive_int(in_features, "in_features")
        self.net = _mlp(cond_features + in_features,
                        check_positive_int(hidden_features, "hidden_features"), 1)

    def forward(self, cond: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        check_shape(cond, ("N", self.cond_features), "cond")
        check_shape(x, (len(cond), self.in_features), "x")
        return self.net(torch.cat([cond, x], dim=1)).squeeze(1)  # (N,)


def _gan_step(G, D, opt_g, opt_d, c, x):
    bce = nn.functional.binary_cross_entropy_with_logits
    fake = G(c)
    real_logit, fake_logit = D(c, x), D(c, fake.detach())
    d_loss = bce(real_logit, torch.ones_like(real_logit)) + \
        bce(fake_logit, torch.zeros_like(fake_logit))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_logit = D(c, fake)
    g_loss = bce(g_logit, torch.ones_like(g_logit))  # non-saturating: -log D(c, G(c, z))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


def _l2_step(G, opt_g, c, x):
    loss = nn.functional.mse_loss(G(c), x)
    opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    return loss.item()


def train_conditional_gan(generator: ConditionalGenerator, cond: torch.Tensor,
                          target: torch.Tensor, *, mode: str = "gan",
                          discriminator: ConditionalDiscriminator | None = None,
                          epochs: int = 50, batch_size: int = 128, lr: float = 2e-4,
                          seed: int = 0, monitor: Callable | None = None) -> dict:
    r"""Train a conditional generator as a GAN, or with an L2 loss only.

    ``mode="gan"`` alternates the two players (non-saturating loss):

    .. math::
        \mathcal L_D = -\log D(c, x) - \log\big(1 - D(c, G(c, z))\big), \qquad
        \mathcal L_G = -\log D(c, G(c, z)).

    ``mode="l2"`` minimises :math:`\lVert G(c, z) - x\rVert^2`: its optimum is the
    conditional mean :math:`E[x \mid c]`, whatever z, a deterministic regression.

    Args:
        generator: the :class:`ConditionalGenerator` (trained in place).
        cond: conditions c ``(N, D_c)``; target: the real features x ``(N, D)``.
        mode: ``"gan"`` or ``"l2"``.
        discriminator: required for ``"gan"``.
        epochs, batch_size, lr: Adam with betas (0.5, 0.999), as DCGAN.
        seed: seeds the batch order and the noise.
        monitor: optional ``monitor(generator) -> float`` called after each epoch
            (e.g. the spread of the samples); its values are in ``history["monitor"]``.

    Returns:
        the history: per-epoch means of ``"d_loss"`` and ``"g_loss"`` (GAN) or
        ``"l2_loss"``, and ``"monitor"``.
    """
    mode = check_choice(mode, ("gan", "l2"), "mode")
    check_shape(cond, ("N", generator.cond_features), "cond")
    check_shape(target, (len(cond), generator.out_features), "target")
    if mode == "gan" and discriminator is None:
        raise ValueError("mode='gan' needs a discriminator")
    epochs, batch_size = check_positive_int(epochs, "epochs"), check_positive_int(batch_size,
                                                                                 "batch_size")
    lr = check_positive(lr, "lr")
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = None if mode == "l2" else torch.optim.Adam(discriminator.parameters(), lr=lr,
                                                       betas=(0.5, 0.999))
    keys = ("l2_loss",) if mode == "l2" else ("d_loss", "g_loss")
    history = {k: [] for k in (*keys, "monitor")}
    order = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(epochs):
            sums, steps = [0.0] * len(keys), 0
            for idx in _batches(len(cond), batch_size, order):
                c, x = cond[idx.to(cond.device)], target[idx.to(cond.device)]
                out = (_l2_step(generator, opt_g, c, x),) if mode == "l2" else \
                    _gan_step(generator, discriminator, opt_g, opt_d, c, x)
                sums, steps = [s + o for s, o in zip(sums, out)], steps + 1
            for k, s in zip(keys, sums):
                history[k].append(s / steps)
            if monitor is not None:
                history["monitor"].append(float(monitor(generator)))
    return history


@torch.no_grad()
def sample_spread(generator: ConditionalGenerator, cond: torch.Tensor,
                  num_samples: int = 8) -> float:
    r"""How much the samples for one condition differ: the std over noise draws.

    .. math:: \text{spread} = \operatorname{mean}_{i, d}\ \operatorname{std}_k\, G(c_i, z_k)_d

    A generator that ignores its noise (mode collapse onto one output per condition)
    has spread 0; compare with the spread of real data of the same class.

    Shape:
        - cond: :math:`(N, D_c)`
    """
    num_samples = check_positive_int(num_samples, "num_samples")
    if num_samples < 2:
        raise ValueError(f"num_samples must be >= 2 to measure a spread, got {num_samples}")
    samples = torch.stack([generator(cond) for _ in range(num_samples)])  # (K, N, D)
    return samples.std(0).mean().item()


# ----------------------------------------------------------------------------- imputation
def zero_impute(xs, present) -> list:
    """Replace every absent modality by zeros (the features' mean, once standardised).

    The package's absent-modality rule (:func:`mmbook.utils.fill_absent`): ``torch.where``,
    not a product, so an absent entry holding NaN becomes 0 too (``x * present`` would
    keep it: 0 × NaN = NaN); ``present`` is validated as everywhere
    (:func:`mmbook.utils.check_present`: bool ``(N, M)``, no sample without a modality).

    Shape:
        - xs: M tensors :math:`(N, D_m)`; present: :math:`(N, M)` bool
        - output: M tensors :math:`(N, D_m)`

    Examples:
        >>> xs = [torch.ones(2, 3), torch.full((2, 1), float("nan"))]
        >>> out = zero_impute(xs, torch.tensor([[True, False], [True, False]]))
        >>> out[0].sum(1), out[1].flatten()
        (tensor([3., 3.]), tensor([0., 0.]))
    """
    return fill_absent(xs, present)


class GeneratorImputer:
    """Impute modality ``target`` from modality ``source`` with a conditional generator.

    ``impute(xs, present)`` keeps every present entry and, where ``target`` is absent and
    ``source`` present, writes ``generator(embed(xs[source]))`` (one noise draw). Every
    other absent entry is 0, as in :func:`zero_impute` (whatever it held, even NaN, is
    gone); ``present`` is validated by the package's rule
    (:func:`mmbook.utils.check_present`).

    Args:
        generator: a :class:`ConditionalGenerator`.
        embed: maps ``xs[source]`` to the generator's condition (an encoder, or
            ``nn.Identity()``).
        source, target: the modality indices.
    """

    def __init__(self, generator: nn.Module, embed: Callable, source: int = 0, target: int = 1):
        self.generator, self.embed = generator, embed
        self.source = check_nonnegative_int(source, "source")
        self.target = check_nonnegative_int(target, "target")

    @torch.no_grad()
    def __call__(self, xs, present) -> list:
        out = zero_impute(xs, present)  # new tensors: absent entries 0
        present = check_present(present, len(out), len(out[0]), out[0].device)  # (N, M)
        fill = ~present[:, self.target] & present[:, self.source]
        if bool(fill.any()):
            out[self.target][fill] = self.generator(self.embed(xs[self.source][fill])).to(
                out[self.target].dtype)
        return out


@torch.no_grad()
def compare_imputers(imputers: Mapping[str, Callable], classify: Callable, xs: Sequence,
                     labels: torch.Tensor, present: torch.Tensor) -> list:
    """Accuracy of one downstream classifier on the data each imputer completes.

    Args:
        imputers: ``{name: impute}``, each ``impute(xs, present) -> list of M tensors``
            (e.g. :func:`zero_impute`, a :class:`GeneratorImputer`, chapter 10's
            ``CrossModalAutoencoder.impute``).
        classify: ``classify(xs) -> logits (N, C)``, trained on complete data.
        xs: the complete modalities; entries where ``present`` is False are hidden from the
            imputers (zeroed before the call), so no imputer can peek at them.
        labels: ``(N,)`` classes; present: ``(N, M)`` bool.

    Returns:
        one row per imputer: ``{"imputer": name, "accuracy": ...}``.
    """
    hidden = zero_impute(xs, present)
    check_shape(labels, (len(hidden[0]),), "labels")
    rows = []
    for name, impute in imputers.items():
        completed = impute(hidden, present)
        if len(completed) != len(hidden):
            raise ValueError(f"imputer {name!r} returned {len(completed)} modalities, "
                             f"expected {len(hidden)}")
        acc = (classify(completed).argmax(1) == labels).float().mean().item()
        rows.append({"imputer": name, "accuracy": acc})
    return rows


# ----------------------------------------------------------------------------- invariance
class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lambda_):
        ctx.lambda_ = lambda_
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return -ctx.lambda_ * grad_output, None


def grad_reverse(x: torch.Tensor, lambda_: float = 1.0) -> torch.Tensor:
    r"""The gradient-reversal layer: identity forward, gradient times :math:`-\lambda` backward.

    .. math:: R(x) = x, \qquad \frac{\partial R}{\partial x} = -\lambda I .

    Examples:
        >>> x = torch.ones(2, requires_grad=True)
        >>> grad_reverse(x, 0.5).sum().backward()
        >>> x.grad
        tensor([-0.5000, -0.5000])
    """
    return _GradReverse.apply(x, check_positive(lambda_, "lambda_", allow_zero=True))


class GradientReversal(nn.Module):
    """:func:`grad_reverse` as a module (Ganin & Lempitsky, 2015)."""

    def __init__(self, lambda_: float = 1.0):
        super().__init__()
        self.lambda_ = check_positive(lambda_, "lambda_", allow_zero=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambda_)

    def extra_repr(self) -> str:
        return f"lambda_={self.lambda_}"


class ModalityInvariantEncoder(nn.Module):
    r"""Per-modality encoders into one space, made modality-invariant adversarially.

    Encoders :math:`f_m` map each modality to :math:`e_m = f_m(x_m) \in \mathbb R^E`; a
    shared head :math:`h` classifies every :math:`e_m`; a discriminator :math:`d` tries to
    tell which modality an embedding came from, through a gradient-reversal layer R:

    .. math::
        \mathcal L = \sum_m \mathrm{CE}\big(h(e_m), y\big)
                   + \sum_m \mathrm{CE}\big(d(R(e_m)), m\big).

    The discriminator descends its loss; the reversed gradient makes the encoders ascend
    it, pushing the modalities' embedding distributions together (modality invariance).
    ``lambda_=0`` turns the adversary off (the discriminator still trains, the encoders
    ignore it): the baseline.

    Args:
        in_features: sizes ``D_1, ..., D_M``.
        embed_dim: E.
        num_classes: C.
        hidden_features: width of the encoders' and discriminator's hidden layer.
        lambda_: strength of the reversed gradient.

    Shape:
        - xs: M tensors :math:`(N, D_m)`
        - output of ``forward``: M embeddings :math:`(N, E)`

    Examples:
        >>> model = ModalityInvariantEncoder((6, 4), embed_dim=8, num_classes=3)
        >>> [e.shape for e in model([torch.randn(5, 6), torch.randn(5, 4)])]
        [torch.Size([5, 8]), torch.Size([5, 8])]
    """

    def __init__(self, in_features: Sequence[int], embed_dim: int, num_classes: int,
                 hidden_features: int = 64, lambda_: float = 1.0):
        super().__init__()
        self.in_features = check_sizes(in_features, "in_features")
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        hidden = check_positive_int(hidden_features, "hidden_features")
        self.encoders = nn.ModuleList(
            nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, embed_dim),
                          nn.BatchNorm1d(embed_dim, affine=False))
            for d in self.in_features)
        self.head = nn.Linear(embed_dim, check_positive_int(num_classes, "num_classes"))
        self.reverse = GradientReversal(lambda_)
        self.discriminator = nn.Sequential(nn.Linear(embed_dim, hidden), nn.ReLU(),
                                           nn.Linear(hidden, len(self.in_features)))

    def forward(self, xs) -> list:
        if len(xs) != len(self.encoders):
            raise ValueError(f"xs must hold {len(self.encoders)} modalities, got {len(xs)}")
        for m, (x, d) in enumerate(zip(xs, self.in_features)):
            check_shape(x, ("N", d), f"xs[{m}]")
        return [f(x) for f, x in zip(self.encoders, xs)]

    def losses(self, xs, labels: torch.Tensor) -> dict:
        """The task and adversarial losses (summed over modalities) and their total."""
        es = self(xs)
        task = sum(nn.functional.cross_entropy(self.head(e), labels) for e in es)
        adv = sum(nn.functional.cross_entropy(
            self.discriminator(self.reverse(e)),
            torch.full((len(e),), m, dtype=torch.long, device=e.device)) for m, e in enumerate(es))
        return {"total": task + adv, "task": task, "adversarial": adv}


def train_invariant(model: ModalityInvariantEncoder, xs, labels: torch.Tensor, *,
                    epochs: int = 30, batch_size: int = 128, lr: float = 1e-3,
                    seed: int = 0) -> dict:
    """Train a :class:`ModalityInvariantEncoder` with Adam; per-epoch mean losses."""
    epochs, batch_size = check_positive_int(epochs, "epochs"), check_positive_int(batch_size,
                                                                                 "batch_size")
    opt = torch.optim.Adam(model.parameters(), lr=check_positive(lr, "lr"))
    history = {"task": [], "adversarial": []}
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        sums, steps = {"task": 0.0, "adversarial": 0.0}, 0
        for idx in _batches(len(labels), batch_size, order):
            idx = idx.to(labels.device)
            parts = model.losses([x[idx] for x in xs], labels[idx])
            opt.zero_grad()
            parts["total"].backward()
            opt.step()
            sums = {k: sums[k] + parts[k].item() for k in sums}
            steps += 1
        for k in sums:
            history[k].append(sums[k] / steps)
    model.eval()
    return history
