"""conv2d_scratch (loops and unfold) and the pooling functions against torch."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from mmbook.conv import (
    avg_pool2d_scratch,
    conv2d_loops,
    conv2d_scratch,
    conv2d_unfold,
    conv_output_size,
    max_pool2d_scratch,
)

GRID = list(itertools.product([1, 2, (2, 1)], [0, 1, (2, 0)], [(1, 1), (3, 2)], [True, False]))


@pytest.mark.parametrize("stride, padding, channels, with_bias", GRID)
def test_conv_equals_torch(stride, padding, channels, with_bias):
    torch.manual_seed(0)
    c_in, c_out = channels
    x = torch.randn(2, c_in, 7, 6, dtype=torch.float64)
    w = torch.randn(c_out, c_in, 3, 2, dtype=torch.float64)
    b = torch.randn(c_out, dtype=torch.float64) if with_bias else None
    ref = F.conv2d(x, w, b, stride=stride, padding=padding)
    for loops in (True, False):
        torch.testing.assert_close(conv2d_scratch(x, w, b, stride, padding, loops=loops), ref)


def test_conv_gradients_equal_torch():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    for impl in (conv2d_loops, conv2d_unfold):
        ours = torch.autograd.grad(impl(x, w, b, 2, 1).square().sum(), (x, w, b))
        ref = torch.autograd.grad(F.conv2d(x, w, b, 2, 1).square().sum(), (x, w, b))
        for a, r in zip(ours, ref):
            torch.testing.assert_close(a, r)


def test_single_channel_formula_by_hand():
    """y_ij = sum_k sum_l w_kl x_{i+k, j+l} on a 3x3 image and a 2x2 kernel."""
    x = torch.arange(9.0).view(1, 1, 3, 3)
    w = torch.tensor([[1.0, 0.0], [0.0, -1.0]]).view(1, 1, 2, 2)
    # every window gives x[i, j] - x[i+1, j+1] = -4
    torch.testing.assert_close(conv2d_scratch(x, w, loops=True), torch.full((1, 1, 2, 2), -4.0))


@pytest.mark.parametrize("n, k, s, p", [(28, 3, 1, 1), (28, 5, 1, 0), (7, 3, 2, 1),
                                        (10, 4, 3, 2), (5, 5, 1, 0)])
def test_conv_output_size_matches_torch(n, k, s, p):
    out = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p)
    assert conv_output_size(n, k, s, p) == out.shape[-1]


def test_conv_errors():
    x, w = torch.randn(2, 3, 5, 5), torch.randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match="input channels"):
        conv2d_scratch(x, torch.randn(4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(N, C_in, H, W\)"):
        conv2d_scratch(x[0], w)
    with pytest.raises(ValueError, match="weight must have shape"):
        conv2d_scratch(x, w[0])
    with pytest.raises(ValueError, match="bias"):
        conv2d_scratch(x, w, torch.randn(3))
    with pytest.raises(ValueError, match="stride"):
        conv2d_scratch(x, w, stride=0)
    with pytest.raises(ValueError, match="padding"):
        conv2d_scratch(x, w, padding=-1)
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv2d_scratch(x, torch.randn(4, 3, 6, 6))
    with pytest.raises(ValueError, match="kernel"):
        conv_output_size(5, 0)


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1), ((2, 3), 1, 0),
                                                     (3, (1, 2), (1, 0))])
def test_pooling_equals_torch(kernel, stride, padding):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 8)
    torch.testing.assert_close(max_pool2d_scratch(x, kernel, stride, padding),
                               F.max_pool2d(x, kernel, stride, padding))
    torch.testing.assert_close(avg_pool2d_scratch(x, kernel, stride, padding),
                               F.avg_pool2d(x, kernel, stride, padding))


def test_pooling_errors():
    with pytest.raises(ValueError, match="x must have shape"):
        max_pool2d_scratch(torch.randn(3, 4, 4), 2)
    with pytest.raises(ValueError, match="padding"):
        max_pool2d_scratch(torch.randn(1, 1, 4, 4), 2, padding=2)


def test_ch04_checkers_accept_right_and_reject_wrong_answers():
    from mmbook.exercises import ch04

    assert ch04.check_output_size(13, n=28, kernel=5, stride=2, padding=1)
    assert not ch04.check_output_size(12, n=28, kernel=5, stride=2, padding=1)
    assert "+ 1" in repr(ch04.check_output_size(12, n=28, kernel=5, stride=2, padding=1))
    assert "2p" in repr(ch04.check_output_size(26, n=28, kernel=5, stride=1, padding=2))
    assert "floor" in repr(ch04.check_output_size(12.5, n=28, kernel=5, stride=2, padding=0))
    assert not ch04.check_output_size(None, n=28, kernel=5)

    def right(x, w):
        return F.conv2d(x[None, None], w[None, None])[0, 0]

    def flipped(x, w):
        return right(x, w.flip(0, 1))

    assert ch04.check_conv_single(right)
    assert "flipped" in repr(ch04.check_conv_single(flipped))
    assert not ch04.check_conv_single(lambda x, w: None)
    assert not ch04.check_conv_single(lambda x, w: 1 / 0)
    assert ch04.check_conv_parameters(4640, 16, 32, 3)
    assert "bias" in repr(ch04.check_conv_parameters(4608, 16, 32, 3))
    assert not ch04.check_conv_parameters(None, 16, 32, 3)
