"""Losses and optimizer steps against torch; the Trainer overfits, is deterministic, stops early."""

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from ddp_checks import StepModel, TwoOptimizers  # a sibling file: the DDP test's models
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mmbook import train as T
from mmbook.optim import (
    ScratchAdam,
    ScratchSGD,
    adam_step,
    cross_entropy,
    mse_loss,
    sgd_step,
)
from mmbook.train import Trainer, count_parameters


# ----------------------------------------------------------------------------- losses
def test_mse_matches_torch():
    torch.manual_seed(0)
    a, b = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3)
    ours, ref = mse_loss(a, b), F.mse_loss(a, b)
    torch.testing.assert_close(ours, ref)
    g_ours, = torch.autograd.grad(ours, a)
    g_ref, = torch.autograd.grad(ref, a)
    torch.testing.assert_close(g_ours, g_ref)
    with pytest.raises(ValueError, match="target"):
        mse_loss(a, b[:2])


def test_cross_entropy_matches_torch():
    torch.manual_seed(0)
    z, y = torch.randn(6, 5, requires_grad=True), torch.randint(0, 5, (6,))
    torch.testing.assert_close(cross_entropy(z, y), F.cross_entropy(z, y))
    g_ours, = torch.autograd.grad(cross_entropy(z, y), z)
    g_ref, = torch.autograd.grad(F.cross_entropy(z, y), z)
    torch.testing.assert_close(g_ours, g_ref)
    p = torch.softmax(torch.randn(6, 5), 1)
    torch.testing.assert_close(cross_entropy(z, p), F.cross_entropy(z, p))
    big = torch.tensor([[1000.0, 0.0], [0.0, -1000.0]])
    torch.testing.assert_close(cross_entropy(big, torch.tensor([1, 1])),
                               F.cross_entropy(big, torch.tensor([1, 1])))
    with pytest.raises(ValueError, match="target"):
        cross_entropy(z, y[:3])
    with pytest.raises(ValueError, match="logits"):
        cross_entropy(z[0], y[:1])


# ----------------------------------------------------------------------------- optimizers
def _problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    return model, x, y


def _run(model, opt, x, y, steps=6):
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_scratch_sgd_matches_torch(momentum):
    model, x, y = _problem()
    twin = _problem()[0]
    ours = _run(model, ScratchSGD(model.parameters(), lr=0.1, momentum=momentum), x, y)
    ref = _run(twin, torch.optim.SGD(twin.parameters(), lr=0.1, momentum=momentum), x, y)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)
    assert not torch.equal(ours[0], _problem()[0][0].weight)  # it did move


def test_scratch_adam_matches_torch():
    model, x, y = _problem()
    twin = _problem()[0]
    ours = _run(model, ScratchAdam(model.parameters(), lr=0.05, betas=(0.8, 0.99)), x, y, 8)
    ref = _run(twin, torch.optim.Adam(twin.parameters(), lr=0.05, betas=(0.8, 0.99)), x, y, 8)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_functional_steps():
    w = torch.tensor([1.0, -2.0])
    g = torch.tensor([0.5, 0.5])
    sgd_step([w], [g], {}, lr=0.1)
    torch.testing.assert_close(w, torch.tensor([0.95, -2.05]))
    state, w2 = {}, torch.tensor([1.0, -2.0])
    adam_step([w2], [g], state, lr=0.1)
    # first Adam step: m_hat = g, v_hat = g^2, so the update is lr * sign(g) (up to eps)
    torch.testing.assert_close(w2, torch.tensor([0.9, -2.1]))
    assert state["step"] == 1
    with pytest.raises(ValueError, match="grads"):
        sgd_step([w], [g, g], {}, lr=0.1)


def test_count_parameters_is_the_one_in_utils_and_counts_all_by_default():
    from mmbook import profile, utils

    assert count_parameters is utils.count_parameters is profile.count_parameters
    model = nn.Linear(4, 3)
    assert count_parameters(model) == 15 == sum(p.numel() for p in model.parameters())
    model.bias.requires_grad_(False)
    assert count_parameters(model) == 15
    assert count_parameters(model, trainable_only=True) == 12
    with pytest.raises(TypeError, match="nn.Module"):
        count_parameters([model.weight])


# ----------------------------------------------------------------------------- Trainer
def _blobs(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 2, generator=g) * 0.3 + torch.tensor([[0.0, 2], [2, 0], [-2, -2]])[y]
    return x, y


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))


def test_trainer_overfits_one_batch():
    torch.manual_seed(0)
    x, y = torch.randn(16, 8), torch.randint(0, 4, (16,))
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))
    tr = Trainer(model, lr=0.02, max_epochs=200, batch_size=16, progress=False,
                 device="cpu").fit((x, y))
    assert tr.history_["train_loss"][-1] < 0.01 < tr.history_["train_loss"][0]
    res = tr.evaluate((x, y))
    assert res["accuracy"] == 1.0 and res["loss"] < 0.01
    assert len(tr.history_["epoch_time"]) == 200 and tr.n_epochs_ == 200 and tr.fit_time_ > 0
    assert all(math.isnan(v) for v in tr.history_["val_loss"])


def test_trainer_is_deterministic_and_leaves_global_rng_alone():
    x, y = _blobs()
    runs = []
    for _ in range(2):
        model = _mlp()
        torch.manual_seed(123)
        before = torch.rand(1)
        torch.manual_seed(123)
        tr = Trainer(model, max_epochs=3, batch_size=8, progress=False, device="cpu").fit((x, y))
        assert torch.equal(torch.rand(1), before)  # fit used a forked random state
        runs.append((tr.history_["train_loss"], [p.clone() for p in tr.model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        assert torch.equal(a, b)
    other = Trainer(_mlp(), max_epochs=3, batch_size=8, progress=False, device="cpu", seed=1)
    assert other.fit((x, y)).history_["train_loss"] != runs[0][0]


def test_early_stopping_restores_best_weights():
    x, y = _blobs(60)
    xv, yv = _blobs(30, seed=1)
    yv = (yv + 1) % 3  # wrong labels: validation loss rises while training improves
    tr = Trainer(_mlp(), lr=0.05, max_epochs=50, batch_size=20, patience=3, progress=False,
                 device="cpu").fit((x, y), (xv, yv))
    h = tr.history_["val_loss"]
    assert tr.n_epochs_ == tr.best_epoch_ + 3 < 50
    assert tr.best_epoch_ == 1 + min(range(len(h)), key=h.__getitem__)
    torch.testing.assert_close(tr.evaluate((xv, yv))["loss"], h[tr.best_epoch_ - 1])


def test_trainer_accepts_loaders_optimizer_factories_and_multi_input_models():
    x, y = _blobs()

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(1, 3), nn.Linear(1, 3)

        def forward(self, x1, x2):
            return self.a(x1) + self.b(x2)

    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(x[:, :1], x[:, 1:], y), batch_size=16)
    tr = Trainer(TwoInputs(), functools.partial(torch.optim.SGD, lr=0.5), max_epochs=20,
                 progress=False, device="cpu").fit(loader, loader)
    assert isinstance(tr.optimizer_, torch.optim.SGD)
    assert tr.evaluate(loader)["accuracy"] > 0.9
    logits = tr.predict(loader)
    assert logits.shape == (64, 3) and logits.device.type == "cpu"
    torch.testing.assert_close(logits, tr.model(x[:, :1], x[:, 1:]))


def test_trainer_regression_with_mse():
    torch.manual_seed(0)
    x = torch.randn(32, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    tr = Trainer(nn.Linear(3, 1), loss_fn=mse_loss, lr=0.1, max_epochs=100, batch_size=32,
                 progress=False, device="cpu").fit((x, y))
    assert tr.history_["train_loss"][-1] < 1e-3
    assert math.isnan(tr.evaluate((x, y))["accuracy"])


def test_trainer_errors():
    x, y = _blobs()
    with pytest.raises(TypeError, match="model"):
        Trainer("not a model")
    with pytest.raises(ValueError, match="val_data"):
        Trainer(_mlp(), patience=2, progress=False).fit((x, y))
    with pytest.raises(TypeError, match="data"):
        Trainer(_mlp(), progress=False).fit([1, 2, 3])
    with pytest.raises(ValueError, match="progress"):
        Trainer(_mlp(), progress="loud", max_epochs=1).fit((x, y))


def test_progress_text_lines(capsys, monkeypatch):
    monkeypatch.setenv("MMBOOK_PROGRESS", "0")
    x, y = _blobs()
    Trainer(_mlp(), max_epochs=30, progress=True, device="cpu").fit((x, y), (x, y))
    lines = capsys.readouterr().out.strip().splitlines()
    assert 1 < len(lines) <= 11 and lines[-1].startswith("epoch 30/30")
    assert "val_acc" in lines[-1]
    assert T._progress_mode(False) == "off"


def test_ch05_checkers_accept_right_and_reject_wrong_answers():
    from mmbook.exercises import ch05

    assert ch05.check_mse_grad(lambda y_hat, y: 2 * (y_hat - y) / y_hat.numel())
    assert "factor 2" in repr(ch05.check_mse_grad(lambda y_hat, y: (y_hat - y) / y_hat.numel()))
    assert "divide by n" in repr(ch05.check_mse_grad(lambda y_hat, y: 2 * (y_hat - y)))
    assert not ch05.check_mse_grad(lambda y_hat, y: None)
    assert ch05.check_cross_entropy_grad(
        lambda z, y: (torch.softmax(z, 1) - F.one_hot(y, z.shape[1])) / len(y))
    assert "divide by N" in repr(ch05.check_cross_entropy_grad(
        lambda z, y: torch.softmax(z, 1) - F.one_hot(y, z.shape[1])))

    def momentum(theta, grad, buf, lr, mu):
        buf = grad.clone() if buf is None else mu * buf + grad
        return theta - lr * buf, buf

    def no_momentum(theta, grad, buf, lr, mu):
        return theta - lr * grad, buf

    assert ch05.check_momentum_step(momentum)
    assert "step 2" in repr(ch05.check_momentum_step(no_momentum))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trainer_on_cuda_moves_batches_and_returns_cpu_predictions():
    x, y = _blobs()
    tr = Trainer(_mlp(), max_epochs=2, progress=False, device="cuda").fit((x, y), (x, y))
    assert next(tr.model.parameters()).device.type == "cuda"
    assert tr.predict((x, y)).device.type == "cpu"


def test_progress_bar_mode_runs(capsys):
    x, y = _blobs()
    Trainer(_mlp(), max_epochs=2, progress="bar", device="cpu").fit((x, y))
    assert "epochs" in capsys.readouterr().err


# ------------------------------------------------------------------------ edge cases (issue 11)
def _nan_batch_data():
    """Blobs whose 6th item holds a NaN feature: with batch_size 4 it is in batch 2."""
    x, y = _blobs(16)
    x[5, 0] = float("nan")
    return x, y


def test_nonfinite_loss_stops_with_epoch_and_batch_and_keeps_last_finite_weights(capsys):
    x, y = _nan_batch_data()
    model = _mlp()
    tr = Trainer(model, max_epochs=3, batch_size=4, progress="text", device="cpu")
    # a DataLoader without shuffling, so the NaN is in batch 2 of epoch 1
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    with pytest.raises(T.NonFiniteLossError, match=r"epoch 1, batch 2 of 4"):
        tr.fit(loader)
    # the history records the failed epoch, its loss NaN
    assert len(tr.history_["train_loss"]) == 1 and math.isnan(tr.history_["train_loss"][0])
    # the weights are finite: the NaN batch made no update, and the message says what is held
    assert all(torch.isfinite(p).all() for p in model.parameters())
    out = capsys.readouterr().out
    assert "restored epoch 0" not in out
    assert "the model holds the last finite update" in out and "batch 2" in out


def test_nonfinite_loss_restores_best_epoch_when_early_stopping_kept_it():
    x, y = _blobs(16)
    xv, yv = _blobs(8, seed=1)
    calls = {"n": 0}

    def loss_fn(logits, target):  # finite for two epochs (4 batches each), then NaN
        calls["n"] += 1
        loss = F.cross_entropy(logits, target)
        return loss * float("nan") if calls["n"] > 8 + 2 * 2 and logits.requires_grad else loss

    tr = Trainer(_mlp(), loss_fn=loss_fn, max_epochs=5, batch_size=4, patience=2,
                 progress=False, device="cpu")
    with pytest.raises(T.NonFiniteLossError, match="epoch 3"):
        tr.fit(DataLoader(TensorDataset(x, y), batch_size=4), (xv, yv))
    assert tr.weights_.startswith(f"restored epoch {tr.best_epoch_}") and tr.best_epoch_ >= 1
    torch.testing.assert_close(tr.evaluate((xv, yv))["loss"],
                               tr.history_["val_loss"][tr.best_epoch_ - 1])


def test_nonfinite_loss_skip_option_counts_and_continues():
    x, y = _nan_batch_data()
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    tr = Trainer(_mlp(), max_epochs=2, progress=False, device="cpu", on_nonfinite="skip")
    tr.fit(loader)
    assert tr.history_["skipped_batches"] == [1, 1]
    assert all(math.isfinite(v) for v in tr.history_["train_loss"])
    with pytest.raises(ValueError, match="on_nonfinite"):
        Trainer(_mlp(), on_nonfinite="ignore")


def test_progress_line_shows_a_nan_loss_instead_of_dropping_it():
    row = dict(train_loss=math.nan, train_acc=math.nan, val_loss=0.5, val_acc=0.9,
               epoch_time=0.1)
    line = T._fmt_epoch(1, 3, row, has_val=True)
    assert "train_loss nan" in line and "val_loss 0.5000" in line
    assert "train_acc" not in line


@pytest.mark.parametrize("bad, match", [
    (dict(max_epochs=2.0), r"max_epochs must be a positive int, got 2\.0"),
    (dict(max_epochs=0), "max_epochs"),
    (dict(batch_size=0), "batch_size"),
    (dict(patience=0), "patience"),
    (dict(lr=-1.0), "lr"),
    (dict(weight_decay=-0.1), "weight_decay"),
])
def test_trainer_rejects_parameters_outside_their_domain(bad, match):
    with pytest.raises(ValueError, match=match):
        Trainer(_mlp(), **bad)


def test_trainer_rejects_empty_data_clearly():
    x, y = _blobs()
    empty = (x[:0], y[:0])
    with pytest.raises(ValueError, match=r"train_data is empty \(0 items\)"):
        Trainer(_mlp(), progress=False, device="cpu").fit(empty)
    with pytest.raises(ValueError, match="val_data is empty"):
        Trainer(_mlp(), progress=False, device="cpu").fit((x, y), empty)
    with pytest.raises(ValueError, match="data is empty"):
        Trainer(_mlp(), progress=False, device="cpu").evaluate(empty)
    with pytest.raises(ValueError, match="first dimension N"):
        Trainer(_mlp(), progress=False, device="cpu").fit((x, y[:5]))


def test_results_row_matches_its_parts():
    x, y = _blobs()
    tr = Trainer(_mlp(), max_epochs=3, progress=False, device="cpu").fit((x, y))
    row = tr.results_row((x, y), model="mlp")
    assert row["model"] == "mlp" and row["parameters"] == count_parameters(tr.model, True)
    assert row["epochs"] == tr.n_epochs_ == 3 and row["fit time (s)"] == tr.fit_time_
    assert row["test accuracy"] == tr.evaluate((x, y))["accuracy"]
    with pytest.raises(RuntimeError, match="fit"):
        Trainer(_mlp()).results_row((x, y))


@pytest.mark.parametrize("cls, kwargs, match", [
    (ScratchSGD, dict(lr=0.0), "lr"),
    (ScratchSGD, dict(lr=0.1, momentum=1.0), "momentum"),
    (ScratchAdam, dict(betas=(0.9, 1.0)), r"betas\[1\]"),
    (ScratchAdam, dict(eps=0.0), "eps"),
])
def test_scratch_optimizers_check_their_hyperparameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(_mlp().parameters(), **kwargs)


# ------------------------------------------------------------------ model-side hooks (issue 22)
def _StepMLP():
    """_mlp() with the loss in training_step: the hook path must train it identically."""
    return StepModel(_mlp())


def test_training_step_trains_as_the_default_path_and_logs_its_scalars():
    x, y = _blobs()
    xv, yv = _blobs(30, seed=1)
    plain = Trainer(_mlp(), max_epochs=3, batch_size=8, progress=False, device="cpu")
    hooked = Trainer(_StepMLP(), max_epochs=3, batch_size=8, progress=False, device="cpu")
    plain.fit((x, y), (xv, yv))
    hooked.fit((x, y), (xv, yv))  # no validation_step: training_step under no_grad
    for a, b in zip(plain.model.parameters(), hooked.model.parameters()):
        assert torch.equal(a, b)
    for key in ("train_loss", "val_loss"):
        torch.testing.assert_close(hooked.history_[key], plain.history_[key])
    # the logged "acc" is a mean per batch, weighted by the batch size: the same accuracy
    torch.testing.assert_close(hooked.history_["train_acc"], plain.history_["train_acc"])
    torch.testing.assert_close(hooked.history_["val_acc"], plain.history_["val_acc"])
    got = hooked.evaluate((xv, yv))
    assert set(got) == {"loss", "acc"}
    torch.testing.assert_close(got["acc"], plain.evaluate((xv, yv))["accuracy"])


def test_validation_step_and_configure_optimizers():
    class Model(StepModel):
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.2)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            logits = self(x)
            return {"loss": F.cross_entropy(logits, y),
                    "error": (logits.argmax(1) != y).float().mean()}

    x, y = _blobs()
    tr = Trainer(Model(), max_epochs=2, progress=False, device="cpu").fit((x, y), (x, y))
    assert isinstance(tr.optimizer_, torch.optim.SGD) and tr.optimizers_ == [tr.optimizer_]
    assert len(tr.history_["val_error"]) == 2 and math.isnan(tr.history_["val_acc"][0])
    err = tr.evaluate((x, y))["error"]
    assert err == pytest.approx(1 - (tr.predict((x, y)).argmax(1) == y).float().mean().item())
    # the optimizer argument wins over configure_optimizers
    tr = Trainer(Model(), functools.partial(torch.optim.Adam, lr=0.01), max_epochs=1,
                 progress=False, device="cpu").fit((x, y))
    assert isinstance(tr.optimizer_, torch.optim.Adam)


class _TwoHeads(TwoOptimizers):
    """Two optimizers, each head with its own loss, stepped by the model (manual), and no
    validation_step."""

    validation_step = None


def test_manual_optimisation_with_two_optimizers_equals_the_hand_written_loop():
    x, y = _blobs()
    loader = DataLoader(TensorDataset(x, y), batch_size=16)  # a fixed order for both
    tr = Trainer(_TwoHeads(), max_epochs=3, progress=False, device="cpu").fit(loader)
    ref = _TwoHeads()
    opts, losses = ref.configure_optimizers(), []
    for _ in range(3):
        logs = [ref.training_step(batch, i, opts) for i, batch in enumerate(loader)]
        losses.append(sum(float(d["loss_a"]) * 16 for d in logs) / 64)
    for a, b in zip(tr.model.parameters(), ref.parameters()):
        assert torch.equal(a, b)  # no extra backward or step by the Trainer
    assert not torch.equal(ref.a.weight, _TwoHeads().a.weight)  # and it trained
    assert not torch.equal(ref.b.weight, _TwoHeads().b.weight)
    torch.testing.assert_close(tr.history_["train_loss_a"], losses)
    assert len(tr.optimizers_) == 2 and all(math.isnan(v) for v in tr.history_["train_loss"])
    with pytest.raises(ValueError, match="must define validation_step"):
        Trainer(_TwoHeads(), progress=False).fit((x, y), (x, y))


def test_hook_losses_get_the_nonfinite_rule():
    x, y = _nan_batch_data()
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    with pytest.raises(T.NonFiniteLossError, match=r"epoch 1, batch 2 of 4"):
        Trainer(_StepMLP(), max_epochs=2, progress=False, device="cpu").fit(loader)
    tr = Trainer(_StepMLP(), max_epochs=2, progress=False, device="cpu",
                 on_nonfinite="skip").fit(loader)
    assert tr.history_["skipped_batches"] == [1, 1]
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())
    with pytest.raises(T.NonFiniteLossError, match=r"epoch 1, batch 2 of 4"):
        Trainer(_TwoHeads(), max_epochs=1, progress=False, device="cpu").fit(loader)


@pytest.mark.parametrize("out, match", [
    (torch.ones(3), r"'loss' must be a scalar, got shape \(3,\)"),
    ({"acc": torch.tensor(1.0)}, r"must return the loss to minimise.*\['acc'\]"),
    ("nope", "must return a scalar loss tensor or a non-empty dict"),
])
def test_bad_training_step_outputs_are_named(out, match):
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def training_step(self, batch, batch_idx):
            return out

    x, y = _blobs()
    with pytest.raises((TypeError, ValueError), match=match):
        Trainer(Bad(), max_epochs=1, progress=False, device="cpu").fit((x, y))


# ------------------------------------------------------------------------------ checkpoints
def _fit_state(tr):
    return repr({k: v for k, v in tr.history_.items() if k != "epoch_time"}), \
        [p.detach().clone() for p in tr.model.parameters()]


@pytest.mark.parametrize("patience", [None, 10])
def test_resume_two_plus_two_epochs_equals_four(tmp_path, patience):
    """Weights, Adam's moments, the shuffling and dropout's random state all continue."""
    x, y = _blobs()
    xv, yv = _blobs(30, seed=1)
    kw = dict(batch_size=8, patience=patience, progress=False, device="cpu")
    straight = Trainer(_mlp(), max_epochs=4, **kw).fit((x, y), (xv, yv))
    first = Trainer(_mlp(), max_epochs=2, **kw).fit((x, y), (xv, yv))
    first.save_checkpoint(tmp_path / "ckpt.pt")
    resumed = Trainer(_mlp(seed=5), max_epochs=4, **kw)  # other initial weights: loaded
    resumed.fit((x, y), (xv, yv), resume_from=tmp_path / "ckpt.pt")
    h0, w0 = _fit_state(straight)
    h1, w1 = _fit_state(resumed)
    assert h0 == h1 and resumed.n_epochs_ == 4
    assert all(torch.equal(a, b) for a, b in zip(w0, w1))
    # the load_checkpoint / fit pair does the same; a fresh fit without it does not
    again = Trainer(_mlp(seed=5), max_epochs=4, **kw).load_checkpoint(tmp_path / "ckpt.pt")
    assert all(torch.equal(a, b) for a, b in zip(_fit_state(again.fit((x, y), (xv, yv)))[1], w0))
    other = Trainer(_mlp(), max_epochs=2, **kw).fit((x, y), (xv, yv))
    assert not all(torch.equal(a, b) for a, b in zip(_fit_state(other)[1], w0))


def test_checkpoint_every_epoch_and_clear_errors(tmp_path):
    x, y = _blobs()
    path = tmp_path / "every.pt"
    tr = Trainer(_mlp(), max_epochs=3, progress=False, device="cpu", checkpoint_path=path)
    tr.fit((x, y))
    ckpt = torch.load(path)
    assert ckpt["epoch"] == 3 and ckpt["world_size"] == 1
    assert [k for k in tmp_path.iterdir()] == [path]  # written atomically, nothing left
    for k, v in tr.model.state_dict().items():
        assert torch.equal(ckpt["model"][k], v)
    torch.save(tr.model.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="not a Trainer checkpoint"):
        Trainer(_mlp(), progress=False, device="cpu").load_checkpoint(tmp_path / "weights.pt")
    with pytest.raises(RuntimeError, match="fit first"):
        Trainer(_mlp()).save_checkpoint(tmp_path / "x.pt")
    model = _mlp()
    two = [torch.optim.Adam(model[0].parameters()), torch.optim.Adam(model[3].parameters())]
    with pytest.raises(ValueError, match="holds 1 optimizer states, this model trains with 2"):
        Trainer(model, two, progress=False, device="cpu").fit((x, y), resume_from=path)
