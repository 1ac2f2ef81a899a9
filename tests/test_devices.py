"""Tensors follow their inputs' device and dtype: nothing is created on the CPU when the
inputs live elsewhere.

Run on the CPU, the checks use PyTorch's ``meta`` device (shapes, no data): a module that
creates a tensor on the CPU during ``forward`` (``torch.zeros(n)`` without ``device=``)
mixes it with meta tensors and fails, exactly where it would mix CPU and CUDA tensors on a
GPU. A second pass in float64 catches tensors created in the default float32. Under
``make gpu-check`` the same cases also run on CUDA.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmbook import attention as mma
from mmbook.encoders import AudioEncoder, ImageEncoder, MLPEncoder
from mmbook.models import CrossModalAutoencoder, DualEncoder, StreamingEncoder
from mmbook.models.gan import (
    ConditionalDiscriminator,
    ConditionalGAN,
    ConditionalGenerator,
    DomainAdversarialNet,
)
from mmbook.rnn import GRUScratch, LSTMScratch, RNNScratch


def _cases():
    """name -> (module factory, inputs factory(device, dtype))."""
    def t(*shape):
        return lambda dev, dt: torch.ones(*shape, device=dev, dtype=dt)

    return {
        "LSTMScratch": (lambda: LSTMScratch(4, 5), lambda d, dt: (t(2, 3, 4)(d, dt),)),
        "GRUScratch": (lambda: GRUScratch(4, 5), lambda d, dt: (t(2, 3, 4)(d, dt),)),
        "RNNScratch": (lambda: RNNScratch(4, 5), lambda d, dt: (t(2, 3, 4)(d, dt),)),
        "ImageEncoder": (lambda: ImageEncoder(channels=(2,), out_features=3, image_size=8),
                         lambda d, dt: (t(2, 1, 8, 8)(d, dt),)),
        "MLPEncoder": (lambda: MLPEncoder(4, (5,), 3), lambda d, dt: (t(2, 4)(d, dt),)),
        "CrossModalAttention": (lambda: mma.CrossModalAttention(4, 2),
                                lambda d, dt: ([t(2, 3, 4)(d, dt), t(2, 3, 4)(d, dt)],)),
        "CoAttention": (lambda: mma.CoAttention(4, 4),
                        lambda d, dt: (t(2, 3, 4)(d, dt), t(2, 5, 4)(d, dt))),
        "MultiheadCrossModalAttention": (
            lambda: mma.MultiheadCrossModalAttention(4, 2),
            lambda d, dt: (t(2, 3, 4)(d, dt), t(2, 5, 4)(d, dt))),
        "CrossModalTransformerBlock": (lambda: mma.CrossModalTransformerBlock(4, 2),
                                       lambda d, dt: (t(2, 3, 4)(d, dt), t(2, 5, 4)(d, dt))),
        "CrossModalAutoencoder": (lambda: CrossModalAutoencoder((3, 5), 4, hidden_features=6),
                                  lambda d, dt: ([t(2, 3)(d, dt), t(2, 5)(d, dt)],)),
        "DualEncoder": (lambda: DualEncoder(nn.Linear(3, 4), nn.Linear(5, 4), embed_dim=4),
                        lambda d, dt: (t(2, 3)(d, dt), t(2, 5)(d, dt))),
        "ConditionalGenerator": (lambda: ConditionalGenerator(3, 5, noise_dim=2),
                                 lambda d, dt: (t(2, 3)(d, dt),)),
        "ConditionalDiscriminator": (lambda: ConditionalDiscriminator(3, 5, hidden_features=6),
                                     lambda d, dt: (t(2, 3)(d, dt), t(2, 5)(d, dt))),
        "ConcatDiscriminator": (lambda: ConditionalDiscriminator(3, 5, hidden_features=6,
                                                                 kind="concat"),
                                lambda d, dt: (t(2, 3)(d, dt), t(2, 5)(d, dt))),
        "ConditionalGAN": (lambda: ConditionalGAN(ConditionalGenerator(3, 5, noise_dim=2),
                                                  ConditionalDiscriminator(3, 5)),
                           lambda d, dt: (t(2, 3)(d, dt),)),
        "DomainAdversarialNet": (lambda: DomainAdversarialNet(4, 3, hidden_features=6),
                                 lambda d, dt: (t(2, 4)(d, dt),)),
        "StreamingEncoder": (lambda: StreamingEncoder(AudioEncoder(4, 5)),
                             lambda d, dt: (t(2, 3, 4)(d, dt),)),
    }


CASES = _cases()


def _first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        return next(_first_tensor(o) for o in out if _first_tensor(o) is not None)
    return None


def _devices():
    devs = ["meta"]
    if torch.cuda.is_available():
        devs.append("cuda")
    return devs


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_follow_the_inputs_device(name, device):
    make, inputs = CASES[name]
    torch.manual_seed(0)
    model = make().to(device).eval()
    with torch.no_grad():
        out = _first_tensor(model(*inputs(device, torch.float32)))
    assert out is not None and out.device.type == device, (name, out)


@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_follow_the_inputs_dtype(name):
    make, inputs = CASES[name]
    torch.manual_seed(0)
    model = make().to(torch.float64).eval()
    with torch.no_grad():
        out = _first_tensor(model(*inputs("cpu", torch.float64)))
    assert out.dtype == torch.float64, (name, out.dtype)


@pytest.mark.parametrize("device", _devices())
def test_attention_functions_follow_the_device(device):
    q, k = torch.ones(2, 3, 4, device=device), torch.ones(2, 5, 4, device=device)
    mask = torch.ones(2, 3, 5, dtype=torch.bool, device=device)
    out, w = mma.scaled_dot_product_attention(q, k, k, mask=mask)
    assert out.device.type == device and w.device.type == device
    assert mma.masked_softmax(torch.ones(2, 5, device=device),
                              torch.ones(2, 5, dtype=torch.bool, device=device)
                              ).device.type == device
