"""AV digits: a written digit (MNIST) paired with a spoken digit (FSDD) of the same label.

Built the way CentralNet (Vielzeuf et al., 2018) and MultiBench (Liang et al., 2021)
describe AV-MNIST, so that neither modality alone is near-perfect:

* **image**: an MNIST digit with most of its PCA energy removed (the PCA basis is fitted
  on the MNIST training images only);
* **audio**: a log-magnitude spectrogram (``torch.stft``) of an FSDD recording with
  white noise added to the waveform.

Each source keeps its own split, so no test item reaches training: MNIST train images
feed ``train``/``val`` (last 5000 of the 60000 are validation, as in MultiBench) and
t10k feeds ``test``; FSDD takes 10-49 feed ``train``, takes 5-9 ``val``, takes 0-4
``test``. Pairs are drawn within each class with a seeded generator.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
import time
import wave
from dataclasses import dataclass

import numpy as np
import torch

from .download import fetch
from .paths import cache_dir

__all__ = ["AVDigits", "load_av_digits", "AV_SIZES", "SAMPLE_RATE"]

SAMPLE_RATE = 8000
N_SAMPLES = 8000  # recordings are cropped or zero-padded to 1 s
N_FFT = 128
HOP = 200  # 25 ms -> 41 frames per second
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
AV_SIZES = {
    "small": {"train": 3000, "val": 500, "test": 1000},
    "full": {"train": 55000, "val": 5000, "test": 10000},
}
_FSDD_TAKES = {"train": range(10, 50), "val": range(5, 10), "test": range(0, 5)}
_VERSION = 1


@dataclass
class AVDigits(torch.utils.data.Dataset):
    """Paired image/audio digits, ready to train.

    Attributes:
        images: float32 ``(N, 1, 28, 28)``, energy-removed and standardised.
        audio: float32 ``(N, T, F)``: log-magnitude spectrogram frames, batch first,
            time second (T = 41 frames of 25 ms, F = 64 frequency bins), standardised.
        lengths: int64 ``(N,)``: frames that hold the recording (the rest is padding).
        labels: int64 ``(N,)``: the digit, shared by both modalities.
        audio_files: the FSDD file each row's audio comes from.
        split: ``"train"``, ``"val"`` or ``"test"``.

    Shape:
        ``ds[i]`` is ``(image (1, 28, 28), audio (T, F), length (), label ())``.
    """

    images: torch.Tensor
    audio: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    audio_files: list
    split: str

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.audio[i], self.lengths[i], self.labels[i]

    def __repr__(self) -> str:
        return (f"AVDigits(split={self.split!r}, n={len(self)}, images="
                f"{tuple(self.images.shape)}, audio={tuple(self.audio.shape)})")


# ----------------------------------------------------------------------------- MNIST
def _read_idx(path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _mnist(split: str, root):
    prefix = "t10k" if split == "test" else "train"
    x = _read_idx(fetch("mnist", f"{prefix}-images-idx3-ubyte.gz", root))
    y = _read_idx(fetch("mnist", f"{prefix}-labels-idx1-ubyte.gz", root))
    if split == "train":
        x, y = x[:55000], y[:55000]
    elif split == "val":
        x, y = x[55000:], y[55000:]
    return x.reshape(len(x), -1).astype(np.float32) / 255.0, y.astype(np.int64)


def _pca_basis(root, energy_removed: float):
    """Principal directions of MNIST train images that keep ``1 - energy_removed``."""
    x, _ = _mnist("train", root)
    mean = x.mean(0)
    cov = torch.from_numpy(np.cov((x - mean).T).astype(np.float64))
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    evals, evecs = evals.flip(0), evecs.flip(1)
    kept = torch.cumsum(evals, 0) / evals.sum()
    k = int((kept < 1.0 - energy_removed).sum()) + 1
    return mean, evecs[:, :k].float().numpy()


def _remove_energy(x, mean, basis) -> np.ndarray:
    """Project onto the kept principal directions and back (a low-energy reconstruction)."""
    return ((x - mean) @ basis) @ basis.T + mean


# ----------------------------------------------------------------------------- FSDD
def _read_wav(path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if w.getframerate() != SAMPLE_RATE or w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit {SAMPLE_RATE} Hz audio")
        a = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return a.astype(np.float32) / 32768.0


def _fsdd_files(split: str):
    return [f"recordings/{d}_{s}_{t}.wav" for d in range(10) for s in SPEAKERS
            for t in _FSDD_TAKES[split]]


def spectrogram(wave_batch: torch.Tensor) -> torch.Tensor:
    """Log-magnitude spectrogram, batch first and time second.

    .. math:: S_{t,f} = \\log\\left(|\\mathrm{STFT}(x)_{f,t}| + 10^{-3}\\right)

    Shape:
        - wave_batch: :math:`(N, \\text{samples})`
        - output: :math:`(N, T, F)` with F = 64 (the DC bin is dropped)
    """
    window = torch.hann_window(N_FFT, device=wave_batch.device)
    spec = torch.stft(wave_batch, N_FFT, hop_length=HOP, window=window, return_complex=True)
    mag = spec.abs()[:, 1:, :]  # (N, F, T), DC dropped
    return torch.log(mag + 1e-3).transpose(1, 2).contiguous()  # (N, T, F)


def _audio(split: str, root, noise_std: float, rng: np.random.Generator):
    files = _fsdd_files(split)
    waves = np.zeros((len(files), N_SAMPLES), np.float32)
    lengths = np.zeros(len(files), np.int64)
    for i, rel in enumerate(files):
        a = _read_wav(fetch("fsdd", rel, root))[:N_SAMPLES]
        a = a / (np.abs(a).max() + 1e-8)  # peak-normalise: loudness is not the label
        waves[i, : len(a)] = a
        lengths[i] = len(a) // HOP + 1
    waves += noise_std * rng.standard_normal(waves.shape).astype(np.float32)
    labels = np.array([int(f.split("/")[1][0]) for f in files])
    return spectrogram(torch.from_numpy(waves)), torch.from_numpy(lengths), labels, files


# ----------------------------------------------------------------------------- build
def _standardise(x: torch.Tensor, mean, std) -> torch.Tensor:
    return (x - mean) / std


def _build(size: str, seed: int, root, energy_removed: float, noise_std: float):
    rng = np.random.default_rng(seed)
    mean, basis = _pca_basis(root, energy_removed)
    out = {}
    for split in ("train", "val", "test"):
        n = AV_SIZES[size][split]
        x, y = _mnist(split, root)
        idx = np.sort(rng.choice(len(y), size=n, replace=False))
        x, y = _remove_energy(x[idx], mean, basis), y[idx]
        spec, lengths, alabels, files = _audio(split, root, noise_std, rng)
        pick = np.empty(n, np.int64)
        for d in range(10):  # pair each image with a recording of the same digit
            rows, pool = np.flatnonzero(y == d), np.flatnonzero(alabels == d)
            pick[rows] = rng.choice(pool, size=len(rows), replace=True)
        out[split] = dict(images=torch.from_numpy(x.astype(np.float32)).view(n, 1, 28, 28),
                          audio=spec[pick], lengths=lengths[pick],
                          labels=torch.from_numpy(y), audio_files=[files[i] for i in pick])
    # standardise with training statistics only
    im_m, im_s = out["train"]["images"].mean(), out["train"]["images"].std()
    au_m = out["train"]["audio"].mean(dim=(0, 1))
    au_s = out["train"]["audio"].std(dim=(0, 1))
    for d in out.values():
        d["images"] = _standardise(d["images"], im_m, im_s)
        d["audio"] = _standardise(d["audio"], au_m, au_s)
    return out


def _cache_file(size, seed, energy_removed, noise_std, cache):
    key = json.dumps([_VERSION, size, seed, energy_removed, noise_std])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_dir(cache) / f"av_digits_{size}_{digest}.pt"


def _atomic_save(obj, path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_av_digits(split: str = "train", size: str = "small", seed: int = 0, *,
                   energy_removed: float = 0.75, noise_std: float = 0.3,
                   root=None, cache=None, verbose: bool = False) -> AVDigits:
    """Load (building and caching on first use) one split of AV digits.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: ``"small"`` (3000/500/1000, trains in seconds on a CPU) or ``"full"``
            (55000/5000/10000, the MultiBench AV-MNIST size).
        seed: seeds the image sampling, the pairing and the audio noise.
        energy_removed: fraction of MNIST's PCA energy removed from the images.
        noise_std: standard deviation of the white noise added to the peak-normalised
            waveforms.
        root: data root with the raw files (default: ``$MMBOOK_DATA`` or the user cache).
        cache: folder for the built tensors (default: ``$MMBOOK_CACHE`` or the user cache).
        verbose: print the build time.

    Returns:
        an :class:`AVDigits` dataset.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    if size not in AV_SIZES:
        raise ValueError(f"size must be one of {tuple(AV_SIZES)}, got {size!r}")
    if not 0.0 <= energy_removed < 1.0:
        raise ValueError(f"energy_removed must be in [0, 1), got {energy_removed!r}")
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")
    path = _cache_file(size, seed, energy_removed, noise_std, cache)
    if path.exists():
        data = torch.load(path, weights_only=False)
    else:
        start = time.perf_counter()
        data = _build(size, seed, root, energy_removed, noise_std)
        _atomic_save(data, path)
        if verbose:
            print(f"built AV digits ({size}) in {time.perf_counter() - start:.1f} s -> {path}")
    return AVDigits(split=split, **data[split])
