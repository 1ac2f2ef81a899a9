"""A cross-modal autoencoder: reconstruct every modality from any subset of the others.

Seed 003 (§3.1, §3.3-3.5) describes its "cross-encoder" as encoders per modality, a
fusion layer and decoders per modality that reproduce the inputs, plus a classifier.
:class:`CrossModalAutoencoder` is that pipeline made to train: one MLP encoder per
modality into a shared latent space, a fusion over the *present* modalities only (a
renormalised weighted sum, :class:`mmbook.fusion.WeightedSumFusion`), one MLP decoder per
modality. Trained with random subsets of the inputs (:func:`fit_cross_modal_autoencoder`
uses :class:`mmbook.missing.ModalityDropout`), it learns to reconstruct a modality from
the others, which is what imputation of a missing modality needs (Ngiam et al., 2011).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

from ..encoders import mlp_head
from ..fusion import WeightedSumFusion
from ..missing import ModalityDropout
from ..train import Trainer
from ..utils import (
    check_finite,
    check_positive,
    check_positive_int,
    check_present,
    check_probability,
    check_shape,
    check_sizes,
    fill_absent,
)

__all__ = ["CrossModalAutoencoder", "fit_cross_modal_autoencoder"]



class CrossModalAutoencoder(nn.Module):
    r"""Encoders into a shared latent, a fusion over the present modalities, decoders out.

    .. math::
        u_m = \mathrm{enc}_m(x_m), \qquad
        u = \sum_{m} \alpha_{nm} u_m,\ \ \alpha_{nm} = \frac{r_{nm} e^{w_m}}
        {\sum_k r_{nk} e^{w_k}}, \qquad
        \hat x_m = \mathrm{dec}_m(u)

    with :math:`r_{nm}` the ``present`` mask (True = modality m of sample n is there).
    Every decoder reads the same fused latent u, so :math:`\hat x_m` for an absent m is a
    *cross-modal* reconstruction from the modalities present. Encoders and decoders are
    one-hidden-layer MLPs; the fusion is :class:`mmbook.fusion.WeightedSumFusion` with
    ``project=False``.

    Args:
        in_features: the feature sizes :math:`D_1, \dots, D_M` of the flat inputs.
        latent_dim: the size of the shared latent u.
        hidden_features: the hidden size of every encoder and decoder.
        names: optional names of the modalities (``decode`` accepts a name or an index).

    Attributes:
        encoders, decoders: ``nn.ModuleList`` of M MLPs.
        fusion: the :class:`~mmbook.fusion.WeightedSumFusion` over the latents.

    Shape:
        - xs: a list of M tensors :math:`(N, D_m)` (``None`` for a modality absent from
          every sample)
        - present: :math:`(N, M)` or :math:`(M,)` bool, optional (default: all present)
        - encode: :math:`(N, \text{latent\_dim})`; forward and impute: M tensors
          :math:`(N, D_m)`

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> ae = CrossModalAutoencoder((5, 3), latent_dim=4, hidden_features=8)
        >>> xs = [torch.randn(6, 5), torch.randn(6, 3)]
        >>> [tuple(x.shape) for x in ae(xs)], tuple(ae.encode(xs).shape)
        ([(6, 5), (6, 3)], (6, 4))
        >>> present = torch.tensor([[True, False]] * 6)
        >>> filled = ae.impute([xs[0], None], present)  # audio from image, say
        >>> torch.equal(filled[0], xs[0]), tuple(filled[1].shape)
        (True, (6, 3))

    Source: J. Ngiam, A. Khosla, M. Kim, J. Nam, H. Lee, A. Y. Ng, "Multimodal deep
    learning", ICML 2011 (training with one modality zeroed to learn cross-modal
    reconstruction).
    """

    def __init__(self, in_features: Sequence[int], latent_dim: int, hidden_features: int = 128,
                 names: Sequence[str] | None = None):
        super().__init__()
        self.in_features = check_sizes(in_features, "in_features")
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.hidden_features = check_positive_int(hidden_features, "hidden_features")
        M = len(self.in_features)
        if names is not None and (len(names) != M or len(set(names)) != M):
            raise ValueError(f"names must hold {M} distinct names, got {names!r}")
        self.names = tuple(names) if names is not None else None
        self.encoders = nn.ModuleList(mlp_head(d, hidden_features, latent_dim)
                                      for d in self.in_features)
        self.decoders = nn.ModuleList(mlp_head(latent_dim, hidden_features, d)
                                      for d in self.in_features)
        self.fusion = WeightedSumFusion([latent_dim] * M, latent_dim, project=False)

    @property
    def num_modalities(self) -> int:
        return len(self.in_features)

    def _index(self, modality) -> int:
        M = self.num_modalities
        if isinstance(modality, str):
            if self.names is None or modality not in self.names:
                known = "no names were given" if self.names is None else f"names {self.names}"
                raise ValueError(f"modality {modality!r} is unknown to this model ({known})")
            return self.names.index(modality)
        if isinstance(modality, bool) or not isinstance(modality, int) or not 0 <= modality < M:
            raise ValueError(f"modality must be an index in [0, {M}) or a name, got "
                             f"{modality!r}")
        return modality

    def _check(self, xs, present) -> tuple:
        """``(xs, present)`` by the package's absent-modality rule: absent entries set to 0
        (:func:`mmbook.utils.fill_absent`: they may hold anything, NaN included), present
        ones checked finite; a ``None`` entry (absent from every sample) stays ``None``."""
        M = self.num_modalities
        if isinstance(xs, torch.Tensor) or not isinstance(xs, (list, tuple)) or len(xs) != M:
            got = len(xs) if isinstance(xs, (list, tuple)) else type(xs).__name__
            raise ValueError(f"xs must be a list of {M} tensors (N, D_m), got {got}")
        for m, x in enumerate(xs):
            if x is not None:
                check_shape(x, ("N", self.in_features[m]), f"xs[{m}]")
        if present is None:
            present = torch.tensor([x is not None for x in xs])
        filled = fill_absent(xs, present, shapes=self.in_features)
        for m, x in enumerate(filled):
            check_finite(x, f"xs[{m}] (where present)")
        return [None if x is None else f for x, f in zip(xs, filled)], present

    def encode(self, xs, present=None) -> torch.Tensor:
        """The fused latent u of the present modalities, shape (N, latent_dim)."""
        xs, present = self._check(xs, present)
        us = [None if x is None else enc(x) for enc, x in zip(self.encoders, xs)]
        return self.fusion(us, present=present)  # (N, latent_dim)

    def decode(self, latent: torch.Tensor, modality) -> torch.Tensor:
        """Reconstruct one modality (an index or a name) from a latent (N, latent_dim)."""
        m = self._index(modality)
        check_shape(latent, (None, self.latent_dim), "latent")
        return self.decoders[m](latent)  # (N, D_m)

    def forward(self, xs, present=None) -> list:
        u = self.encode(xs, present)
        return [dec(u) for dec in self.decoders]

    def impute(self, xs, present) -> list:
        """``xs`` with every absent entry replaced by its cross-modal reconstruction
        (absent entries may hold anything, NaN included: they are never read)."""
        xs, present = self._check(xs, present)
        recon = self(xs, present)
        n = recon[0].shape[0]
        mask = check_present(present, self.num_modalities, n, recon[0].device)  # (N, M)
        return [r if x is None else torch.where(mask[:, m:m + 1], x, r)
                for m, (x, r) in enumerate(zip(xs, recon))]

    def reconstruction_loss(self, xs, present=None) -> torch.Tensor:
        r"""Mean squared error over every modality, present or not:
        :math:`\frac1M \sum_m \frac{1}{N D_m} \lVert \hat x_m - x_m \rVert^2`
        (the absent ones are the cross-modal targets; ``xs`` must hold them all)."""
        if any(x is None for x in xs):
            raise ValueError("xs: the loss needs every modality as a target (no None)")
        recon = self(xs, present)
        return torch.stack([nn.functional.mse_loss(r, x) for r, x in zip(recon, xs)]).mean()


class _GlobalPermutation(Sampler):
    """A fresh ``torch.randperm(n)`` from the global generator at each epoch."""

    def __init__(self, n: int):
        self.n = n

    def __iter__(self):
        return iter(torch.randperm(self.n).tolist())

    def __len__(self) -> int:
        return self.n


class _AutoencoderLoss(nn.Module):
    """:func:`fit_cross_modal_autoencoder`'s objective as :class:`~mmbook.train.Trainer`
    hooks: the autoencoder, the optional classifier, the modality dropout."""

    def __init__(self, model: CrossModalAutoencoder, classifier: nn.Module | None, p: float,
                 lr: float):
        super().__init__()
        self.model, self.classifier = model, classifier
        self.drop, self.lr = ModalityDropout(p), lr

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)

    def training_step(self, batch, batch_idx):
        M = self.model.num_modalities
        xs, labels = list(batch[:M]), (batch[M] if self.classifier is not None else None)
        present = self.drop(torch.ones(len(xs[0]), M, dtype=torch.bool, device=xs[0].device))
        u = self.model.encode(xs, present)  # (N, latent_dim)
        loss = torch.stack([nn.functional.mse_loss(dec(u), x)
                            for dec, x in zip(self.model.decoders, xs)]).mean()
        if self.classifier is not None:
            loss = loss + nn.functional.cross_entropy(self.classifier(u), labels)
        return loss


def fit_cross_modal_autoencoder(model: CrossModalAutoencoder, xs, *, epochs: int = 20,
                                batch_size: int = 64, lr: float = 1e-3, p: float = 0.5,
                                seed: int = 0, classifier: nn.Module | None = None,
                                labels: torch.Tensor | None = None) -> list:
    r"""Train ``model`` to reconstruct every modality from random subsets of them.

    Each mini-batch draws a ``present`` mask with :class:`~mmbook.missing.ModalityDropout`
    (each modality dropped with probability ``p``, never all) and minimises, with Adam,

    .. math:: \mathcal L = \frac1M \sum_m \mathrm{MSE}(\hat x_m, x_m)
              \;+\; \mathrm{CE}\big(\mathrm{classifier}(u), y\big)

    (the second term only with a ``classifier``: seed 003's encoder -> fusion -> decoder
    + classifier pipeline, trained jointly). The loss is the ``training_step`` of a
    :class:`~mmbook.train.Trainer`, which does the shuffling, the updates and the
    non-finite check. The model stays where it is; the data follow it. Deterministic for
    a given ``seed``.

    Args:
        model: the autoencoder.
        xs: a list of M tensors (N, D_m), all samples complete.
        epochs, batch_size, lr: the usual.
        p: the modality dropout probability (0: always every modality, so no cross-modal
            reconstruction is learned).
        seed: seeds the shuffling and the masks without touching the global state.
        classifier: optional module (N, latent_dim) -> (N, C) logits, trained jointly.
        labels: (N,) class indices, needed with ``classifier``.

    Returns:
        the mean training loss of each epoch.

    Raises:
        ValueError: an absent modality in ``xs``, ``classifier`` without ``labels`` (or
            the reverse), or arguments outside their domain.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> ae = CrossModalAutoencoder((5, 3), latent_dim=4, hidden_features=8)
        >>> xs = [torch.randn(40, 5), torch.randn(40, 3)]
        >>> losses = fit_cross_modal_autoencoder(ae, xs, epochs=5, batch_size=8, lr=1e-2)
        >>> len(losses), losses[-1] < losses[0], ae.training
        (5, True, False)
    """
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    lr = check_positive(lr, "lr")
    p = check_probability(p, "p", allow_one=False)
    model._check(xs, None)
    if any(x is None for x in xs):
        raise ValueError("xs: training needs every modality of every sample (no None)")
    if (classifier is None) != (labels is None):
        raise ValueError("classifier and labels go together: pass both or neither")
    if labels is not None:
        check_shape(labels, (xs[0].shape[0],), "labels")
    task = _AutoencoderLoss(model, classifier, p, lr)
    data = TensorDataset(*xs, *([] if labels is None else [labels]))
    # the order is drawn from the global generator (which the Trainer seeds with seed)
    # at the start of each epoch, as this function drew it before it used the Trainer
    loader = DataLoader(data, batch_size=batch_size, sampler=_GlobalPermutation(len(data)),
                        generator=torch.Generator())
    trainer = Trainer(task, max_epochs=epochs, seed=seed, progress=False,
                      device=next(model.parameters()).device)
    history = trainer.fit(loader).history_["train_loss"]
    task.eval()
    return history
