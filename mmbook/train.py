"""Training: a small ``Trainer`` (chapter 5's from-scratch losses and optimizers are in
:mod:`mmbook.optim`).

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
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .utils import (
    check_choice,
    check_positive,
    check_positive_int,
    count_parameters,  # re-exported: one count_parameters, in mmbook.utils
    environment,
    get_device,
)

__all__ = ["count_parameters", "Trainer", "NonFiniteLossError"]


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
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        # a loss is always shown (NaN included: it is news); accuracies only when measured
        if key in row and (key in losses or not math.isnan(row[key])):
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


class NonFiniteLossError(FloatingPointError):
    """A training loss was NaN or infinite (see :class:`Trainer`'s ``on_nonfinite``)."""


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
        max_epochs: epochs to run at most (a positive int).
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
        on_nonfinite: what a NaN or infinite *training* loss does. ``"raise"`` (default):
            stop before that batch's update with :class:`NonFiniteLossError` naming the
            epoch and batch; the model keeps the weights of the last finite step (or the
            best epoch's, when early stopping kept them) and the history records the
            epoch with ``train_loss`` NaN. ``"skip"``: leave that batch out (no update),
            count it in ``history_["skipped_batches"]`` and go on.
        accuracy_fn: ``accuracy_fn(logits, target) -> number of correct items`` in a
            batch (NaN: not measured), behind ``train_acc``/``val_acc``/``accuracy``;
            default: ``argmax(logits) == target`` for classification logits, else NaN.
            A contrastive model (whose logits are an ``(N, N)`` matrix) passes
            :func:`mmbook.metrics.in_batch_hits`.

    Attributes:
        history_: dict of lists ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``,
            ``epoch_time``, ``skipped_batches`` (one entry per epoch run; NaN where not
            measured).
        best_epoch_: epoch (1-based) with the lowest validation loss, or the last epoch.
        n_epochs_: epochs actually run.
        fit_time_: seconds spent in ``fit``.
        optimizer_: the optimizer used.
        weights_: which weights the model holds after ``fit``, in words.
    """

    def __init__(self, model: nn.Module, optimizer=None, loss_fn: Callable | None = None, *,
                 lr: float = 1e-3, max_epochs: int = 10, batch_size: int = 64,
                 patience: int | None = None, device=None, progress=True, seed: int = 0,
                 weight_decay: float = 0.0, on_nonfinite: str = "raise",
                 accuracy_fn: Callable | None = None):
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

    # -- data
    def _loader(self, data, shuffle: bool, generator=None, name: str = "data") -> DataLoader:
        dataset = data.dataset if isinstance(data, DataLoader) else data
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
        if isinstance(data, DataLoader):
            return data
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle,
                          generator=generator)

    def _ready(self) -> None:
        """Pick the device, move the model there, choose the loss (no optimizer yet)."""
        self.device_ = torch.device(self.device) if self.device is not None else get_device()
        self.model.to(self.device_)
        self.loss_fn_ = self.loss_fn or nn.functional.cross_entropy
        self.accuracy_fn_ = self.accuracy_fn or _accuracy_hits

    def _setup(self, has_val: bool) -> None:
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
    def _nonfinite(self, loss, epoch: int, batch: int, n_batches) -> bool:
        """Handle a non-finite training loss: True to skip the batch; raise otherwise."""
        if self.on_nonfinite == "skip":
            self._skipped += 1
            return True
        where = f"epoch {epoch}, batch {batch + 1}" + (f" of {n_batches}" if n_batches else "")
        self._failure = f"non-finite training loss ({loss.item()}) at {where}"
        raise NonFiniteLossError(f"{self._failure}; no update was made from it. Check the "
                                 f"inputs for NaN/inf (mmbook.utils.check_finite), lower lr, "
                                 f"or pass on_nonfinite='skip'")

    def _run_epoch(self, loader, train: bool, epoch: int = 0) -> tuple[float, float]:
        self.model.train(train)
        total_loss, hits, n = 0.0, 0.0, 0
        n_batches = len(loader) if hasattr(loader, "__len__") else None
        with torch.set_grad_enabled(train):
            for b, batch in enumerate(loader):
                *inputs, target = _move(batch, self.device_)
                logits = self.model(*inputs)
                loss = self.loss_fn_(logits, target)
                if train and not bool(torch.isfinite(loss.detach()).all()):
                    if self._nonfinite(loss, epoch, b, n_batches):
                        continue
                if train:
                    self.optimizer_.zero_grad()
                    loss.backward()
                    self.optimizer_.step()
                size = len(target)
                total_loss += loss.item() * size
                hits += self.accuracy_fn_(logits.detach(), target)
                n += size
        if n == 0:
            return math.nan, math.nan  # every batch skipped
        return total_loss / n, hits / n

    # -- public API
    def fit(self, train_data, val_data=None) -> Trainer:
        """Train for up to ``max_epochs`` epochs; return ``self``.

        Raises:
            ValueError: empty data, or ``patience`` without ``val_data``.
            NonFiniteLossError: a NaN/inf training loss with ``on_nonfinite="raise"``.
        """
        start = time.perf_counter()
        self._setup(val_data is not None)
        self.history_ = {k: [] for k in ("train_loss", "train_acc", "val_loss", "val_acc",
                                         "epoch_time", "skipped_batches")}
        devices = [self.device_] if self.device_.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed)
                generator = torch.Generator().manual_seed(self.seed)
                train_loader = self._loader(train_data, shuffle=True, generator=generator,
                                            name="train_data")
                val_loader = None if val_data is None else self._loader(
                    val_data, shuffle=False, name="val_data")
                self._epochs(train_loader, val_loader)
        finally:
            self.fit_time_ = time.perf_counter() - start
        return self

    def _epochs(self, train_loader, val_loader) -> None:
        mode = _progress_mode(self.progress)
        bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            bar = tqdm(total=self.max_epochs, desc="epochs", leave=True)
        self._best, self._failure = (math.inf, None), None  # (loss, state_dict copy)
        self.best_epoch_, self.n_epochs_, waited = 0, 0, 0
        try:
            for epoch in range(1, self.max_epochs + 1):
                self.n_epochs_ = epoch
                t0 = time.perf_counter()
                self._skipped = 0
                try:
                    train_loss, train_acc = self._run_epoch(train_loader, True, epoch)
                except NonFiniteLossError:
                    self._record(dict(train_loss=math.nan, train_acc=math.nan,
                                      val_loss=math.nan, val_acc=math.nan,
                                      epoch_time=time.perf_counter() - t0))
                    raise
                val_loss, val_acc = (math.nan, math.nan) if val_loader is None else \
                    self._run_epoch(val_loader, train=False)
                row = dict(train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                           val_acc=val_acc, epoch_time=time.perf_counter() - t0)
                self._record(row)
                watched = train_loss if val_loader is None else val_loss
                if watched < self._best[0]:
                    self.best_epoch_, waited = epoch, 0
                    state = (copy.deepcopy(self.model.state_dict())
                             if self.patience is not None else None)
                    self._best = (watched, state)
                else:
                    waited += 1
                stop = self.patience is not None and waited >= self.patience
                self._report(mode, bar, epoch, row, stop or epoch == self.max_epochs,
                             val_loader is not None)
                if stop:
                    break
        finally:
            if bar is not None:
                bar.close()
            self._finish(mode, failed=getattr(self, "_failure", None))

    def _record(self, row: dict) -> None:
        for k, v in row.items():
            self.history_[k].append(v)
        self.history_["skipped_batches"].append(self._skipped)

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

    def _check_ready(self) -> None:
        if not hasattr(self, "device_"):
            self._ready()  # evaluating an untrained model is allowed (a baseline)

    def evaluate(self, data) -> dict:
        """Mean loss and accuracy on ``data``: ``{"loss": ..., "accuracy": ...}``."""
        self._check_ready()
        loss, acc = self._run_epoch(self._loader(data, shuffle=False), train=False)
        return {"loss": loss, "accuracy": acc}

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
        return {**columns, "parameters": count_parameters(self.model, trainable_only=True),
                "epochs": self.n_epochs_, "best epoch": self.best_epoch_,
                "test accuracy": self.evaluate(test_data)["accuracy"],
                "fit time (s)": self.fit_time_}

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
