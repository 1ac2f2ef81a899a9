"""mmbook.profile against the tools it wraps: FlopCounterMode, torch.utils.benchmark."""

import contextlib
import copy
import warnings

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mmbook.profile import (
    count_flops,
    count_parameters,
    measure_latency,
    model_size_bytes,
    peak_memory,
    profile_model,
)
from mmbook.rnn import LSTMScratch


def test_count_parameters_matches_closed_form():
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    assert count_parameters(model) == 5 * 7 + 7 + 7 * 3 + 3
    model[0].weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 7 + 7 * 3 + 3


def test_flops_of_linear_equal_flop_counter_and_closed_form():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    x = torch.randn(8, 16)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    assert count_flops(model, x) == counter.get_total_flops() == 2 * 8 * (16 * 32 + 32 * 4)


@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, False), (1, True)])
def test_lstm_flops_equal_flop_counter_on_the_scratch_lstm(num_layers, bidirectional):
    """FlopCounterMode cannot see nn.LSTM's fused kernel; our closed form must equal what it
    counts on LSTMScratch, which computes the same gates with visible matmuls."""
    x = torch.randn(3, 9, 5)
    torch_lstm = nn.LSTM(5, 6, num_layers=num_layers, bidirectional=bidirectional,
                         batch_first=True)
    if not bidirectional:
        scratch = LSTMScratch(5, 6, num_layers=num_layers)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            scratch(x)
        assert count_flops(torch_lstm, x) == counter.get_total_flops()
    per_dir = [2 * 4 * 6 * (5 + 6)] + [2 * 4 * 6 * (6 * (2 if bidirectional else 1) + 6)] * (
        num_layers - 1)
    dirs = 2 if bidirectional else 1
    assert count_flops(torch_lstm, x) == 3 * 9 * dirs * sum(per_dir)


def test_lstm_flops_follow_packed_lengths():
    lstm = nn.LSTM(4, 8, batch_first=True)
    x = torch.randn(2, 10, 4)
    packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor([10, 3]), batch_first=True)
    assert count_flops(lstm, (packed,)) == (10 + 3) * 2 * 4 * 8 * (4 + 8)


def test_peak_memory_counts_activations_not_parameters():
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    x = torch.randn(32, 64)
    # the (32, 128) linear output and the (32, 128) ReLU output are alive together
    assert peak_memory(model, x) == 2 * 32 * 128 * 4
    assert peak_memory(nn.Identity(), x) == 0


def test_latency_reports_median_and_spread():
    row = measure_latency(nn.Linear(8, 8), torch.randn(4, 8), min_run_time=0.05, num_threads=1)
    assert row["num_threads"] == 1 and row["runs"] >= 1
    assert 0 < row["median_ms"] < 1e3 and row["iqr_ms"] >= 0
    with pytest.raises(ValueError, match="min_run_time"):
        measure_latency(nn.Linear(8, 8), torch.randn(4, 8), min_run_time=0)


def test_profile_model_row_and_size():
    model = nn.Linear(100, 10)
    row = profile_model(model, torch.randn(2, 100), min_run_time=0.05)
    assert row["params"] == 1010
    assert row["MFLOPs"] == pytest.approx(2 * 2 * 100 * 10 / 1e6)
    assert model_size_bytes(model) > 1010 * 4  # the weights plus the file's framing
    assert model.training  # the mode is restored


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        count_flops(lambda x: x, torch.zeros(1))
    with pytest.raises(TypeError, match="inputs must be a tensor"):
        count_flops(nn.Identity(), "x")


# --- issue 23: fused kernels that FlopCounterMode cannot see, and what cannot be counted
def _visible_count(fn) -> int:
    """FlopCounterMode on torch's unfused path: attention as visible matmuls (MATH backend)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        fn()
    return counter.get_total_flops()


def test_transformer_text_encoder_in_eval_mode_is_counted():
    """The eval-mode fast path (fused encoder layer) is counted as the unfused layer is."""
    from mmbook.text import TransformerTextEncoder

    torch.manual_seed(0)
    enc = TransformerTextEncoder(30, embed_dim=16, num_heads=2, num_layers=2,
                                 dim_feedforward=24, max_len=12)
    ids, lengths = torch.randint(1, 30, (3, 9)), torch.tensor([9, 4, 6])
    enc.train()  # dropout is 0: the same computation on the unfused, visible path
    want = _visible_count(lambda: enc(ids, lengths))
    assert want > 0
    assert count_flops(enc.eval(), (ids, lengths)) == want
    row = profile_model(enc, (ids, lengths), min_run_time=0.01)
    assert row["MFLOPs"] == pytest.approx(want / 1e6)


def test_nested_tensor_fast_path_counts_the_real_tokens():
    """nn.TransformerEncoder turns a padded batch into a nested tensor in eval mode: the
    fused layer then computes on the real tokens only, and so does the count."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True)
    enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=True).eval()
    x, lengths = torch.randn(3, 7, 8), [7, 2, 5]
    pad = torch.arange(7)[None, :] >= torch.tensor(lengths)[:, None]
    want = sum(_visible_count(lambda n=n: layer.train()(x[n:n + 1, :lengths[n]]))
               for n in range(3))
    layer.eval()
    assert count_flops(enc, (x, None, pad)) == want


def test_multihead_attention_fast_path_is_counted():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x, y = torch.randn(2, 5, 8), torch.randn(2, 3, 8)
    for q, kv in ((x, x), (x, y)):  # self-attention (one packed projection) and cross
        mha.train()
        want = _visible_count(lambda q=q, kv=kv: mha(q, kv, kv))
        assert count_flops(mha.eval(), (q, kv, kv)) == want
    # kdim != embed_dim never takes the fast path: FlopCounterMode counts it, once
    other = nn.MultiheadAttention(8, 2, kdim=6, vdim=6, batch_first=True).eval()
    z = torch.randn(2, 3, 6)
    assert count_flops(other, (x, z, z)) == _visible_count(lambda: other(x, z, z))


def test_cross_modal_attention_without_weights_counts_the_attention_matmuls():
    """The issue's case: need_weights=False runs F.scaled_dot_product_attention's fused CPU
    kernel, which FlopCounterMode counts as 0 (here 61,440 counted instead of 75,264)."""
    from mmbook.attention import MultiheadCrossModalAttention, scaled_dot_product_attention

    torch.manual_seed(0)
    attn = MultiheadCrossModalAttention(embed_dim=16, num_heads=2)
    x, y = torch.randn(4, 6, 16), torch.randn(4, 9, 16)
    readable = _visible_count(lambda: attn(x, y, need_weights=True))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        attn(x, y, need_weights=False)
    assert counter.get_total_flops() < readable  # the blind spot
    assert count_flops(attn, (x, y, None, None, None, False)) == readable
    assert count_flops(attn, (x, y)) == readable  # the readable path: nothing added twice
    q, k, v = torch.randn(3, 2, 4, 5, 8), torch.randn(3, 2, 4, 7, 8), torch.randn(3, 2, 4, 7, 6)
    fused = nn.Module()
    fused.forward = lambda q, k, v: scaled_dot_product_attention(q, k, v, need_weights=False)
    assert count_flops(fused, (q, k, v)) == _visible_count(
        lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))


@contextlib.contextmanager
def _no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _quantize(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        return torch.ao.quantization.quantize_dynamic(
            model, {nn.Linear, nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.RNNCell},
            dtype=torch.qint8)


class _Recurrent(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](5, 6, num_layers=2, batch_first=True)
        self.head = nn.Sequential(nn.Linear(6, 7), nn.ReLU(), nn.Linear(7, 3))

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_dynamic_int8_layers_are_counted_like_the_float_ones(cell):
    """quantize_dynamic's int8 linear and recurrent layers vanished from the count."""
    torch.manual_seed(0)
    model, x = _Recurrent(cell).eval(), torch.randn(2, 8, 5)
    if cell == "lstm":  # the float reference through visible matmuls: LSTMScratch
        scratch = LSTMScratch(5, 6, num_layers=2)
        want = _visible_count(lambda: scratch(x)) + _visible_count(lambda: model.head(
            torch.zeros(2, 6)))
    else:  # torch's GRU on the CPU runs visible matmuls
        want = _visible_count(lambda: model(x))
    assert count_flops(model, x) == want
    assert count_flops(_quantize(model), x) == want


@pytest.mark.parametrize("cell", [nn.LSTMCell, nn.GRUCell, nn.RNNCell])
def test_dynamic_int8_cells_are_counted_like_the_float_ones(cell):
    torch.manual_seed(0)
    model, x = cell(5, 6), torch.randn(3, 5)
    want = _visible_count(lambda: model(x))  # torch's float cells run visible addmm
    assert want > 0 and count_flops(_quantize(nn.Sequential(model)), x) == want


def test_lstm_with_projections_closed_form_equals_the_visible_cpu_path():
    from mmbook.profile import _rnn_flops

    lstm, x = nn.LSTM(4, 8, num_layers=2, proj_size=3, batch_first=True), torch.randn(2, 5, 4)
    assert _rnn_flops(lstm, x) == _visible_count(lambda: lstm(x)) > 0


def test_matrix_vector_and_sparse_products_are_counted():
    from mmbook.fusion import ModalityGraphFusion
    from mmbook.graph import GraphConv

    A, v = torch.randn(6, 5), torch.randn(5)
    mv = nn.Module()
    mv.forward = lambda A, v: (A @ v, torch.addmv(torch.zeros(6), A, v), v @ v)
    want = _visible_count(lambda: (A @ v[:, None], A @ v[:, None], v[None] @ v[:, None]))
    assert count_flops(mv, (A, v)) == want == 2 * (6 * 5 * 2 + 5)
    fusion = ModalityGraphFusion((6, 4), out_features=8)  # its attention scores are mv
    zs = [torch.randn(3, 6), torch.randn(3, 4)]
    with _no_warning():
        counted = count_flops(fusion, (zs,))
    N, M, E = 3, 2, 8
    assert counted == _visible_count(lambda: fusion(zs)) + 2 * (2 * N * M * E)
    # torch.sparse.mm with a COO adjacency: 2 FLOPs per stored entry and output column
    g = torch.Generator().manual_seed(0)
    adj = (torch.rand(7, 7, generator=g) < 0.3).float()
    conv, x = GraphConv(4, 3, normalize=False), torch.randn(7, 4)
    sparse = adj.to_sparse()
    assert count_flops(conv, (x, sparse)) == 2 * 7 * 4 * 3 + 2 * sparse._nnz() * 3
    assert count_flops(conv, (x, adj.to_sparse_csr())) == count_flops(conv, (x, sparse))
    assert count_flops(conv, (x, adj)) == 2 * 7 * 4 * 3 + 2 * 7 * 7 * 3  # dense: N^2 D


def test_ops_without_a_formula_are_named_in_a_warning():
    bilinear = nn.Bilinear(3, 4, 5)
    with pytest.warns(UserWarning, match=r"aten::_trilinear \(1x\).*too low"):
        count_flops(bilinear, (torch.randn(2, 3), torch.randn(2, 4)))
    with _no_warning():  # nothing to warn about when everything is counted
        count_flops(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), torch.randn(2, 3))


def test_int8_matmul_is_counted_like_the_float_one():
    """torch._int_mm (torchao's int8 products) was invisible to FlopCounterMode."""
    a = torch.randint(-128, 128, (17, 32), dtype=torch.int8)
    b = torch.randint(-128, 128, (32, 24), dtype=torch.int8)
    int_mm = nn.Module()
    int_mm.forward = lambda a, b: torch._int_mm(a, b)
    want = _visible_count(lambda: a.float() @ b.float())
    with _no_warning():
        assert count_flops(int_mm, (a, b)) == want == 2 * 17 * 32 * 24


def test_torchao_int8_linear_layers_are_counted_like_the_float_ones():
    ao = pytest.importorskip("torchao.quantization")
    torch.manual_seed(0)
    model, x = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8)).eval(), \
        torch.randn(5, 32)
    want = _visible_count(lambda: model(x))
    quantized = copy.deepcopy(model)
    ao.quantize_(quantized, ao.Int8DynamicActivationInt8WeightConfig())
    assert type(quantized[0].weight).__name__ == "Int8Tensor"  # really quantised
    with _no_warning():
        assert count_flops(quantized, x) == want == 2 * 5 * (32 * 64 + 64 * 8)
