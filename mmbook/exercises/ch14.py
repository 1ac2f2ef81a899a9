"""Checkers for chapter 14 (Graph and generative fusion)."""

from __future__ import annotations

import torch

from ..graph import normalize_adjacency
from . import Feedback, call_student, check_close

__all__ = ["check_gcn_normalization", "check_gradient_reversal", "check_cross_diffusion",
           "cross_diffusion_step", "check_pooled_prediction"]


def _graph() -> torch.Tensor:
    A = torch.tensor([[0.0, 1.0, 2.0, 0.0, 0.0],
                      [1.0, 0.0, 1.0, 0.0, 0.0],
                      [2.0, 1.0, 0.0, 0.5, 0.0],
                      [0.0, 0.0, 0.5, 0.0, 0.0],
                      [0.0, 0.0, 0.0, 0.0, 0.0]])  # node 4 is isolated
    return A


def check_gcn_normalization(fn) -> Feedback:
    """Check ``fn(A)`` = D^-1/2 (A + I) D^-1/2 (Kipf & Welling) on a graph with an isolated
    node."""
    A = _graph()
    got, fail = call_student(fn, A.clone(), name="your normalisation")
    if fail is not None:
        return fail
    if got is None:
        return Feedback(False, "your function returned None: did you forget to return it?")
    got = torch.as_tensor(got, dtype=A.dtype)
    if got.shape != A.shape:
        return Feedback(False, f"the result has shape {tuple(got.shape)}, expected "
                               f"{tuple(A.shape)}")
    if not torch.isfinite(got).all():
        return Feedback(False, "the result holds NaN or inf: a node of degree 0 divides by 0. "
                               "Add the self-loops before computing the degrees")
    want = normalize_adjacency(A)
    I = torch.eye(5)
    wrong = {
        "you forgot the self-loops: use A + I, not A": normalize_adjacency(A, False),
        "you normalised by rows (D^-1 (A + I)); the GCN uses D^-1/2 on both sides": (A + I)
        / (A + I).sum(1, keepdim=True),
        "the degrees must come from A + I, not from A": _sym(A + I, A.sum(1).clamp_min(1e-12)),
    }
    for message, value in wrong.items():
        if torch.allclose(got, value, atol=1e-5):
            return Feedback(False, message)
    return check_close("the normalised adjacency", got, want,
                       hint="D_ii = sum_j (A + I)_ij; result = D^-1/2 (A + I) D^-1/2")


def _sym(A: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    s = d.rsqrt()
    return s[:, None] * A * s[None, :]


def _reversal_probe(fn):
    """``fn``'s forward output and the gradient ``w`` sends back through it to ``x``, as
    plain data (so that the grader can record it: see mmbook.exercises.grading)."""
    def probe(x, lambda_, w):
        out = fn(x, lambda_)
        if not isinstance(out, torch.Tensor):
            return {"type": type(out).__name__}
        result = {"out": out.detach(), "requires_grad": out.requires_grad}
        if out.requires_grad and out.shape == x.shape:
            try:
                result["grad"] = torch.autograd.grad((out * w).sum(), x)[0]
            except RuntimeError as err:
                result["error"] = str(err)
        return result
    return probe


def check_gradient_reversal(fn) -> Feedback:
    """Check ``fn(x, lambda_)``: identity forward, gradient times -lambda_ backward."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, generator=g, requires_grad=True)
    w = torch.randn(4, 3, generator=g)
    probed, fail = call_student(_reversal_probe(fn), x, 0.5, w, name="your gradient reversal")
    if fail is not None:
        return fail
    if "type" in probed:
        return Feedback(False, f"it must return a tensor, got {probed['type']}")
    out = probed["out"]
    if out.shape != x.shape or not torch.allclose(out, x):
        if out.shape == x.shape and torch.allclose(out, -0.5 * x):
            return Feedback(False, "the forward pass must be the identity: reverse only the "
                                   "gradient, in backward")
        return Feedback(False, "the forward pass must return x unchanged")
    if not probed["requires_grad"]:
        return Feedback(False, "the output is cut from the graph (detached): no gradient "
                               "reaches x. Write a torch.autograd.Function")
    if "error" in probed:
        if "number of gradients" in probed["error"]:
            return Feedback(False, "backward must return one gradient per input of forward: "
                                   "(-lambda_ * grad_output, None), None for lambda_")
        return Feedback(False, f"the backward pass raised RuntimeError: {probed['error']}")
    grad = probed["grad"]
    if torch.allclose(grad, w):
        return Feedback(False, "the gradient passes unchanged: backward must return "
                               "-lambda_ * grad_output")
    if torch.allclose(grad, -w):
        return Feedback(False, "the gradient is reversed but not scaled by lambda_")
    if torch.allclose(grad, 0.5 * w):
        return Feedback(False, "the gradient is scaled but not reversed: the sign is missing")
    return check_close("the gradient reaching x", grad, -0.5 * w,
                       hint="backward returns -lambda_ * grad_output (and None for lambda_)")


def cross_diffusion_step(P1, P2, S1, S2, alpha: float = 1.0):
    """One SNF step for two views (the reference): each view diffuses the *other* one."""
    new1 = S1 @ P2 @ S1.T + alpha * torch.eye(len(P1), dtype=P1.dtype)
    new2 = S2 @ P1 @ S2.T + alpha * torch.eye(len(P1), dtype=P1.dtype)
    return (new1 + new1.T) / 2, (new2 + new2.T) / 2


def _two_views():
    g = torch.Generator().manual_seed(3)
    Ps, Ss = [], []
    for _ in range(2):
        P = torch.rand(6, 6, generator=g, dtype=torch.float64)
        P = (P + P.T) / 2
        S = P * (P >= P.topk(3, dim=1).values[:, -1:])
        Ps.append(P)
        Ss.append(S / S.sum(1, keepdim=True))
    return Ps, Ss


def check_cross_diffusion(fn) -> Feedback:
    """Check ``fn(P1, P2, S1, S2, alpha)`` returning the two updated full kernels."""
    (P1, P2), (S1, S2) = _two_views()
    got, fail = call_student(fn, P1, P2, S1, S2, 1.0, name="your step")
    if fail is not None:
        return fail
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return Feedback(False, "return the two updated kernels as a tuple (P1_new, P2_new)")
    want = cross_diffusion_step(P1, P2, S1, S2)
    eye = torch.eye(6, dtype=P1.dtype)
    own = (S1 @ P1 @ S1.T + eye, S2 @ P2 @ S2.T + eye)
    if torch.allclose(torch.as_tensor(got[0], dtype=P1.dtype), (own[0] + own[0].T) / 2):
        return Feedback(False, "each view must diffuse the OTHER view's kernel (P2 through "
                               "S1), not its own")
    if torch.allclose(torch.as_tensor(got[0], dtype=P1.dtype), S1 @ P2 @ S1.T):
        return Feedback(False, "almost: add alpha * I and symmetrise, (P + P.T) / 2")
    no_transpose = S1 @ P2 @ S1 + eye
    if torch.allclose(torch.as_tensor(got[0], dtype=P1.dtype), (no_transpose + no_transpose.T) / 2):
        return Feedback(False, "the right factor is S1 transposed: S1 @ P2 @ S1.T")
    other_local = S2 @ P2 @ S2.T + eye
    if torch.allclose(torch.as_tensor(got[0], dtype=P1.dtype), (other_local + other_local.T) / 2):
        return Feedback(False, "each view diffuses the other view's kernel through its OWN "
                               "local kernel: P1_new uses S1 @ P2 @ S1.T")
    sequential = S2 @ want[0] @ S2.T + eye
    if torch.allclose(torch.as_tensor(got[1], dtype=P1.dtype), (sequential + sequential.T) / 2):
        return Feedback(False, "P2_new used the already updated P1: compute both updates "
                               "from the old kernels P1, P2")
    first = check_close("P1_new", got[0], want[0], hint="S1 @ P2 @ S1.T + alpha I, symmetrised")
    return first if not first else check_close("P2_new", got[1], want[1],
                                                hint="S2 @ P1 @ S2.T + alpha I, symmetrised")


# ----------------------------------------------------------------------------- multiple imputation
def _pooling_case():
    """Logits of a classifier on K = 4 imputations of 5 samples, 3 classes: the draws
    disagree (the imputed modality is uncertain), so the pooling rules differ."""
    g = torch.Generator().manual_seed(14)
    return 3 * torch.randn(4, 5, 3, generator=g, dtype=torch.float64)  # (K, N, C)


def check_pooled_prediction(fn) -> Feedback:
    """Check ``fn(logits)``: multiple imputation's pooled class probabilities from the
    classifier's logits on K draws, ``logits (K, N, C) -> (1/K) sum_k softmax(logits[k])``,
    shape ``(N, C)``."""
    logits = _pooling_case()
    got, fail = call_student(fn, logits.clone(), name="your pooling")
    if fail is not None:
        return fail
    if not isinstance(got, torch.Tensor):
        return Feedback(False, f"return a tensor of probabilities (N, C), got {type(got).__name__}")
    got = got.detach().to(torch.float64)
    K, N, C = logits.shape
    want = torch.softmax(logits, dim=2).mean(0)  # (N, C)
    if got.shape != want.shape:
        return Feedback(False, f"the result has shape {tuple(got.shape)}, expected (N, C) = "
                               f"{tuple(want.shape)}: one probability per sample and class "
                               "(not the predicted classes; the draws' axis 0 averaged away)")
    wrong = {
        "you averaged the logits, then took the softmax: average the probabilities "
        "(the softmax of each draw's logits first)": torch.softmax(logits.mean(0), dim=1),
        "you kept one draw: average over all K draws (axis 0)": torch.softmax(logits[0], dim=1),
        "the rows sum to K: divide the sum of the probabilities by K": K * want,
        "the softmax must run over the classes (the last axis), not over the draws or the "
        "samples": torch.softmax(logits, dim=1).mean(0),
        "the softmax must run over the classes (the last axis), not over the draws":
            torch.softmax(logits, dim=0).mean(0),
    }
    for message, value in wrong.items():
        if torch.allclose(got, value, atol=1e-6):
            return Feedback(False, message)
    return check_close("the pooled probabilities", got, want,
                       hint="(1/K) sum over the draws of softmax(logits[k], dim=-1)")


