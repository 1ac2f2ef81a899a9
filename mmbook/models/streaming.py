"""Streaming inference: a recurrent audio encoder fed chunk by chunk, in real time.

An LSTM's state after frame t summarises frames 1..t, so a stream can be encoded as it
arrives: keep :math:`(h_t, c_t)` between chunks and feed each new chunk from there,

.. math:: (h_{t+k}, c_{t+k}) = \\mathrm{LSTM}(x_{t+1..t+k};\\ h_t, c_t),

which gives exactly the offline result on the whole sequence (the tests check it against
:class:`mmbook.encoders.AudioEncoder` with lengths). A backward (bidirectional) layer needs
the future, so it cannot stream.

The carried state is **detached** from the autograd graph after each chunk: gradients
flow through the frames of the current chunk only, not back into earlier chunks. This is
*truncated back-propagation through time* (truncated BPTT, Williams & Peng, 1990), as in
the usual stateful-RNN training loops. Without it, a stream encoded with gradients on
would keep every past chunk's graph alive (memory growing with the stream) and a second
``backward()`` would fail on the freed graph of the first chunk.

The encoder streams exactly, but only features computed from the past can be streamed:
:class:`StreamingSpectrogram` is AV digits' causal front-end (``load_av_digits(...,
causal=True)``) fed waveform samples as they arrive, giving the same frames as
:func:`mmbook.data.spectrogram` with ``causal=True`` on the whole recording.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.av_digits import HOP, N_FFT, PEAK_FLOOR, _log_bands
from ..utils import check_shape

__all__ = ["StreamingEncoder", "StreamingSpectrogram"]


def _is_dynamic_quantized_rnn(rnn: nn.Module) -> bool:
    """``torch.ao.nn.quantized.dynamic.LSTM`` / ``GRU`` (what ``quantize_dynamic`` makes of
    ``nn.LSTM`` / ``nn.GRU``; not subclasses of them)."""
    return (type(rnn).__module__.startswith("torch.ao.nn.quantized.dynamic")
            and getattr(rnn, "mode", None) in ("LSTM", "GRU"))


def _recurrent_layer(encoder: nn.Module) -> nn.Module:
    """The LSTM/GRU layer of ``encoder`` (itself, or its ``rnn``), float or quantised."""
    rnn = getattr(encoder, "rnn", encoder)
    if isinstance(rnn, (nn.LSTM, nn.GRU)) or _is_dynamic_quantized_rnn(rnn):
        return rnn
    where = f"{type(encoder).__name__}" + (f" whose .rnn is a {type(rnn).__module__}."
                                           f"{type(rnn).__name__}" if rnn is not encoder else "")
    raise ValueError(f"encoder must be an LSTM or GRU layer (nn.LSTM / nn.GRU, or their "
                     f"dynamically quantised versions from quantize_dynamic), or a module "
                     f"holding one as .rnn (an AudioEncoder); got {where}")


class StreamingEncoder(nn.Module):
    """Wraps a unidirectional :class:`~mmbook.encoders.AudioEncoder` (or a batch-first
    ``nn.LSTM`` / ``nn.GRU``) to encode a stream chunk by chunk, carrying the state.

    ``forward(chunk)`` consumes the next frames and returns the encoding of everything seen
    so far (the top layer's hidden state); :meth:`reset` starts a new stream. The state
    is carried detached (truncated BPTT, see the module's docstring): the returned encoding
    has gradients through the current chunk only.

    A dynamically quantised encoder (``torch.ao.quantization.quantize_dynamic``) streams
    too. It quantises its activations at each call with that call's range, so its
    streamed encoding differs from its offline one at the quantisation level (about
    :math:`10^{-3}`), not exactly as a float encoder's does.

    Args:
        encoder: an ``AudioEncoder`` (its ``rnn``) or a batch-first ``nn.LSTM``/``nn.GRU``,
            float or dynamically quantised.

    Raises:
        ValueError: no LSTM/GRU layer, a bidirectional or not batch-first one.

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
        >>> stream.state[0].grad_fn is None  # carried detached: truncated BPTT
        True
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        rnn = _recurrent_layer(encoder)
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
        _, state = self.rnn(chunk, self.state)
        # truncated BPTT: carry the values, not the graph of the chunks already seen
        if isinstance(state, tuple):
            self.state = tuple(s.detach() for s in state)  # (h, c) of an LSTM
        else:
            self.state = state.detach()  # h of a GRU
        self.frames_seen += chunk.shape[1]
        h = state[0] if isinstance(state, tuple) else state
        return h[-1]  # (N, H): the top layer's state after the last frame


class StreamingSpectrogram(nn.Module):
    r"""AV digits' causal audio front-end, fed waveform samples as they arrive.

    Each sample is divided by the running peak of the signal so far (with the floor
    :math:`p_0` of :func:`mmbook.data.peak_normalise`),
    :math:`y_t = x_t / \max(\max_{s \le t} |x_s|, p_0)`; frame t is the log-magnitude
    spectrum of the 256 samples of y that end where hop t ends (:func:`mmbook.data.spectrogram`
    with ``causal=True``), standardised by fixed per-band statistics (those of the
    training split):

    .. math:: \tilde S_{t,f} = (S_{t,f} - \mu_f) / \sigma_f .

    The module keeps the running peak and the last samples that a future window still
    needs (initially 256 zeros, the silence before the recording): every 200 new samples
    complete one frame, so frame 0 (silence) comes with the first call, then one frame
    per 25 ms hop. Samples may arrive in chunks of any size; a call that completes no
    frame returns ``(N, 0, F)``. Concatenated, the frames equal the offline causal
    features, ``spectrogram(peak_normalise(x, causal=True), causal=True)`` standardised
    (what ``load_av_digits(..., causal=True)`` computes).

    Args:
        mean: :math:`\mu`, ``(F,)`` (``AVDigits.audio_mean``), or ``None`` (0).
        std: :math:`\sigma`, ``(F,)`` (``AVDigits.audio_std``), or ``None`` (1).
        running_peak: divide by the running peak (``False``: the samples as they come).

    Raises:
        ValueError: statistics of another shape; samples that are not ``(N, S)``, or a
            batch size that changes within a stream.

    Shape:
        - samples: :math:`(N, S)`, any :math:`S \ge 0`
        - output: :math:`(N, T_{new}, F)`, the frames completed by these samples, F = 64

    Examples:
        >>> from mmbook.data import peak_normalise, spectrogram
        >>> x = torch.randn(1, 8000)
        >>> front = StreamingSpectrogram()
        >>> frames = torch.cat([front(x[:, i:i + 300]) for i in range(0, 8000, 300)], 1)
        >>> offline = spectrogram(torch.from_numpy(peak_normalise(x.numpy(), causal=True)),
        ...                       causal=True)
        >>> frames.shape[1], torch.allclose(frames, offline, atol=1e-5)
        (41, True)
    """

    def __init__(self, mean: torch.Tensor | None = None, std: torch.Tensor | None = None,
                 running_peak: bool = True):
        super().__init__()
        F = N_FFT // 4  # 64 bands
        for name, value, default in (("mean", mean, 0.0), ("std", std, 1.0)):
            value = torch.full((F,), default) if value is None else torch.as_tensor(value)
            if tuple(value.shape) != (F,):
                raise ValueError(f"{name} must have shape ({F},) (one value per band), got "
                                 f"{tuple(value.shape)}")
            self.register_buffer(name, value.detach().float().clone())
        self.running_peak = bool(running_peak)
        self.buffer, self.peak = None, None

    def reset(self) -> None:
        """Forget the samples kept and the peak: the next call starts a new recording."""
        self.buffer, self.peak = None, None

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """x / max(running peak, p0), the peak carried from the previous calls."""
        if not self.running_peak or x.shape[1] == 0:
            return x
        peaks = torch.cummax(x.abs(), dim=1).values  # (N, S)
        peaks = torch.maximum(peaks, self.peak)  # with what came before (p0 at first)
        self.peak = peaks[:, -1:]
        return x / peaks

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        check_shape(samples, (None, None), "samples")
        if self.buffer is None:  # the silence before the recording
            self.buffer = samples.new_zeros(samples.shape[0], N_FFT)
            self.peak = samples.new_full((samples.shape[0], 1), PEAK_FLOOR)
        elif self.buffer.shape[0] != samples.shape[0]:
            raise ValueError(f"samples has batch size {samples.shape[0]} but the stream "
                             f"holds {self.buffer.shape[0]}: call reset() to start a new one")
        y = self._normalise(samples.to(self.buffer.dtype))
        buffer = torch.cat([self.buffer, y], 1)  # (N, kept + S)
        n = (buffer.shape[1] - N_FFT) // HOP + 1  # frames completed
        if n < 1:
            self.buffer = buffer
            return buffer.new_zeros(buffer.shape[0], 0, N_FFT // 4)
        # the n complete windows, uncentred: the arithmetic of spectrogram(causal=True),
        # whose 256 leading zeros are this module's first buffer
        frames = _log_bands(buffer[:, :(n - 1) * HOP + N_FFT], center=False)  # (N, n, F)
        self.buffer = buffer[:, n * HOP:]  # what the next windows still need
        return (frames - self.mean) / self.std
