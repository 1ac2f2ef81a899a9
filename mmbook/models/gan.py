r"""Generative and adversarial fusion (chapter 14).

* :class:`ConditionalGenerator`, :class:`ConditionalDiscriminator` and
  :class:`ConditionalGAN`: a conditional GAN (Mirza & Osindero, 2014) that generates one
  modality's features from the other's embedding. The discriminator reads the condition
  by concatenation or by projection (Miyato & Koyama, 2018), optionally with the
  auxiliary classifier of AC-GAN (Odena et al., 2017). :class:`ConditionalGAN` trains
  with :class:`mmbook.train.Trainer` (its ``training_step`` steps both players);
* :func:`sample_spread`, :func:`class_spread`, :func:`class_consistency`: how varied the
  samples are for one condition, against the real data's spread within a class, and
  whether a probe trained on real data recognises their class;
* :func:`zero_impute`, :class:`GeneratorImputer`, :class:`HotDeckImputer`,
  :func:`impute_predict` and :func:`compare_imputers`: impute a missing modality and
  compare imputers by the accuracy of one downstream classifier, with one draw or the
  average prediction over several draws (multiple imputation); any callable
  ``impute(xs, present) -> list of M tensors`` can be compared;
* :func:`grad_reverse`, :class:`GradientReversal`, :class:`ModalityInvariantEncoder` and
  :class:`DomainAdversarialNet`: the gradient-reversal layer (Ganin & Lempitsky, 2015),
  used to make embeddings modality-invariant and, as DANN (Ganin et al., 2016), to adapt a
  classifier to an unlabelled target domain. Both train with the ``Trainer``.
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
    "ConditionalGenerator", "ConditionalDiscriminator", "ConditionalGAN",
    "sample_spread", "class_spread", "class_consistency",
    "zero_impute", "GeneratorImputer", "HotDeckImputer", "impute_predict", "compare_imputers",
    "grad_reverse", "GradientReversal", "ModalityInvariantEncoder", "DomainAdversarialNet",
]


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.LeakyReLU(0.2),
                         nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, d_out))


# ----------------------------------------------------------------------------- conditional GAN
class ConditionalGenerator(nn.Module):
    r"""Generator of a conditional GAN: :math:`\hat x = G(c, z)`, :math:`z \sim \mathcal N(0, I)`.

    A two-hidden-layer MLP on :math:`[c; z]`.

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

    ``kind="concat"`` reads the pair through one MLP, :math:`D(c, x) = f([c; x])`: the
    condition is one more input, and nothing forces the network to use it.
    ``kind="projection"`` (Miyato & Koyama, 2018) embeds x alone and adds the inner
    product of that embedding with a linear map of the condition:

    .. math:: D(c, x) = \psi^\top \phi(x) + b + (V c)^\top \phi(x),

    the form the log density ratio takes when :math:`p(c \mid x)` is log-linear in
    :math:`\phi(x)`; the second term *is* the conditional part, so the discriminator
    cannot ignore c. With ``num_classes > 0`` a linear head on :math:`\phi(x)` also
    predicts the class, :meth:`classify` (the auxiliary classifier of AC-GAN, Odena et
    al., 2017).

    Args:
        cond_features: size of the condition c.
        in_features: size of x.
        hidden_features: width of the hidden layers (and of :math:`\phi(x)`).
        kind: ``"projection"`` or ``"concat"``.
        num_classes: C for the auxiliary classifier; 0 for none.

    Shape:
        - cond: :math:`(N, D_c)`, x: :math:`(N, D)`
        - output: :math:`(N,)` logits; :meth:`classify`: :math:`(N, C)`

    Examples:
        >>> D = ConditionalDiscriminator(4, 3, hidden_features=8, num_classes=5)
        >>> c, x = torch.randn(6, 4), torch.randn(6, 3)
        >>> D(c, x).shape, D.classify(x).shape
        (torch.Size([6]), torch.Size([6, 5]))
        >>> D0 = ConditionalDiscriminator(4, 3, hidden_features=8)
        >>> phi = D0.phi(x)  # the projection, by hand
        >>> by_hand = D0.psi(phi).squeeze(1) + (D0.embed(c) * phi).sum(1)
        >>> torch.testing.assert_close(D0(c, x), by_hand)
    """

    def __init__(self, cond_features: int, in_features: int, hidden_features: int = 128, *,
                 kind: str = "projection", num_classes: int = 0):
        super().__init__()
        self.cond_features = check_positive_int(cond_features, "cond_features")
        self.in_features = check_positive_int(in_features, "in_features")
        self.kind = check_choice(kind, ("projection", "concat"), "kind")
        self.num_classes = check_nonnegative_int(num_classes, "num_classes")
        hidden = check_positive_int(hidden_features, "hidden_features")
        d_in = in_features if kind == "projection" else cond_features + in_features
        self.phi = nn.Sequential(nn.Linear(d_in, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2))
        self.psi = nn.Linear(hidden, 1)
        self.embed = nn.Linear(cond_features, hidden, bias=False) if kind == "projection" \
            else None
        self.classifier = nn.Linear(hidden, num_classes) if num_classes else None

    def forward(self, cond: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        check_shape(cond, ("N", self.cond_features), "cond")
        check_shape(x, (len(cond), self.in_features), "x")
        if self.embed is None:
            return self.psi(self.phi(torch.cat([cond, x], dim=1))).squeeze(1)  # (N,)
        h = self.phi(x)  # (N, H)
        return self.psi(h).squeeze(1) + (self.embed(cond) * h).sum(1)  # (N,)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The auxiliary classifier's logits ``(N, C)`` (a projection discriminator only)."""
        if self.classifier is None or self.embed is None:
            raise ValueError("classify needs ConditionalDiscriminator(kind='projection', "
                             f"num_classes=C > 0); this one has kind={self.kind!r}, "
                             f"num_classes={self.num_classes}")
        check_shape(x, ("N", self.in_features), "x")
        return self.classifier(self.phi(x))  # (N, C)


class ConditionalGAN(nn.Module):
    r"""A conditional GAN that trains with :class:`mmbook.train.Trainer` (manual optimisation).

    Each batch ``(c, x)`` (or ``(c, x, y)`` with class labels) makes one discriminator
    step, then one generator step (non-saturating loss, Goodfellow et al., 2014):

    .. math::
        \mathcal L_D = -\log D(c, x) - \log\big(1 - D(c, G(c, z))\big)
                       + \gamma\,\big[\mathrm{CE}(C(x), y) + \mathrm{CE}(C(G(c, z)), y)\big],
        \qquad
        \mathcal L_G = -\log D(c, G(c, z)) + \gamma\,\mathrm{CE}\big(C(G(c, z)), y\big),

    with :math:`\gamma` = ``class_weight`` and C the discriminator's auxiliary classifier
    (AC-GAN, Odena et al., 2017; :math:`\gamma = 0`, the default, is a plain cGAN). The
    class term pulls every sample towards what C recognises as its class: the samples
    become easier to classify and less varied, a fidelity/diversity trade-off.

    ``model(cond)`` draws one sample per condition; ``validation_step`` returns the mean
    discriminator output on real and generated pairs and :func:`sample_spread`.

    Args:
        generator: a :class:`ConditionalGenerator`.
        discriminator: a :class:`ConditionalDiscriminator` of the same sizes (with
            ``num_classes > 0`` when ``class_weight > 0``).
        lr: Adam's learning rate for both players; ``betas`` (0.5, 0.999), as DCGAN.
        class_weight: :math:`\gamma`.

    Shape:
        - batch: ``(c, x)`` or ``(c, x, y)``: :math:`(N, D_c)`, :math:`(N, D)`, :math:`(N,)`
        - output of ``forward``: :math:`(N, D)`

    Examples:
        >>> from mmbook.train import Trainer
        >>> _ = torch.manual_seed(0)
        >>> c = torch.randn(64, 2)
        >>> x = c @ torch.tensor([[1.0, 0.0], [0.0, -1.0]]) + 0.1 * torch.randn(64, 2)
        >>> gan = ConditionalGAN(ConditionalGenerator(2, 2, noise_dim=2, hidden_features=16),
        ...                      ConditionalDiscriminator(2, 2, hidden_features=16))
        >>> tr = Trainer(gan, max_epochs=2, batch_size=32, progress=False, device="cpu")
        >>> sorted(k for k in tr.fit((c, x)).history_ if k.startswith("train_loss_"))
        ['train_loss_d', 'train_loss_g']
        >>> gan(c[:3]).shape
        torch.Size([3, 2])
    """

    automatic_optimization = False  # training_step steps D, then G

    def __init__(self, generator: ConditionalGenerator,
                 discriminator: ConditionalDiscriminator, *, lr: float = 2e-4,
                 class_weight: float = 0.0):
        super().__init__()
        if (generator.cond_features, generator.out_features) != (
                discriminator.cond_features, discriminator.in_features):
            raise ValueError(
                f"the generator maps {generator.cond_features} -> {generator.out_features} "
                f"features but the discriminator reads conditions of "
                f"{discriminator.cond_features} and x of {discriminator.in_features}")
        self.generator, self.discriminator = generator, discriminator
        self.lr = check_positive(lr, "lr")
        self.class_weight = check_positive(class_weight, "class_weight", allow_zero=True)
        if self.class_weight and not discriminator.num_classes:
            raise ValueError("class_weight > 0 needs a discriminator with an auxiliary "
                             "classifier: ConditionalDiscriminator(..., num_classes=C)")

    def forward(self, cond: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(cond, noise)

    def configure_optimizers(self) -> tuple:
        """Adam for the generator, then for the discriminator."""
        return tuple(torch.optim.Adam(m.parameters(), lr=self.lr, betas=(0.5, 0.999))
                     for m in (self.generator, self.discriminator))

    def _unpack(self, batch) -> tuple:
        if len(batch) not in (2, 3):
            raise ValueError(f"a batch must be (c, x) or (c, x, y), got {len(batch)} tensors")
        c, x, y = (*batch, None)[:3]
        check_shape(x, (len(c), self.generator.out_features), "x")
        if self.class_weight and y is None:
            raise ValueError("class_weight > 0 needs labels: batches (c, x, y)")
        return c, x, y

    def _class_loss(self, x: torch.Tensor, y) -> torch.Tensor:
        if not self.class_weight:
            return x.new_zeros(())
        return self.class_weight * nn.functional.cross_entropy(self.discriminator.classify(x), y)

    def training_step(self, batch, batch_idx: int, optimizers) -> dict:
        """One discriminator step, then one generator step; the detached losses."""
        opt_g, opt_d = optimizers
        c, x, y = self._unpack(batch)
        bce = nn.functional.binary_cross_entropy_with_logits
        fake = self.generator(c)
        real_logit, fake_logit = self.discriminator(c, x), self.discriminator(c, fake.detach())
        loss_d = bce(real_logit, torch.ones_like(real_logit)) + \
            bce(fake_logit, torch.zeros_like(fake_logit))
        loss_d = loss_d + self._class_loss(x, y) + self._class_loss(fake.detach(), y)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        g_logit = self.discriminator(c, fake)
        loss_g = bce(g_logit, torch.ones_like(g_logit)) + self._class_loss(fake, y)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}

    @torch.no_grad()
    def validation_step(self, batch, batch_idx: int) -> dict:
        """``{"d_real", "d_fake", "spread"}``: mean D on real and generated pairs, and
        :func:`sample_spread`. Its own noise draws leave torch's random state as they found
        it."""
        c, x, _ = self._unpack(batch)
        with torch.random.fork_rng(devices=[c.device] if c.is_cuda else []):
            fake = self.generator(c)
            spread = sample_spread(self.generator, c)
        return {"d_real": torch.sigmoid(self.discriminator(c, x)).mean(),
                "d_fake": torch.sigmoid(self.discriminator(c, fake)).mean(),
                "spread": torch.tensor(spread)}


# ----------------------------------------------------------------------------- sample metrics
@torch.no_grad()
def sample_spread(generator: Callable, cond: torch.Tensor, num_samples: int = 8) -> float:
    r"""How much the samples for one condition differ: the std over noise draws.

    .. math:: \text{spread} = \operatorname{mean}_{i, d}\ \operatorname{std}_k\, G(c_i, z_k)_d

    A generator that ignores its noise (mode collapse onto one output per condition, or
    an L2 regression) has spread 0; compare with :func:`class_spread` of the real data.

    Args:
        generator: ``generator(cond) -> (N, D)``, one fresh noise draw per call.
        cond: the conditions.
        num_samples: draws per condition (>= 2).

    Shape:
        - cond: :math:`(N, D_c)`

    Examples:
        >>> G = ConditionalGenerator(3, 2, noise_dim=0)  # no noise: no spread
        >>> sample_spread(G, torch.randn(5, 3))
        0.0
    """
    num_samples = check_positive_int(num_samples, "num_samples")
    if num_samples < 2:
        raise ValueError(f"num_samples must be >= 2 to measure a spread, got {num_samples}")
    samples = torch.stack([generator(cond) for _ in range(num_samples)])  # (K, N, D)
    return samples.std(0).mean().item()


def class_spread(x: torch.Tensor, labels: torch.Tensor) -> float:
    r"""The real data's spread within a class: the std of each feature within each class,
    averaged over features and classes.

    .. math:: \text{spread}_{\text{real}} = \operatorname{mean}_{k, d}\
              \operatorname{std}_{i : y_i = k}\, x_{id}

    Args:
        x: features; labels: their classes (each class present at least twice).

    Shape:
        - x: :math:`(N, D)`; labels: :math:`(N,)`

    Examples:
        >>> x = torch.tensor([[0.0], [2.0], [10.0], [14.0]])
        >>> class_spread(x, torch.tensor([0, 0, 1, 1]))  # stds 1.414 and 2.828
        2.1213...
    """
    check_shape(x, ("N", "D"), "x")
    check_shape(labels, (len(x),), "labels")
    classes, counts = labels.unique(return_counts=True)
    if bool((counts < 2).any()):
        raise ValueError(f"class_spread needs two items of each class; classes "
                         f"{classes[counts < 2].tolist()} have one")
    return torch.stack([x[labels == k].std(0).mean() for k in classes]).mean().item()


@torch.no_grad()
def class_consistency(generator: Callable, cond: torch.Tensor, labels: torch.Tensor,
                      probe: Callable, num_samples: int = 1) -> float:
    r"""Do the samples look like their class? The accuracy of a probe trained on *real*
    data, applied to generated samples.

    .. math:: \text{consistency} = \operatorname{mean}_{i, k}\
              \mathbb 1\big[\operatorname{probe}(G(c_i, z_k)) = y_i\big]

    Compare with the probe's accuracy on real held-out data (what a perfect generator
    would score) and with chance: a generator that ignores its condition scores chance.

    Args:
        generator: ``generator(cond) -> (N, D)``.
        cond: the conditions; labels: the class of each condition.
        probe: ``probe(x) -> (N, C)`` scores or ``(N,)`` predicted classes.
        num_samples: draws per condition.

    Shape:
        - cond: :math:`(N, D_c)`; labels: :math:`(N,)`

    Examples:
        >>> G = lambda c: c  # "generates" its condition
        >>> probe = lambda x: x  # class = the largest coordinate
        >>> class_consistency(G, torch.eye(3), torch.tensor([0, 1, 1]), probe)
        0.6666...
    """
    check_shape(labels, (len(cond),), "labels")
    hits = []
    for _ in range(check_positive_int(num_samples, "num_samples")):
        pred = torch.as_tensor(probe(generator(cond)))
        hits.append((pred.argmax(1) if pred.ndim == 2 else pred).to(labels.device) == labels)
    return torch.cat(hits).float().mean().item()


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


class _SourceImputer:
    """Fills ``target`` where it is absent and ``source`` present, by :meth:`fill`."""

    def __init__(self, source: int, target: int):
        self.source = check_nonnegative_int(source, "source")
        self.target = check_nonnegative_int(target, "target")
        if self.source == self.target:
            raise ValueError(f"source and target must differ, got {source} and {target}")

    @torch.no_grad()
    def __call__(self, xs, present) -> list:
        out = zero_impute(xs, present)  # new tensors: absent entries 0
        present = check_present(present, len(out), len(out[0]), out[0].device)  # (N, M)
        rows = ~present[:, self.target] & present[:, self.source]
        if bool(rows.any()):
            out[self.target][rows] = self.fill(xs[self.source][rows]).to(out[self.target].dtype)
        return out


class GeneratorImputer(_SourceImputer):
    """Impute modality ``target`` from modality ``source`` with a conditional generator.

    ``impute(xs, present)`` keeps every present entry and, where ``target`` is absent and
    ``source`` present, writes ``generator(embed(xs[source]))`` (one noise draw per call:
    call it again for another draw). Every other absent entry is 0, as in
    :func:`zero_impute` (whatever it held, even NaN, is gone); ``present`` is validated
    by the package's rule (:func:`mmbook.utils.check_present`).

    Args:
        generator: a :class:`ConditionalGenerator` (or any ``cond -> (N, D_target)``).
        embed: maps ``xs[source]`` to the generator's condition (an encoder, or
            ``nn.Identity()``).
        source, target: the modality indices.

    Shape:
        - xs: M tensors :math:`(N, D_m)`; present: :math:`(N, M)` bool
        - output: M tensors :math:`(N, D_m)`

    Examples:
        >>> G = ConditionalGenerator(2, 1, noise_dim=0)
        >>> xs = [torch.randn(3, 2), torch.randn(3, 1)]
        >>> present = torch.tensor([[True, True], [True, False], [True, False]])
        >>> out = GeneratorImputer(G, nn.Identity())(xs, present)
        >>> torch.equal(out[1][0], xs[1][0]), torch.equal(out[1][1:], G(xs[0][1:]).detach())
        (True, True)
    """

    def __init__(self, generator: Callable, embed: Callable, source: int = 0, target: int = 1):
        super().__init__(source, target)
        self.generator, self.embed = generator, embed

    def fill(self, x_source: torch.Tensor) -> torch.Tensor:
        return self.generator(self.embed(x_source))


class HotDeckImputer(_SourceImputer):
    r"""Impute modality ``target`` with a *real* donor of a class drawn from a posterior.

    For each row to fill: draw a class :math:`k \sim p(y \mid x_{\text{source}})` from
    ``posterior``, then a donor uniformly among the ``donors`` of class k, and copy it
    (hot-deck imputation, with the class as the donor pool). With a posterior that is
    one image classifier's, this is what a perfect conditional generator of the target
    modality would do when the only thing the source tells about the target is the
    class: its samples are real data, always of the drawn class.

    Args:
        donors: ``(P, D_target)`` real features; donor_labels: their classes ``(P,)``.
        posterior: ``posterior(xs[source]) -> (N, C)`` class probabilities.
        source, target: the modality indices.
        generator: a ``torch.Generator`` for the draws (default torch's global one).

    Examples:
        >>> donors, labels = torch.tensor([[0.0], [1.0], [2.0]]), torch.tensor([0, 1, 1])
        >>> certain = lambda x: torch.tensor([[1.0, 0.0]]).expand(len(x), 2)  # always class 0
        >>> imp = HotDeckImputer(donors, labels, certain)
        >>> imp([torch.randn(2, 4), torch.randn(2, 1)], [True, False])[1]
        tensor([[0.],
                [0.]])
    """

    def __init__(self, donors: torch.Tensor, donor_labels: torch.Tensor, posterior: Callable,
                 source: int = 0, target: int = 1, generator: torch.Generator | None = None):
        super().__init__(source, target)
        check_shape(donors, ("P", "D"), "donors")
        check_shape(donor_labels, (len(donors),), "donor_labels")
        self.donors, self.donor_labels = donors, donor_labels
        self.posterior, self.generator = posterior, generator

    def fill(self, x_source: torch.Tensor) -> torch.Tensor:
        probs = self.posterior(x_source)  # (N, C)
        check_shape(probs, (len(x_source), "C"), "posterior(x)")
        g = self.generator
        k = torch.multinomial(probs.cpu().float(), 1, generator=g).squeeze(1)  # (N,)
        labels = self.donor_labels.cpu()
        pick = torch.empty_like(k)
        for c in k.unique():
            pool = torch.nonzero(labels == c).flatten()
            if len(pool) == 0:
                raise ValueError(f"no donor of class {int(c)} (posterior gives it mass)")
            rows = k == c
            pick[rows] = pool[torch.randint(len(pool), (int(rows.sum()),), generator=g)]
        return self.donors[pick.to(self.donors.device)]


@torch.no_grad()
def impute_predict(impute: Callable, classify: Callable, xs: Sequence, present,
                   num_draws: int = 1) -> torch.Tensor:
    r"""Class probabilities averaged over ``num_draws`` imputations (multiple imputation).

    .. math:: \hat p(y \mid x_{\text{obs}}) = \frac1K \sum_{k=1}^{K}
              \operatorname{softmax}\big(f(x_{\text{obs}}, \hat x^{(k)}_{\text{mis}})\big)

    Each draw :math:`\hat x^{(k)}` is one call of ``impute``; a deterministic imputer gives
    K equal terms. Averaging the *predictions* (Rubin's pooling), not the imputed inputs,
    keeps each input a plausible one.

    Args:
        impute: ``impute(xs, present) -> list of M tensors``.
        classify: ``classify(xs) -> logits (N, C)``.
        xs: the modalities (absent entries are never read by a well-behaved imputer).
        present: ``(N, M)`` bool; num_draws: K.

    Shape:
        - output: :math:`(N, C)` probabilities

    Examples:
        >>> flip = iter([torch.tensor([[1.0]]), torch.tensor([[-1.0]])])
        >>> impute = lambda xs, present: [xs[0], next(flip)]
        >>> classify = lambda xs: torch.cat([xs[1], -xs[1]], 1) * 100  # votes by the sign
        >>> impute_predict(impute, classify, [torch.zeros(1, 1), None], [True, False], 2)
        tensor([[0.5000, 0.5000]])
    """
    probs = None
    for _ in range(check_positive_int(num_draws, "num_draws")):
        p = torch.softmax(classify(impute(xs, present)), dim=1)  # (N, C)
        probs = p if probs is None else probs + p
    return probs / num_draws


@torch.no_grad()
def compare_imputers(imputers: Mapping[str, Callable], classify: Callable, xs: Sequence,
                     labels: torch.Tensor, present, num_draws: int | Mapping = 1) -> list:
    """Accuracy of one downstream classifier on the data each imputer completes.

    Args:
        imputers: ``{name: impute}``, each ``impute(xs, present) -> list of M tensors``
            (e.g. :func:`zero_impute`, a :class:`GeneratorImputer`, chapter 10's
            ``CrossModalAutoencoder.impute``).
        classify: ``classify(xs) -> logits (N, C)``, trained on complete data.
        xs: the complete modalities; entries where ``present`` is False are hidden from the
            imputers (zeroed before the call), so no imputer can peek at them.
        labels: ``(N,)`` classes; present: ``(N, M)`` bool.
        num_draws: draws averaged by :func:`impute_predict`, for every imputer or as
            ``{name: K}`` (1 for the names it omits).

    Returns:
        one row per imputer: ``{"imputer": name, "accuracy": ..., "draws": K}``.

    Examples:
        >>> xs = [torch.randn(4, 2), torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])]
        >>> labels = torch.tensor([1, 0, 1, 0])
        >>> classify = lambda xs: torch.cat([-xs[1], xs[1]], 1)  # the audio decides
        >>> compare_imputers({"zero-fill": zero_impute}, classify, xs, labels, [True, False])
        [{'imputer': 'zero-fill', 'accuracy': 0.5, 'draws': 1}]
    """
    hidden = zero_impute(xs, present)
    check_shape(labels, (len(hidden[0]),), "labels")
    rows = []
    for name, impute in imputers.items():
        K = num_draws.get(name, 1) if isinstance(num_draws, Mapping) else num_draws
        completed = impute(hidden, present)
        if len(completed) != len(hidden):
            raise ValueError(f"imputer {name!r} returned {len(completed)} modalities, "
                             f"expected {len(hidden)}")
        probs = impute_predict(impute, classify, hidden, present, K)
        acc = (probs.argmax(1) == labels).float().mean().item()
        rows.append({"imputer": name, "accuracy": acc, "draws": K})
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
    """:func:`grad_reverse` as a module (Ganin & Lempitsky, 2015).

    Examples:
        >>> x = torch.ones(3, requires_grad=True)
        >>> (2 * GradientReversal(0.1)(x)).sum().backward()
        >>> x.grad
        tensor([-0.2000, -0.2000, -0.2000])
    """

    def __init__(self, lambda_: float = 1.0):
        super().__init__()
        self.lambda_ = check_positive(lambda_, "lambda_", allow_zero=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambda_)

    def extra_repr(self) -> str:
        return f"lambda_={self.lambda_}"


def _domain_loss(discriminator: nn.Module, reverse: nn.Module, e: torch.Tensor,
                 domain: torch.Tensor, balanced: bool = False) -> tuple:
    """Cross-entropy of the domain discriminator through R, and its accuracy; balanced:
    the mean over the domains present of each domain's mean cross-entropy."""
    logits = discriminator(reverse(e))  # (N, K)
    hits = (logits.argmax(1) == domain).float()
    if not balanced:
        return nn.functional.cross_entropy(logits, domain), hits.mean().detach()
    ce = nn.functional.cross_entropy(logits, domain, reduction="none")  # (N,)
    per_domain = [(ce[domain == k].mean(), hits[domain == k].mean()) for k in domain.unique()]
    return (sum(p[0] for p in per_domain) / len(per_domain),
            (sum(p[1] for p in per_domain) / len(per_domain)).detach())


class ModalityInvariantEncoder(nn.Module):
    r"""Per-modality encoders into one space, made modality-invariant adversarially.

    Encoders :math:`f_m` map each modality to :math:`e_m = f_m(x_m) \in \mathbb R^E`; a
    shared head :math:`h` classifies every :math:`e_m`; a discriminator :math:`d` tries to
    tell which modality an embedding came from, through a gradient-reversal layer R:

    .. math::
        \mathcal L = \sum_m \mathrm{CE}\big(h(e_m), y\big)
                   + \sum_m \mathrm{CE}\big(d(R(e_m)), m\big).

    The discriminator descends its loss; the reversed gradient makes the encoders ascend
    it. ``lambda_=0`` turns the adversary off (the discriminator still trains, the
    encoders ignore it): the baseline. Trains with :class:`mmbook.train.Trainer` on
    batches ``(x_1, ..., x_M, y)``; ``training_step`` logs the task and adversarial
    losses and the discriminator's accuracy (``disc_acc``).

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
        >>> from mmbook.train import Trainer
        >>> model = ModalityInvariantEncoder((6, 4), embed_dim=8, num_classes=3)
        >>> [e.shape for e in model([torch.randn(5, 6), torch.randn(5, 4)])]
        [torch.Size([5, 8]), torch.Size([5, 8])]
        >>> data = (torch.randn(32, 6), torch.randn(32, 4), torch.randint(0, 3, (32,)))
        >>> tr = Trainer(model, max_epochs=1, batch_size=16, progress=False, device="cpu")
        >>> sorted(k for k in tr.fit(data).history_ if k.startswith("train_"))
        ['train_acc', 'train_adversarial', 'train_disc_acc', 'train_loss', 'train_task']
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
        """The task and adversarial losses (summed over modalities), their total, and the
        discriminator's accuracy over all embeddings."""
        es = self(xs)
        task = sum(nn.functional.cross_entropy(self.head(e), labels) for e in es)
        parts = [_domain_loss(self.discriminator, self.reverse, e,
                              torch.full((len(e),), m, dtype=torch.long, device=e.device))
                 for m, e in enumerate(es)]
        adv = sum(p[0] for p in parts)
        return {"total": task + adv, "task": task, "adversarial": adv,
                "disc_acc": sum(p[1] for p in parts) / len(parts)}

    def training_step(self, batch, batch_idx: int) -> dict:
        """The :class:`~mmbook.train.Trainer` hook: batch ``(x_1, ..., x_M, y)``."""
        *xs, labels = batch
        parts = self.losses(xs, labels)
        return {"loss": parts["total"], "task": parts["task"].detach(),
                "adversarial": parts["adversarial"].detach(), "disc_acc": parts["disc_acc"]}


class DomainAdversarialNet(nn.Module):
    r"""Domain-adversarial training (DANN, Ganin et al., 2016): a classifier whose features
    cannot tell the source domain from the target domain.

    A feature extractor :math:`f`, a label head :math:`h` trained on the *labelled*
    (source) items only, and a domain discriminator :math:`d` fed through the
    gradient-reversal layer R on every item, labelled or not:

    .. math::
        \mathcal L = \frac{1}{|S|}\sum_{i \in S} \mathrm{CE}\big(h(f(x_i)), y_i\big)
        + \frac{1}{N}\sum_{i} \mathrm{CE}\big(d(R(f(x_i))), s_i\big),

    with :math:`s_i` the domain of item i. The target's labels are never read (they are
    ``-1`` in the batches). ``lambda_=0`` is the source-only baseline (the same network,
    the adversary cut off). Trains with :class:`mmbook.train.Trainer` on batches
    ``(x, y, domain)``; ``model(x)`` returns the label logits.

    Args:
        in_features: D.
        num_classes: C.
        num_domains: number of domains (2: source and target).
        hidden_features: width of the feature extractor (two layers) and the
            discriminator.
        lambda_: strength of the reversed gradient.
        dropout: dropout after each hidden layer of the feature extractor.

    Shape:
        - x: :math:`(N, D)`; y, domain: :math:`(N,)` (y = -1: unlabelled)
        - output: :math:`(N, C)` logits

    Examples:
        >>> from mmbook.train import Trainer
        >>> x = torch.randn(40, 5)
        >>> y = torch.where(torch.arange(40) < 30, (x[:, 0] > 0).long(), -1)  # 10 unlabelled
        >>> domain = (torch.arange(40) >= 30).long()
        >>> model = DomainAdversarialNet(5, num_classes=2, hidden_features=8)
        >>> tr = Trainer(model, max_epochs=2, batch_size=20, progress=False, device="cpu")
        >>> sorted(k for k in tr.fit((x, y, domain)).history_ if k.startswith("train_"))
        ['train_acc', 'train_adversarial', 'train_disc_acc', 'train_loss', 'train_task']
        >>> model(x[:3]).shape
        torch.Size([3, 2])
    """

    def __init__(self, in_features: int, num_classes: int, num_domains: int = 2,
                 hidden_features: int = 128, lambda_: float = 1.0, dropout: float = 0.0):
        super().__init__()
        d = check_positive_int(in_features, "in_features")
        hidden = check_positive_int(hidden_features, "hidden_features")
        self.features = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, check_positive_int(num_classes, "num_classes"))
        self.reverse = GradientReversal(lambda_)
        self.discriminator = nn.Sequential(
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, check_positive_int(num_domains, "num_domains")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, ("N", self.features[0].in_features), "x")
        return self.head(self.features(x))  # (N, C)

    def training_step(self, batch, batch_idx: int) -> dict:
        """The :class:`~mmbook.train.Trainer` hook: batch ``(x, y, domain)``."""
        x, y, domain = batch
        check_shape(y, (len(x),), "y")
        check_shape(domain, (len(x),), "domain")
        f = self.features(x)  # (N, H)
        labelled = y >= 0
        task = nn.functional.cross_entropy(self.head(f[labelled]), y[labelled]) \
            if bool(labelled.any()) else f.new_zeros(())
        adv, disc_acc = _domain_loss(self.discriminator, self.reverse, f, domain, balanced=True)
        return {"loss": task + adv, "task": task.detach(), "adversarial": adv.detach(),
                "disc_acc": disc_acc}
