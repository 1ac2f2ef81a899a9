"""mmbook.profile against the tools it wraps: FlopCounterMode, torch.utils.benchmark."""

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
