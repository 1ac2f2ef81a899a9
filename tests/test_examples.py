"""The DDP example: two processes under torchrun equal one process with the same global batch."""

import os
import subprocess
import sys

import torch

from mmbook.examples.train_av_digits import build_model, train


def _run(args, tmp_path, env):
    return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


def test_single_process_is_deterministic():
    a = train(epochs=1, batch_size=32, n_train=64, progress=False)
    b = train(epochs=1, batch_size=32, n_train=64, progress=False)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert a["world_size"] == 1 and len(a["losses"]) == 1


def test_ddp_two_processes_equal_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    common = ["-m", "mmbook.examples.train_av_digits", "--epochs", "2", "--n-train", "192",
              "--batch-size", "32"]
    one = _run([sys.executable, *common, "--out", "one.pt"], tmp_path, env)
    assert one.returncode == 0, one.stderr[-2000:]
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2", *common, "--out", "two.pt"], tmp_path, env)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "(2 processes)" in two.stdout and "(1 process)" in one.stdout
    w1, w2 = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert w1.keys() == w2.keys() == build_model().state_dict().keys()
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5, msg=k)
    # and training moved the weights: the comparison is not between two initial states
    init = build_model().state_dict()
    assert any(not torch.allclose(w1[k], init[k]) for k in w1)


def test_bad_arguments_are_named():
    import pytest

    with pytest.raises(ValueError, match="epochs must be a positive int"):
        train(epochs=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        train(batch_size=2.5)


def test_checkpoint_and_resume_continue_the_run(tmp_path):
    """--checkpoint F --resume F: the first launch starts (no F yet), the second continues."""
    ckpt = str(tmp_path / "ckpt.pt")
    straight = train(epochs=2, batch_size=32, n_train=64, progress=False)
    first = train(epochs=1, batch_size=32, n_train=64, progress=False, checkpoint=ckpt,
                  resume=ckpt)
    resumed = train(epochs=2, batch_size=32, n_train=64, progress=False, resume=ckpt)
    assert len(first["losses"]) == 1 and resumed["losses"] == straight["losses"]
    for k, v in straight["state_dict"].items():
        assert torch.equal(resumed["state_dict"][k], v), k
