"""Trainer checks run twice by tests/test_distributed.py: as one process and under torchrun.

``python tests/ddp_checks.py OUT`` trains three kinds of model (plain, ``training_step``,
two optimizers with manual optimisation), evaluates on an odd-sized set, and resumes
from a checkpoint; rank 0 saves what each gave to OUT. The test compares the files.
"""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mmbook import distributed
from mmbook.train import Trainer


def blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 2, generator=g) + torch.tensor([[0.0, 2], [2, 0], [-2, -2]])[y]
    return x, y


def mlp(dropout=0.0):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 3))


class StepModel(nn.Module):
    """An MLP (default: :func:`mlp`) with its loss in training_step (automatic optimisation)."""

    def __init__(self, net=None):
        super().__init__()
        self.net = mlp() if net is None else net

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        return {"loss": F.cross_entropy(logits, y),
                "acc": (logits.argmax(1) == y).float().mean()}


class TwoOptimizers(nn.Module):
    """Two heads, each with its optimizer and its loss, stepped by the model itself."""

    automatic_optimization = False

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(2, 3), nn.Linear(2, 3)

    def configure_optimizers(self):
        return [torch.optim.SGD(self.a.parameters(), lr=0.1),
                torch.optim.Adam(self.b.parameters(), lr=0.01)]

    def training_step(self, batch, batch_idx, optimizers):
        x, y = batch
        opt_a, opt_b = optimizers
        loss_a = F.cross_entropy(self.a(x), y)
        opt_a.zero_grad()
        loss_a.backward()
        opt_a.step()
        loss_b = F.cross_entropy(self.b(x) + self.a(x).detach(), y)
        opt_b.zero_grad()
        loss_b.backward()
        opt_b.step()
        return {"loss_a": loss_a.detach(), "loss_b": loss_b.detach()}

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.b(x) + self.a(x)
        return {"loss": F.cross_entropy(logits, y), "acc": (logits.argmax(1) == y).float().mean()}


def _result(trainer: Trainer, test) -> dict:
    history = {k: v for k, v in trainer.history_.items() if k != "epoch_time"}
    state = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}
    return {"history": history, "state": state, "eval": trainer.evaluate(test)}


def main(out: Path) -> None:
    data, val = blobs(72, 0), blobs(33, 1)  # 9 global batches of 8; 33: an odd number
    results = {}
    for name, make in (("default", mlp), ("hook", StepModel), ("manual", TwoOptimizers)):
        trainer = Trainer(make(), max_epochs=3, batch_size=8, lr=0.05, device="cpu",
                          progress="text" if name == "default" else False)
        results[name] = _result(trainer.fit(data, val), val)
    ckpt = out.with_suffix(".ckpt")
    straight = Trainer(mlp(0.3), max_epochs=4, batch_size=8, device="cpu", progress=False)
    first = Trainer(mlp(0.3), max_epochs=2, batch_size=8, device="cpu", progress=False,
                    checkpoint_path=ckpt)
    first.fit(data)
    resumed = Trainer(mlp(0.3), max_epochs=4, batch_size=8, device="cpu", progress=False)
    results["straight"] = _result(straight.fit(data), val)
    results["resumed"] = _result(resumed.fit(data, resume_from=ckpt), val)
    results["world_size"] = distributed.world_size()
    distributed.save(results, out)
    distributed.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
