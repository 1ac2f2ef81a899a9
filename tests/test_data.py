"""mmbook.data loaders on the real files in ../shared/data (MMBOOK_DATA)."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from mmbook.data import (
    AV_SIZES,
    MFEAT_VIEWS,
    av_wave,
    load_av_digits,
    load_mfeat,
    mnist_pca,
    peak_normalise,
    read_mnist,
    read_wav,
    remove_energy,
    spectrogram,
)

TINY = {"train": 300, "val": 50, "test": 100}


def _digit(f: str) -> int:
    return int(Path(f).name.split("_")[0])


def _take(f: str) -> int:
    return int(Path(f).stem.split("_")[2])


@pytest.fixture(scope="module")
def av():
    return {split: load_av_digits(split) for split in ("train", "val", "test")}


@pytest.fixture(scope="module")
def tiny_builds(tmp_path_factory):
    """The same small build made twice in separate caches, and once with another seed."""
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    return (load_av_digits("train", TINY, seed=0, cache=a),
            load_av_digits("train", TINY, seed=0, cache=b),
            load_av_digits("train", TINY, seed=1, cache=a))


# ----------------------------------------------------------------------------- AV digits
def test_av_build_is_the_same_on_one_thread_and_on_two():
    """The PCA behind the images sums 60,000 float32 rows: split across threads, the sum's
    order (and its last bits, then the data sets built on it) would follow the machine's
    thread count. It runs on one thread whatever the caller's setting."""
    from threadpoolctl import threadpool_limits

    before, runs = torch.get_num_threads(), []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with threadpool_limits(limits=threads):
                runs.append(mnist_pca())
                assert torch.get_num_threads() == threads  # restored afterwards
    finally:
        torch.set_num_threads(before)
    (mean1, basis1), (mean2, basis2) = runs
    assert np.array_equal(mean1, mean2) and np.array_equal(basis1, basis2)


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_av_shapes_and_dtypes(av, split):
    ds, n = av[split], AV_SIZES["small"][split]
    assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == torch.float32
    assert ds.audio.shape == (n, 41, 64) and ds.audio.dtype == torch.float32
    assert ds.lengths.shape == (n,) and ds.lengths.dtype == torch.int64
    assert ds.labels.shape == (n,) and ds.labels.dtype == torch.int64
    assert len(ds.audio_files) == n and ds.split == split
    assert ((ds.lengths >= 1) & (ds.lengths <= 41)).all()
    assert torch.isfinite(ds.images).all() and torch.isfinite(ds.audio).all()
    image, audio, length, label = ds[0]
    assert image.shape == (1, 28, 28) and audio.shape == (41, 64) and length.dim() == 0


def test_av_every_class_present(av):
    for ds in av.values():
        assert torch.bincount(ds.labels, minlength=10).min() > 0


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_av_paired_labels_agree(av, split):
    """The recording's digit (from its file name) and the MNIST label are the label."""
    ds = av[split]
    assert [_digit(f) for f in ds.audio_files] == ds.labels.tolist()
    _, y = read_mnist(split)
    offset = 55000 if split == "val" else 0
    assert np.array_equal(y[ds.image_indices.numpy() - offset], ds.labels.numpy())


def test_av_image_is_the_energy_removed_mnist_image(av):
    ds = av["test"]
    x, _ = read_mnist("test")
    mean, basis = mnist_pca(0.75)
    ref = torch.from_numpy(remove_energy(x[ds.image_indices[:20].numpy()], mean, basis))
    got = ds.images[:20].reshape(20, -1)
    # the loader standardises with one train mean and std: undo that by a linear fit
    corr = torch.corrcoef(torch.stack([got.flatten(), ref.flatten()]))[0, 1]
    assert corr > 0.999


def test_av_splits_are_disjoint(av):
    takes = {s: {_take(f) for f in av[s].audio_files} for s in av}
    assert takes["train"] <= set(range(10, 50))
    assert takes["val"] <= set(range(5, 10))
    assert takes["test"] <= set(range(0, 5))
    files = {s: set(av[s].audio_files) for s in av}
    assert not files["train"] & files["val"] and not files["train"] & files["test"]
    assert not files["val"] & files["test"]
    train, val = set(av["train"].image_indices.tolist()), set(av["val"].image_indices.tolist())
    assert max(train) < 55000 <= min(val)  # both from train-images, disjoint row ranges
    assert max(av["test"].image_indices.tolist()) < 10000  # t10k-images
    assert len(train) == len(av["train"])  # no image used twice


def test_av_deterministic_given_seed(tiny_builds):
    a, b, c = tiny_builds
    torch.testing.assert_close(a.images, b.images, rtol=0, atol=0)
    torch.testing.assert_close(a.audio, b.audio, rtol=0, atol=0)
    assert torch.equal(a.labels, b.labels) and a.audio_files == b.audio_files
    assert not torch.equal(a.image_indices, c.image_indices)
    assert not torch.allclose(a.audio, c.audio)


def test_av_custom_size(tiny_builds):
    a = tiny_builds[0]
    assert len(a) == TINY["train"] and a.images.shape == (TINY["train"], 1, 28, 28)


def test_av_modality_and_to(av):
    ds = av["val"]
    image, label = ds.modality("image")[3]
    audio, length, label2 = ds.modality("audio")[3]
    assert torch.equal(image, ds.images[3]) and torch.equal(audio, ds.audio[3])
    assert label == label2 == ds.labels[3] and length == ds.lengths[3]
    moved = ds.to("cpu")
    assert torch.equal(moved.images, ds.images) and moved.audio_files is ds.audio_files
    with pytest.raises(ValueError, match=r"one of \('image', 'audio'\)"):
        ds.modality("text")


def test_av_lengths_follow_the_recordings(av, data_root):
    ds = av["test"]
    for i in range(0, 1000, 97):
        samples = min(len(read_wav(data_root / "fsdd" / ds.audio_files[i])), 8000)
        assert ds.lengths[i] == samples // 200 + 1


def test_spectrogram_matches_torch_stft():
    x = torch.randn(3, 8000, generator=torch.Generator().manual_seed(0))
    ref = torch.stft(x, 256, hop_length=200, window=torch.hann_window(256),
                     return_complex=True).abs()[:, 1:, :]  # (N, 128, T)
    ref = (ref[:, 0::2] + ref[:, 1::2]) / 2  # (N, 64, T): neighbouring bins averaged
    torch.testing.assert_close(spectrogram(x), torch.log(ref + 1e-3).transpose(1, 2))
    assert spectrogram(x).shape == (3, 41, 64)


def test_causal_spectrogram_matches_torch_stft_on_the_left_padded_signal():
    x = torch.randn(3, 8000, generator=torch.Generator().manual_seed(0))
    padded = torch.cat([torch.zeros(3, 256), x], 1)  # the silence before the recording
    ref = torch.stft(padded, 256, hop_length=200, window=torch.hann_window(256), center=False,
                     return_complex=True).abs()[:, 1:, :]  # (N, 128, T)
    ref = (ref[:, 0::2] + ref[:, 1::2]) / 2  # (N, 64, T)
    causal = spectrogram(x, causal=True)
    torch.testing.assert_close(causal, torch.log(ref + 1e-3).transpose(1, 2))
    assert causal.shape == (3, 41, 64)


def test_causal_features_do_not_change_when_more_samples_arrive():
    """The causality test: the features of a prefix are the prefix of the features. The
    offline front-end fails it (the peak and the centred windows read the future)."""
    g = np.random.default_rng(0)
    a = (g.standard_normal(8000) * np.linspace(0.05, 1, 8000)).astype(np.float32)  # louder
    for k in (1000, 4000):
        np.testing.assert_array_equal(peak_normalise(a[:k], causal=True),
                                      peak_normalise(a, causal=True)[:k])
        assert not np.allclose(peak_normalise(a[:k]), peak_normalise(a)[:k])
        x, frames = torch.from_numpy(a)[None], k // 200  # frames ending by sample k
        torch.testing.assert_close(spectrogram(x[:, :k], causal=True)[:, :frames + 1],
                                   spectrogram(x, causal=True)[:, :frames + 1])
        assert not torch.allclose(spectrogram(x[:, :k])[:, frames], spectrogram(x)[:, frames])


def test_causal_av_digits_keep_the_pairs_and_change_only_the_audio(tmp_path, data_root):
    offline = load_av_digits("test", TINY, seed=0, cache=tmp_path)
    causal = load_av_digits("test", TINY, seed=0, cache=tmp_path, causal=True)
    assert causal.causal and not offline.causal
    assert torch.equal(causal.images, offline.images) and torch.equal(causal.labels,
                                                                      offline.labels)
    assert causal.audio_files == offline.audio_files
    assert causal.audio.shape == offline.audio.shape and not torch.allclose(
        causal.audio, offline.audio, atol=0.1)
    # the clean signal before the noise: the speaker's loudness fixed, then silence
    wave = av_wave(causal.audio_files[0])
    samples = min(len(read_wav(data_root / "fsdd" / causal.audio_files[0])), 8000)
    assert wave.shape == (8000,) and np.isclose(np.abs(wave).max(), 1.0, atol=1e-6)
    assert not wave[samples:].any()
    for i in range(0, 100, 13):  # one more frame: the windows end 16 ms later
        samples = min(len(read_wav(data_root / "fsdd" / causal.audio_files[i])), 8000)
        assert causal.lengths[i] == min((samples + 255) // 200 + 1, 41)
    assert causal.audio_mean.shape == causal.audio_std.shape == (64,)
    assert len(list(tmp_path.glob("*_causal_*.pt"))) == 1  # cached apart


@pytest.mark.parametrize("kwargs, match", [
    (dict(split="validation"), "split must be"),
    (dict(split="train", size="huge"), "size must be one of"),
    (dict(split="train", size={"train": 60000, "val": 10, "test": 10}), "larger than the source"),
    (dict(split="train", size={"train": 100, "val": 10}), "keys"),
    (dict(split="train", energy_removed=1.0), "energy_removed"),
    (dict(split="train", noise_std=-1.0), "noise_std"),
])
def test_av_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_av_digits(**kwargs)


def test_av_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_av_digits("train", TINY, seed=5, root=tmp_path / "nowhere", cache=tmp_path)


# ----------------------------------------------------------------------------- mfeat
def test_mfeat_shapes_and_alignment(data_root):
    d = load_mfeat()
    assert len(d["train"].y) == 1500 and len(d["test"].y) == 500
    raw = {v: np.genfromtxt(data_root / "mfeat" / f"mfeat-{v}.csv", delimiter=",",
                            skip_header=1) for v in MFEAT_VIEWS}
    for part in ("train", "test"):
        assert list(d[part].views) == list(MFEAT_VIEWS) == list(d[part].modalities)
        idx = d[part].index
        for view, dim in MFEAT_VIEWS.items():
            x = d[part].views[view]
            assert x.shape == (len(idx), dim) and x.dtype == np.float32
            # row i of every view is raw row index[i] of that view's file, label included
            np.testing.assert_array_equal(x, raw[view][idx, :-1].astype(np.float32))
            np.testing.assert_array_equal(d[part].y, raw[view][idx, -1].astype(np.int64))
    # stratified: 50 test digits of each class; the raw files are in class blocks of 200
    assert np.bincount(d["test"].y).tolist() == [50] * 10
    np.testing.assert_array_equal(raw["fou"][:, -1], np.repeat(np.arange(10), 200))


def test_mfeat_split_deterministic_and_disjoint():
    a, b, c = load_mfeat(["fou"]), load_mfeat(["fou"]), load_mfeat(["fou"], seed=1)
    np.testing.assert_array_equal(a["test"].index, b["test"].index)
    assert not np.array_equal(a["test"].index, c["test"].index)
    assert not set(a["train"].index) & set(a["test"].index)
    assert len(set(a["train"].index) | set(a["test"].index)) == 2000


@pytest.mark.parametrize("kwargs", [dict(views=["fou", "xyz"]), dict(views=[]),
                                    dict(test_size=1.5)])
def test_mfeat_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        load_mfeat(**kwargs)


# ----------------------------------------------------------------------------- exercises
def test_ch02_checkers_accept_right_and_reject_wrong_answers():
    from mmbook.exercises.ch02 import check_masked_mean, check_standardise

    def masked_mean(x, lengths):
        mask = (torch.arange(x.shape[1]) < lengths[:, None]).to(x.dtype)  # (N, T)
        return (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)

    assert check_masked_mean(masked_mean)
    assert not check_masked_mean(lambda x, lengths: x.mean(1))
    assert "divide by each sequence's length" in repr(check_masked_mean(
        lambda x, lengths: masked_mean(x, lengths) * lengths[:, None] / x.shape[1]))
    assert not check_masked_mean(lambda x, lengths: None)

    def standardise(a, b):
        mu, sd = a.mean(0), a.std(0)
        return (a - mu) / sd, (b - mu) / sd

    assert check_standardise(standardise)
    leaky = check_standardise(lambda a, b: ((a - a.mean(0)) / a.std(0),
                                            (b - b.mean(0)) / b.std(0)))
    assert not leaky and "leak" in repr(leaky)
    assert not check_standardise(lambda a, b: None)
    assert not check_standardise(lambda a, b: (a - a.mean(0), b - a.mean(0)))


# ----------------------------------------------------------------------------- the data contract
def _check_contract(ds, arity, tensors_only=True):
    """A ModalityDataset: items (*inputs, target); .modalities, .arity, .modality(name),
    .num_classes."""
    from mmbook.data.base import ModalityDataset

    item = ds[0]
    assert isinstance(ds, ModalityDataset) and len(item) == sum(arity) + 1
    assert tuple(ds.arity) == tuple(arity) and len(ds.modalities) == len(arity)
    assert all(isinstance(t, torch.Tensor) for t in item) or not tensors_only
    start = 0
    for name, a in zip(ds.modalities, arity):
        sub = ds.modality(name)
        assert len(sub) == len(ds) and len(sub[0]) == a + 1
        assert torch.equal(sub[0][-1], item[-1])
        for got, want in zip(sub[0][:-1], item[start:start + a]):  # the same inputs, in order
            assert torch.equal(got, want) if isinstance(want, torch.Tensor) else got == want
        start += a
    with pytest.raises(ValueError, match="name must be one of"):
        ds.modality("smell")
    if ds.num_classes is not None:
        labels = [int(ds[i][-1]) for i in range(len(ds))]
        assert max(labels) < ds.num_classes


def _every_data_set():
    """One small instance of each data set the package makes (no list to keep in sync:
    the names are checked against mmbook.data.__all__ below)."""
    from mmbook.data import (
        load_mfeat,
        make_interactions,
        make_sort_of_clevr,
        make_spoken_reviews,
    )

    return {
        "MultiViewDataset": (load_mfeat(["fou", "mor"])["test"], (1, 1)),
        "InteractionDataset": (make_interactions("synergy", n=50, seed=0), (1, 1)),
        "AVDigits": (load_av_digits("test", TINY, seed=0), (1, 2)),
        "SortOfCLEVR": (make_sort_of_clevr(4, image_size=32, seed=0), (1, 1)),
        "SpokenReviews": (make_spoken_reviews(60, seed=0, n_speakers=6)["test"], None),
    }


def test_every_data_set_class_is_listed_here():
    import importlib
    import inspect
    import pkgutil

    import mmbook.data as data

    classes = set()
    for info in pkgutil.iter_modules(data.__path__):
        module = importlib.import_module(f"mmbook.data.{info.name}")
        classes |= {n for n in getattr(module, "__all__", ())
                    if inspect.isclass(getattr(module, n))
                    and issubclass(getattr(module, n), torch.utils.data.Dataset)}
    assert classes - {"ModalityDataset"} == set(_every_data_set())


@pytest.mark.parametrize("name", ["MultiViewDataset", "InteractionDataset", "AVDigits",
                                  "SortOfCLEVR", "SpokenReviews"])
def test_every_data_set_is_a_modality_dataset(name):
    from mmbook.data.base import ModalityDataset

    ds, arity = _every_data_set()[name]
    assert isinstance(ds, ModalityDataset), type(ds).__mro__
    if arity is None:  # SpokenReviews: one input per modality, then the shared word counts
        item = ds[0]
        assert len(item) == len(ds.modalities) + 2
        for k, m in enumerate(ds.modalities):
            x, length, y = ds.modality(m)[0]
            assert torch.equal(x, item[k]) and torch.equal(length, item[-2])
            assert torch.equal(y, item[-1])
        return
    _check_contract(ds, arity, tensors_only=name != "SortOfCLEVR")


def test_every_loader_follows_the_data_contract():
    from mmbook.data import make_interactions

    d = load_mfeat(["fou", "mor"])
    _check_contract(d["test"], (1, 1))
    assert d["test"].num_classes == 10
    x_fou, x_mor, y = d["test"][3]
    np.testing.assert_array_equal(x_fou.numpy(), d["test"].views["fou"][3])
    assert int(y) == d["test"].y[3]
    ds = make_interactions("synergy", n=50, seed=0)
    _check_contract(ds, (1, 1))
    x1, x2, y = ds.tensors
    assert ds.modalities == ("x1", "x2") and ds.kind == "synergy" and ds.x1 is x1


def test_av_digits_follows_the_data_contract():
    ds = load_av_digits("test", TINY, seed=0)
    _check_contract(ds, (1, 2))
    assert ds.modalities == ("image", "audio") and ds.num_classes == 10


# ----------------------------------------------------------------------------- file formats
def test_mfeat_reader_checks_the_format(tmp_path, data_root):
    from mmbook.data import mfeat

    good = (data_root / "mfeat" / "mfeat-mor.csv").read_text().splitlines()
    cases = {
        "rows": "\n".join(good[:-1]) + "\n",                       # a row missing
        "nan": "\n".join(good[:5] + [",".join(["nan"] + good[5].split(",")[1:])]
                         + good[6:]) + "\n",
        "label": "\n".join(good[:5] + [",".join(good[5].split(",")[:-1] + ["11"])]
                           + good[6:]) + "\n",
        "text": "a,b\nnot,numbers\n",
    }
    patterns = {"rows": "expected 2000 rows", "nan": "NaN or inf", "label": "labels must be",
                "text": "not a numeric CSV|expected 2000 rows"}
    for name, text in cases.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        with mock.patch.object(mfeat, "fetch", return_value=path):
            with pytest.raises(ValueError, match=patterns[name]):
                mfeat._read_view("mor", None)


def test_idx_and_wav_readers_check_the_format(tmp_path):
    import gzip
    import wave

    from mmbook.data import av_digits

    ok = b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes([1, 2, 3])
    for name, data, match in [("magic", b"\x00\x00\x0d\x01" + ok[4:], "not an IDX"),
                              ("short", ok[:-1], "3 bytes\\) but 2 bytes follow"),
                              ("empty", b"", "not an IDX")]:
        path = tmp_path / f"{name}.gz"
        path.write_bytes(gzip.compress(data))
        with pytest.raises(ValueError, match=match):
            av_digits._read_idx(path, 1)
    path = tmp_path / "ok.gz"
    path.write_bytes(gzip.compress(ok))
    assert av_digits._read_idx(path, 1).tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="not an IDX"):
        av_digits._read_idx(path, 3)  # labels where images are expected
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(400))
    with pytest.raises(ValueError, match="mono 16-bit 8000 Hz.*2 channel"):
        av_digits.read_wav(stereo)


def test_a_bad_cache_file_is_refused_not_trusted(tmp_path):
    from mmbook.data import av_digits

    sizes = {"train": 12, "val": 10, "test": 11}

    def split(n):
        return {"images": torch.zeros(n, 1, 28, 28), "audio": torch.zeros(n, 41, 64),
                "lengths": torch.ones(n, dtype=torch.int64),
                "labels": torch.zeros(n, dtype=torch.int64),
                "image_indices": torch.arange(n), "audio_files": ["a.wav"] * n,
                "audio_mean": torch.zeros(64), "audio_std": torch.ones(64)}

    path = tmp_path / "cache.pt"
    good = {s: split(n) for s, n in sizes.items()}
    torch.save(good, path)
    assert torch.equal(av_digits._read_cache(path, sizes)["val"]["audio"], good["val"]["audio"])
    bad = {s: split(n) for s, n in sizes.items()}
    bad["val"]["images"] = bad["val"]["images"][:, :, :27]
    bad["test"]["audio"][0, 0, 0] = float("nan")
    for data, match in [(bad, r"val.images has shape \(10, 1, 27, 28\)"),
                        ({"train": good["train"]}, "KeyError"),
                        ({**good, "test": {**good["test"], "audio": bad["test"]["audio"]}},
                         "test.audio holds NaN")]:
        torch.save(data, path)
        with pytest.warns(UserWarning, match=f"not a valid AV digits cache.*{match}"):
            assert av_digits._read_cache(path, sizes) is None
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="rebuilding"):
        assert av_digits._read_cache(path, sizes) is None
