"""mmbook.models.DualEncoder: the CLIP logits, the clamped log-temperature, routing of inputs,
training with the Trainer (and the Trainer's accuracy_fn hook)."""

import copy
import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from mmbook.encoders import AudioEncoder, MLPEncoder
from mmbook.losses import clip_loss, cosine_logits
from mmbook.metrics import in_batch_hits, recall_at_k
from mmbook.models import DualEncoder
from mmbook.train import Trainer


def _model(**kw):
    torch.manual_seed(0)
    kw.setdefault("embed_dim", 2)
    return DualEncoder(nn.Linear(4, 6), nn.Linear(3, 5), **kw)


def test_logits_are_scaled_cosines_of_the_projections():
    model = _model(temperature=0.2)
    x_a, x_b = torch.randn(7, 4), torch.randn(7, 3)
    h_a, h_b = model.proj_a(model.encoder_a(x_a)), model.proj_b(model.encoder_b(x_b))
    torch.testing.assert_close(model(x_a, x_b), cosine_logits(h_a, h_b, 0.2))
    z = model.encode_a(x_a)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(7))
    assert model.temperature == pytest.approx(0.2)
    assert model.logit_scale.item() == pytest.approx(math.log(5.0))  # log(1 / tau)


def test_temperature_is_learned_in_log_space_and_clamped():
    model = _model()
    assert isinstance(model.logit_scale, nn.Parameter)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert model.scale().item() == pytest.approx(100.0)  # clamp at log 100
    with torch.no_grad():
        model.logit_scale.fill_(-3.0)
    assert model.scale().item() == pytest.approx(1.0)  # and at 0
    fixed = _model(learn_temperature=False)
    assert "logit_scale" in dict(fixed.named_buffers())
    assert all(p is not fixed.logit_scale for p in fixed.parameters())


def _clip_reference_loop(model, x_a, x_b, steps: int, lr: float):
    """CLIP's rule as open_clip's training loop writes it (src/open_clip_train/train.py):
    the logits use exp(t) unclamped; after each optimizer step, t is clamped in place."""
    opt, losses = torch.optim.Adam(model.parameters(), lr=lr), []
    for _ in range(steps):
        logits = model.logit_scale.exp() * model.encode_a(x_a) @ model.encode_b(x_b).T
        loss = clip_loss(logits)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
    return losses


def _pushed_out_of_range():
    """Pairs and a model (tau = 1, t = 0) whose first Adam step pushes t below 0."""
    torch.manual_seed(0)
    x_a, x_b = torch.randn(8, 4), torch.randn(8, 3)
    return x_a, x_b, DualEncoder(nn.Linear(4, 16), nn.Linear(3, 16), embed_dim=8,
                                 temperature=1.0)


def test_a_temperature_pushed_out_of_range_recovers_as_in_clip():
    """Issue 23: with the clamp in the forward pass, a step that pushed t below 0 froze it
    there (gradient exactly 0; loss stuck at 1.31). The parameter is clamped instead, as
    CLIP does: the same trajectory as open_clip's loop, and the loss reaches ~1e-4."""
    x_a, x_b, model = _pushed_out_of_range()
    reference = copy.deepcopy(model)
    opt, losses = torch.optim.Adam(model.parameters(), lr=0.05), []
    for step in range(300):
        loss = clip_loss(model(x_a, x_b))  # a plain loop: no clamping code of its own
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step == 0:
            assert model.logit_scale.item() < 0  # the first step pushes t out of range
    want = _clip_reference_loop(reference, x_a, x_b, steps=300, lr=0.05)
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(want))
    assert losses[-1] < 0.01 and model.temperature < 0.1
    with torch.no_grad():
        model.logit_scale.fill_(-1.0)
    clip_loss(model(x_a, x_b)).backward()
    assert model.logit_scale.grad.abs() > 0  # clamped value, live gradient


def test_clamp_after_each_step_hook_and_trainer():
    x_a, x_b, model = _pushed_out_of_range()
    opt = torch.optim.SGD(model.parameters(), lr=100.0)
    handle = model.clamp_after_each_step(opt)
    clip_loss(model(x_a, x_b)).backward()
    opt.step()  # a huge step: the stored value is clamped right after it
    assert 0.0 <= model.logit_scale.item() <= math.log(100)
    handle.remove()
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        model.clamp_after_each_step(model.parameters())
    # the Trainer needs nothing: the forward pass clamps before using t
    x_a, x_b, model = _pushed_out_of_range()
    trainer = Trainer(model, loss_fn=clip_loss, max_epochs=300, batch_size=8, lr=0.05,
                      progress=False, device="cpu")
    trainer.fit(TensorDataset(x_a, x_b, torch.zeros(8, dtype=torch.long)))
    assert trainer.history_["train_loss"][-1] < 0.01 and model.temperature < 0.1


def test_arity_routes_inputs_to_each_encoder():
    torch.manual_seed(0)
    audio = AudioEncoder(input_size=5, hidden_size=4, cell="gru")
    model = DualEncoder(MLPEncoder(3, (4,), 6), audio, embed_dim=3, arity=(1, 2))
    x, a, lengths = torch.randn(6, 3), torch.randn(6, 7, 5), torch.tensor([7, 1, 3, 4, 5, 2])
    logits = model(x, a, lengths)
    assert logits.shape == (6, 6)
    torch.testing.assert_close(logits, model.scale() * model.encode_a(x)
                               @ model.encode_b(a, lengths).T)


def test_sequential_encoder_width():
    enc = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU())
    model = DualEncoder(enc, nn.Linear(3, 4), embed_dim=2)
    assert model.proj_a.in_features == 8
    assert model(torch.randn(2, 3, 4), torch.randn(2, 3)).shape == (2, 2)


@pytest.mark.parametrize("make, match", [
    (lambda: _model(temperature=2.0), "temperature"),
    (lambda: _model(temperature=0.001), "temperature"),
    (lambda: _model(embed_dim=0), "embed_dim"),
    (lambda: _model(arity=(1, 1, 1)), "arity"),
])
def test_bad_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_encoder_and_inputs():
    with pytest.raises(TypeError, match="out_features"):
        DualEncoder(nn.ReLU(), nn.Linear(3, 4))
    model = _model()
    with pytest.raises(ValueError, match="expected 2 inputs"):
        model(torch.randn(3, 4))
    with pytest.raises(ValueError, match="same number of rows"):
        model(torch.randn(3, 4), torch.randn(2, 3))


def _paired(n=256, seed=0):
    """Two views of the same latent: x_b = x_a M + small noise."""
    g = torch.Generator().manual_seed(seed)
    x_a = torch.randn(n, 8, generator=g)
    x_b = x_a @ torch.randn(8, 6, generator=g) + 0.1 * torch.randn(n, 6, generator=g)
    return x_a, x_b, torch.zeros(n, dtype=torch.long)


def test_trains_with_the_trainer_and_retrieves():
    x_a, x_b, y = _paired(n=512)
    (x_a, x_a2), (x_b, x_b2), y = x_a.split(256), x_b.split(256), y[:256]
    torch.manual_seed(0)
    model = DualEncoder(MLPEncoder(8, (32,), 32), MLPEncoder(6, (32,), 32), embed_dim=16)
    t0 = model.logit_scale.item()
    trainer = Trainer(model, loss_fn=clip_loss, accuracy_fn=in_batch_hits, max_epochs=30,
                      batch_size=64, lr=1e-2, progress=False, device="cpu")
    trainer.fit(TensorDataset(x_a, x_b, y))
    h = trainer.history_
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]
    assert h["train_acc"][-1] > 0.9 and h["train_acc"][0] < h["train_acc"][-1]
    assert model.logit_scale.item() != t0  # the temperature is learned
    # held-out pairs (new latents, the same relation between the views): retrieval generalises
    model.eval()
    with torch.no_grad():
        s = model.encode_a(x_a2) @ model.encode_b(x_b2).T
    assert recall_at_k(s, 1) > 0.5  # chance is 1/256


def test_trainer_accuracy_fn_hook():
    x_a, x_b, y = _paired(n=64)
    model = DualEncoder(nn.Linear(8, 4), nn.Linear(6, 4), embed_dim=4)
    plain = Trainer(model, loss_fn=clip_loss, max_epochs=1, batch_size=64, progress=False,
                    device="cpu")
    before = plain.evaluate((x_a, x_b, y))
    with torch.no_grad():
        hits = in_batch_hits(model(x_a, x_b))
    # the default counts argmax == label (meaningless here); the hook counts the diagonal
    hooked = Trainer(model, loss_fn=clip_loss, accuracy_fn=in_batch_hits, max_epochs=1,
                     batch_size=64, progress=False, device="cpu").evaluate((x_a, x_b, y))
    assert hooked["accuracy"] == pytest.approx(hits / 64)
    assert hooked["loss"] == pytest.approx(before["loss"])
    nan = Trainer(model, loss_fn=clip_loss, accuracy_fn=lambda logits, t: float("nan"),
                  progress=False, device="cpu").evaluate((x_a, x_b, y))
    assert math.isnan(nan["accuracy"])
