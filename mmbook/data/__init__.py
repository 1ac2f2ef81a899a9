"""Data sets of the book: AV digits (MNIST + FSDD), mfeat (six views), synthetic interactions,
Sort-of-CLEVR (generated scenes with English questions and captions), spoken reviews.

Every data set is a :class:`ModalityDataset` (the data contract, :mod:`.base`).
"""

from .av_digits import (
    AV_MAX_SIZES,
    AV_SIZES,
    AVDigits,
    av_wave,
    load_av_digits,
    mnist_pca,
    peak_normalise,
    read_mnist,
    read_wav,
    remove_energy,
    spectrogram,
)
from .base import ModalityDataset, batch_loader
from .clevr import (
    CLEVR_ANSWERS,
    CLEVR_COLORS,
    CLEVR_SHAPES,
    QUESTION_KINDS,
    QUESTION_TYPES,
    SortOfCLEVR,
    blind_caption,
    caption_facts,
    colour_blind_answer,
    make_sort_of_clevr,
    scene_answer,
)
from .download import ChecksumError, DownloadError, ensure, fetch, sha256_file
from .mfeat import MFEAT_VIEWS, load_mfeat
from .paths import cache_dir, data_root
from .registry import DATASETS, attribution, checksums, file_url
from .reviews import SpokenReviews, check_speaker_splits, make_spoken_reviews, word_vectors
from .synthetic import INTERACTION_KINDS, make_interactions

__all__ = [
    "AVDigits", "load_av_digits", "spectrogram", "peak_normalise", "av_wave", "read_wav",
    "read_mnist", "mnist_pca", "remove_energy", "AV_SIZES", "AV_MAX_SIZES",
    "load_mfeat", "MFEAT_VIEWS",
    "make_interactions", "INTERACTION_KINDS",
    "make_sort_of_clevr", "SortOfCLEVR", "caption_facts", "CLEVR_COLORS", "CLEVR_SHAPES",
    "CLEVR_ANSWERS", "QUESTION_TYPES", "QUESTION_KINDS", "colour_blind_answer",
    "scene_answer", "blind_caption", "batch_loader", "ModalityDataset",
    "fetch", "ensure", "data_root", "cache_dir", "ChecksumError", "DownloadError",
    "sha256_file", "DATASETS", "attribution", "checksums", "file_url",
    "make_spoken_reviews", "SpokenReviews", "check_speaker_splits", "word_vectors",
]
