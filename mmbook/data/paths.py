"""Where the raw data and the derived caches live.

* The **data root** holds the raw files in the layout of the book's data README
  (``fsdd/recordings/*.wav``, ``mnist/*.gz``, ``mfeat/*.csv``, each folder with a
  ``SHA256SUMS``). It is ``$MMBOOK_DATA`` when set, otherwise a per-user cache folder
  (``$XDG_CACHE_HOME/mmbook/data``, by default ``~/.cache/mmbook/data``). The package
  writes into a data root only the raw files it lacks (:func:`mmbook.data.fetch`
  downloads a missing file there, even under ``MMBOOK_DATA``) and, from
  ``python -m mmbook.data``, a missing ``SHA256SUMS``; checksum stamps and derived files
  go to the derived cache.
* The **derived cache** holds what the package builds from the raw files (AV digits
  tensors). It is ``$MMBOOK_CACHE`` when set, otherwise ``~/.cache/mmbook/derived``:
  never inside the data root.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_root", "cache_dir"]


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mmbook"


def data_root(root=None) -> Path:
    """The data root: ``root`` if given, else ``$MMBOOK_DATA``, else the user cache.

    Raises:
        FileNotFoundError: if ``root`` or ``$MMBOOK_DATA`` names a folder that does not
            exist (never a silent fallback to another location).

    Examples:
        >>> import tempfile
        >>> from unittest import mock
        >>> tmp = tempfile.TemporaryDirectory()
        >>> data_root(tmp.name) == Path(tmp.name)  # an explicit root wins
        True
        >>> with mock.patch.dict(os.environ, {"MMBOOK_DATA": tmp.name}):  # restored after
        ...     print(data_root() == Path(tmp.name))
        True
        >>> with mock.patch.dict(os.environ, {"MMBOOK_DATA": tmp.name + "/nowhere"}):
        ...     data_root()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: data root '...nowhere' (from the environment variable MMBOOK_DATA) ...
        >>> tmp.cleanup()
    """
    if root is None:
        env = os.environ.get("MMBOOK_DATA")
        if not env:
            path = _user_cache() / "data"
            path.mkdir(parents=True, exist_ok=True)
            return path
        root, origin = env, "the environment variable MMBOOK_DATA"
    else:
        origin = "the argument root"
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"data root {str(path)!r} (from {origin}) does not exist or is not a folder. "
            "Point MMBOOK_DATA at a folder holding fsdd/, mnist/ and mfeat/, or unset it "
            "to download into the user cache."
        )
    return path


def cache_dir(path=None) -> Path:
    """The folder for derived files: ``path``, else ``$MMBOOK_CACHE``, else the user cache.

    The folder is created if missing.

    Examples:
        >>> import tempfile
        >>> from unittest import mock
        >>> tmp = tempfile.TemporaryDirectory()
        >>> cache_dir(Path(tmp.name) / "derived").is_dir()  # created
        True
        >>> with mock.patch.dict(os.environ, {"MMBOOK_CACHE": tmp.name}):  # restored after
        ...     print(cache_dir() == Path(tmp.name))
        True
        >>> tmp.cleanup()
    """
    path = Path(path or os.environ.get("MMBOOK_CACHE") or (_user_cache() / "derived"))
    path = path.expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
