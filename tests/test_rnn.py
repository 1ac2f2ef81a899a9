"""mmbook.rnn against torch.nn's RNN/LSTM/GRU modules with copied weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.testing import assert_close

from mmbook.rnn import (
    GRUCellScratch,
    GRUScratch,
    LSTMCellScratch,
    LSTMScratch,
    RNNCellScratch,
    RNNScratch,
)

DT = torch.float64
CELLS = [(RNNCellScratch, nn.RNNCell), (LSTMCellScratch, nn.LSTMCell),
         (GRUCellScratch, nn.GRUCell)]
LAYERS = [(RNNScratch, nn.RNN), (LSTMScratch, nn.LSTM), (GRUScratch, nn.GRU)]


def _torch_layout_grads(scratch_cell):
    """The scratch cell's parameter gradients, stacked as torch's (ih, hh, bias_ih, bias_hh)."""
    W_x, W_h, b_x, b_h = (None,) * 4
    g = scratch_cell.gates
    W_x = torch.cat([getattr(scratch_cell, f"W_x{k}").grad for k in g])
    W_h = torch.cat([getattr(scratch_cell, f"W_h{k}").grad for k in g])
    if scratch_cell.bias:
        b_x = torch.cat([getattr(scratch_cell, f"b_x{k}").grad for k in g])
        b_h = torch.cat([getattr(scratch_cell, f"b_h{k}").grad for k in g])
    return W_x, W_h, b_x, b_h


def _flat(out):
    """All tensors of a nested output, flattened into one list."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for o in out for t in _flat(o)]


def _loss(out, seed=1):
    """A random linear functional of every output, so all gradients are exercised."""
    gen = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=gen, dtype=t.dtype)).sum() for t in _flat(out))


# ----------------------------------------------------------------------------- cells
@pytest.mark.parametrize("scratch_cls,torch_cls", CELLS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cell_equals_torch_outputs_and_gradients(scratch_cls, torch_cls, seed):
    gen = torch.Generator().manual_seed(seed)
    N, D, H = (int(v) for v in torch.randint(1, 9, (3,), generator=gen))
    bias = seed != 1
    torch.manual_seed(seed)
    ref = torch_cls(D, H, bias=bias, dtype=DT)
    ours = scratch_cls.from_torch(ref)
    x = torch.randn(N, D, dtype=DT, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    if torch_cls is nn.LSTMCell:
        state = (torch.randn(N, H, dtype=DT), torch.randn(N, H, dtype=DT))
    else:
        state = torch.randn(N, H, dtype=DT)
    for st in (None, state):
        out_ref, out = ref(x, st), ours(x2, st)
        assert_close(out, out_ref)
        ref.zero_grad(), ours.zero_grad()
        x.grad = x2.grad = None
        _loss(out_ref).backward()
        _loss(out).backward()
        assert_close(x2.grad, x.grad)
        grads = _torch_layout_grads(ours)
        refs = (ref.weight_ih.grad, ref.weight_hh.grad,
                getattr(ref.bias_ih, "grad", None), getattr(ref.bias_hh, "grad", None))
        for g, r in zip(grads, refs):
            if r is None:
                assert g is None
            else:
                assert_close(g, r)


@pytest.mark.parametrize("scratch_cls,torch_cls", CELLS)
def test_cell_unbatched_and_parameter_count(scratch_cls, torch_cls):
    torch.manual_seed(0)
    ref = torch_cls(5, 7)
    ours = scratch_cls.from_torch(ref)
    x = torch.randn(5)
    out = ours(x)
    assert_close(out, ref(x))
    n_ours = sum(p.numel() for p in ours.parameters())
    assert n_ours == sum(p.numel() for p in ref.parameters())
    assert len(list(ours.parameters())) == 4 * len(ours.gates)
    assert all(p.requires_grad for p in ours.parameters())


def test_lstm_cell_parameter_names_follow_equations():
    names = {n for n, _ in LSTMCellScratch(3, 4).named_parameters()}
    expected = {f"{kind}_{side}{g}" for kind, side in (("W", "x"), ("W", "h"), ("b", "x"),
                                                       ("b", "h")) for g in "ifgo"}
    assert names == expected


def test_rnn_cell_relu_equals_torch():
    torch.manual_seed(0)
    ref = nn.RNNCell(4, 6, nonlinearity="relu", dtype=DT)
    ours = RNNCellScratch.from_torch(ref)
    x, h = torch.randn(3, 4, dtype=DT), torch.randn(3, 6, dtype=DT)
    assert_close(ours(x, h), ref(x, h))


def test_cell_matches_its_step_form():
    """The gate-by-gate forward equals the stacked step the layers use."""
    torch.manual_seed(0)
    for cell in (RNNCellScratch(3, 5), LSTMCellScratch(3, 5), GRUCellScratch(3, 5)):
        x = torch.randn(4, 3)
        W_x, W_h, b_x, b_h = cell.stacked()
        n = 2 if isinstance(cell, LSTMCellScratch) else 1
        state = tuple(torch.randn(4, 5) for _ in range(n))
        stepped = cell.step(x @ W_x.T + b_x, state, W_h, b_h)
        direct = cell(x, state if n == 2 else state[0])
        assert_close(stepped, direct if n == 2 else (direct,))


# ----------------------------------------------------------------------------- layers
def _random_config(seed):
    gen = torch.Generator().manual_seed(seed)
    N, L, D, H = (int(v) for v in torch.randint(1, 7, (4,), generator=gen))
    num_layers = int(torch.randint(1, 4, (1,), generator=gen))
    return N, L + 1, D, H, num_layers


def _make_pair(scratch_cls, torch_cls, D, H, num_layers, batch_first=True, bias=True):
    ref = torch_cls(D, H, num_layers, batch_first=batch_first, bias=bias, dtype=DT)
    return ref, scratch_cls.from_torch(ref)


def _initial_state(torch_cls, num_layers, N, H):
    h0 = torch.randn(num_layers, N, H, dtype=DT)
    return (h0, torch.randn(num_layers, N, H, dtype=DT)) if torch_cls is nn.LSTM else h0


def _compare_grads(ref, ours, x_ref, x_ours):
    assert_close(x_ours.grad, x_ref.grad)
    for k, cell in enumerate(ours.cells):
        refs = tuple(getattr(ref, f"{n}_l{k}", None) for n in
                     ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        for g, r in zip(_torch_layout_grads(cell), refs):
            if r is None:
                assert g is None
            else:
                assert_close(g, r.grad)


@pytest.mark.parametrize("scratch_cls,torch_cls", LAYERS)
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_state", [False, True])
def test_layer_equals_torch(scratch_cls, torch_cls, seed, with_state):
    N, L, D, H, num_layers = _random_config(seed)
    torch.manual_seed(seed)
    batch_first, bias = seed % 2 == 0, seed != 3
    ref, ours = _make_pair(scratch_cls, torch_cls, D, H, num_layers, batch_first, bias)
    shape = (N, L, D) if batch_first else (L, N, D)
    x_ref = torch.randn(shape, dtype=DT, requires_grad=True)
    x_ours = x_ref.detach().clone().requires_grad_(True)
    state = _initial_state(torch_cls, num_layers, N, H) if with_state else None
    out_ref, out = ref(x_ref, state), ours(x_ours, state)
    assert_close(out, out_ref)
    _loss(out_ref).backward()
    _loss(out).backward()
    _compare_grads(ref, ours, x_ref, x_ours)


@pytest.mark.parametrize("scratch_cls,torch_cls", LAYERS)
@pytest.mark.parametrize("seed", range(3))
def test_layer_lengths_equal_packed_torch(scratch_cls, torch_cls, seed):
    """A padded batch with `lengths` equals nn.LSTM on the packed batch, padded back."""
    N, L, D, H, num_layers = _random_config(seed + 10)
    N += 2
    torch.manual_seed(seed)
    ref, ours = _make_pair(scratch_cls, torch_cls, D, H, num_layers)
    lengths = torch.randint(1, L + 1, (N,))
    lengths[0] = L - 1 if L > 1 else 1  # the longest sequence may be shorter than L
    x_ref = torch.randn(N, L, D, dtype=DT, requires_grad=True)
    x_ours = x_ref.detach().clone().requires_grad_(True)
    state = _initial_state(torch_cls, num_layers, N, H) if seed else None
    packed = pack_padded_sequence(x_ref, lengths, batch_first=True, enforce_sorted=False)
    out_packed, final_ref = ref(packed, state)
    out_ref, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=L)
    out, final = ours(x_ours, state, lengths=lengths)
    assert_close(out, out_ref)
    assert_close(final, final_ref)
    beyond = torch.arange(L)[None, :] >= lengths[:, None]  # (N, L)
    assert (out[beyond] == 0).all()
    _loss((out_ref, final_ref)).backward()
    _loss((out, final)).backward()
    _compare_grads(ref, ours, x_ref, x_ours)


@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_lstm_accepts_packed_sequence(enforce_sorted):
    torch.manual_seed(0)
    ref, ours = _make_pair(LSTMScratch, nn.LSTM, 3, 4, 2)
    lengths = torch.tensor([5, 5, 3, 2, 2]) if enforce_sorted else torch.tensor([2, 5, 3, 5, 1])
    x = torch.randn(5, 5, 3, dtype=DT)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=enforce_sorted)
    out_ref, final_ref = ref(packed)
    out, final = ours(packed)
    assert type(out) is type(out_ref)
    assert_close(out.data, out_ref.data)
    assert torch.equal(out.batch_sizes, out_ref.batch_sizes)
    assert_close(final, final_ref)
    padded, padded_ref = (pad_packed_sequence(o, batch_first=True)[0] for o in (out, out_ref))
    assert_close(padded, padded_ref)
    with pytest.raises(ValueError, match="either a PackedSequence or lengths"):
        ours(packed, lengths=lengths)


@pytest.mark.parametrize("scratch_cls,torch_cls", LAYERS)
def test_layer_unbatched_equals_torch(scratch_cls, torch_cls):
    torch.manual_seed(0)
    ref, ours = _make_pair(scratch_cls, torch_cls, 3, 4, 2)
    x = torch.randn(6, 3, dtype=DT)
    h0 = torch.randn(2, 4, dtype=DT)
    state = (h0, torch.randn(2, 4, dtype=DT)) if torch_cls is nn.LSTM else h0
    assert_close(ours(x), ref(x))
    assert_close(ours(x, state), ref(x, state))


@pytest.mark.parametrize("scratch_cls,torch_cls", LAYERS)
def test_layer_parameter_count_equals_torch(scratch_cls, torch_cls):
    for bias in (True, False):
        ref = torch_cls(7, 5, 3, bias=bias)
        ours = scratch_cls(7, 5, 3, bias=bias)
        assert sum(p.numel() for p in ours.parameters()) == \
            sum(p.numel() for p in ref.parameters())
    D, H = 7, 5
    assert sum(p.numel() for p in LSTMScratch(D, H).parameters()) == 4 * (H * D + H * H + 2 * H)


def test_lstm_trains_float32_and_follows_dtype():
    """Default float32 works; the output follows the module's dtype."""
    torch.manual_seed(0)
    model = LSTMScratch(4, 8)
    x = torch.randn(2, 5, 4)
    out, (h, c) = model(x)
    assert out.dtype == torch.float32 and h.shape == (1, 2, 8) and c.shape == (1, 2, 8)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


# ----------------------------------------------------------------------------- errors
def test_bad_shapes_are_rejected_with_clear_messages():
    lstm = LSTMScratch(4, 8, num_layers=2)
    with pytest.raises(ValueError, match=r"input has shape \(2, 5, 3\).*axis 2 should be 4"):
        lstm(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match=r"input must have shape \(N, L, D\)"):
        lstm(torch.randn(2, 5, 4, 1))
    with pytest.raises(ValueError, match=r"h_0 has shape \(1, 2, 8\)"):
        lstm(torch.randn(2, 5, 4), (torch.zeros(1, 2, 8), torch.zeros(1, 2, 8)))
    with pytest.raises(ValueError, match=r"state must hold 2 tensor"):
        lstm(torch.randn(2, 5, 4), torch.zeros(2, 2, 8))
    with pytest.raises(ValueError, match=r"lengths has shape \(3,?\)"):
        lstm(torch.randn(2, 5, 4), lengths=torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\]"):
        lstm(torch.randn(2, 5, 4), lengths=torch.tensor([0, 6]))
    with pytest.raises(ValueError, match=r"lengths must hold integers"):
        lstm(torch.randn(2, 5, 4), lengths=torch.tensor([1.0, 2.0]))
    cell = LSTMCellScratch(4, 8)
    with pytest.raises(ValueError, match=r"input has shape \(3, 5\)"):
        cell(torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"c has shape \(3, 7\)"):
        cell(torch.randn(3, 4), (torch.zeros(3, 8), torch.zeros(3, 7)))
    with pytest.raises(ValueError, match=r"h has shape \(2, 8\)"):
        GRUCellScratch(4, 8)(torch.randn(3, 4), torch.zeros(2, 8))
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        RNNCellScratch(4, 0)
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        LSTMScratch(4, 8, num_layers=0)


def test_from_torch_rejects_what_it_cannot_copy():
    with pytest.raises(TypeError, match="expects a torch.nn.LSTM"):
        LSTMScratch.from_torch(nn.GRU(3, 4))
    with pytest.raises(ValueError, match="bidirectional"):
        LSTMScratch.from_torch(nn.LSTM(3, 4, bidirectional=True))
    with pytest.raises(TypeError, match="expects a torch.nn.LSTMCell"):
        LSTMCellScratch.from_torch(nn.GRUCell(3, 4))
    with pytest.raises(ValueError, match=r"weight_ih has shape"):
        LSTMCellScratch(3, 4).load_stacked(torch.zeros(12, 3), torch.zeros(16, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_lstm_follows_the_input_device():
    torch.manual_seed(0)
    ref = nn.LSTM(3, 4, 2, batch_first=True).cuda()
    ours = LSTMScratch.from_torch(ref)
    assert all(p.is_cuda for p in ours.parameters())
    x = torch.randn(5, 6, 3, device="cuda")
    lengths = torch.tensor([6, 2, 4, 1, 3])  # on the CPU, as torch's packing wants
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_ref, final_ref = ref(packed)
    out, final = ours(x, lengths=lengths)
    padded_ref = pad_packed_sequence(out_ref, batch_first=True, total_length=6)[0]
    assert_close(out, padded_ref, rtol=1e-4, atol=1e-5)
    assert_close(final, final_ref, rtol=1e-4, atol=1e-5)
    out_packed, _ = ours(packed)
    assert_close(out_packed.data, out_ref.data, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- checkers
def test_exercise_checkers_accept_right_and_explain_wrong_answers():
    from mmbook.exercises import ch03

    right_f = lambda x, h, W_xf, W_hf, b_f: torch.sigmoid(x @ W_xf.T + h @ W_hf.T + b_f)
    tanh_f = lambda x, h, W_xf, W_hf, b_f: torch.tanh(x @ W_xf.T + h @ W_hf.T + b_f)
    assert ch03.check_forget_gate(right_f)
    fb = ch03.check_forget_gate(tanh_f)
    assert not fb and "sigmoid" in fb.message
    assert not ch03.check_forget_gate(lambda *args: None)
    assert not ch03.check_forget_gate(lambda *args: 1 / 0)  # errors become feedback

    torch_count = lambda D, H: sum(p.numel() for p in nn.LSTM(D, H).parameters())
    assert ch03.check_lstm_num_params(torch_count)
    fb = ch03.check_lstm_num_params(lambda D, H: 4 * H * (D + H + 1))
    assert not fb and "two bias" in fb.message

    assert ch03.check_gru_update(lambda z, n, h: (1 - z) * n + z * h)
    fb = ch03.check_gru_update(lambda z, n, h: z * n + (1 - z) * h)
    assert not fb and "swapped" in fb.message


# ------------------------------------------------------------------------ edge cases (issue 11)
_LAYERS = {"lstm": (LSTMScratch, torch.nn.LSTM), "gru": (GRUScratch, torch.nn.GRU),
           "rnn": (RNNScratch, torch.nn.RNN)}


@pytest.mark.parametrize("kind", list(_LAYERS))
def test_layers_refuse_length_zero_as_torch_does_but_clearly(kind):
    ours_cls, torch_cls = _LAYERS[kind]
    x = torch.zeros(2, 0, 3)
    with pytest.raises(RuntimeError, match="larger than 0"):  # torch refuses it too
        torch_cls(3, 4, batch_first=True)(x)
    with pytest.raises(ValueError, match=r"length L=0 \(shape \(2, 0, 3\)"):
        ours_cls(3, 4)(x)
    with pytest.raises(ValueError, match="length L=0"):
        ours_cls(3, 4)(torch.zeros(0, 3))  # unbatched


@pytest.mark.parametrize("kind", list(_LAYERS))
def test_layers_and_cells_name_a_dtype_mismatch(kind):
    ours_cls, _ = _LAYERS[kind]
    with pytest.raises(TypeError, match=r"input has dtype torch.float64 but .*torch.float32"):
        ours_cls(3, 4)(torch.zeros(2, 5, 3, dtype=torch.float64))
    cell = ours_cls(3, 4).cells[0]
    with pytest.raises(TypeError, match=r"float64 but .*Scratch's parameters are"):
        cell(torch.zeros(2, 3, dtype=torch.float64))
    # the same module in float64 takes float64 inputs and equals torch in float64
    ref = _LAYERS[kind][1](3, 4, batch_first=True).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(ours_cls.from_torch(ref)(x)[0], ref(x)[0])


@pytest.mark.parametrize("lengths, match", [
    (torch.tensor([0, 5]), r"\[1, 5\], got values from 0"),
    (torch.tensor([2, 6]), r"\[1, 5\], got values from 2 to 6"),
    (torch.tensor([2.0, 5.0]), "integers"),
    (torch.tensor([2]), r"shape \(1,\)"),
])
def test_layers_check_lengths(lengths, match):
    with pytest.raises(ValueError, match=match):
        LSTMScratch(3, 4)(torch.zeros(2, 5, 3), lengths=lengths)


@pytest.mark.parametrize("bad", [0, 2.0, True])
def test_sizes_must_be_positive_ints(bad):
    with pytest.raises(ValueError, match="must be a positive int"):
        LSTMScratch(3, bad)
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        GRUScratch(3, 4, num_layers=bad)
