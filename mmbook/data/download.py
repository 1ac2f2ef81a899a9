"""Getting raw files: find them in the data root (download support lands with issue 3)."""

from __future__ import annotations

from pathlib import Path

from .paths import data_root

__all__ = ["fetch"]


def fetch(dataset: str, relpath: str, root=None) -> Path:
    """Path of ``dataset/relpath`` under the data root."""
    path = data_root(root) / dataset / relpath
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing. Set MMBOOK_DATA to a folder holding a copy of the data "
            "(fsdd/, mnist/, mfeat/)."
        )
    return path
