"""Trainer under torchrun (2 CPU processes, gloo) equals one process; clear errors otherwise."""

import os
import subprocess
import sys
from pathlib import Path

import ddp_checks  # a sibling file, run by torchrun below
import pytest
import torch

from mmbook import distributed

HERE = Path(__file__).parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}


def _run(args, cwd):
    return subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The checks of ddp_checks.py as one process and as two."""
    tmp = tmp_path_factory.mktemp("ddp")
    one = _run([sys.executable, str(HERE / "ddp_checks.py"), "one.pt"], tmp)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _run([*TORCHRUN, str(HERE / "ddp_checks.py"), "two.pt"], tmp)
    assert two.returncode == 0, two.stderr[-3000:]
    return torch.load(tmp / "one.pt"), torch.load(tmp / "two.pt"), one.stdout, two.stdout


def _close_states(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.parametrize("kind", ["default", "hook", "manual"])
def test_two_processes_train_as_one(runs, kind):
    one, two, _, _ = runs
    assert one["world_size"] == 1 and two["world_size"] == 2
    _close_states(one[kind]["state"], two[kind]["state"])
    h1, h2 = one[kind]["history"], two[kind]["history"]
    assert h1.keys() == h2.keys()
    for k in h1:  # losses logged over all processes' items, validation included
        torch.testing.assert_close(torch.tensor(h2[k]), torch.tensor(h1[k]), rtol=1e-4,
                                   atol=1e-5, equal_nan=True, msg=k)
    # the weights moved: the comparison is not between two initial states
    init = {"default": ddp_checks.mlp, "hook": ddp_checks.StepModel,
            "manual": ddp_checks.TwoOptimizers}[kind]().state_dict()
    assert any(not torch.allclose(one[kind]["state"][k], v) for k, v in init.items())


def test_distributed_evaluation_counts_each_item_once(runs):
    """33 validation items on 2 processes: 17 + 16, no padded repeat."""
    one, two, _, _ = runs
    for kind in ("default", "hook", "manual"):
        e1, e2 = one[kind]["eval"], two[kind]["eval"]
        assert e1.keys() == e2.keys()
        acc = "accuracy" if kind == "default" else "acc"
        # accuracy = hits / 33: a repeated item would make it hits' / 34
        assert round(e2[acc] * 33, 6) == round(e1[acc] * 33, 6)
        assert e2[acc] * 33 == pytest.approx(round(e2[acc] * 33))
        torch.testing.assert_close(e2["loss"], e1["loss"], rtol=1e-4, atol=1e-6)


def test_resume_equals_straight_in_one_and_two_processes(runs):
    for result in runs[:2]:  # a model with dropout: the random state is resumed too
        straight, resumed = result["straight"], result["resumed"]
        assert repr(resumed["history"]) == repr(straight["history"])  # NaN == NaN too
        for k, v in straight["state"].items():
            assert torch.equal(resumed["state"][k], v), k


def test_only_rank_zero_prints(runs):
    _, _, one_out, two_out = runs
    assert one_out.count("epoch 1/3") == 1
    assert two_out.count("epoch 1/3") == 1


def test_a_process_without_items_is_an_error_and_a_failed_exit(tmp_path):
    """Issue 23: 1 item on 2 processes used to log 'loss nan', exit 0, save untrained weights."""
    done = _run([*TORCHRUN, "-m", "mmbook.examples.train_av_digits", "--n-train", "1",
                 "--epochs", "1", "--out", "w.pt"], tmp_path)
    assert done.returncode != 0
    assert "train_data has 1 item for 2 processes" in done.stderr
    assert not (tmp_path / "w.pt").exists()


def test_helpers_are_single_process_no_ops(tmp_path):
    assert (distributed.rank(), distributed.world_size(), distributed.is_distributed()) == \
        (0, 1, False)
    assert distributed.all_gather_sums({"loss": 2.0}, 3) == ({"loss": 2.0}, 3)
    assert distributed.all_true(True) and not distributed.all_true(False)
    distributed.save({"a": torch.ones(2)}, tmp_path / "x.pt")
    assert torch.equal(torch.load(tmp_path / "x.pt")["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]  # no temporary file left


def test_global_batch_sampler_shares_cover_each_batch():
    order = list(torch.randperm(20, generator=torch.Generator().manual_seed(0)))
    one = list(distributed.GlobalBatchSampler(order, 6, num_replicas=1, rank=0))
    shares = [list(distributed.GlobalBatchSampler(order, 6, num_replicas=3, rank=r))
              for r in range(3)]
    for i, batch in enumerate(one):
        together = sorted(x for share in shares for x in share[i])
        if len(batch) % 3 == 0:
            assert together == sorted(batch)
        else:  # the last batch (2 items of 20 % 6) is padded by repeating its first items
            assert set(together) == set(batch)
    assert [len(s) for s in shares] == [4, 4, 4]
    with pytest.raises(ValueError, match="batch_size=5 .* multiple of the number of processes"):
        distributed.GlobalBatchSampler(order, 5, num_replicas=2, rank=0)
    with pytest.raises(ValueError, match="rank must be in"):
        distributed.GlobalBatchSampler(order, 4, num_replicas=2, rank=2)
