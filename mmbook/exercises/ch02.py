"""Checkers for the exercises of chapter 2, *Multimodal data*."""

from __future__ import annotations

import torch

from . import Feedback, call_student, check_close, pending

__all__ = ["check_masked_mean", "check_standardise", "check_components_for_variance"]


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
    if got.shape == x.mean(1).shape:
        t = torch.arange(5)
        off_by_one = {  # the mask t <= T_n (one padded frame too many) or t < T_n - 1
            "t <= T_n": t[None, :] <= lengths[:, None],
            "t < T_n - 1": t[None, :] < (lengths[:, None] - 1),
        }
        for rule, m in off_by_one.items():
            m = m[..., None].float()
            for denominator in (m.sum(1).clamp(min=1), lengths[:, None].float()):
                if torch.allclose(got.float(), (x * m).sum(1) / denominator, atol=1e-5):
                    return Feedback(False, f"off by one: your mask is {rule}. Frames "
                                           "0 .. T_n - 1 are real, so the mask is t < T_n.")
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
    if out is None:
        return pending("standardise's result")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return Feedback(False, "standardise must return a pair (z_train, z_test).")
    z_train, z_test = (torch.as_tensor(z).float() for z in out)
    mu = x_train.mean(0)
    if z_test.shape == x_test.shape and any(torch.allclose(
            z_test, (x_test - x_test.mean(0)) / x_test.std(0, unbiased=u), atol=1e-4)
            for u in (False, True)):
        return Feedback(False, "the test rows were standardised with their own statistics: "
                               "that uses the test set to fit the preprocessing (a leak). Use "
                               "the training mean and standard deviation for both.")
    pooled = torch.cat([x_train, x_test])
    for unbiased in (False, True):
        mu_all, sd_all = pooled.mean(0), pooled.std(0, unbiased=unbiased)
        if z_test.shape == x_test.shape and torch.allclose(z_test, (x_test - mu_all) / sd_all,
                                                            atol=1e-4):
            return Feedback(False, "you pooled training and test rows to compute the mean and "
                                   "standard deviation: the test rows then shape the "
                                   "preprocessing (a leak). Use the training rows only.")
    if z_train.shape == x_train.shape and torch.allclose(z_train, x_train - mu, atol=1e-4):
        return Feedback(False, "you subtracted the mean but did not divide by the standard "
                               "deviation.")
    for unbiased in (False, True):
        var = x_train.var(0, unbiased=unbiased)
        if z_train.shape == x_train.shape and torch.allclose(z_train, (x_train - mu) / var,
                                                             atol=1e-4):
            return Feedback(False, "you divided by the variance sigma^2: divide by the "
                                   "standard deviation sigma (its square root).")
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


def _spectrum_views(seed: int = 4) -> torch.Tensor:
    """Data whose PCA answers differ for every usual slip (centering, sigma, counting)."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.tensor([3.0, 2.5, 2.0, 1.6, 1.3, 1.0, 0.8, 0.6, 0.4, 0.3])
    x = torch.randn(400, 10, generator=g, dtype=torch.float64) * scales
    return x + torch.linspace(6.0, -4.0, 10, dtype=torch.float64)  # far from centred


def components_for_variance(x: torch.Tensor, share: float) -> int:
    """The reference: smallest k whose leading k principal directions explain >= share."""
    xc = x - x.mean(0)
    lam = torch.linalg.eigvalsh(xc.T @ xc / (len(x) - 1)).flip(0)  # largest first
    r = torch.cumsum(lam, 0) / lam.sum()
    return int((r < share).sum()) + 1


def check_components_for_variance(fn, share: float = 0.8) -> Feedback:
    """Check ``fn(x, share)`` -> the smallest k with :math:`r_k \\ge` ``share``.

    .. math:: r_k = \\frac{\\sum_{j \\le k} \\lambda_j}{\\sum_j \\lambda_j}

    with :math:`\\lambda_j` the eigenvalues of the covariance of the centred rows (the
    squared singular values of the centred data, divided by n - 1). Names the usual
    slips: singular values used as variances (sigma for sigma^2), data not centred, and
    counting off by one.
    """
    x = _spectrum_views()
    got, fail = call_student(fn, x.clone(), share)
    if fail is not None:
        return fail
    try:
        k = int(got)
    except (TypeError, ValueError):
        return Feedback(False, f"return one int (a number of directions), got {got!r}")
    if k != got:
        return Feedback(False, f"return an int, got {got!r}")
    want = components_for_variance(x, share)
    if k == want:
        return Feedback(True, f"k = {k}: the first {k} directions explain at least {share:.0%} "
                              "of the variance.")
    xc = x - x.mean(0)
    sing = torch.linalg.svdvals(xc)
    r_sigma = torch.cumsum(sing, 0) / sing.sum()
    sing_raw = torch.linalg.svdvals(x)
    r_raw = torch.cumsum(sing_raw**2, 0) / (sing_raw**2).sum()
    lam = sing**2
    r = torch.cumsum(lam, 0) / lam.sum()
    slips = [
        (int((r_sigma < share).sum()) + 1, "you summed the singular values sigma_j: the "
         "variance along direction j is lambda_j = sigma_j^2 / (n - 1), so square them"),
        (int((r_raw < share).sum()) + 1, "the data were not centred: subtract the mean of "
         "each column first, or the first direction just points at the mean"),
        (int((r < share).sum()), "off by one: you counted the directions with r_k < share; "
         "the answer is the first k with r_k >= share, one more"),
        (int((r <= share).sum()) + 2, "one direction too many: the first k with "
         "r_k >= share already reaches it"),
    ]
    for value, why in slips:
        if value == k:
            return Feedback(False, f"k = {k} is not the answer: {why}.")
    return Feedback(False, f"k = {k} is not the answer. Centre x, take the eigenvalues of its "
                           "covariance, largest first, and find the first k whose cumulative "
                           f"share reaches {share}.")
