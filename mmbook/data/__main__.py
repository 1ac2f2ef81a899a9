"""Fetch and verify every raw data set ahead of time: ``python -m mmbook.data`` (``make data``).

Before a class, or a trip without network: every file of every data set that is missing
from the data root is downloaded (from its canonical source, or the mirror
``$MMBOOK_DATA_URL``) with a progress bar, and every file is verified against the checksums
the package ships (:func:`mmbook.data.ensure`). The data root is ``--root``, else
``$MMBOOK_DATA``, else the user cache (``~/.cache/mmbook/data``). Each data set's folder gets
its ``SHA256SUMS`` (when it has none and is writable), so ``sha256sum -c SHA256SUMS`` checks
it without Python. Afterwards the book runs offline.

    python -m mmbook.data [fsdd mnist mfeat] [--root DIR] [--no-progress]

Exit status 0 when every file is there and verified; 1 with the reason otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .download import ChecksumError, DownloadError, ensure
from .paths import data_root
from .registry import DATASETS, checksums

__all__ = ["main"]


def _root(root) -> Path:
    """The data root, created when it was named (``--root`` or ``$MMBOOK_DATA``) but is missing."""
    named = root or os.environ.get("MMBOOK_DATA")
    if named and not Path(named).expanduser().exists():
        print(f"creating the data root {named}")
        Path(named).expanduser().mkdir(parents=True)
    return data_root(root)


def _write_sums(folder: Path, dataset: str) -> None:
    """``folder/SHA256SUMS`` in ``sha256sum`` format, unless one is there or it is read-only."""
    target = folder / "SHA256SUMS"
    if target.exists() or not os.access(folder, os.W_OK):
        return
    target.write_text("".join(f"{digest}  {path}\n"
                              for path, digest in sorted(checksums(dataset).items())))


def main(argv=None) -> int:
    """Fetch (when missing) and verify the named data sets (default all); the exit status.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``): data set names,
            ``--root DIR``, ``--no-progress``.

    Returns:
        0 when every file is there and matches its SHA-256; 1 when a download or a check
        failed (the reason on stderr).

    Raises:
        SystemExit: (status 2, argparse's usage error) for an unknown data set name.

    Examples:
        >>> main(["sound"])  # the names are those of mmbook.data.registry.DATASETS
        Traceback (most recent call last):
        SystemExit: 2
    """
    parser = argparse.ArgumentParser(prog="python -m mmbook.data", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("datasets", nargs="*", metavar="DATASET",
                        help=f"which data sets (default all: {', '.join(DATASETS)})")
    parser.add_argument("--root", default=None, help="data root (default $MMBOOK_DATA, else "
                        "the user cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    names = args.datasets or list(DATASETS)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        parser.error(f"unknown data set {unknown[0]!r}: choose from {', '.join(DATASETS)}")
    try:
        root = _root(args.root)
    except (OSError, FileNotFoundError) as err:
        print(f"data: {err}", file=sys.stderr)
        return 1
    print(f"data root: {root}")
    for name in names:
        folder, files = root / name, checksums(name)
        missing = sum(not (folder / rel).is_file() for rel in files)
        print(f"{name}: {len(files)} files, {missing} to download", flush=True)
        start = time.perf_counter()
        try:
            ensure(name, root, progress=not args.no_progress)
        except (DownloadError, ChecksumError, OSError) as err:
            print(f"{name}: FAILED: {err}", file=sys.stderr)
            return 1
        _write_sums(folder, name)
        print(f"{name}: {len(files)} files verified in {time.perf_counter() - start:.1f} s "
              f"({folder})", flush=True)
    print("every data set is here and verified: the book runs offline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
