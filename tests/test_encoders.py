"""Encoders: output shapes, length handling, clear errors, they can learn."""

import pytest
import torch
from torch import nn

from mmbook.encoders import AudioEncoder, ImageEncoder, MLPEncoder, lengths_to_mask


def test_image_encoder_shape_and_errors():
    torch.manual_seed(0)
    enc = ImageEncoder(channels=(4, 8, 8), out_features=12)
    assert enc(torch.randn(5, 1, 28, 28)).shape == (5, 12)
    assert enc.out_features == 12
    with pytest.raises(ValueError, match="images"):
        enc(torch.randn(5, 3, 28, 28))
    with pytest.raises(ValueError, match="images"):
        enc(torch.randn(5, 28, 28))
    with pytest.raises(ValueError, match="channels"):
        ImageEncoder(channels=(4, -1))


def test_image_encoder_other_sizes():
    enc = ImageEncoder(in_channels=3, channels=(4,), out_features=6, image_size=32)
    assert enc(torch.randn(2, 3, 32, 32)).shape == (2, 6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_audio_encoder_shapes(cell, bidirectional):
    torch.manual_seed(0)
    enc = AudioEncoder(input_size=6, hidden_size=5, num_layers=2, cell=cell,
                       bidirectional=bidirectional)
    h = 5 * (2 if bidirectional else 1)
    assert enc.out_features == h
    x, lengths = torch.randn(4, 9, 6), torch.tensor([9, 3, 1, 6])
    assert enc(x).shape == (4, h)
    assert enc(x, lengths).shape == (4, h)
    out, mask = enc(x, lengths, return_sequence=True)
    assert out.shape == (4, 9, h) and mask.dtype == torch.bool
    torch.testing.assert_close(mask, torch.arange(9)[None] < lengths[:, None])
    assert (out[~mask] == 0).all()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_past_length_does_not_change_output(cell, bidirectional):
    torch.manual_seed(0)
    enc = AudioEncoder(input_size=4, hidden_size=3, cell=cell, bidirectional=bidirectional)
    x, lengths = torch.randn(3, 7, 4), torch.tensor([7, 2, 5])
    noisy = x.clone()
    for n, ell in enumerate(lengths):
        noisy[n, ell:] = 100 * torch.randn(7 - ell, 4)
    torch.testing.assert_close(enc(x, lengths), enc(noisy, lengths))
    out_a, _ = enc(x, lengths, return_sequence=True)
    out_b, _ = enc(noisy, lengths, return_sequence=True)
    torch.testing.assert_close(out_a, out_b)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_lengths_give_the_state_at_the_last_valid_step(cell):
    """Each sequence's encoding equals running the torch RNN on its unpadded prefix."""
    torch.manual_seed(0)
    enc = AudioEncoder(input_size=4, hidden_size=3, cell=cell)
    x, lengths = torch.randn(3, 6, 4), torch.tensor([6, 2, 4])
    z = enc(x, lengths)
    for n, ell in enumerate(lengths.tolist()):
        out, _ = enc.rnn(x[n:n + 1, :ell])
        torch.testing.assert_close(z[n], out[0, -1])
    # with full lengths, the same as no lengths
    full = torch.full((3,), 6)
    torch.testing.assert_close(enc(x, full), enc(x))


def test_bidirectional_matches_torch_on_prefix():
    torch.manual_seed(0)
    enc = AudioEncoder(input_size=4, hidden_size=3, bidirectional=True)
    x, lengths = torch.randn(2, 5, 4), torch.tensor([3, 5])
    z = enc(x, lengths)
    for n, ell in enumerate(lengths.tolist()):
        _, (h_n, _) = enc.rnn(x[n:n + 1, :ell])
        torch.testing.assert_close(z[n], torch.cat([h_n[0, 0], h_n[1, 0]]))


def test_audio_encoder_errors():
    enc = AudioEncoder(input_size=4, hidden_size=3)
    with pytest.raises(ValueError, match="x"):
        enc(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="lengths"):
        enc(torch.randn(2, 5, 4), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="lengths"):
        enc(torch.randn(2, 5, 4), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="lengths"):
        enc(torch.randn(2, 5, 4), torch.tensor([6, 2]))
    with pytest.raises(ValueError, match="cell"):
        AudioEncoder(cell="transformer")
    # an empty batch failed inside torch ("cannot reshape tensor of 0 elements" without
    # lengths, "Cannot pack empty tensors" with them)
    for lengths in (None, torch.zeros(0, dtype=torch.long)):
        with pytest.raises(ValueError, match=r"x is an empty batch \(shape \(0, 5, 4\)\): "
                                             r"expected at least one sequence"):
            enc(torch.randn(0, 5, 4), lengths)


def test_lengths_to_mask():
    torch.testing.assert_close(lengths_to_mask(torch.tensor([2, 0, 3]), 3),
                               torch.tensor([[1, 1, 0], [0, 0, 0], [1, 1, 1]]).bool())


def test_mlp_encoder():
    torch.manual_seed(0)
    enc = MLPEncoder(10, hidden_sizes=(8, 6), out_features=4, dropout=0.1)
    assert enc(torch.randn(3, 10)).shape == (3, 4)
    assert enc(torch.randn(3, 2, 10)).shape == (3, 2, 4)
    assert MLPEncoder(10, hidden_sizes=(), out_features=4)(torch.randn(3, 10)).shape == (3, 4)
    linears = [m for m in enc.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 8), (8, 6), (6, 4)]
    with pytest.raises(ValueError, match="x must have shape"):
        enc(torch.randn(3, 9))


@pytest.mark.parametrize("make, x", [
    (lambda: ImageEncoder(channels=(4, 8), out_features=16), torch.randn(16, 1, 28, 28)),
    (lambda: MLPEncoder(12, out_features=16), torch.randn(16, 12)),
])
def test_encoders_overfit_a_batch(make, x):
    torch.manual_seed(0)
    model = nn.Sequential(make(), nn.Linear(16, 4))
    y = torch.arange(16) % 4
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    assert (model(x).argmax(1) == y).all()


def test_audio_encoder_overfits_a_batch():
    torch.manual_seed(0)
    enc = AudioEncoder(input_size=5, hidden_size=16, cell="gru")
    head = nn.Linear(16, 3)
    x, lengths, y = torch.randn(12, 8, 5), torch.randint(2, 9, (12,)), torch.arange(12) % 3
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=2e-2)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(head(enc(x, lengths)), y).backward()
        opt.step()
    assert (head(enc(x, lengths)).argmax(1) == y).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_audio_encoder_on_cuda_with_cuda_lengths():
    enc = AudioEncoder(input_size=4, hidden_size=3).cuda()
    x, lengths = torch.randn(3, 7, 4, device="cuda"), torch.tensor([7, 2, 5], device="cuda")
    out, mask = enc(x, lengths, return_sequence=True)
    assert out.device.type == "cuda" and mask.device.type == "cuda"
    torch.testing.assert_close(enc(x, lengths).cpu(), enc.cpu()(x.cpu(), lengths.cpu()))
