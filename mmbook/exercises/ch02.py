"""Checkers for the exercises of chapter 2, *Multimodal data*."""

from __future__ import annotations

import torch

from . import Feedback, call_student, check_close

__all__ = ["check_masked_mean", "check_standardise"]


def _reference_masked_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over each sequence's own frames, one sequence at a time."""
    return torch.stack([x[n, : int(lengths[n])].mean(0) for n in range(len(x))])


def check_masked_mean(fn) -> Feedback:
    """Check ``fn(x, lengths)``: the mean over the valid frames of a padded batch.

    .. math:: \\bar{x}_n = \\frac{\\sum_t m_{n,t}\\, x_{n,t}}{\\sum_t m_{n,t}},
        \\qquad m_{n,t} = [t < T_n]

    Shape:
        - x: ``(N, T, F)`` padded batch; lengths: ``(N,)``; output: ``(N, F)``.
    """
    g = torch.Generator().manual_seed(2)
    lengths = torch.tensor([5, 1, 3, 5])
    x = torch.randn(4, 5, 3, generator=g)
    for n, length in enumerate(lengths):  # padding that is not zero catches a plain mean
        x[n, length:] = 100.0
    got, fail = call_student(fn, x.clone(), lengths.clone(), name="masked_mean")
    if fail is not None:
        return fail
    if got is None:
        return Feedback(False, "masked_mean returned None: build the mask, then divide the "
                               "masked sum by the number of valid frames.")
    got = torch.as_tensor(got)
    if got.shape == x.mean(1).shape and torch.allclose(got.float(), x.mean(1)):
        return Feedback(False, "that is the plain mean over all T frames: the padded frames "
                               "(set to 100 here) must not count.")
    if got.shape == x.mean(1).shape and torch.allclose(
            got.float(), (x * (torch.arange(5) < lengths[:, None])[..., None]).sum(1) / 5):
        return Feedback(False, "the padded frames are masked out of the sum but you divide by "
                               "T: divide by each sequence's length instead.")
    return check_close("masked_mean(x, lengths)", got, _reference_masked_mean(x, lengths),
                       hint="Shape (N, F): one mean vector per sequence.")


def check_standardise(fn) -> Feedback:
    """Check ``fn(x_train, x_test) -> (z_train, z_test)``: standardise with train statistics.

    .. math:: z = \\frac{x - \\mu_{\\text{train}}}{\\sigma_{\\text{train}}}

    with the mean and standard deviation of each feature over the training rows only,
    applied unchanged to the test rows (population or unbiased std are both accepted).
    """
    g = torch.Generator().manual_seed(3)
    x_train = torch.randn(50, 4, generator=g) * torch.tensor([1.0, 2.0, 5.0, 0.5]) + 3.0
    x_test = torch.randn(20, 4, generator=g) * 4.0 - 2.0  # another distribution on purpose
    out, fail = call_student(fn, x_train.clone(), x_test.clone(), name="standardise")
    if fail is not None:
        return fail
    if out is None or not isinstance(out, (tuple, list)) or len(out) != 2:
        return Feedback(False, "standardise must return a pair (z_train, z_test).")
    z_train, z_test = (torch.as_tensor(z).float() for z in out)
    mu = x_train.mean(0)
    if z_test.shape == x_test.shape and any(torch.allclose(
            z_test, (x_test - x_test.mean(0)) / x_test.std(0, unbiased=u), atol=1e-4)
            for u in (False, True)):
        return Feedback(False, "the test rows were standardised with their own statistics: "
                               "that uses the test set to fit the preprocessing (a leak). Use "
                               "the training mean and standard deviation for both.")
    for unbiased in (False, True):  # StandardScaler's population std, or torch's default
        sigma = x_train.std(0, unbiased=unbiased)
        if (z_train.shape == x_train.shape and z_test.shape == x_test.shape
                and torch.allclose(z_train, (x_train - mu) / sigma, atol=1e-4)
                and torch.allclose(z_test, (x_test - mu) / sigma, atol=1e-4)):
            return Feedback(True, "both sets are standardised with the training statistics "
                                  "only.")
    sigma = x_train.std(0, unbiased=False)
    first = check_close("z_train", z_train, (x_train - mu) / sigma, atol=1e-4,
                        hint="Per feature (column): subtract the training mean and divide by "
                             "the training standard deviation.")
    if not first:
        return first
    return check_close("z_test", z_test, (x_test - mu) / sigma, atol=1e-4,
                       hint="Apply the training mean and std, unchanged, to the test rows.")
