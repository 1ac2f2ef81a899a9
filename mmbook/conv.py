"""Two-dimensional convolution (as deep learning computes it) from its formula.

Deep learning's "convolution" is a cross-correlation: the kernel slides over the
input without being flipped,

.. math:: y_{o,i,j} = b_o + \\sum_{c} \\sum_{k=0}^{K-1} \\sum_{l=0}^{L-1}
    w_{o,c,k,l}\\, x_{c,\\, s i + k,\\, s j + l}

(with stride :math:`s` and the input zero-padded by :math:`p`). :func:`conv2d_loops`
writes this sum out literally; :func:`conv2d_unfold` gathers every window into a
column with ``F.unfold`` and does all the sums in one matrix product. Both equal
``torch.nn.functional.conv2d``; :func:`conv2d_scratch` picks one with a flag.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["conv_output_size", "conv2d_scratch", "conv2d_loops", "conv2d_unfold",
           "max_pool2d_scratch", "avg_pool2d_scratch"]


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(2, 1)`` stays; checks the values are ints >= ``minimum``."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return pair


def conv_output_size(n: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution (or pooling) along one axis.

    .. math:: n_{out} = \\left\\lfloor \\frac{n + 2p - k}{s} \\right\\rfloor + 1

    Args:
        n: input length; kernel: kernel size k; stride: s; padding: p (each side).

    Raises:
        ValueError: when the padded input is shorter than the kernel.

    Examples:
        >>> conv_output_size(28, kernel=3, padding=1), conv_output_size(28, 3, stride=2)
        (28, 13)
    """
    for name, v, low in (("n", n, 1), ("kernel", kernel, 1), ("stride", stride, 1),
                         ("padding", padding, 0)):
        if not isinstance(v, int) or v < low:
            raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    if n + 2 * padding < kernel:
        raise ValueError(f"kernel {kernel} is larger than the padded input {n} + 2*{padding}")
    return (n + 2 * padding - kernel) // stride + 1


def _check_conv_args(x, weight, bias, stride, padding):
    """Validate shapes; return (stride pair, padding pair, output height, output width)."""
    if not torch.is_tensor(x) or x.ndim != 4:
        raise ValueError(f"x must have shape (N, C_in, H, W), got {tuple(getattr(x, 'shape', ()))}")
    if not torch.is_tensor(weight) or weight.ndim != 4:
        raise ValueError("weight must have shape (C_out, C_in, K, L), got "
                         f"{tuple(getattr(weight, 'shape', ()))}")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight has {weight.shape[1]} input channels (shape "
                         f"{tuple(weight.shape)}) but x has {x.shape[1]} (shape {tuple(x.shape)}): "
                         f"expected weight of shape ({weight.shape[0]}, {x.shape[1]}, K, L)")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    s, p = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    h_out = conv_output_size(x.shape[2], weight.shape[2], s[0], p[0])
    w_out = conv_output_size(x.shape[3], weight.shape[3], s[1], p[1])
    return s, p, h_out, w_out


def conv2d_loops(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 stride=1, padding=0) -> torch.Tensor:
    """The convolution sum written out with loops over i, j, k, l (readable, slow).

    .. math:: y_{n,o,i,j} = b_o + \\sum_{k}\\sum_{l} \\sum_c w_{o,c,k,l}\\,
        x_{n,c,\\, s_h i + k,\\, s_w j + l}

    The sum over input channels c is the matrix product ``x[..] @ w[..].T``. Use it on
    tiny inputs; :func:`conv2d_unfold` is the fast version.

    Shape:
        - x: :math:`(N, C_{in}, H, W)`; weight: :math:`(C_{out}, C_{in}, K, L)`;
          bias: :math:`(C_{out},)`
        - output: :math:`(N, C_{out}, H', W')`, see :func:`conv_output_size`

    Examples:
        >>> x, w, b = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3), torch.randn(3)
        >>> y = conv2d_loops(x, w, b, stride=2, padding=1)
        >>> y.shape, bool(torch.allclose(y, F.conv2d(x, w, b, 2, 1), atol=1e-5))
        (torch.Size([1, 3, 3, 3]), True)
    """
    (s_h, s_w), (p_h, p_w), h_out, w_out = _check_conv_args(x, weight, bias, stride, padding)
    x = F.pad(x, (p_w, p_w, p_h, p_h))  # zeros around the border
    K, L = weight.shape[2:]
    y = x.new_zeros(x.shape[0], weight.shape[0], h_out, w_out)  # (N, C_out, H', W')
    for i in range(h_out):
        for j in range(w_out):
            for k in range(K):
                for l in range(L):
                    # (N, C_in) @ (C_in, C_out): the sum over channels
                    y[:, :, i, j] += x[:, :, s_h * i + k, s_w * j + l] @ weight[:, :, k, l].T
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y


def conv2d_unfold(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  stride=1, padding=0) -> torch.Tensor:
    """The same sum as one matrix product over all windows (``F.unfold``, "im2col").

    ``F.unfold`` copies every :math:`C_{in} \\times K \\times L` window of the padded
    input into a column; the kernel, flattened to a row per output channel, multiplies
    all columns at once:
    :math:`Y = W_{(C_{out},\\, C_{in} K L)}\\; X_{cols\\, (N,\\, C_{in} K L,\\, H' W')}`.

    Shape:
        as :func:`conv2d_loops`.

    Examples:
        >>> x, w = torch.randn(2, 3, 8, 8), torch.randn(4, 3, 3, 3)
        >>> bool(torch.allclose(conv2d_unfold(x, w, padding=1), F.conv2d(x, w, padding=1),
        ...                     atol=1e-5))
        True
    """
    s, p, h_out, w_out = _check_conv_args(x, weight, bias, stride, padding)
    cols = F.unfold(x, weight.shape[2:], padding=p, stride=s)  # (N, C_in*K*L, H'*W')
    y = weight.flatten(1) @ cols  # (N, C_out, H'*W')
    if bias is not None:
        y = y + bias.view(1, -1, 1)
    return y.view(x.shape[0], weight.shape[0], h_out, w_out)  # (N, C_out, H', W')


def conv2d_scratch(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                   stride=1, padding=0, *, loops: bool = False) -> torch.Tensor:
    """2-D convolution from its formula; equal to ``F.conv2d(x, weight, bias, stride, padding)``.

    .. math:: y_{n,o,i,j} = b_o + \\sum_c \\sum_{k=0}^{K-1} \\sum_{l=0}^{L-1}
        w_{o,c,k,l}\\, x_{n,c,\\, s_h i + k,\\, s_w j + l}

    Args:
        x: input images, zero-padded by ``padding`` on each side.
        weight: the kernels.
        bias: one per output channel, or None.
        stride: int or (s_h, s_w).
        padding: int or (p_h, p_w).
        loops: True runs the literal loops (:func:`conv2d_loops`), False the
            vectorised ``unfold`` version (:func:`conv2d_unfold`).

    Shape:
        - x: :math:`(N, C_{in}, H, W)`; weight: :math:`(C_{out}, C_{in}, K, L)`;
          bias: :math:`(C_{out},)`
        - output: :math:`(N, C_{out}, H', W')` with
          :math:`H' = \\lfloor (H + 2p_h - K)/s_h \\rfloor + 1` (and likewise W')

    Examples:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> w = torch.tensor([[[[1.0, 0.0], [0.0, -1.0]]]])  # y_ij = x_ij - x_{i+1,j+1}
        >>> conv2d_scratch(x, w)
        tensor([[[[-5., -5., -5.],
                  [-5., -5., -5.],
                  [-5., -5., -5.]]]])
        >>> torch.equal(conv2d_scratch(x, w, loops=True), F.conv2d(x, w))
        True
    """
    impl = conv2d_loops if loops else conv2d_unfold
    return impl(x, weight, bias, stride=stride, padding=padding)


def _pool_windows(x, kernel_size, stride, padding, pad_value):
    """Every pooling window of every channel: (N, C, k_h*k_w, H'*W') and (H', W')."""
    if not torch.is_tensor(x) or x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {tuple(getattr(x, 'shape', ()))}")
    k = _pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else _pair(stride, "stride", 1)
    p = _pair(padding, "padding", 0)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"padding {p} must be at most half of kernel_size {k}")
    n, c, h, w = x.shape
    h_out = conv_output_size(h, k[0], s[0], p[0])
    w_out = conv_output_size(w, k[1], s[1], p[1])
    x = F.pad(x, (p[1], p[1], p[0], p[0]), value=pad_value)
    cols = F.unfold(x.reshape(n * c, 1, *x.shape[2:]), k, stride=s)  # (N*C, kh*kw, H'*W')
    return cols.view(n, c, k[0] * k[1], h_out * w_out), (h_out, w_out)


def max_pool2d_scratch(x: torch.Tensor, kernel_size, stride=None, padding=0) -> torch.Tensor:
    """Max pooling: the largest value of each window, channel by channel.

    .. math:: y_{n,c,i,j} = \\max_{0 \\le k < K,\\; 0 \\le l < L} x_{n,c,\\, s i + k,\\, s j + l}

    Equal to ``F.max_pool2d(x, kernel_size, stride, padding)`` (padding is
    :math:`-\\infty`, so it never wins); ``stride`` defaults to ``kernel_size``.

    Shape:
        - x: :math:`(N, C, H, W)`
        - output: :math:`(N, C, H', W')`

    Examples:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> max_pool2d_scratch(x, 2)
        tensor([[[[ 5.,  7.],
                  [13., 15.]]]])
        >>> torch.equal(max_pool2d_scratch(x, 3, 1, 1), F.max_pool2d(x, 3, 1, 1))
        True
    """
    cols, size = _pool_windows(x, kernel_size, stride, padding, float("-inf"))
    return cols.amax(dim=2).view(*x.shape[:2], *size)


def avg_pool2d_scratch(x: torch.Tensor, kernel_size, stride=None, padding=0) -> torch.Tensor:
    """Average pooling: the mean of each window (zero padding counted, as torch's default).

    .. math:: y_{n,c,i,j} = \\frac{1}{KL} \\sum_{k}\\sum_{l} x_{n,c,\\, s i + k,\\, s j + l}

    Shape:
        - x: :math:`(N, C, H, W)`
        - output: :math:`(N, C, H', W')`

    Examples:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> avg_pool2d_scratch(x, 2)
        tensor([[[[ 2.5000,  4.5000],
                  [10.5000, 12.5000]]]])
        >>> torch.allclose(avg_pool2d_scratch(x, 3, 1, 1), F.avg_pool2d(x, 3, 1, 1))
        True
    """
    cols, size = _pool_windows(x, kernel_size, stride, padding, 0.0)
    return cols.mean(dim=2).view(*x.shape[:2], *size)
