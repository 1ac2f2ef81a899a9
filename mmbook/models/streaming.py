"""Streaming inference: a recurrent audio encoder fed chunk by chunk, in real time.

An LSTM's state after frame t summarises frames 1..t, so a stream can be encoded as it
arrives: keep :math:`(h_t, c_t)` between chunks and feed each new chunk from there,

.. math:: (h_{t+k}, c_{t+k}) = \\mathrm{LSTM}(x_{t+1..t+k};\\ h_t, c_t),

which gives exactly the offline result on the whole sequence (the tests check it against
:class:`mmbook.encoders.AudioEncoder` with lengths). A backward (bidirectional) layer needs
the future, so it cannot stream.
"""

from __future__ import annotations

import torch
from torch import nn

from ..utils import check_shape

__all__ = ["StreamingEncoder"]


class StreamingEncoder(nn.Module):
    """Wraps a unidirectional :class:`~mmbook.encoders.AudioEncoder` (or a batch-first
    ``nn.LSTM`` / ``nn.GRU``) to encode a stream chunk by chunk, carrying the state.

    ``forward(chunk)`` consumes the next frames and returns the encoding of everything seen
    so far (the top layer's hidden state); :meth:`reset` starts a new stream.

    Args:
        encoder: an ``AudioEncoder`` (its ``rnn``) or a batch-first ``nn.LSTM``/``nn.GRU``.

    Raises:
        ValueError: a bidirectional or not batch-first recurrent layer.

    Shape:
        - chunk: :math:`(N, T_c, F)`, any :math:`T_c \\ge 1`
        - output: :math:`(N, H)`

    Examples:
        >>> lstm = nn.LSTM(3, 5, batch_first=True)
        >>> stream, x = StreamingEncoder(lstm), torch.randn(2, 7, 3)
        >>> for start in range(0, 7, 2):
        ...     z = stream(x[:, start:start + 2])
        >>> torch.allclose(z, lstm(x)[1][0][-1], atol=1e-6)
        True
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        rnn = getattr(encoder, "rnn", encoder)
        if not isinstance(rnn, (nn.LSTM, nn.GRU)):
            raise ValueError(f"encoder must be an AudioEncoder, nn.LSTM or nn.GRU, got "
                             f"{type(encoder).__name__}")
        if rnn.bidirectional:
            raise ValueError("encoder is bidirectional: its backward layer needs the future "
                             "frames, so it cannot stream")
        if not rnn.batch_first:
            raise ValueError("encoder must be batch_first (N, T, F)")
        self.rnn = rnn
        self.state = None
        self.frames_seen = 0

    def reset(self) -> None:
        """Forget the state: the next chunk starts a new stream."""
        self.state, self.frames_seen = None, 0

    def forward(self, chunk: torch.Tensor) -> torch.Tensor:
        check_shape(chunk, (None, None, self.rnn.input_size), "chunk")
        if chunk.shape[1] < 1:
            raise ValueError(f"chunk must hold at least one frame, got shape "
                             f"{tuple(chunk.shape)}")
        if self.state is not None:
            n_state = (self.state[0] if isinstance(self.state, tuple) else self.state).shape[1]
            if n_state != chunk.shape[0]:
                raise ValueError(f"chunk has batch size {chunk.shape[0]} but the stream holds "
                                 f"{n_state}: call reset() to start a new stream")
        _, self.state = self.rnn(chunk, self.state)
        self.frames_seen += chunk.shape[1]
        h = self.state[0] if isinstance(self.state, tuple) else self.state
        return h[-1]  # (N, H): the top layer's state after the last frame
