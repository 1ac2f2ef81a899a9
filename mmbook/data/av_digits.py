"""AV digits: a written digit (MNIST) paired with a spoken digit (FSDD) of the same label.

Built the way CentralNet (Vielzeuf et al., 2018) and MultiBench (Liang et al., 2021)
describe AV-MNIST, so that neither modality alone is near-perfect:

* **image**: an MNIST digit with most of its PCA energy removed (the PCA basis is fitted
  on the MNIST training images only);
* **audio**: a log-magnitude spectrogram (``torch.stft``) of an FSDD recording with
  white noise added to the waveform.

Each clean recording is divided by its peak before the noise is added: that sets every
speaker to the same loudness and the noise to a fixed signal-to-noise ratio, so it is
part of how the data set simulates a noisy microphone signal x (:func:`av_wave`, then
the noise). The audio features of x are **offline** by default:
``torch.stft(center=True)`` centres frame t on sample 200t, so it reads 128 samples
(16 ms) ahead, and its first frame mirrors samples from the future. ``causal=True``
builds the same data set (same images, pairs, signals x and noise draws) with a
front-end that uses only the past: x divided by its running peak
(:func:`peak_normalise`, which removes loudness as a live stream must) and windows that
end at the newest sample (:func:`spectrogram`); a stream computes it as the samples
arrive (:class:`mmbook.models.StreamingSpectrogram`).

Each source keeps its own split, so no test item reaches training: MNIST train images
feed ``train``/``val`` (last 5000 of the 60000 are validation, as in MultiBench) and
t10k feeds ``test``; FSDD takes 10-49 feed ``train``, takes 5-9 ``val``, takes 0-4
``test``. Pairs are drawn within each class with a seeded generator.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
import wave
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ..utils import (
    atomic_write,
    check_choice,
    check_positive,
    check_positive_int,
    check_probability,
    one_thread,
)
from .base import ModalityDataset
from .download import ensure, fetch
from .paths import cache_dir

__all__ = ["AVDigits", "load_av_digits", "AV_SIZES", "AV_MAX_SIZES", "SAMPLE_RATE", "HOP",
           "N_FFT", "spectrogram", "peak_normalise", "av_wave", "read_wav", "read_mnist",
           "mnist_pca", "remove_energy"]

SAMPLE_RATE = 8000
N_SAMPLES = 8000  # recordings are cropped or zero-padded to 1 s
N_FFT = 256  # 32 ms Hann windows every 25 ms: every sample is seen
HOP = 200  # 25 ms -> 41 frames per second
PEAK_FLOOR = 0.01  # -40 dB of full scale: below the peak of every FSDD recording
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
AV_SIZES = {
    "small": {"train": 3000, "val": 500, "test": 1000},
    "full": {"train": 55000, "val": 5000, "test": 10000},
}
AV_MAX_SIZES = {"train": 55000, "val": 5000, "test": 10000}  # MNIST images per split
SPLITS = ("train", "val", "test")
_MNIST_OFFSET = {"train": 0, "val": 55000, "test": 0}  # first row of each split in its file
_FSDD_TAKES = {"train": range(10, 50), "val": range(5, 10), "test": range(0, 5)}
_MNIST_FILES = tuple(f"{p}-{k}-idx{d}-ubyte.gz" for p in ("train", "t10k")
                     for k, d in (("images", 3), ("labels", 1)))
# 6: built on one thread (the same bits on any machine); 5: audio standardisation
# statistics stored, causal builds (running peak of x)
_VERSION = 6


@dataclass
class AVDigits(ModalityDataset):
    """Paired image/audio digits, ready to train.

    Attributes:
        images: float32 ``(N, 1, 28, 28)``, energy-removed and standardised.
        audio: float32 ``(N, T, F)``: log-magnitude spectrogram frames, batch first,
            time second (T = 41 frames, 32 ms windows every 25 ms; F = 64 bands of
            62.5 Hz), standardised.
        lengths: int64 ``(N,)``: frames that hold the recording (the rest is padding).
        labels: int64 ``(N,)``: the digit, shared by both modalities.
        audio_files: the FSDD file each row's audio comes from
            (``recordings/{digit}_{speaker}_{take}.wav``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        image_indices: int64 ``(N,)``: the row of the MNIST file each image comes from
            (``train-images`` for train and val, ``t10k-images`` for test).
        audio_mean, audio_std: float32 ``(F,)``: the per-band statistics of the training
            split that standardised ``audio`` (what a streaming front-end applies).
        causal: whether the audio front-end uses only the past (see the module).

    Shape:
        ``ds[i]`` is ``(image (1, 28, 28), audio (T, F), length (), label ())``.

    The data contract (a :class:`~mmbook.data.base.ModalityDataset`): ``modalities`` is
    ``("image", "audio")`` with ``arity`` ``(1, 2)``, ``modality("image")`` has items
    ``(image, label)`` and ``modality("audio")`` items ``(audio, length, label)`` (the
    inputs an audio encoder takes), ``num_classes`` is 10.
    """

    modalities: ClassVar[tuple] = ("image", "audio")
    arity: ClassVar[tuple] = (1, 2)
    num_classes: ClassVar[int] = 10

    images: torch.Tensor
    audio: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    audio_files: list
    split: str
    image_indices: torch.Tensor | None = None
    audio_mean: torch.Tensor | None = None
    audio_std: torch.Tensor | None = None
    causal: bool = False

    @property
    def tensors(self) -> tuple:
        """``(images, audio, lengths, labels)``: the items' columns, in order."""
        return self.images, self.audio, self.lengths, self.labels

    def __repr__(self) -> str:
        return (f"AVDigits(split={self.split!r}, n={len(self)}, images="
                f"{tuple(self.images.shape)}, audio={tuple(self.audio.shape)})")

    def to(self, device) -> AVDigits:
        """A copy whose tensors live on ``device`` (the file names are shared)."""
        def move(t):
            return None if t is None else t.to(device)

        return AVDigits(self.images.to(device), self.audio.to(device), self.lengths.to(device),
                        self.labels.to(device), self.audio_files, self.split,
                        move(self.image_indices), move(self.audio_mean), move(self.audio_std),
                        self.causal)


# ----------------------------------------------------------------------------- MNIST
def _read_idx(path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format), checked: magic ``0x0000 08 ndim``,
    ``ndim`` dimensions, and exactly ``prod(dims)`` bytes of data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 + 4 * ndim or data[:3] != b"\x00\x00\x08" or data[3] != ndim:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimensions "
                         f"(header {data[:4].hex() or 'empty'}, expected 000008{ndim:02x})")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    size = len(data) - 4 - 4 * ndim
    if size != int(np.prod(dims)):
        raise ValueError(f"{path}: the header announces dimensions {dims} "
                         f"({int(np.prod(dims))} bytes) but {size} bytes follow")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_mnist(split: str, root=None):
    """MNIST images of one AV digits split, flattened, in [0, 1], with their labels.

    ``train`` is rows 0-54999 of ``train-images``, ``val`` rows 55000-59999, ``test``
    all of ``t10k-images``.

    Shape:
        - output: ``x (n, 784)`` float32, ``y (n,)`` int64
    """
    check_choice(split, SPLITS, "split")
    prefix = "t10k" if split == "test" else "train"
    x = _read_idx(fetch("mnist", f"{prefix}-images-idx3-ubyte.gz", root), 3)
    y = _read_idx(fetch("mnist", f"{prefix}-labels-idx1-ubyte.gz", root), 1)
    if x.shape[1:] != (28, 28) or len(x) != len(y) or y.max(initial=0) > 9:
        raise ValueError(f"MNIST {prefix}: expected images (n, 28, 28) and n labels in 0..9, "
                         f"got images {x.shape} and {y.shape} labels up to {y.max(initial=0)}")
    offset = _MNIST_OFFSET[split]
    x, y = x[offset:offset + AV_MAX_SIZES[split]], y[offset:offset + AV_MAX_SIZES[split]]
    return x.reshape(len(x), -1).astype(np.float32) / 255.0, y.astype(np.int64)


@one_thread()  # the same basis whatever the thread count (the data sets are built on it)
def mnist_pca(energy_removed: float = 0.75, root=None):
    """Mean and principal directions of the MNIST train images keeping ``1 - energy_removed``.

    With the covariance eigenvalues :math:`\\lambda_1 \\ge \\lambda_2 \\ge \\dots`, the
    smallest :math:`k` with :math:`\\sum_{j\\le k}\\lambda_j / \\sum_j \\lambda_j \\ge
    1 - \\text{energy\\_removed}` directions are kept.

    Shape:
        - output: ``mean (784,)``, ``basis (784, k)``
    """
    x = torch.from_numpy(read_mnist("train", root)[0])
    mean = x.mean(0)
    xc = x - mean  # (n, 784)
    cov = (xc.T @ xc / (len(x) - 1)).double()  # (784, 784)
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    evals, evecs = evals.flip(0), evecs.flip(1)
    kept = torch.cumsum(evals, 0) / evals.sum()
    k = int((kept < 1.0 - energy_removed).sum()) + 1
    return mean.numpy(), evecs[:, :k].float().numpy()


def remove_energy(x, mean, basis) -> np.ndarray:
    """Project onto the kept principal directions and back (a low-energy reconstruction).

    .. math:: \\tilde x = \\mu + U_k U_k^\\top (x - \\mu)

    Shape:
        - x: ``(n, 784)``; mean: ``(784,)``; basis: ``(784, k)``; output: ``(n, 784)``

    Examples:
        With an orthonormal basis, a point already in the kept subspace comes back
        unchanged, and a direction orthogonal to it is removed:

        >>> basis = np.eye(784)[:, :2]                       # keep pixels 0 and 1
        >>> mean, x = np.zeros(784), np.zeros((1, 784))
        >>> x[0, 0], x[0, 5] = 2.0, 3.0
        >>> out = remove_energy(x, mean, basis)
        >>> float(out[0, 0]), float(out[0, 5])
        (2.0, 0.0)
    """
    return ((x - mean) @ basis) @ basis.T + mean


# ----------------------------------------------------------------------------- FSDD
def read_wav(path) -> np.ndarray:
    """A 16-bit FSDD recording as float32 samples in [-1, 1), shape ``(samples,)``."""
    with wave.open(str(path), "rb") as w:
        got = (w.getframerate(), 8 * w.getsampwidth(), w.getnchannels())
        if got != (SAMPLE_RATE, 16, 1):
            raise ValueError(f"{path}: expected mono 16-bit {SAMPLE_RATE} Hz audio, got "
                             f"{got[2]} channel(s), {got[1]}-bit, {got[0]} Hz")
        a = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    if a.size == 0:
        raise ValueError(f"{path}: the recording holds no samples")
    return a.astype(np.float32) / 32768.0


def _fsdd_files(split: str):
    return [f"recordings/{d}_{s}_{t}.wav" for d in range(10) for s in SPEAKERS
            for t in _FSDD_TAKES[split]]


def spectrogram(wave_batch: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """Log-magnitude spectrogram, batch first and time second.

    .. math::
        X_{t,k} = \\sum_{n=0}^{255} \\bar x[200t + n]\\, w[n]\\, e^{-2\\pi i k n / 256},\\qquad
        S_{t,f} = \\log\\Bigl(\\tfrac12\\bigl(|X_{t,2f-1}| + |X_{t,2f}|\\bigr) + 10^{-3}\\Bigr)

    32 ms Hann windows (256 samples) every 25 ms (200 samples), so consecutive windows
    overlap and no sample is skipped; the 128 non-constant frequency bins are averaged in
    neighbouring pairs (bins are 8000/256 = 31.25 Hz apart) into F = 64 bands of
    62.5 Hz.

    The padded signal :math:`\\bar x` decides what frame t reads. Offline (``causal=False``,
    ``torch.stft(center=True)``): :math:`\\bar x[n] = x[n - 128]`, reflected at both ends,
    so frame t is centred on sample 200t and reads samples 200t - 128 .. 200t + 127: 16 ms
    of the future, and frame 0 mirrors samples 1..128. Causal (``causal=True``,
    ``center=False`` after 256 zeros on the left): :math:`\\bar x[n] = x[n - 256]`, so
    frame t reads samples 200t - 256 .. 200t - 1, the 32 ms that end where hop t ends;
    frame 0 is silence. Both give T = 1 + samples // 200 frames.

    Args:
        wave_batch: the waveforms.
        causal: windows that end at the newest sample (see above).

    Shape:
        - wave_batch: :math:`(N, \\text{samples})`
        - output: :math:`(N, T, F)` with T = 1 + samples // 200 and F = 64

    Examples:
        >>> x = torch.randn(1, 8000)
        >>> tuple(spectrogram(x).shape), tuple(spectrogram(x, causal=True).shape)
        ((1, 41, 64), (1, 41, 64))
        >>> # causal: the first 20 frames of 4000 samples are those of the whole second
        >>> torch.equal(spectrogram(x[:, :4000], causal=True)[:, :20],
        ...             spectrogram(x, causal=True)[:, :20])
        True
    """
    if causal:  # 256 zeros before the signal, windows that end at the newest sample
        return _log_bands(torch.nn.functional.pad(wave_batch, (N_FFT, 0)), center=False)
    return _log_bands(wave_batch, center=True)


def _log_bands(wave_batch: torch.Tensor, center: bool) -> torch.Tensor:
    """The arithmetic of :func:`spectrogram` on windows every 200 samples: ``(N, T, F)``."""
    window = torch.hann_window(N_FFT, device=wave_batch.device, dtype=wave_batch.dtype)
    spec = torch.stft(wave_batch, N_FFT, hop_length=HOP, window=window, center=center,
                      return_complex=True)
    mag = spec.abs()[:, 1:, :]  # (N, 128, T), constant bin dropped
    mag = mag.unflatten(1, (mag.shape[1] // 2, 2)).mean(2)  # (N, 64, T), pairs of bins averaged
    return torch.log(mag + 1e-3).transpose(1, 2).contiguous()  # (N, T, F)


def peak_normalise(a: np.ndarray, causal: bool = False) -> np.ndarray:
    r"""Divide a recording (or each row of a batch, along the last axis) by its peak, so
    that loudness is not the label.

    Offline: :math:`y_t = a_t / \max_s |a_s|`, the peak of the whole utterance (known only
    at its end). Causal: :math:`y_t = a_t / \max(\max_{s \le t} |a_s|, p_0)`, the running
    peak so far with a floor :math:`p_0 = 0.01` (so that the first, near-silent samples
    are not blown up); equal to the offline one from the loudest sample on.

    Examples:
        >>> a = np.array([0.1, -0.2, 0.5, 0.25], dtype=np.float32)
        >>> print(peak_normalise(a), peak_normalise(a, causal=True))
        [ 0.2 -0.4  1.   0.5] [ 1.  -1.   1.   0.5]
    """
    a = np.asarray(a, dtype=np.float32)
    if causal:
        return a / np.maximum(np.maximum.accumulate(np.abs(a), axis=-1), np.float32(PEAK_FLOOR))
    return a / (np.abs(a).max(axis=-1, keepdims=True) + np.float32(1e-8))


def _frames(samples: int, causal: bool) -> int:
    """Frames that hold some of a recording of ``samples`` samples: offline, the frames
    centred on it; causal, those whose window overlaps it (one more: windows end later)."""
    if causal:
        return min((samples + N_FFT - 1) // HOP + 1, 1 + N_SAMPLES // HOP)
    return samples // HOP + 1


def av_wave(file: str, root=None) -> np.ndarray:
    """One FSDD recording as AV digits prepares it before the noise: cropped to 1 s,
    divided by its peak (the speaker's loudness, fixed), zero-padded to 8000 samples.

    Args:
        file: ``recordings/{digit}_{speaker}_{take}.wav`` (an ``AVDigits.audio_files`` entry).
        root: data root (default: ``$MMBOOK_DATA`` or the user cache).

    Returns:
        the wave, ``(8000,)`` float32; the data set adds the noise to it.
    """
    return _clean(file, root)[0]


def _clean(file: str, root) -> tuple[np.ndarray, int]:
    """``(av_wave(file), number of samples of the recording within the 1 s)``."""
    a = peak_normalise(read_wav(fetch("fsdd", file, root))[:N_SAMPLES])
    wave = np.zeros(N_SAMPLES, np.float32)
    wave[: len(a)] = a
    return wave, len(a)


def _audio(split: str, root, noise_std: float, rng: np.random.Generator, causal: bool):
    files = _fsdd_files(split)
    waves = np.zeros((len(files), N_SAMPLES), np.float32)
    lengths = np.zeros(len(files), np.int64)
    for i, rel in enumerate(files):
        waves[i], samples = _clean(rel, root)
        lengths[i] = _frames(samples, causal)
    waves += noise_std * rng.standard_normal(waves.shape).astype(np.float32)  # x
    if causal:  # the front-end: x divided by its running peak, as a stream can
        waves = peak_normalise(waves, causal=True)
    labels = np.array([int(f.split("/")[1][0]) for f in files])
    return (spectrogram(torch.from_numpy(waves), causal), torch.from_numpy(lengths), labels,
            files)


# ----------------------------------------------------------------------------- build
def _standardise(x: torch.Tensor, mean, std) -> torch.Tensor:
    return (x - mean) / std


@one_thread()  # the same tensors whatever the thread count (they are cached and compared)
def _build(sizes: dict, seed: int, root, energy_removed: float, noise_std: float,
           causal: bool = False):
    ensure("mnist", root, paths=_MNIST_FILES)
    ensure("fsdd", root, paths=[f for split in SPLITS for f in _fsdd_files(split)])
    rng = np.random.default_rng(seed)
    mean, basis = mnist_pca(energy_removed, root)
    out = {}
    for split in SPLITS:
        n = sizes[split]
        x, y = read_mnist(split, root)
        idx = np.sort(rng.choice(len(y), size=n, replace=False))
        x, y = remove_energy(x[idx], mean, basis), y[idx]
        spec, lengths, alabels, files = _audio(split, root, noise_std, rng, causal)
        pick = np.empty(n, np.int64)
        for d in range(10):  # pair each image with a recording of the same digit
            rows, pool = np.flatnonzero(y == d), np.flatnonzero(alabels == d)
            pick[rows] = rng.choice(pool, size=len(rows), replace=True)
        out[split] = dict(images=torch.from_numpy(x.astype(np.float32)).view(n, 1, 28, 28),
                          audio=spec[pick], lengths=lengths[pick],
                          labels=torch.from_numpy(y), audio_files=[files[i] for i in pick],
                          image_indices=torch.from_numpy(idx + _MNIST_OFFSET[split]))
    # standardise with training statistics only
    im_m, im_s = out["train"]["images"].mean(), out["train"]["images"].std()
    au_m = out["train"]["audio"].mean(dim=(0, 1))
    au_s = out["train"]["audio"].std(dim=(0, 1))
    for d in out.values():
        d["images"] = _standardise(d["images"], im_m, im_s)
        d["audio"] = _standardise(d["audio"], au_m, au_s)
        d["audio_mean"], d["audio_std"] = au_m.clone(), au_s.clone()
    return out


def _sizes(size) -> dict:
    """Validate ``size`` (a name of :data:`AV_SIZES` or a dict per split) into a dict."""
    if isinstance(size, str):
        if size not in AV_SIZES:
            raise ValueError(f"size must be one of {tuple(AV_SIZES)} or a dict "
                             f"{{'train': n, 'val': n, 'test': n}}, got {size!r}")
        return dict(AV_SIZES[size])
    if not isinstance(size, dict) or set(size) != set(SPLITS):
        raise ValueError(f"size must be one of {tuple(AV_SIZES)} or a dict with the keys "
                         f"{SPLITS}, got {size!r}")
    for split, n in size.items():
        if check_positive_int(n, f"size[{split!r}]") < 10:
            raise ValueError(f"size[{split!r}] must be an int >= 10, got {n!r}")
        if n > AV_MAX_SIZES[split]:
            raise ValueError(f"size[{split!r}] = {n} is larger than the source allows: MNIST "
                             f"has {AV_MAX_SIZES[split]} images for the {split!r} split")
    return {split: int(size[split]) for split in SPLITS}


def _cache_file(sizes, seed, energy_removed, noise_std, cache, causal=False):
    key = json.dumps([_VERSION, [sizes[s] for s in SPLITS], seed, energy_removed, noise_std,
                      causal])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    name = next((k for k, v in AV_SIZES.items() if v == sizes), "custom")
    return cache_dir(cache) / f"av_digits_{name}{'_causal' * causal}_{digest}.pt"


def _atomic_save(obj, path) -> None:
    with atomic_write(path) as f:
        torch.save(obj, f)


_FIELDS = {"images": (1, 28, 28), "audio": (1 + N_SAMPLES // HOP, N_FFT // 4), "lengths": (),
           "labels": (), "image_indices": ()}


def _read_cache(path, sizes: dict):
    """The cached splits, or ``None`` (with a warning) when the file is not what this
    version writes: unreadable, a missing split or field, a wrong shape or size, NaN."""
    import warnings

    try:
        data = torch.load(path, weights_only=True)
        for split in SPLITS:
            d, n = data[split], sizes[split]
            for field, shape in _FIELDS.items():
                t = d[field]
                if not isinstance(t, torch.Tensor) or tuple(t.shape) != (n, *shape):
                    raise ValueError(f"{split}.{field} has shape {tuple(t.shape)}, expected "
                                     f"{(n, *shape)}")
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    raise ValueError(f"{split}.{field} holds NaN or inf")
            if len(d["audio_files"]) != n:
                raise ValueError(f"{split}.audio_files has {len(d['audio_files'])} entries")
            for field in ("audio_mean", "audio_std"):
                if tuple(d[field].shape) != (_FIELDS["audio"][1],):
                    raise ValueError(f"{split}.{field} has shape {tuple(d[field].shape)}")
    except Exception as err:  # noqa: BLE001 (any failure means: rebuild)
        warnings.warn(f"{path} is not a valid AV digits cache ({type(err).__name__}: {err}); "
                      f"rebuilding it", stacklevel=3)
        return None
    return data


def load_av_digits(split: str = "train", size="small", seed: int = 0, *,
                   energy_removed: float = 0.75, noise_std: float = 0.3,
                   causal: bool = False, root=None, cache=None,
                   verbose: bool = False) -> AVDigits:
    """Load (building and caching on first use) one split of AV digits.

    The first call builds all three splits from the raw files (downloading and verifying
    them if needed) and saves them in the derived cache; later calls with the same
    arguments load that file.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: ``"small"`` (3000/500/1000, trains in seconds on a CPU), ``"full"``
            (55000/5000/10000, the MultiBench AV-MNIST size), or a dict
            ``{"train": n, "val": n, "test": n}`` within those maxima.
        seed: seeds the image sampling, the pairing and the audio noise.
        energy_removed: fraction of MNIST's PCA energy removed from the images.
        noise_std: standard deviation of the white noise added to the peak-normalised
            waveforms.
        causal: an audio front-end that uses only the past (the signal divided by its
            running peak, windows that end at the newest sample; see the module). Same
            images, pairs, signals and noise draws as the offline data set; cached apart.
        root: data root with the raw files (default: ``$MMBOOK_DATA`` or the user cache).
        cache: folder for the built tensors (default: ``$MMBOOK_CACHE`` or the user cache).
        verbose: print the build time.

    Returns:
        an :class:`AVDigits` dataset.

    Raises:
        ValueError: an unknown split or size, a size larger than MNIST's split, or an
            out-of-range ``energy_removed`` / ``noise_std``.
    """
    check_choice(split, SPLITS, "split")
    sizes = _sizes(size)
    check_probability(energy_removed, "energy_removed", allow_one=False)
    check_positive(noise_std, "noise_std", allow_zero=True)
    path = _cache_file(sizes, seed, energy_removed, noise_std, cache, bool(causal))
    data = _read_cache(path, sizes) if path.exists() else None
    if data is None:
        start = time.perf_counter()
        data = _build(sizes, seed, root, energy_removed, noise_std, bool(causal))
        _atomic_save(data, path)
        if verbose:
            print(f"built AV digits ({size}) in {time.perf_counter() - start:.1f} s -> {path}")
    return AVDigits(split=split, causal=bool(causal), **data[split])
