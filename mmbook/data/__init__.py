"""Data sets of the book: AV digits (MNIST + FSDD), mfeat (six views), synthetic interactions."""

from .av_digits import AV_SIZES, AVDigits, load_av_digits, spectrogram
from .download import fetch
from .mfeat import MFEAT_VIEWS, load_mfeat
from .paths import cache_dir, data_root
from .synthetic import INTERACTION_KINDS, make_interactions

__all__ = [
    "AVDigits", "load_av_digits", "spectrogram", "AV_SIZES",
    "load_mfeat", "MFEAT_VIEWS",
    "make_interactions", "INTERACTION_KINDS",
    "fetch", "data_root", "cache_dir",
]
