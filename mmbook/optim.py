"""Chapter 5's losses and optimizers written from their formulas.

* :func:`mse_loss` and :func:`cross_entropy` are written from their formulas (and
  tested against ``torch.nn.functional``);
* :func:`sgd_step` / :func:`adam_step` (and the ``torch.optim``-like wrappers
  :class:`ScratchSGD`, :class:`ScratchAdam`) are the update rules written out (and
  tested against ``torch.optim.SGD`` / ``torch.optim.Adam``).

The :class:`~mmbook.train.Trainer` accepts these optimizers like any ``torch.optim`` one.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .utils import check_positive, check_probability

__all__ = ["mse_loss", "cross_entropy", "sgd_step", "adam_step", "ScratchSGD", "ScratchAdam"]


# ----------------------------------------------------------------------------- losses
def mse_loss(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error.

    .. math:: \\mathcal{L} = \\frac{1}{n} \\sum_{i=1}^{n} (\\hat y_i - y_i)^2

    Shape:
        - input, target: any shape, the same for both
        - output: scalar

    Raises:
        ValueError: ``target`` does not have the shape of ``input``.

    Examples:
        >>> import torch.nn.functional as F
        >>> _ = torch.manual_seed(0)
        >>> y_hat, y = torch.randn(4, 3), torch.randn(4, 3)
        >>> torch.allclose(mse_loss(y_hat, y), F.mse_loss(y_hat, y))
        True
        >>> mse_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]))  # (1 + 4) / 2
        tensor(2.5000)
    """
    if input.shape != target.shape:
        raise ValueError(f"target must have the shape of input {tuple(input.shape)}, got "
                         f"{tuple(target.shape)}")
    return ((input - target) ** 2).mean()


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the softmax of ``logits`` with class indices (or probabilities).

    .. math:: \\mathcal{L} = -\\frac{1}{N} \\sum_{n=1}^{N} \\log
        \\frac{e^{z_{n, y_n}}}{\\sum_{c} e^{z_{n,c}}}
        = \\frac{1}{N} \\sum_{n} \\Big(\\log \\sum_c e^{z_{n,c}} - z_{n, y_n}\\Big)

    With probabilities :math:`p_{n,c}` as target, :math:`-\\frac1N\\sum_n\\sum_c p_{n,c}
    \\log \\mathrm{softmax}(z_n)_c`, where a class with :math:`p_{n,c} = 0` adds 0 even
    if its logit is :math:`-\\infty` (a masked class; ``F.cross_entropy`` returns NaN
    there). The log-sum-exp form avoids overflow.

    Shape:
        - logits: :math:`(N, C)`
        - target: :math:`(N,)` integer classes, or :math:`(N, C)` probabilities
        - output: scalar

    Raises:
        ValueError: ``logits`` not 2-D, or ``target`` neither integer classes ``(N,)``
            nor probabilities ``(N, C)``.

    Examples:
        >>> import torch.nn.functional as F
        >>> _ = torch.manual_seed(0)
        >>> z, y = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
        >>> torch.allclose(cross_entropy(z, y), F.cross_entropy(z, y))
        True
        >>> p = F.one_hot(y, 3).float()  # probabilities as target: the same loss
        >>> torch.allclose(cross_entropy(z, p), F.cross_entropy(z, y))
        True
        >>> masked, p1 = torch.tensor([[0.0, float("-inf")]]), torch.tensor([[1.0, 0.0]])
        >>> cross_entropy(masked, p1).item() == 0, F.cross_entropy(masked, p1).isnan().item()
        (True, True)
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {tuple(logits.shape)}")
    log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)  # (N, C) log-softmax
    if target.shape == logits.shape and target.is_floating_point():
        # 0 log 0 = 0: a class of probability 0 adds nothing, even with a logit of -inf
        return -torch.where(target > 0, target * log_p, 0.0).sum(1).mean()
    if target.shape != logits.shape[:1] or target.is_floating_point():
        raise ValueError(f"target must be integer classes of shape ({logits.shape[0]},) or "
                         f"probabilities of shape {tuple(logits.shape)}, got "
                         f"{tuple(target.shape)} {target.dtype}")
    return -log_p.gather(1, target.long().unsqueeze(1)).mean()


# ----------------------------------------------------------------------------- optimizers
def _grads_of(params) -> list:
    return [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]


@torch.no_grad()
def sgd_step(params, grads, state: dict, lr: float, momentum: float = 0.0) -> None:
    """One step of (momentum) SGD, in place, exactly as ``torch.optim.SGD`` does it.

    .. math:: b_t = \\mu\\, b_{t-1} + g_t \\;(b_1 = g_1),\\qquad
              \\theta_t = \\theta_{t-1} - \\eta\\, b_t

    With :math:`\\mu = 0` this is plain gradient descent, :math:`\\theta \\leftarrow
    \\theta - \\eta g`.

    Args:
        params: the tensors to update.
        grads: their gradients, in the same order.
        state: a dict that keeps the momentum buffers between steps (start with ``{}``).
        lr: the learning rate :math:`\\eta`.
        momentum: :math:`\\mu`.

    Raises:
        ValueError: ``params`` and ``grads`` differ in length.

    Examples:
        Two momentum steps equal ``torch.optim.SGD``'s:

        >>> _ = torch.manual_seed(0)
        >>> w = torch.randn(3)
        >>> ref = w.clone().requires_grad_()
        >>> opt = torch.optim.SGD([ref], lr=0.1, momentum=0.9)
        >>> state = {}
        >>> for g in (torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.5, 0.0, -1.0])):
        ...     sgd_step([w], [g], state, lr=0.1, momentum=0.9)
        ...     ref.grad = g.clone(); opt.step()
        >>> torch.allclose(w, ref.detach())
        True
        >>> w = torch.zeros(2); sgd_step([w], [torch.tensor([1.0, -1.0])], {}, lr=0.5); w
        tensor([-0.5000,  0.5000])
    """
    params, grads = list(params), list(grads)
    if len(params) != len(grads):
        raise ValueError(f"got {len(params)} params but {len(grads)} grads")
    buffers = state.setdefault("momentum_buffer", [None] * len(params))
    for i, (p, g) in enumerate(zip(params, grads)):
        if momentum:
            buffers[i] = g.clone() if buffers[i] is None else momentum * buffers[i] + g
            g = buffers[i]
        p -= lr * g


@torch.no_grad()
def adam_step(params, grads, state: dict, lr: float = 1e-3,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    """One Adam step, in place, as in Kingma & Ba (2015) and ``torch.optim.Adam``.

    .. math::
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t,\\quad
        v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g_t^2,\\\\
        \\hat m_t = \\frac{m_t}{1-\\beta_1^t},\\quad
        \\hat v_t = \\frac{v_t}{1-\\beta_2^t},\\quad
        \\theta_t = \\theta_{t-1} - \\eta \\frac{\\hat m_t}{\\sqrt{\\hat v_t} + \\epsilon}

    Args:
        params, grads: as in :func:`sgd_step`.
        state: a dict that keeps ``step``, ``m`` and ``v`` between steps (start with ``{}``).
        lr: :math:`\\eta`; betas: :math:`(\\beta_1, \\beta_2)`; eps: :math:`\\epsilon`.

    Raises:
        ValueError: ``params`` and ``grads`` differ in length.

    Source:
        D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.

    Examples:
        Three steps equal ``torch.optim.Adam``'s; the first moves every weight by about
        ``lr`` against the sign of its gradient (:math:`\\hat m_1 / \\sqrt{\\hat v_1} = \\pm 1`):

        >>> _ = torch.manual_seed(0)
        >>> w = torch.randn(4)
        >>> ref = w.clone().requires_grad_()
        >>> opt = torch.optim.Adam([ref], lr=0.01)
        >>> state, grads = {}, torch.randn(3, 4)
        >>> for g in grads:
        ...     adam_step([w], [g], state, lr=0.01)
        ...     ref.grad = g.clone(); opt.step()
        >>> torch.allclose(w, ref.detach()), state["step"]
        (True, 3)
        >>> w = torch.zeros(2); adam_step([w], [torch.tensor([3.0, -0.1])], {}, lr=0.01); w
        tensor([-0.0100,  0.0100])
    """
    params, grads = list(params), list(grads)
    if len(params) != len(grads):
        raise ValueError(f"got {len(params)} params but {len(grads)} grads")
    beta1, beta2 = betas
    t = state["step"] = state.get("step", 0) + 1
    m = state.setdefault("m", [torch.zeros_like(p) for p in params])
    v = state.setdefault("v", [torch.zeros_like(p) for p in params])
    for i, (p, g) in enumerate(zip(params, grads)):
        m[i] = beta1 * m[i] + (1 - beta1) * g
        v[i] = beta2 * v[i] + (1 - beta2) * g * g
        m_hat = m[i] / (1 - beta1 ** t)
        v_hat = v[i] / (1 - beta2 ** t)
        p -= lr * m_hat / (v_hat.sqrt() + eps)


class _ScratchOptimizer:
    """The ``torch.optim`` interface around a functional step: ``step()``, ``zero_grad()``."""

    def __init__(self, params: Iterable[torch.Tensor], **hyper):
        self.params = [p for p in params]
        if not self.params:
            raise ValueError("params is empty: pass model.parameters()")
        self.hyper, self.state = hyper, {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def step(self) -> None:
        self._step(self.params, _grads_of(self.params), self.state, **self.hyper)


class ScratchSGD(_ScratchOptimizer):
    """SGD with optional momentum, written out (see :func:`sgd_step`).

    Args:
        params: the parameters to update (e.g. ``model.parameters()``).
        lr: the learning rate :math:`\\eta` (> 0).
        momentum: :math:`\\mu \\in [0, 1)`.

    Raises:
        ValueError: empty ``params``, ``lr`` not positive, ``momentum`` outside [0, 1).

    Examples:
        After three steps on the same model, ``ScratchSGD`` equals ``torch.optim.SGD``:

        >>> import copy
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)
        >>> net, x, y = nn.Linear(3, 2), torch.randn(8, 3), torch.randn(8, 2)
        >>> ref = copy.deepcopy(net)
        >>> opts = (ScratchSGD(net.parameters(), lr=0.1, momentum=0.9),
        ...         torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9))
        >>> for _ in range(3):
        ...     for model, opt in zip((net, ref), opts):
        ...         opt.zero_grad()
        ...         mse_loss(model(x), y).backward()
        ...         opt.step()
        >>> all(torch.allclose(p, q) for p, q in zip(net.parameters(), ref.parameters()))
        True
    """

    _step = staticmethod(sgd_step)

    def __init__(self, params, lr: float, momentum: float = 0.0):
        super().__init__(params, lr=check_positive(lr, "lr"),
                         momentum=check_probability(momentum, "momentum", allow_one=False))


class ScratchAdam(_ScratchOptimizer):
    """Adam, written out (see :func:`adam_step`).

    Args:
        params: the parameters to update (e.g. ``model.parameters()``).
        lr: :math:`\\eta` (> 0); betas: :math:`(\\beta_1, \\beta_2)`, each in [0, 1);
        eps: :math:`\\epsilon` (> 0).

    Raises:
        ValueError: empty ``params``, or a hyper-parameter outside its domain.

    Source:
        D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.

    Examples:
        After three steps on the same model, ``ScratchAdam`` equals ``torch.optim.Adam``:

        >>> import copy
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)
        >>> net, x, y = nn.Linear(3, 2), torch.randn(8, 3), torch.tensor([0, 1] * 4)
        >>> ref = copy.deepcopy(net)
        >>> opts = (ScratchAdam(net.parameters(), lr=0.01),
        ...         torch.optim.Adam(ref.parameters(), lr=0.01))
        >>> for _ in range(3):
        ...     for model, opt in zip((net, ref), opts):
        ...         opt.zero_grad()
        ...         cross_entropy(model(x), y).backward()
        ...         opt.step()
        >>> all(torch.allclose(p, q) for p, q in zip(net.parameters(), ref.parameters()))
        True
        >>> ScratchAdam(net.parameters(), betas=(0.9, 1.0))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: betas[1] ...
    """

    _step = staticmethod(adam_step)

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        if len(tuple(betas)) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        betas = tuple(check_probability(b, f"betas[{i}]", allow_one=False)
                      for i, b in enumerate(betas))
        super().__init__(params, lr=check_positive(lr, "lr"), betas=betas,
                         eps=check_positive(eps, "eps"))
