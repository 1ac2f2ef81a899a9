"""Training: the losses the seeds name, optimizer steps from scratch, and a small ``Trainer``.

* :func:`mse_loss` and :func:`cross_entropy` are written from their formulas (and
  tested against ``torch.nn.functional``);
* :func:`sgd_step` / :func:`adam_step` (and the ``torch.optim``-like wrappers
  :class:`ScratchSGD`, :class:`ScratchAdam`) are the update rules written out (and
  tested against ``torch.optim.SGD`` / ``torch.optim.Adam``);
* :class:`Trainer` fits any model whose batches are tuples ``(*inputs, target)``,
  calling ``model(*inputs)`` to get logits, with history, early stopping and a
  progress display that stays quiet in the rendered book.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .utils import get_device

__all__ = [
    "mse_loss", "cross_entropy", "sgd_step", "adam_step", "ScratchSGD", "ScratchAdam",
    "count_parameters", "Trainer",
]


# ----------------------------------------------------------------------------- losses
def mse_loss(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error.

    .. math:: \\mathcal{L} = \\frac{1}{n} \\sum_{i=1}^{n} (\\hat y_i - y_i)^2

    Shape:
        - input, target: any shape, the same for both
        - output: scalar
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
    \\log \\mathrm{softmax}(z_n)_c`. The log-sum-exp form avoids overflow.

    Shape:
        - logits: :math:`(N, C)`
        - target: :math:`(N,)` integer classes, or :math:`(N, C)` probabilities
        - output: scalar
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {tuple(logits.shape)}")
    log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)  # (N, C) log-softmax
    if target.shape == logits.shape and target.is_floating_point():
        return -(target * log_p).sum(1).mean()
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
    """SGD with optional momentum, written out (see :func:`sgd_step`)."""

    _step = staticmethod(sgd_step)

    def __init__(self, params, lr: float, momentum: float = 0.0):
        super().__init__(params, lr=lr, momentum=momentum)


class ScratchAdam(_ScratchOptimizer):
    """Adam, written out (see :func:`adam_step`)."""

    _step = staticmethod(adam_step)

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ----------------------------------------------------------------------------- progress
def _live_display() -> bool:
    """True in a terminal or a notebook a person is watching; False under nbval/jupyter-book."""
    if "google.colab" in sys.modules or os.environ.get("JPY_SESSION_NAME"):
        return True  # Colab, or a kernel that a Jupyter server started for a notebook
    if "ipykernel" in sys.modules:
        return False  # a kernel driven by nbclient (nbval, jupyter-book): no live bars
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _progress_mode(progress) -> str:
    """``"bar"``, ``"text"`` or ``"off"``."""
    if progress in (False, None, "off"):
        return "off"
    if progress in ("bar", "text"):
        return progress
    if progress is not True:
        raise ValueError(f"progress must be True, False, 'bar' or 'text', got {progress!r}")
    if os.environ.get("MMBOOK_PROGRESS", "").strip().lower() in ("0", "false", "no", "text"):
        return "text"
    return "bar" if _live_display() else "text"


def _fmt_epoch(epoch: int, max_epochs: int, row: dict) -> str:
    parts = [f"epoch {epoch:>{len(str(max_epochs))}}/{max_epochs}"]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        if key in row and not math.isnan(row[key]):
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"{row['epoch_time']:.2f}s")
    return "  ".join(parts)


# ----------------------------------------------------------------------------- Trainer
def _move(batch, device):
    return [b.to(device, non_blocking=True) if torch.is_tensor(b) else b for b in batch]


def _accuracy_hits(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Number of correct predictions, or NaN when the task is not classification."""
    if logits.ndim == 2 and target.ndim == 1 and not target.is_floating_point():
        return (logits.argmax(1) == target).sum().item()
    return math.nan


class Trainer:
    """Fit a model with mini-batches, track the history, stop early on validation loss.

    Batches are tuples ``(*inputs, target)``; the model is called as ``model(*inputs)``
    and returns logits (or predictions for regression); the loss is
    ``loss_fn(logits, target)`` (mean over the batch).

    Args:
        model: the ``nn.Module`` to train (moved to ``device``).
        optimizer: a ``torch.optim`` optimizer over ``model``'s parameters, or a
            callable ``params -> optimizer`` (e.g. ``functools.partial(torch.optim.SGD,
            lr=0.1)``); default Adam with ``lr`` and ``weight_decay``.
        loss_fn: default ``torch.nn.functional.cross_entropy``.
        lr: learning rate of the default optimizer.
        max_epochs: epochs to run at most.
        batch_size: batch size when ``fit`` receives a dataset (not a DataLoader).
        patience: stop when the validation loss has not improved for this many
            epochs and restore the best weights; ``None`` runs every epoch.
        device: where to train; default :func:`mmbook.utils.get_device`.
        progress: ``True`` shows a tqdm bar in a terminal or live notebook and one
            line per epoch otherwise (and whenever ``MMBOOK_PROGRESS=0``); ``"bar"``,
            ``"text"`` force one; ``False`` is silent.
        seed: seeds the shuffling and every random draw inside ``fit`` (dropout), without
            touching the global random state, so two fits from the same initial weights
            give the same result on CPU.
        weight_decay: L2 penalty of the default optimizer.
        accuracy_fn: ``accuracy_fn(logits, target) -> number of correct items`` in a
            batch (NaN: not measured), behind ``train_acc``/``val_acc``/``accuracy``;
            default: ``argmax(logits) == target`` for classification logits, else NaN.
            A contrastive model (whose logits are an ``(N, N)`` matrix) passes
            :func:`mmbook.metrics.in_batch_hits`.

    Attributes:
        history_: dict of lists ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``,
            ``epoch_time`` (one entry per epoch run; NaN where not measured).
        best_epoch_: epoch (1-based) with the lowest validation loss, or the last epoch.
        n_epochs_: epochs actually run.
        fit_time_: seconds spent in ``fit``.
        optimizer_: the optimizer used.
    """

    def __init__(self, model: nn.Module, optimizer=None, loss_fn: Callable | None = None, *,
                 lr: float = 1e-3, max_epochs: int = 10, batch_size: int = 64,
                 patience: int | None = None, device=None, progress=True, seed: int = 0,
                 weight_decay: float = 0.0, accuracy_fn: Callable | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.lr, self.max_epochs, self.batch_size = lr, max_epochs, batch_size
        self.patience, self.device, self.progress = patience, device, progress
        self.seed, self.weight_decay = seed, weight_decay
        self.accuracy_fn = accuracy_fn

    # -- data
    def _loader(self, data, shuffle: bool, generator=None) -> DataLoader:
        if isinstance(data, DataLoader):
            return data
        if isinstance(data, (tuple, list)) and data and all(torch.is_tensor(d) for d in data):
            data = TensorDataset(*data)
        if not isinstance(data, Dataset):
            raise TypeError("data must be a Dataset, a DataLoader or a tuple of tensors "
                            f"(*inputs, target), got {type(data).__name__}")
        return DataLoader(data, batch_size=self.batch_size, shuffle=shuffle, generator=generator)

    def _ready(self) -> None:
        """Pick the device, move the model there, choose the loss (no optimizer yet)."""
        self.device_ = torch.device(self.device) if self.device is not None else get_device()
        self.model.to(self.device_)
        self.loss_fn_ = self.loss_fn or nn.functional.cross_entropy
        self.accuracy_fn_ = self.accuracy_fn or _accuracy_hits

    def _setup(self, has_val: bool) -> None:
        if self.max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {self.max_epochs}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be None or >= 1, got {self.patience}")
        if self.patience is not None and not has_val:
            raise ValueError("patience watches the validation loss: pass val_data to fit")
        self._ready()
        opt = self.optimizer
        if opt is None:
            opt = torch.optim.Adam(self.model.parameters(), lr=self.lr,
                                   weight_decay=self.weight_decay)
        elif not hasattr(opt, "step") and callable(opt):
            opt = opt(self.model.parameters())
        self.optimizer_ = opt

    # -- one pass
    def _run_epoch(self, loader, train: bool) -> tuple[float, float]:
        self.model.train(train)
        total_loss, hits, n = 0.0, 0.0, 0
        with torch.set_grad_enabled(train):
            for batch in loader:
                *inputs, target = _move(batch, self.device_)
                logits = self.model(*inputs)
                loss = self.loss_fn_(logits, target)
                if train:
                    self.optimizer_.zero_grad()
                    loss.backward()
                    self.optimizer_.step()
                size = len(target)
                total_loss += loss.item() * size
                hits += self.accuracy_fn_(logits.detach(), target)
                n += size
        if n == 0:
            raise ValueError("data is empty")
        return total_loss / n, hits / n

    # -- public API
    def fit(self, train_data, val_data=None) -> Trainer:
        """Train for up to ``max_epochs`` epochs; return ``self``."""
        start = time.perf_counter()
        self._setup(val_data is not None)
        self.history_ = {k: [] for k in ("train_loss", "train_acc", "val_loss", "val_acc",
                                         "epoch_time")}
        devices = [self.device_] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            generator = torch.Generator().manual_seed(self.seed)
            train_loader = self._loader(train_data, shuffle=True, generator=generator)
            val_loader = None if val_data is None else self._loader(val_data, shuffle=False)
            self._epochs(train_loader, val_loader)
        self.fit_time_ = time.perf_counter() - start
        return self

    def _epochs(self, train_loader, val_loader) -> None:
        mode = _progress_mode(self.progress)
        bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            bar = tqdm(total=self.max_epochs, desc="epochs", leave=True)
        best_loss, best_state, waited = math.inf, None, 0
        self.best_epoch_ = 0
        for epoch in range(1, self.max_epochs + 1):
            t0 = time.perf_counter()
            train_loss, train_acc = self._run_epoch(train_loader, train=True)
            val_loss, val_acc = (math.nan, math.nan) if val_loader is None else \
                self._run_epoch(val_loader, train=False)
            row = dict(train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                       val_acc=val_acc, epoch_time=time.perf_counter() - t0)
            for k, v in row.items():
                self.history_[k].append(v)
            watched = train_loss if val_loader is None else val_loss
            if watched < best_loss:
                best_loss, self.best_epoch_, waited = watched, epoch, 0
                if self.patience is not None:
                    best_state = copy.deepcopy(self.model.state_dict())
            else:
                waited += 1
            stop = self.patience is not None and waited >= self.patience
            self._report(mode, bar, epoch, row, last=stop or epoch == self.max_epochs)
            if stop:
                break
        self.n_epochs_ = epoch
        if bar is not None:
            bar.close()
        if best_state is not None and val_loader is not None:
            self.model.load_state_dict(best_state)
        if mode == "text" and self.n_epochs_ < self.max_epochs:
            print(f"early stop after epoch {self.n_epochs_}; restored epoch {self.best_epoch_}")

    def _report(self, mode: str, bar, epoch: int, row: dict, last: bool) -> None:
        if mode == "bar":
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()
                             if k != "epoch_time" and not math.isnan(v)})
        elif mode == "text":
            every = max(1, math.ceil(self.max_epochs / 10))
            if epoch % every == 0 or epoch == 1 or last:
                print(_fmt_epoch(epoch, self.max_epochs, row), flush=True)

    def _check_ready(self) -> None:
        if not hasattr(self, "device_"):
            self._ready()  # evaluating an untrained model is allowed (a baseline)

    def evaluate(self, data) -> dict:
        """Mean loss and accuracy on ``data``: ``{"loss": ..., "accuracy": ...}``."""
        self._check_ready()
        loss, acc = self._run_epoch(self._loader(data, shuffle=False), train=False)
        return {"loss": loss, "accuracy": acc}

    @torch.no_grad()
    def predict(self, data) -> torch.Tensor:
        """The model's outputs (logits) for every item of ``data``, on the CPU.

        The batches hold ``(*inputs, target)``; the target is ignored.
        """
        self._check_ready()
        self.model.eval()
        outs = []
        for batch in self._loader(data, shuffle=False):
            *inputs, _ = _move(batch, self.device_)
            outs.append(self.model(*inputs).cpu())
        return torch.cat(outs)
