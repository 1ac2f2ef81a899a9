"""Training: a small ``Trainer`` (chapter 5's from-scratch losses and optimizers are in
:mod:`mmbook.optim`).

* :class:`Trainer` fits any model whose batches are tuples ``(*inputs, target)``,
  calling ``model(*inputs)`` to get logits, with history, early stopping, checkpoints
  and a progress display that stays quiet in the rendered book.
* A model may instead define its own step, with the names Lightning and d2l use:
  ``training_step(batch, batch_idx)`` (a loss, or a dict with ``"loss"`` and other
  scalars to log), ``validation_step(batch, batch_idx)`` (a dict of metrics) and
  ``configure_optimizers()``; a model with ``automatic_optimization = False`` makes its
  own updates with the optimizers it is handed (adversarial training, several losses).
* Under ``torchrun`` the same ``fit`` trains with ``DistributedDataParallel``
  (:mod:`mmbook.distributed`): each process takes its share of every global batch,
  evaluation counts each item once, rank 0 alone prints and writes checkpoints.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import (
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
)

from . import distributed
from .utils import (
    check_choice,
    check_positive,
    check_positive_int,
    count_parameters,  # re-exported: one count_parameters, in mmbook.utils
    environment,
)

__all__ = ["count_parameters", "Trainer", "NonFiniteLossError"]

_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc")


# ----------------------------------------------------------------------------- progress
def _live_display() -> bool:
    """True in a terminal or a notebook a person is watching; False under nbval/jupyter-book."""
    where = environment()
    if where in ("colab", "jupyter"):
        return True
    if where == "script":
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return False  # nbval, or a kernel driven by nbclient (jupyter-book): no live bars


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


def _fmt_epoch(epoch: int, max_epochs: int, row: dict, has_val: bool) -> str:
    parts = [f"epoch {epoch:>{len(str(max_epochs))}}/{max_epochs}"]
    losses = ("train_loss", "val_loss") if has_val else ("train_loss",)
    logged = [k for k in row if k not in (*_COLUMNS, "epoch_time")]  # a hook's own scalars
    for key in (*_COLUMNS, *logged):
        # a loss is always shown (NaN included: it is news); the rest only when measured
        if key in row and (key in losses or not math.isnan(row[key])):
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"{row['epoch_time']:.2f}s")
    return "  ".join(parts)


# ----------------------------------------------------------------------------- steps
def _move(batch, device):
    return [b.to(device, non_blocking=True) if torch.is_tensor(b) else b for b in batch]


def _accuracy_hits(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Number of correct predictions, or NaN when the task is not classification."""
    if logits.ndim == 2 and target.ndim == 1 and not target.is_floating_point():
        return (logits.argmax(1) == target).sum().item()
    return math.nan


def _has_hook(model: nn.Module, name: str) -> bool:
    return callable(getattr(model, name, None))


def _is_manual(model: nn.Module) -> bool:
    """Lightning's flag: ``automatic_optimization = False`` means the model steps itself."""
    return getattr(model, "automatic_optimization", True) is False


def _batch_size(batch) -> int:
    """The number of items N of a batch: the first dimension of its first tensor."""
    for b in batch:
        if torch.is_tensor(b) and b.ndim > 0:
            return len(b)
    raise ValueError("a batch must hold at least one tensor (N, ...) to count its items")


def _as_logs(out, hook: str, need_loss: bool) -> dict:
    """A hook's output as a dict of scalars: a tensor is ``{"loss": tensor}``."""
    if torch.is_tensor(out):
        out = {"loss": out}
    if not isinstance(out, dict) or not out:
        raise TypeError(f"{hook} must return a scalar loss tensor or a non-empty dict of "
                        f"scalars, got {type(out).__name__}")
    if need_loss and "loss" not in out:
        raise ValueError(f"{hook} must return the loss to minimise, as a tensor or under the "
                         f"key 'loss'; got the keys {sorted(out)}")
    for key, value in out.items():
        if torch.is_tensor(value) and value.numel() != 1:
            raise ValueError(f"{hook}: {key!r} must be a scalar, got shape "
                             f"{tuple(value.shape)}")
    return out


def _sums(logs: dict, size: int) -> dict:
    """Per-batch means times the batch size: sums over items, added up over batches."""
    return {k: float(torch.as_tensor(v).detach()) * size for k, v in logs.items()}


def _average_before_step(optimizer, args, kwargs) -> None:
    """Step pre-hook: average the gradients over the processes (manual optimisation)."""
    distributed.average_gradients(p for group in optimizer.param_groups
                                  for p in group["params"])


class _TrainingStep(nn.Module):
    """Calls ``model.training_step`` in ``forward``, so DDP's wrapper sees the step and
    synchronises its gradients (what Lightning's wrapper does)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.module = model

    def forward(self, batch, batch_idx):
        return self.module.training_step(batch, batch_idx)


class NonFiniteLossError(FloatingPointError):
    """A training loss was NaN or infinite (see :class:`Trainer`'s ``on_nonfinite``).

    Raised by :meth:`Trainer.fit` with ``on_nonfinite="raise"`` (the default), before the
    update of the batch whose loss is not finite.

    Examples:
        One NaN in the inputs stops the fit; ``on_nonfinite="skip"`` leaves its batch out:

        >>> _ = torch.manual_seed(0)
        >>> x, y = torch.randn(8, 2), torch.tensor([0, 1] * 4)
        >>> x[5, 0] = float("nan")
        >>> net = nn.Linear(2, 2)
        >>> w0 = net.weight.detach().clone()
        >>> tr = Trainer(net, max_epochs=1, batch_size=4, progress=False, device="cpu", seed=0)
        >>> tr.fit((x, y))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mmbook.train.NonFiniteLossError: non-finite training loss (nan) at epoch 1, batch 1 of 2...
        >>> torch.equal(net.weight, w0), tr.history_["train_loss"]  # no update from it
        (True, [nan])
        >>> tr = Trainer(net, max_epochs=1, batch_size=4, progress=False, device="cpu", seed=0,
        ...              on_nonfinite="skip")
        >>> tr.fit((x, y)).history_["skipped_batches"]
        [1]
    """


# ----------------------------------------------------------------------------- Trainer
class Trainer:
    """Fit a model with mini-batches, track the history, stop early on validation loss.

    Batches are tuples ``(*inputs, target)``; the model is called as ``model(*inputs)``
    and returns logits (or predictions for regression); the loss is
    ``loss_fn(logits, target)`` (mean over the batch).

    **A model's own step** (the hooks of d2l's ``Module`` and of Lightning). A model that
    defines ``training_step(batch, batch_idx)`` gets the whole batch (any tuple, moved to
    the device) and returns its loss: a scalar tensor, or a dict with the key ``"loss"``
    and any other scalars, which the history records as ``train_<key>`` (their mean over
    the epoch's items). The trainer then does ``zero_grad``, ``loss.backward()`` and
    ``step`` for every optimizer. ``validation_step(batch, batch_idx)`` (optional) returns
    a dict of metrics, recorded as ``val_<key>`` and returned by :meth:`evaluate`; without
    it, validation calls ``training_step`` under ``torch.no_grad()`` in eval mode.
    ``configure_optimizers()`` (optional) returns one optimizer or a list of them; the
    ``optimizer`` argument, when given, wins.

    **Manual optimisation** (several optimizers, adversarial training): a model with the
    class attribute ``automatic_optimization = False`` is called as
    ``training_step(batch, batch_idx, optimizers)``, with the list of optimizers in the
    order ``configure_optimizers`` returned them, and does its own ``zero_grad``,
    ``backward`` and ``step`` (a GAN steps its discriminator, then its generator). It
    returns a dict of the scalars to log (``{"loss_d": ..., "loss_g": ...}``, detached);
    it needs a ``validation_step`` if ``fit`` gets ``val_data``. A non-finite value is
    caught only after the model's own updates: ``"raise"`` stops there, ``"skip"``
    leaves the batch out of the history.

    **Several processes** (``torchrun``, :mod:`mmbook.distributed`). When
    ``WORLD_SIZE > 1`` (or a process group is initialised), ``fit`` joins the group
    (gloo on the CPU, NCCL on CUDA with ``cuda:LOCAL_RANK``), wraps the model in
    ``DistributedDataParallel`` (its ``training_step``, if any, runs inside the wrapper's
    forward so the gradients are averaged), and gives each of the W processes its
    share of every global batch of ``batch_size`` items
    (:class:`~mmbook.distributed.GlobalBatchSampler`): W processes take the same steps as
    one, up to the order of floating-point additions. A manual-optimisation model is
    not wrapped: its parameters and buffers are copied from rank 0 once, and each
    optimizer averages its parameters' gradients over the processes just before its
    ``step`` (a parameter may go without a gradient, if it does so on every process;
    buffers such as batch-norm statistics stay per process). Every process computes the
    same history (the losses are summed over all processes); rank 0 alone prints and
    writes checkpoints. :meth:`evaluate` shards the data without padding and counts
    every item once, so every process must call it. A training set smaller than W,
    which would leave a process without items, is an error. A ``DataLoader`` whose
    sampler has ``set_epoch`` (a ``DistributedSampler``) is
    used as it is, with ``set_epoch(epoch)`` each epoch.

    Args:
        model: the ``nn.Module`` to train (moved to ``device``).
        optimizer: a ``torch.optim`` optimizer over ``model``'s parameters, or a
            callable ``params -> optimizer`` (e.g. ``functools.partial(torch.optim.SGD,
            lr=0.1)``), or a list of optimizers; default the model's
            ``configure_optimizers()`` if it has one, else Adam with ``lr`` and
            ``weight_decay``.
        loss_fn: default ``torch.nn.functional.cross_entropy`` (unused by a model with
            ``training_step``).
        lr: learning rate of the default optimizer.
        max_epochs: epochs to run at most (a positive int), counted from the first
            epoch: a fit resumed from a checkpoint of epoch 2 with ``max_epochs=4``
            runs epochs 3 and 4.
        batch_size: batch size when ``fit`` receives a dataset (not a DataLoader); under
            DDP the global batch, shared by the processes (a multiple of their number).
        patience: stop when the validation loss has not improved for this many
            epochs and restore the best weights; ``None`` runs every epoch.
        device: where to train; default :func:`mmbook.utils.get_device` (under DDP,
            ``cuda`` means ``cuda:LOCAL_RANK``).
        progress: ``True`` shows a tqdm bar in a terminal or live notebook and one
            line per epoch otherwise (and whenever ``MMBOOK_PROGRESS=0``); ``"bar"``,
            ``"text"`` force one; ``False`` is silent. Only rank 0 shows anything.
        seed: seeds the shuffling and every random draw inside ``fit`` (dropout), without
            touching the global random state, so two fits from the same initial weights
            give the same result on CPU. Process r draws its own random numbers from
            ``seed + r``; the shuffling is shared.
        weight_decay: L2 penalty of the default optimizer.
        on_nonfinite: what a NaN or infinite *training* loss does. ``"raise"`` (default):
            stop before that batch's update with :class:`NonFiniteLossError` naming the
            epoch and batch; the model keeps the weights of the last finite step (or the
            best epoch's, when early stopping kept them) and the history records the
            epoch with ``train_loss`` NaN. ``"skip"``: leave that batch out (no update),
            count it in ``history_["skipped_batches"]`` and go on. Under DDP the
            processes decide together (one non-finite loss anywhere counts).
        accuracy_fn: ``accuracy_fn(logits, target) -> number of correct items`` in a
            batch (NaN: not measured), behind ``train_acc``/``val_acc``/``accuracy``;
            default: ``argmax(logits) == target`` for classification logits, else NaN.
            A contrastive model (whose logits are an ``(N, N)`` matrix) passes
            :func:`mmbook.metrics.in_batch_hits`.
        checkpoint_path: where to write a checkpoint (:meth:`save_checkpoint`) at the end
            of every epoch; ``None``: none.

    Attributes:
        history_: dict of lists ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``,
            ``epoch_time``, ``skipped_batches`` and the hooks' ``train_<key>`` and
            ``val_<key>`` (one entry per epoch run; NaN where not measured).
        best_epoch_: epoch (1-based) with the lowest validation loss, or the last epoch.
        n_epochs_: epochs actually run (including those before a resumed checkpoint).
        fit_time_: seconds spent in ``fit``.
        optimizers_: the optimizers used; ``optimizer_`` is the first.
        weights_: which weights the model holds after ``fit``, in words.

    Raises:
        TypeError: ``model`` not an ``nn.Module``.
        ValueError: an argument outside its domain.

    Examples:
        A model with its own loss, which logs one more scalar:

        >>> class Regressor(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = nn.Linear(3, 1)
        ...     def training_step(self, batch, batch_idx):
        ...         x, y = batch
        ...         mse = nn.functional.mse_loss(self.net(x).squeeze(1), y)
        ...         return {"loss": mse, "rmse": mse.detach().sqrt()}
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(64, 3)
        >>> tr = Trainer(Regressor(), lr=0.05, max_epochs=10, batch_size=8, progress=False,
        ...              device="cpu")
        >>> rmse = tr.fit((x, x.sum(1))).history_["train_rmse"]
        >>> rmse[-1] < 0.1 * rmse[0]
        True

        Two optimizers, manual optimisation (a tiny GAN):

        >>> class TinyGAN(nn.Module):
        ...     automatic_optimization = False  # training_step makes the updates
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.G, self.D = nn.Linear(2, 2), nn.Linear(2, 1)
        ...     def configure_optimizers(self):
        ...         return (torch.optim.Adam(self.G.parameters(), lr=1e-2),
        ...                 torch.optim.Adam(self.D.parameters(), lr=1e-2))
        ...     def training_step(self, batch, batch_idx, optimizers):
        ...         opt_g, opt_d = optimizers
        ...         (real,) = batch
        ...         bce = nn.functional.binary_cross_entropy_with_logits
        ...         fake = self.G(torch.randn_like(real))
        ...         yes, no = real.new_ones(len(real), 1), real.new_zeros(len(real), 1)
        ...         loss_d = bce(self.D(real), yes) + bce(self.D(fake.detach()), no)
        ...         opt_d.zero_grad(); loss_d.backward(); opt_d.step()
        ...         loss_g = bce(self.D(fake), yes)  # G wants D to answer "real"
        ...         opt_g.zero_grad(); loss_g.backward(); opt_g.step()
        ...         return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
        >>> real = torch.randn(128, 2) + 3
        >>> gan = Trainer(TinyGAN(), max_epochs=2, batch_size=32, progress=False,
        ...               device="cpu").fit((real,))
        >>> [k for k in gan.history_ if k.startswith("train_loss_")], len(gan.optimizers_)
        (['train_loss_d', 'train_loss_g'], 2)

        Resuming: two epochs, a checkpoint, two more equal four epochs straight.

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
        >>> data = (x, x.sum(1))
        >>> def model():
        ...     _ = torch.manual_seed(1)
        ...     return Regressor()
        >>> straight = Trainer(model(), max_epochs=4, progress=False, device="cpu").fit(data)
        >>> first = Trainer(model(), max_epochs=2, progress=False, device="cpu").fit(data)
        >>> first.save_checkpoint(path)
        >>> resumed = Trainer(model(), max_epochs=4, progress=False, device="cpu")
        >>> resumed.fit(data, resume_from=path).history_["train_loss"] == \\
        ...     straight.history_["train_loss"]
        True
    """

    def __init__(self, model: nn.Module, optimizer=None, loss_fn: Callable | None = None, *,
                 lr: float = 1e-3, max_epochs: int = 10, batch_size: int = 64,
                 patience: int | None = None, device=None, progress=True, seed: int = 0,
                 weight_decay: float = 0.0, on_nonfinite: str = "raise",
                 accuracy_fn: Callable | None = None, checkpoint_path=None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.lr = check_positive(lr, "lr")
        self.max_epochs = check_positive_int(max_epochs, "max_epochs")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.patience = None if patience is None else check_positive_int(patience, "patience")
        self.device, self.progress = device, progress
        self.seed = seed
        self.weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
        self.on_nonfinite = check_choice(on_nonfinite, ("raise", "skip"), "on_nonfinite")
        self.accuracy_fn = accuracy_fn
        self.checkpoint_path = checkpoint_path

    # -- data
    @staticmethod
    def _dataset(data, name: str) -> tuple[Dataset, DataLoader | None]:
        """``(dataset, the DataLoader if one was given)``, checked: not empty."""
        loader = data if isinstance(data, DataLoader) else None
        dataset = data.dataset if loader is not None else data
        if isinstance(data, (tuple, list)) and data and all(torch.is_tensor(d) for d in data):
            sizes = {len(d) for d in data}
            if len(sizes) != 1:
                raise ValueError(f"{name}: the tensors (*inputs, target) must share their "
                                 f"first dimension N, got shapes "
                                 f"{[tuple(d.shape) for d in data]}")
            dataset = TensorDataset(*data)
        if not isinstance(dataset, Dataset):
            raise TypeError(f"{name} must be a Dataset, a DataLoader or a tuple of tensors "
                            f"(*inputs, target), got {type(data).__name__}")
        if hasattr(dataset, "__len__") and len(dataset) == 0:
            raise ValueError(f"{name} is empty (0 items): nothing to train or evaluate on")
        return dataset, loader

    def _loader(self, data, name: str = "data") -> DataLoader:
        """All of ``data`` in order, in this process (predictions)."""
        dataset, loader = self._dataset(data, name)
        return loader or DataLoader(dataset, batch_size=self.batch_size, shuffle=False)

    def _train_loader(self, data, generator) -> DataLoader:
        dataset, loader = self._dataset(data, "train_data")
        W = distributed.world_size()
        if W == 1:
            return loader or DataLoader(dataset, batch_size=self.batch_size, shuffle=True,
                                        generator=generator)
        if loader is not None and hasattr(loader.sampler, "set_epoch"):
            return self._check_shard(loader, dataset)  # already sharded
        n = len(dataset)
        if n < W:
            raise ValueError(f"train_data has {n} item{'s' * (n != 1)} for {W} processes: "
                             f"the shard of rank {n} would hold 0 items. Give every "
                             f"process at least one item (use at least {W} items, or "
                             f"fewer processes: torchrun --nproc_per_node)")
        batch_size, shuffle, collate = self.batch_size, True, None
        if loader is not None:
            if loader.batch_size is None:
                raise ValueError("under DDP, train_data must be a Dataset, a DataLoader with "
                                 "a batch_size, or one whose sampler is a DistributedSampler")
            batch_size, collate = loader.batch_size, loader.collate_fn
            shuffle = not isinstance(loader.sampler, SequentialSampler)
        order = (RandomSampler(dataset, generator=generator) if shuffle else
                 SequentialSampler(dataset))
        sampler = distributed.GlobalBatchSampler(order, batch_size)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                          generator=generator)

    @staticmethod
    def _check_shard(loader: DataLoader, dataset) -> DataLoader:
        if len(loader) == 0:
            raise ValueError(f"train_data: the shard of rank {distributed.rank()} is empty "
                             f"({len(dataset)} items for {distributed.world_size()} "
                             f"processes)")
        return loader

    def _eval_loader(self, data, name: str) -> DataLoader:
        """Every item once: process r takes items r, r + W, ... (no padding)."""
        dataset, loader = self._dataset(data, name)
        W = distributed.world_size()
        if W == 1:
            return loader or DataLoader(dataset, batch_size=self.batch_size, shuffle=False)
        shard = Subset(dataset, range(distributed.rank(), len(dataset), W))
        batch_size = (loader.batch_size if loader is not None and loader.batch_size
                      else self.batch_size)
        return DataLoader(shard, batch_size=batch_size,
                          collate_fn=None if loader is None else loader.collate_fn)

    # -- set-up
    def _ready(self) -> None:
        """Pick the device (joining torchrun's process group), move the model there,
        choose the loss (no optimizer yet)."""
        self.device_ = distributed.init(self.device)
        self.model.to(self.device_)
        self.loss_fn_ = self.loss_fn or nn.functional.cross_entropy
        self.accuracy_fn_ = self.accuracy_fn or _accuracy_hits

    def _make_optimizers(self) -> list:
        opt, model = self.optimizer, self.model
        if opt is None and _has_hook(model, "configure_optimizers"):
            opt = model.configure_optimizers()
        elif opt is None:
            opt = torch.optim.Adam(model.parameters(), lr=self.lr,
                                   weight_decay=self.weight_decay)
        elif not hasattr(opt, "step") and callable(opt):
            opt = opt(model.parameters())
        opts = list(opt) if isinstance(opt, (list, tuple)) else [opt]
        bad = [type(o).__name__ for o in opts if not hasattr(o, "step")]
        if not opts or bad:
            raise TypeError(f"optimizer (or configure_optimizers) must give an optimizer or "
                            f"a list of them, got {bad or 'an empty list'}")
        return opts

    def _setup(self, has_val: bool, resume_from) -> None:
        if self.patience is not None and not has_val:
            raise ValueError("patience watches the validation loss: pass val_data to fit")
        if has_val and _is_manual(self.model) and not _has_hook(self.model, "validation_step"):
            raise ValueError("val_data: a model with automatic_optimization = False must "
                             "define validation_step (its training_step makes updates)")
        self._ready()
        self.history_ = {k: [] for k in (*_COLUMNS, "epoch_time", "skipped_batches")}
        self._start = dict(epoch=0, best_epoch=0, best_loss=math.inf, best_state=None,
                           waited=0, rng=None)
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        self.optimizers_ = self._make_optimizers()
        self.optimizer_ = self.optimizers_[0]
        resume, self._resume = getattr(self, "_resume", None), None
        if resume is not None:
            self._restore(resume)
        self._net, self._hooks = self._wrap(), []
        if distributed.is_distributed() and _is_manual(self.model):
            self._hooks = [o.register_step_pre_hook(_average_before_step)
                           for o in self.optimizers_]

    def _restore(self, ckpt: dict) -> None:
        """Optimizer states, history, epoch and early-stopping state of a checkpoint."""
        if len(ckpt["optimizers"]) != len(self.optimizers_):
            raise ValueError(f"the checkpoint holds {len(ckpt['optimizers'])} optimizer "
                             f"states, this model trains with {len(self.optimizers_)}")
        for opt, state in zip(self.optimizers_, ckpt["optimizers"]):
            opt.load_state_dict(state)
        self.history_ = {k: list(v) for k, v in ckpt["history"].items()}
        self._start = {k: ckpt[k] for k in self._start}

    def _wrap(self) -> nn.Module:
        """The module the training steps call: DDP's wrapper when distributed."""
        module = _TrainingStep(self.model) if _has_hook(self.model, "training_step") \
            else self.model
        if not distributed.is_distributed():
            return module
        if _is_manual(self.model):  # the model steps itself: gradients averaged in step
            if any(not hasattr(o, "register_step_pre_hook") for o in self.optimizers_):
                raise TypeError("under DDP, manual optimisation needs torch.optim optimizers "
                                "(their step pre-hook averages the gradients)")
            distributed.broadcast_module(self.model)
            return self.model
        ids = [self.device_.index] if self.device_.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def _unwrap(self) -> None:
        for handle in getattr(self, "_hooks", []):
            handle.remove()
        self._net, self._hooks = None, []

    # -- one step
    def _nonfinite(self, values, epoch: int, batch: int, n_batches) -> bool:
        """Handle a non-finite training loss: True to skip the batch; raise otherwise."""
        if self.on_nonfinite == "skip":
            self._skipped += 1
            return True
        values = [float(torch.as_tensor(v).detach()) for v in values]
        bad = [v for v in values if not math.isfinite(v)]
        what = f"({bad[0]})" if bad else "(on another process)"
        where = f"epoch {epoch}, batch {batch + 1}" + (f" of {n_batches}" if n_batches else "")
        self._failure = f"non-finite training loss {what} at {where}"
        raise NonFiniteLossError(f"{self._failure}; no update was made from it. Check the "
                                 f"inputs for NaN/inf (mmbook.utils.check_finite), lower lr, "
                                 f"or pass on_nonfinite='skip'")

    def _skip(self, values, epoch: int, batch: int, n_batches) -> bool:
        """True to leave the batch out; raises on a non-finite value with ``"raise"``."""
        finite = all(bool(torch.isfinite(torch.as_tensor(v).detach()).all()) for v in values)
        if distributed.all_true(finite, self.device_):
            return False
        return self._nonfinite(values, epoch, batch, n_batches)

    def _optimize(self, loss: torch.Tensor) -> None:
        for opt in self.optimizers_:
            opt.zero_grad()
        loss.backward()  # under DDP the gradients are averaged over the processes here
        for opt in self.optimizers_:
            opt.step()

    def _train_step(self, batch, b: int, epoch: int, n_batches):
        """One update: ``(sums over the batch's items, its size)``, or None when skipped."""
        model = self.model
        if _is_manual(model):
            logs = _as_logs(model.training_step(batch, b, self.optimizers_),
                            "training_step", need_loss=False)
            if self._skip(list(logs.values()), epoch, b, n_batches):
                return None
            return _sums(logs, _batch_size(batch)), _batch_size(batch)
        if _has_hook(model, "training_step"):
            logs = _as_logs(self._net(batch, b), "training_step", need_loss=True)
            if self._skip([logs["loss"]], epoch, b, n_batches):
                return None
            self._optimize(logs["loss"])
            return _sums(logs, _batch_size(batch)), _batch_size(batch)
        *inputs, target = batch
        logits = self._net(*inputs)
        loss = self.loss_fn_(logits, target)
        if self._skip([loss], epoch, b, n_batches):
            return None
        self._optimize(loss)
        return self._default_sums(loss, logits, target), len(target)

    def _default_sums(self, loss, logits, target) -> dict:
        return {"loss": loss.item() * len(target),
                "acc": self.accuracy_fn_(logits.detach(), target)}

    def _eval_step(self, batch, b: int):
        model = self.model
        if _has_hook(model, "validation_step"):
            logs = _as_logs(model.validation_step(batch, b), "validation_step", False)
        elif _has_hook(model, "training_step"):
            logs = _as_logs(model.training_step(batch, b), "training_step", True)
        else:
            *inputs, target = batch
            logits = model(*inputs)
            return self._default_sums(self.loss_fn_(logits, target), logits, target), \
                len(target)
        return _sums(logs, _batch_size(batch)), _batch_size(batch)

    # -- one pass
    def _run_epoch(self, loader, train: bool, epoch: int = 0) -> dict:
        """Mean of each logged scalar over the epoch's items, over every process."""
        self.model.train(train)
        sums, n = {}, 0
        n_batches = len(loader) if hasattr(loader, "__len__") else None
        with torch.set_grad_enabled(train):
            for b, batch in enumerate(loader):
                batch = _move(batch, self.device_)
                step = (self._train_step(batch, b, epoch, n_batches) if train else
                        self._eval_step(batch, b))
                if step is None:
                    continue
                for key, value in step[0].items():
                    sums[key] = sums.get(key, 0.0) + value
                n += step[1]
        sums, n = distributed.all_gather_sums(sums, n)
        return {k: v / n for k, v in sums.items()} if n else {}  # {}: every batch skipped

    # -- public API
    def fit(self, train_data, val_data=None, *, resume_from=None) -> Trainer:
        """Train for up to ``max_epochs`` epochs; return ``self``.

        Args:
            train_data: a Dataset, a DataLoader or a tuple of tensors ``(*inputs, target)``.
            val_data: the same, optional (needed by ``patience``).
            resume_from: a checkpoint file (:meth:`save_checkpoint`): the model, the
                optimizers, the history, the epoch and the random state are restored
                (the model before DDP wraps it), and training goes on to ``max_epochs``.

        Raises:
            ValueError: empty data (or fewer items than processes), or ``patience``
                without ``val_data``.
            NonFiniteLossError: a NaN/inf training loss with ``on_nonfinite="raise"``.
        """
        start = time.perf_counter()
        self._setup(val_data is not None, resume_from)
        try:
            devices = [self.device_] if self.device_.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed + distributed.rank())
                generator = torch.Generator().manual_seed(self.seed)
                self._restore_rng(generator)
                train_loader = self._train_loader(train_data, generator)
                val_loader = None if val_data is None else self._eval_loader(val_data,
                                                                              "val_data")
                self._epochs(train_loader, val_loader, generator)
        finally:
            self._unwrap()
            self.fit_time_ = time.perf_counter() - start
        return self

    def _epochs(self, train_loader, val_loader, generator) -> None:
        mode = _progress_mode(self.progress) if distributed.rank() == 0 else "off"
        bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            bar = tqdm(total=self.max_epochs, initial=self._start["epoch"], desc="epochs",
                       leave=True)
        s = self._start
        self._best, self._failure = (s["best_loss"], s["best_state"]), None
        self.best_epoch_, self.n_epochs_, self._waited = s["best_epoch"], s["epoch"], s["waited"]
        try:
            for epoch in range(s["epoch"] + 1, self.max_epochs + 1):
                row = self._epoch(train_loader, val_loader, epoch)
                self._rng_state = self._capture_rng(generator)
                stop = self._watch(row, epoch, val_loader is not None)
                if self.checkpoint_path is not None:
                    self.save_checkpoint(self.checkpoint_path)
                self._report(mode, bar, epoch, row, stop or epoch == self.max_epochs,
                             val_loader is not None)
                if stop:
                    break
        finally:
            if bar is not None:
                bar.close()
            self._finish(mode, failed=getattr(self, "_failure", None))

    def _epoch(self, train_loader, val_loader, epoch: int) -> dict:
        """Train one epoch, validate, record the row; return it."""
        self.n_epochs_ = epoch
        t0 = time.perf_counter()
        self._skipped = 0
        for sampler in (train_loader.sampler, train_loader.batch_sampler):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch - 1)  # a DistributedSampler's permutation
        row = dict.fromkeys(_COLUMNS, math.nan)
        try:
            row.update({f"train_{k}": v for k, v in
                        self._run_epoch(train_loader, True, epoch).items()})
        except NonFiniteLossError:
            self._record({**row, "epoch_time": time.perf_counter() - t0})
            raise
        if val_loader is not None:
            val = self._run_epoch(val_loader, False)
            if self.patience is not None and "loss" not in val:
                raise ValueError("patience watches the validation loss, but validation gave "
                                 f"none: validation_step must return 'loss' (got {sorted(val)})")
            row.update({f"val_{k}": v for k, v in val.items()})
        row["epoch_time"] = time.perf_counter() - t0
        self._record(row)
        return row

    def _watch(self, row: dict, epoch: int, has_val: bool) -> bool:
        """Keep the best epoch (and its weights with ``patience``); True to stop early."""
        watched = row["val_loss"] if has_val else row["train_loss"]
        if watched < self._best[0]:
            self.best_epoch_, self._waited = epoch, 0
            state = (copy.deepcopy(self.model.state_dict())
                     if self.patience is not None else None)
            self._best = (watched, state)
        else:
            self._waited += 1
        return self.patience is not None and self._waited >= self.patience

    def _record(self, row: dict) -> None:
        row = {**row, "skipped_batches": self._skipped}
        done = len(self.history_["epoch_time"])
        for key in [*self.history_, *(k for k in row if k not in self.history_)]:
            self.history_.setdefault(key, [math.nan] * done).append(row.get(key, math.nan))

    def _finish(self, mode: str, failed) -> None:
        """Restore the best weights when early stopping kept them; say which the model holds."""
        self._failure = None
        state = self._best[1]
        if state is not None and (failed or self.best_epoch_ != self.n_epochs_):
            self.model.load_state_dict(state)
            self.weights_ = f"restored epoch {self.best_epoch_} (lowest validation loss)"
        elif failed:
            self.weights_ = ("the last finite update (no epoch had a finite loss to restore)"
                             if self.best_epoch_ == 0 else
                             f"the last finite update of epoch {self.n_epochs_} (not restored)")
        else:
            self.weights_ = f"epoch {self.n_epochs_} (the last)"
        skipped = sum(self.history_["skipped_batches"])
        if mode == "text" and (failed or skipped or self.n_epochs_ < self.max_epochs):
            what = (f"stopped: {failed}" if failed else
                    f"early stop after epoch {self.n_epochs_}"
                    if self.n_epochs_ < self.max_epochs else f"{self.n_epochs_} epochs")
            extra = f"; skipped {skipped} non-finite batches" if skipped else ""
            print(f"{what}{extra}; the model holds {self.weights_}")

    def _report(self, mode: str, bar, epoch: int, row: dict, last: bool, has_val: bool) -> None:
        if mode == "bar":
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()
                             if k != "epoch_time" and not math.isnan(v)})
        elif mode == "text":
            every = max(1, math.ceil(self.max_epochs / 10))
            if epoch % every == 0 or epoch == 1 or last:
                print(_fmt_epoch(epoch, self.max_epochs, row, has_val), flush=True)

    # -- checkpoints
    def _capture_rng(self, generator) -> dict:
        cuda = self.device_.type == "cuda"
        return {"torch": torch.get_rng_state(), "shuffle": generator.get_state(),
                "cuda": torch.cuda.get_rng_state(self.device_) if cuda else None}

    def _restore_rng(self, generator) -> None:
        """Continue a checkpoint's random streams (the same number of processes needed
        for this process's own stream; the shared shuffling always continues)."""
        states = self._start["rng"]
        if not states:
            return
        generator.set_state(states[0]["shuffle"])
        if len(states) == distributed.world_size():
            mine = states[distributed.rank()]
            torch.set_rng_state(mine["torch"])
            if mine["cuda"] is not None and self.device_.type == "cuda":
                torch.cuda.set_rng_state(mine["cuda"], self.device_)

    def save_checkpoint(self, path) -> None:
        """Write what :meth:`fit` needs to resume: weights, optimizer states, epoch,
        history, early-stopping state and every process's random state.

        Rank 0 writes the file, atomically, between two barriers; every process must
        call it (the random states are gathered).

        Raises:
            RuntimeError: the Trainer has not been fitted.
        """
        if not hasattr(self, "n_epochs_"):
            raise RuntimeError("save_checkpoint needs a fitted Trainer: call fit first")
        states = [None] * distributed.world_size()
        mine = getattr(self, "_rng_state", None)
        if distributed.is_distributed():
            torch.distributed.all_gather_object(states, mine)
        else:
            states = [mine]
        distributed.save({
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizers": [opt.state_dict() for opt in self.optimizers_],
            "epoch": self.n_epochs_, "history": self.history_,
            "best_epoch": self.best_epoch_, "best_loss": self._best[0],
            "best_state": self._best[1], "waited": self._waited,
            "rng": states if all(s is not None for s in states) else None,
            "world_size": distributed.world_size()}, path)

    def load_checkpoint(self, path) -> Trainer:
        """Load a checkpoint of :meth:`save_checkpoint`: the weights now (before any DDP
        wrapping), the rest (optimizers, epoch, history, random state) at the next
        :meth:`fit`, which continues from it. Every process must call it.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: a file that is not such a checkpoint.
        """
        self._check_ready()
        distributed.barrier()  # rank 0 may have just written it
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        missing = {"model", "optimizers", "epoch", "history", "rng"} - set(
            ckpt if isinstance(ckpt, dict) else ())
        if missing:
            raise ValueError(f"{path} is not a Trainer checkpoint (missing {sorted(missing)});"
                             f" a file of weights alone goes to model.load_state_dict")
        self.model.load_state_dict(ckpt["model"])
        distributed.barrier()  # every process has read it before anyone overwrites it
        self._resume = ckpt
        return self

    # -- evaluation
    def _check_ready(self) -> None:
        if not hasattr(self, "device_"):
            self._ready()  # evaluating an untrained model is allowed (a baseline)

    def evaluate(self, data) -> dict:
        """Mean loss and accuracy on ``data``: ``{"loss": ..., "accuracy": ...}``.

        A model with ``validation_step`` gets the mean of each of its metrics instead
        (``training_step``'s scalars without it). Under DDP the processes share the items
        and add up their sums, so every item counts once: call it on every process.
        """
        self._check_ready()
        logs = self._run_epoch(self._eval_loader(data, "data"), train=False)
        if _has_hook(self.model, "validation_step") or _has_hook(self.model, "training_step"):
            return logs
        return {"loss": logs.get("loss", math.nan), "accuracy": logs.get("acc", math.nan)}

    def results_row(self, test_data, **columns) -> dict:
        """One row of a results table for the fitted model.

        Args:
            test_data: what :meth:`evaluate` takes.
            **columns: leading columns (e.g. ``model="CNN"``).

        Returns:
            ``{**columns, "parameters", "epochs", "best epoch", "test accuracy",
            "fit time (s)"}``: trainable parameters (:func:`count_parameters`), epochs
            run, the best epoch, accuracy on ``test_data`` and the seconds ``fit`` took.

        Examples:
            >>> x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
            >>> trainer = Trainer(nn.Linear(3, 2), max_epochs=2, progress=False,
            ...                   device="cpu").fit((x, y))
            >>> row = trainer.results_row((x, y), model="linear")
            >>> list(row)
            ['model', 'parameters', 'epochs', 'best epoch', 'test accuracy', 'fit time (s)']
            >>> row["parameters"], row["epochs"]
            (8, 2)
        """
        if not hasattr(self, "fit_time_"):
            raise RuntimeError("results_row needs a fitted Trainer: call fit first")
        metrics = self.evaluate(test_data)
        return {**columns, "parameters": count_parameters(self.model, trainable_only=True),
                "epochs": self.n_epochs_, "best epoch": self.best_epoch_,
                "test accuracy": metrics.get("accuracy", metrics.get("acc", math.nan)),
                "fit time (s)": self.fit_time_}

    @torch.no_grad()
    def predict(self, data) -> torch.Tensor:
        """The model's outputs (logits) for every item of ``data``, on the CPU.

        The batches hold ``(*inputs, target)``; the target is ignored. Under DDP each
        process predicts every item.
        """
        self._check_ready()
        self.model.eval()
        outs = []
        for batch in self._loader(data):
            *inputs, _ = _move(batch, self.device_)
            outs.append(self.model(*inputs).cpu())
        return torch.cat(outs)
