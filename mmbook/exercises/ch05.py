"""Checkers for chapter 5 (training)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmbook.exercises import Feedback, call_student, check_close

__all__ = ["check_mse_grad", "check_cross_entropy_grad", "check_momentum_step"]


def _call(fn, *args):
    """Run the reader's function; a tensor, or a Feedback saying what went wrong."""
    out, fail = call_student(fn, *args)
    if fail is None and out is None:
        fail = Feedback(False, "your function returned None: did you forget to return?")
    return (None, fail) if fail is not None else (torch.as_tensor(out), None)


def check_mse_grad(fn, seed: int = 0) -> Feedback:
    """Is ``fn(y_hat, y)`` the gradient of mean((y_hat - y)^2) with respect to y_hat?"""
    g = torch.Generator().manual_seed(seed)
    y_hat = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 3, generator=g, dtype=torch.float64)
    expected, = torch.autograd.grad(F.mse_loss(y_hat, y), y_hat)
    got, fail = _call(fn, y_hat.detach(), y)
    if fail is not None:
        return fail
    if got.shape == expected.shape:
        if torch.allclose(got.double(), expected / 2):
            return Feedback(False, "off by a factor 2: d/du u^2 = 2u.")
        if torch.allclose(got.double(), expected * y.numel()):
            return Feedback(False, "divide by n, the number of elements averaged over.")
        if torch.allclose(got.double(), -expected):
            return Feedback(False, "wrong sign: the derivative is with respect to y_hat.")
    return check_close("dL/dy_hat", got, expected, hint="dL/dy_hat = 2 (y_hat - y) / n.")


def check_cross_entropy_grad(fn, seed: int = 0) -> Feedback:
    """Is ``fn(z, y)`` the gradient of the mean cross-entropy with respect to the logits z?"""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 5, (4,), generator=g)
    expected, = torch.autograd.grad(F.cross_entropy(z, y), z)
    got, fail = _call(fn, z.detach(), y)
    if fail is not None:
        return fail
    if got.shape == expected.shape and torch.allclose(got.double(), expected * len(y)):
        return Feedback(False, "divide by N: the loss is a mean over the batch.")
    return check_close("dL/dz", got, expected,
                       hint="dL/dz = (softmax(z) - onehot(y)) / N.")


def check_momentum_step(fn, seed: int = 0, steps: int = 3) -> Feedback:
    """Does ``fn(theta, grad, buf, lr, mu) -> (theta, buf)`` match ``torch.optim.SGD``?

    ``buf`` is None on the first step.
    """
    g = torch.Generator().manual_seed(seed)
    theta0 = torch.randn(4, generator=g, dtype=torch.float64)
    grads = [torch.randn(4, generator=g, dtype=torch.float64) for _ in range(steps)]
    p = theta0.clone().requires_grad_(True)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    theta, buf = theta0.clone(), None
    for t, grad in enumerate(grads, 1):
        p.grad = grad.clone()
        opt.step()
        before = (theta.clone(), buf)
        out, fail = call_student(fn, theta, grad, buf, 0.1, 0.9, name=f"step {t}: your function")
        if fail is not None:
            return fail
        try:
            theta, buf = out
        except (TypeError, ValueError):
            return Feedback(False, f"step {t}: return the pair (theta, buf), got "
                                   f"{type(out).__name__}")
        if t == 1 and buf is None and torch.equal(torch.as_tensor(theta), before[0]):
            return Feedback(False, "momentum_step returns theta and buf unchanged (the starter "
                                   "as given): write the update, then run the cell again.",
                            pending=True)
        verdict = check_close(f"theta after step {t}", theta, p.detach(),
                              hint="b = mu * b + g (b = g at the first step); theta -= lr * b.")
        if not verdict:
            return verdict
    return Feedback(True, f"{steps} steps match torch.optim.SGD(momentum=0.9).")
