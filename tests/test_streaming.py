"""StreamingEncoder equals the offline encoder; StreamingSpectrogram equals the offline causal
spectrogram; distillation_loss equals F.kl_div's formula."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmbook.data import spectrogram
from mmbook.encoders import AudioEncoder
from mmbook.losses import distillation_loss
from mmbook.models import StreamingEncoder, StreamingSpectrogram


@pytest.mark.parametrize("cell,num_layers", [("lstm", 1), ("lstm", 2), ("gru", 1)])
@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_stream_equals_offline_encoder_with_lengths(cell, num_layers, chunk):
    torch.manual_seed(0)
    enc = AudioEncoder(input_size=6, hidden_size=5, num_layers=num_layers, cell=cell).eval()
    x, lengths = torch.randn(3, 11, 6), torch.tensor([11, 8, 5])
    offline = enc(x, lengths)  # packed: the state at each sequence's last valid frame
    for i, length in enumerate(lengths.tolist()):
        stream = StreamingEncoder(enc)
        for start in range(0, length, chunk):
            z = stream(x[i:i + 1, start:min(start + chunk, length)])
        assert stream.frames_seen == length
        torch.testing.assert_close(z[0], offline[i], rtol=1e-5, atol=1e-6)


def test_reset_starts_a_new_stream_and_bad_input_is_named():
    lstm = nn.LSTM(4, 3, batch_first=True)
    stream, x = StreamingEncoder(lstm), torch.randn(2, 5, 4)
    first = stream(x)
    stream.reset()
    torch.testing.assert_close(stream(x), first)
    with pytest.raises(ValueError, match="chunk has batch size 1 but the stream holds 2"):
        stream(x[:1])
    with pytest.raises(ValueError, match="chunk"):
        stream(torch.randn(2, 5, 9))
    with pytest.raises(ValueError, match="bidirectional"):
        StreamingEncoder(nn.LSTM(4, 3, batch_first=True, bidirectional=True))
    with pytest.raises(ValueError, match="batch_first"):
        StreamingEncoder(nn.LSTM(4, 3))


def _graph_size(t: torch.Tensor) -> int:
    """Number of autograd nodes reachable from t (0 for a tensor without history)."""
    seen, todo = set(), [t.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        todo += [nxt for nxt, _ in node.next_functions]
    return len(seen)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_carried_state_is_detached_truncated_bptt(cell):
    """Issue 23: with gradients on, the carried state kept every past chunk's graph (memory
    grew per chunk) and the second backward failed. Each chunk's graph is now its own."""
    torch.manual_seed(0)
    enc = AudioEncoder(input_size=4, hidden_size=3, num_layers=2, cell=cell)
    stream, x = StreamingEncoder(enc), torch.randn(2, 12, 4)
    ref = (nn.LSTM if cell == "lstm" else nn.GRU)(4, 3, num_layers=2, batch_first=True)
    ref.load_state_dict(enc.rnn.state_dict())
    sizes = []
    for start in range(0, 12, 3):
        chunk, h0 = x[:, start:start + 3], stream.state  # the values carried in
        z = stream(chunk)
        state = stream.state if isinstance(stream.state, tuple) else (stream.state,)
        assert all(s.grad_fn is None and not s.requires_grad for s in state)
        sizes.append(_graph_size(z))
        enc.zero_grad()
        z.sum().backward()  # one backward per chunk: the second one used to fail
        # truncated BPTT against torch: the same chunk from the carried values
        ref.zero_grad()
        _, h_ref = ref(chunk, h0)
        (h_ref[0] if cell == "lstm" else h_ref)[-1].sum().backward()
        for (name, p), p_ref in zip(enc.rnn.named_parameters(), ref.parameters()):
            torch.testing.assert_close(p.grad, p_ref.grad, msg=name)
    assert len(set(sizes)) == 1  # the graph does not grow with the stream


def test_stream_of_a_dynamically_quantised_encoder():
    """quantize_dynamic turns the LSTM into torch.ao.nn.quantized.dynamic.LSTM: it streams,
    equal to its offline encoding up to the per-call activation quantisation."""
    import warnings

    torch.manual_seed(0)
    enc = AudioEncoder(input_size=6, hidden_size=5, num_layers=2).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        quantized = torch.ao.quantization.quantize_dynamic(enc, {nn.LSTM, nn.Linear},
                                                           dtype=torch.qint8)
    stream, x = StreamingEncoder(quantized), torch.randn(2, 10, 6)
    with torch.no_grad():
        for start in range(0, 10, 2):
            z = stream(x[:, start:start + 2])
        torch.testing.assert_close(z, quantized(x), atol=1e-2, rtol=0)
        torch.testing.assert_close(z, enc(x), atol=5e-2, rtol=0)
    with pytest.raises(ValueError, match=r"got Sequential whose \.rnn is a torch.nn.modules."
                                         r"linear.Linear"):
        holder = nn.Sequential()
        holder.rnn = nn.Linear(3, 3)
        StreamingEncoder(holder)
    with pytest.raises(ValueError, match="encoder must be an LSTM or GRU layer"):
        StreamingEncoder(nn.Linear(3, 3))


def test_distillation_loss_equals_the_formula_with_kl_div():
    torch.manual_seed(0)
    s, t, y = torch.randn(8, 5, requires_grad=True), torch.randn(8, 5), torch.randint(5, (8,))
    T, alpha = 3.0, 0.3
    soft = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), log_target=True,
                    reduction="batchmean") * T ** 2
    want = alpha * soft + (1 - alpha) * F.cross_entropy(s, y)
    got = distillation_loss(s, t, y, temperature=T, alpha=alpha)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(distillation_loss(s, t, temperature=T), soft)
    got.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()


def test_distillation_loss_does_not_train_the_teacher_and_checks_arguments():
    s, t = torch.randn(4, 3), torch.randn(4, 3, requires_grad=True)
    distillation_loss(s.requires_grad_(), t).backward()
    assert t.grad is None
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(s, t, temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(s, t, alpha=1.5)
    with pytest.raises(ValueError, match="teacher_logits"):
        distillation_loss(s, torch.randn(4, 2))


@pytest.mark.parametrize("chunk", [1, 57, 199, 200, 333, 8000])
def test_streamed_frames_equal_the_offline_causal_spectrogram(chunk):
    g = torch.Generator().manual_seed(0)
    wave, mean, std = torch.randn(2, 8000, generator=g), torch.randn(64), torch.rand(64) + 0.5
    front = StreamingSpectrogram(mean, std, running_peak=False)
    frames = [front(wave[:, i:i + chunk]) for i in range(0, 8000, chunk)]
    assert all(f.shape[0] == 2 and f.shape[2] == 64 for f in frames)
    want = (spectrogram(wave, causal=True) - mean) / std  # (2, 41, 64)
    torch.testing.assert_close(torch.cat(frames, 1), want, rtol=1e-5, atol=1e-5)
    # the offline, centred spectrogram is another thing: frames read 16 ms ahead
    assert not torch.allclose(torch.cat(frames, 1), (spectrogram(wave) - mean) / std, atol=0.1)


@pytest.mark.parametrize("chunk", [1, 200, 333])
def test_running_peak_streams_like_the_offline_causal_normaliser(chunk):
    from mmbook.data import peak_normalise

    g = torch.Generator().manual_seed(1)
    wave = torch.randn(2, 8000, generator=g) * torch.linspace(0.001, 1, 8000)  # louder
    front = StreamingSpectrogram()
    frames = torch.cat([front(wave[:, i:i + chunk]) for i in range(0, 8000, chunk)], 1)
    normalised = torch.from_numpy(peak_normalise(wave.numpy(), causal=True))
    torch.testing.assert_close(frames, spectrogram(normalised, causal=True), rtol=1e-5,
                               atol=1e-5)
    assert not torch.allclose(frames, spectrogram(wave, causal=True), atol=0.1)


def test_streamed_front_end_and_encoder_equal_the_offline_encoding():
    """Samples -> causal frames -> LSTM state, as they arrive: the state after the last
    valid frame is the offline encoding of the causal features with their length."""
    from mmbook.data import peak_normalise

    torch.manual_seed(0)
    enc = AudioEncoder(64, 8).eval()
    wave, length = torch.randn(1, 8000), 23  # a recording filling 23 frames
    features = spectrogram(torch.from_numpy(peak_normalise(wave.numpy(), causal=True)),
                           causal=True)
    offline = enc(features, torch.tensor([length]))
    front, stream = StreamingSpectrogram(), StreamingEncoder(enc)
    with torch.no_grad():
        for start in range(0, 8000, 200):  # one 25 ms hop at a time
            frames = front(wave[:, start:start + 200])[:, :max(0, length - stream.frames_seen)]
            if frames.shape[1]:
                z = stream(frames)
    assert stream.frames_seen == length
    torch.testing.assert_close(z, offline, rtol=1e-5, atol=1e-5)


def test_streaming_spectrogram_resets_and_names_bad_input():
    front = StreamingSpectrogram()
    assert front(torch.zeros(3, 0)).shape == (3, 1, 64)  # frame 0: the silence before
    assert front(torch.zeros(3, 199)).shape == (3, 0, 64)  # no hop completed yet
    assert front(torch.zeros(3, 1)).shape == (3, 1, 64)
    with pytest.raises(ValueError, match="batch size 1 but the stream holds 3"):
        front(torch.zeros(1, 200))
    front.reset()
    assert front(torch.zeros(1, 200)).shape == (1, 2, 64)
    with pytest.raises(ValueError, match="samples"):
        front(torch.zeros(1, 2, 200))
    with pytest.raises(ValueError, match=r"mean must have shape \(64,\)"):
        StreamingSpectrogram(torch.zeros(32))
