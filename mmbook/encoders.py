"""Unimodal encoders that the fusion chapters reuse: image CNN, audio RNN, MLP.

Each encoder maps one modality to a feature vector ``(N, out_features)``; a fusion module
then combines the vectors of several modalities. They use torch's fast layers
(``nn.Conv2d``, ``nn.LSTM``, ``nn.GRU``); the from-scratch versions are in
:mod:`mmbook.conv` and :mod:`mmbook.rnn`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .utils import (  # lengths_to_mask is re-exported: one definition, in utils
    check_choice,
    check_lengths,
    check_nonempty_batch,
    check_positive_int,
    check_probability,
    check_shape,
    check_sizes,
    lengths_to_mask,
)

__all__ = ["ImageEncoder", "AudioEncoder", "MLPEncoder", "mlp_head", "lengths_to_mask"]


class ImageEncoder(nn.Module):
    """A small CNN: ``len(channels)`` blocks of conv 3x3 -> ReLU -> max-pool 2x2, then a
    linear layer.

    .. math:: z = \\mathrm{ReLU}(W\\, \\mathrm{vec}(\\mathrm{blocks}(x)) + b)

    Each block keeps the spatial size (padding 1) and the pooling halves it, so a
    28 x 28 image becomes 14 x 14, then 7 x 7 with the default two blocks.

    Args:
        in_channels: channels of the input image (1 for grey).
        channels: output channels of each conv block.
        out_features: size of the feature vector.
        image_size: height = width of the input images.

    Shape:
        - input: :math:`(N, C_{in}, S, S)` with S = ``image_size``
        - output: :math:`(N, \\text{out\\_features})`

    Examples:
        >>> encoder = ImageEncoder(in_channels=1, channels=(16, 32), out_features=64)
        >>> z = encoder(torch.randn(8, 1, 28, 28))  # 28 -> 14 -> 7 pixels a side
        >>> z.shape, encoder.proj.in_features == 32 * 7 * 7, bool((z >= 0).all())
        (torch.Size([8, 64]), True, True)
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (16, 32),
                 out_features: int = 64, image_size: int = 28):
        super().__init__()
        channels = check_sizes(channels, "channels")
        in_channels = check_positive_int(in_channels, "in_channels")
        out_features = check_positive_int(out_features, "out_features")
        image_size = check_positive_int(image_size, "image_size")
        if image_size // 2 ** len(channels) < 1:
            raise ValueError(f"image_size={image_size} is too small for {len(channels)} "
                             f"pooling blocks (each halves it)")
        self.in_channels, self.image_size, self.out_features = in_channels, image_size, out_features
        blocks, c_in = [], in_channels
        for c_out in channels:
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        side = image_size // 2 ** len(channels)
        self.proj = nn.Linear(c_in * side * side, out_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_shape(images, (None, self.in_channels, self.image_size, self.image_size), "images")
        h = self.features(images).flatten(1)  # (N, C * side * side)
        return torch.relu(self.proj(h))  # (N, out_features)


class AudioEncoder(nn.Module):
    """An LSTM or GRU over spectrogram frames (batch first) that honours lengths.

    The recurrence is torch's (``nn.LSTM`` / ``nn.GRU``; chapter 3 writes it from
    its equations). With ``lengths`` the padded frames are skipped with
    ``pack_padded_sequence``, so the encoding is the state at each sequence's last
    valid step, :math:`z_n = h_{\\ell_n}` (for a bidirectional layer, the forward state
    at :math:`\\ell_n` concatenated with the backward state at step 1).

    Args:
        input_size: features per frame F (64 spectrogram bins for AV digits).
        hidden_size: size H of the hidden state.
        num_layers: stacked recurrent layers.
        cell: ``"lstm"`` or ``"gru"``.
        bidirectional: run a second layer backwards in time and concatenate.
        dropout: dropout between stacked layers (when ``num_layers > 1``) and on
            the returned features.

    Attributes:
        out_features: H, or 2H when bidirectional.

    Shape:
        - x: :math:`(N, T, F)`; lengths: :math:`(N,)` with :math:`1 \\le \\ell_n \\le T`
        - output: :math:`(N, H')` with H' = ``out_features``, or with
          ``return_sequence=True`` a pair ``(outputs (N, T, H'), mask (N, T) bool)``
          where the outputs at padded steps are zero and the mask is False there.

    Examples:
        >>> encoder = AudioEncoder(input_size=64, hidden_size=32)
        >>> x, lengths = torch.randn(3, 41, 64), torch.tensor([41, 20, 5])
        >>> z = encoder(x, lengths)
        >>> z.shape  # the state at each recording's last frame
        torch.Size([3, 32])
        >>> bool(torch.allclose(z[2], encoder(x[2:, :5])[0], atol=1e-6))  # padding unread
        True
        >>> outputs, mask = encoder(x, lengths, return_sequence=True)
        >>> outputs.shape, mask.sum(1)
        (torch.Size([3, 41, 32]), tensor([41, 20,  5]))
    """

    def __init__(self, input_size: int = 64, hidden_size: int = 64, num_layers: int = 1,
                 cell: str = "lstm", bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        rnn_classes = {"lstm": nn.LSTM, "gru": nn.GRU}
        check_choice(cell, tuple(rnn_classes), "cell")
        input_size = check_positive_int(input_size, "input_size")
        hidden_size = check_positive_int(hidden_size, "hidden_size")
        check_probability(dropout, "dropout", allow_one=False)
        self.input_size, self.hidden_size, self.cell = input_size, hidden_size, cell
        self.num_directions = 2 if bidirectional else 1
        self.out_features = hidden_size * self.num_directions
        self.rnn = rnn_classes[cell](input_size, hidden_size, num_layers=num_layers,
                                     batch_first=True, bidirectional=bidirectional,
                                     dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)

    def _check(self, x, lengths):
        check_shape(x, (None, None, self.input_size), "x")
        check_nonempty_batch(x, "x", what="sequence")
        if x.shape[1] == 0:
            raise ValueError(f"x has length T=0 (shape {tuple(x.shape)} as (N, T, F)): a "
                             f"recurrent encoder needs at least one frame")
        if lengths is None:
            return None
        return check_lengths(lengths, x.shape[0], x.shape[1], min_length=1)

    def _last_state(self, h_n: torch.Tensor) -> torch.Tensor:
        """The top layer's final state(s): (layers * dirs, N, H) -> (N, dirs * H)."""
        top = h_n[-self.num_directions:]  # (dirs, N, H)
        return top.transpose(0, 1).reshape(h_n.shape[1], -1)  # (N, dirs * H)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                return_sequence: bool = False):
        lengths = self._check(x, lengths)
        n, t = x.shape[:2]
        if lengths is None:
            outputs, state = self.rnn(x)  # (N, T, H')
            mask = torch.ones(n, t, dtype=torch.bool, device=x.device)
        else:
            packed = pack_padded_sequence(x, lengths.cpu().long(), batch_first=True,
                                          enforce_sorted=False)
            packed_out, state = self.rnn(packed)
            outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=t)
            mask = lengths_to_mask(lengths.to(x.device), t)  # (N, T)
        if return_sequence:
            return self.dropout(outputs), mask
        h_n = state[0] if self.cell == "lstm" else state
        return self.dropout(self._last_state(h_n))  # (N, H')


class MLPEncoder(nn.Module):
    """A multilayer perceptron: Linear -> ReLU -> Dropout for each hidden size, then a
    Linear -> ReLU to ``out_features``.

    .. math:: h^{(0)} = x,\\quad h^{(l)} = \\mathrm{ReLU}(W^{(l)} h^{(l-1)} + b^{(l)})

    Args:
        in_features: size D of the input vectors.
        hidden_sizes: sizes of the hidden layers (may be empty).
        out_features: size of the feature vector.
        dropout: dropout probability after each hidden layer.

    Shape:
        - input: :math:`(N, *, D)`
        - output: :math:`(N, *, \\text{out\\_features})`

    Examples:
        >>> encoder = MLPEncoder(in_features=10, hidden_sizes=(32, 16), out_features=8)
        >>> encoder(torch.randn(4, 10)).shape, encoder(torch.randn(4, 5, 10)).shape
        (torch.Size([4, 8]), torch.Size([4, 5, 8]))
        >>> [m.out_features for m in encoder.net if isinstance(m, torch.nn.Linear)]
        [32, 16, 8]
    """

    def __init__(self, in_features: int, hidden_sizes: Sequence[int] = (64,),
                 out_features: int = 64, dropout: float = 0.0):
        super().__init__()
        hidden_sizes = check_sizes(hidden_sizes, "hidden_sizes") if len(hidden_sizes) else ()
        in_features = check_positive_int(in_features, "in_features")
        out_features = check_positive_int(out_features, "out_features")
        check_probability(dropout, "dropout", allow_one=False)
        self.in_features, self.out_features = in_features, out_features
        layers, d_in = [], in_features
        for d_out in hidden_sizes:
            layers += [nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(dropout)]
            d_in = d_out
        layers += [nn.Linear(d_in, out_features), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(x, "shape") or x.ndim < 2 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (N, ..., {self.in_features}), got "
                             f"{tuple(getattr(x, 'shape', ()))}")
        return self.net(x)


def mlp_head(in_features: int, hidden_features: int, out_features: int) -> nn.Sequential:
    """Linear -> ReLU -> Linear, with no activation on the output (a head or a decoder).

    Unlike :class:`MLPEncoder`, whose output passes through a ReLU, the output here is
    unconstrained: logits, regression targets or reconstructed features.

    Shape:
        - input: :math:`(N, *, \\text{in\\_features})`
        - output: :math:`(N, *, \\text{out\\_features})`

    Examples:
        >>> mlp_head(4, 8, 3)(torch.zeros(2, 4)).shape
        torch.Size([2, 3])
    """
    return nn.Sequential(nn.Linear(in_features, hidden_features), nn.ReLU(),
                         nn.Linear(hidden_features, out_features))
