"""Getting raw files: find them in the data root, or download, verify and keep them.

Every file is checked against its SHA-256 checksum (:mod:`mmbook.data.registry`) before
it is used. A download is written to a temporary file next to its destination and moved
into place (``os.replace``) only once its length and checksum are right, so an interrupted
or corrupted download never leaves a bad file behind and is simply fetched again next
time. A file already in the data root that fails its checksum raises
:class:`ChecksumError`: it is never used, and never silently replaced.

Hashing a file is cheap, but the loaders touch thousands of recordings, so a file that
passed once is remembered by (size, modification time) in a small stamp file in the
derived cache (:func:`mmbook.data.cache_dir`); a file that changes is hashed again.

Downloads come from the canonical sources of the data README, or from a mirror laid out
like the data root (``{base_url}/{dataset}/{path}``) given by the ``base_url`` argument
or the environment variable ``MMBOOK_DATA_URL``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..utils import atomic_write
from .paths import cache_dir, data_root
from .registry import DATASETS, _dataset, attribution, checksums, file_url

__all__ = ["fetch", "ensure", "ChecksumError", "DownloadError", "sha256_file"]

_CHUNK = 1 << 16
_ARCHIVE_THRESHOLD = 100  # more missing FSDD files than this: fetch the one archive
_ANNOUNCED: set = set()  # data sets whose attribution this process has printed
_VERIFIED: dict = {}  # (root, dataset) -> {path: [size, mtime_ns]}


class ChecksumError(ValueError):
    """A file's SHA-256 checksum is not the one the registry lists.

    Examples:
        A damaged file in the data root is refused, and left for the reader to fix:

        >>> import tempfile
        >>> from unittest import mock
        >>> tmp = tempfile.TemporaryDirectory()
        >>> (Path(tmp.name) / "mfeat").mkdir()
        >>> _ = (Path(tmp.name) / "mfeat" / "mfeat-mor.csv").write_text("not mfeat\\n")
        >>> with mock.patch.dict(os.environ, {"MMBOOK_CACHE": tmp.name}):
        ...     fetch("mfeat", "mfeat-mor.csv", root=tmp.name)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mmbook.data.download.ChecksumError: .../mfeat-mor.csv fails its checksum (sha256 ...
        >>> issubclass(ChecksumError, ValueError)
        True
        >>> tmp.cleanup()
    """


class DownloadError(ConnectionError):
    """A file could not be downloaded (offline, unreachable, cut short).

    Examples:
        A mirror (here a local ``file://`` one) that lacks the file:

        >>> import tempfile
        >>> from unittest import mock
        >>> tmp = tempfile.TemporaryDirectory()
        >>> mirror = (Path(tmp.name) / "mirror").as_uri()
        >>> with mock.patch.dict(os.environ, {"MMBOOK_CACHE": tmp.name}):
        ...     fetch("mfeat", "mfeat-mor.csv", root=tmp.name, base_url=mirror, retries=0,
        ...           progress=False)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mmbook.data.download.DownloadError: could not download file:///.../mfeat-mor.csv: ...
        >>> list(Path(tmp.name, "mfeat").iterdir())  # nothing partial left behind
        []
        >>> issubclass(DownloadError, OSError)
        True
        >>> tmp.cleanup()
    """


def _local_copy_hint(path: Path) -> str:
    return ("To use a local copy instead, set the environment variable MMBOOK_DATA to a "
            "folder holding fsdd/, mnist/ and mfeat/ laid out as in the book's data README, "
            "e.g. `export MMBOOK_DATA=/path/to/data` in a shell or "
            "`os.environ['MMBOOK_DATA'] = '/path/to/data'` in Python before loading (or pass "
            f"root='/path/to/data' to the loader); or put the file at {path} yourself.")


def sha256_file(path) -> str:
    """SHA-256 hex digest of a file, read in chunks.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp) / "abc.txt"
        ...     _ = path.write_bytes(b"abc")
        ...     digest = sha256_file(path)
        >>> digest == hashlib.sha256(b"abc").hexdigest()
        True
        >>> digest[:16]
        'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _base_url(base_url):
    return base_url if base_url is not None else (os.environ.get("MMBOOK_DATA_URL") or None)


# ----------------------------------------------------------------------------- verification
def _stamp_file(folder: Path) -> Path:
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "verified" / f"{folder.name}-{key}.json"


def _stamps(folder: Path) -> dict:
    key = str(folder.resolve())
    if key not in _VERIFIED:
        try:
            _VERIFIED[key] = json.loads(_stamp_file(folder).read_text())
        except (OSError, ValueError):
            _VERIFIED[key] = {}
    return _VERIFIED[key]


def _save_stamps(folder: Path) -> None:
    try:
        target = _stamp_file(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_bytes(target, json.dumps(_stamps(folder)).encode())
    except OSError:  # an unwritable cache only costs hashing again in the next process
        pass


def _signature(path: Path) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _verify(folder: Path, rel: str, expected: str, save: bool = True) -> bool:
    """Check ``folder/rel`` against ``expected``; True when it had to be hashed."""
    path, stamps = folder / rel, _stamps(folder)
    signature = _signature(path)
    if stamps.get(rel) == signature:
        return False
    got = sha256_file(path)
    if got != expected:
        raise ChecksumError(
            f"{path} fails its checksum (sha256 {got}, expected {expected}): the file is "
            "damaged or not the published one. Delete it (it will be downloaded again) or "
            "replace it with a good copy.")
    stamps[rel] = signature
    if save:
        _save_stamps(folder)
    return True


# ----------------------------------------------------------------------------- writing
def _atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path) as f:
        f.write(data)


def _announce(dataset: str) -> None:
    if dataset not in _ANNOUNCED:
        _ANNOUNCED.add(dataset)
        print(f"Downloading {DATASETS[dataset].title}.\n  {attribution(dataset)}")


def _stream(url: str, dest, *, timeout: float, desc: str, progress: bool) -> str:
    """Download ``url`` into the open binary file ``dest``; return its SHA-256."""
    from tqdm.auto import tqdm

    h = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = response.headers.get("Content-Length")
        total = int(total) if total is not None else None
        got = 0
        with tqdm(total=total, desc=desc, unit="B", unit_scale=True, leave=False,
                  disable=not progress, mininterval=0.5) as bar:
            for block in iter(lambda: response.read(_CHUNK), b""):
                dest.write(block)
                h.update(block)
                got += len(block)
                bar.update(len(block))
    if total is not None and got != total:
        raise DownloadError(f"the connection to {url} closed after {got} of {total} bytes")
    return h.hexdigest()


def _download(url: str, path: Path, expected, *, timeout: float, retries: int,
              progress: bool, desc: str) -> None:
    """Download ``url`` to ``path`` atomically; check ``expected`` (a sha256, or None)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        try:
            with atomic_write(path) as f:  # kept only if the block ends without an error
                got = _stream(url, f, timeout=timeout, desc=desc, progress=progress)
                if expected is not None and got != expected:
                    raise ChecksumError(
                        f"the file downloaded from {url} fails its checksum (sha256 {got}, "
                        f"expected {expected}); it was not kept. The source may have "
                        "changed: use a verified local copy. " + _local_copy_hint(path))
            return
        except (OSError, http.client.HTTPException) as err:
            if attempt < retries and not isinstance(err, urllib.error.HTTPError):
                time.sleep(0.5 * (attempt + 1))
                continue
            if isinstance(err, urllib.error.HTTPError):
                why = f"the server answered HTTP {err.code} ({err.reason})."
            else:
                reason = err.reason if isinstance(err, urllib.error.URLError) else err
                why = f"{reason}. You may be offline, or the source is unreachable."
            raise DownloadError(f"could not download {url}: {why} "
                                + _local_copy_hint(path)) from err


def _obtain(dataset: str, rel: str, folder: Path, *, base_url, timeout, retries, progress):
    """Put ``folder/rel`` in place: from the package's own copy, or by downloading it."""
    path, expected = folder / rel, checksums(dataset)[rel]
    bundled = dict(DATASETS[dataset].bundled)
    if rel in bundled:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_bytes(path, bundled[rel].encode())
    else:
        _announce(dataset)
        _download(file_url(dataset, rel, base_url), path, expected, timeout=timeout,
                  retries=retries, progress=progress, desc=f"{dataset}/{rel}")


# ----------------------------------------------------------------------------- public
def fetch(dataset: str, relpath: str, root=None, *, base_url=None, timeout: float = 30.0,
          retries: int = 2, progress: bool = True) -> Path:
    """Path of a verified raw file ``dataset/relpath``, downloading it when missing.

    Args:
        dataset: ``"fsdd"``, ``"mnist"`` or ``"mfeat"``.
        relpath: the file's path inside the data set folder (as in its ``SHA256SUMS``).
        root: data root (default: ``$MMBOOK_DATA``, else the user cache).
        base_url: a mirror laid out like the data root (default: ``$MMBOOK_DATA_URL``,
            else the canonical sources of the data README).
        timeout: seconds to wait for the server.
        retries: extra tries after a network error (a bad checksum is not retried).
        progress: show a progress bar while downloading.

    Returns:
        the file's path, after its checksum was verified (once; see the module docs).

    Raises:
        ValueError: unknown data set or file.
        FileNotFoundError: ``root`` (or ``$MMBOOK_DATA``) does not exist.
        ChecksumError: the local file, or the downloaded one, fails its checksum.
        DownloadError: the file is missing and cannot be downloaded (e.g. offline).

    Examples:
        FSDD's speaker table is carried by the package: it is written into the data root
        (here a temporary one) and verified, with no download:

        >>> import tempfile
        >>> from unittest import mock
        >>> tmp = tempfile.TemporaryDirectory()
        >>> with mock.patch.dict(os.environ, {"MMBOOK_CACHE": tmp.name}):
        ...     path = fetch("fsdd", "speakers.csv", root=tmp.name)
        >>> path.relative_to(tmp.name).as_posix(), sha256_file(path) == checksums("fsdd")[
        ...     "speakers.csv"]
        ('fsdd/speakers.csv', True)
        >>> path.read_text().splitlines()[:2]
        ['speaker,gender,accent,language', 'george,male,GRC/Greek,english']
        >>> fetch("fsdd", "speakers.txt", root=tmp.name)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: relpath 'speakers.txt' is not a file of the 'fsdd' data set (e.g. ...)
        >>> tmp.cleanup()
    """
    files = checksums(dataset)
    if relpath not in files:
        raise ValueError(f"relpath {relpath!r} is not a file of the {dataset!r} data set "
                         f"(e.g. {next(iter(files))!r})")
    folder = data_root(root) / dataset
    if not (folder / relpath).is_file():
        _obtain(dataset, relpath, folder, base_url=_base_url(base_url), timeout=timeout,
                retries=retries, progress=progress)
    _verify(folder, relpath, files[relpath])
    return folder / relpath


def ensure(dataset: str, root=None, *, paths=None, base_url=None, archive=None,
           timeout: float = 30.0, retries: int = 2, progress: bool = True) -> Path:
    """Make sure files of ``dataset`` are in the data root and verified; return its folder.

    Missing files are downloaded one by one, or, for FSDD with many files missing from
    the canonical source, as the one archive of the repository (whose members are then
    verified one by one; the archive itself is not kept).

    Args:
        dataset: ``"fsdd"``, ``"mnist"`` or ``"mfeat"``.
        root: data root (default: ``$MMBOOK_DATA``, else the user cache).
        paths: the files needed (default: all of the data set).
        base_url: a mirror laid out like the data root (default: ``$MMBOOK_DATA_URL``).
        archive: ``True`` or ``False`` forces or forbids the archive; ``None`` decides.
        timeout, retries, progress: as in :func:`fetch`.

    Raises:
        as :func:`fetch`.

    Examples:
        >>> import tempfile
        >>> from unittest import mock
        >>> tmp = tempfile.TemporaryDirectory()
        >>> with mock.patch.dict(os.environ, {"MMBOOK_CACHE": tmp.name}):
        ...     folder = ensure("fsdd", root=tmp.name, paths=["speakers.csv"], progress=False)
        >>> folder == Path(tmp.name) / "fsdd", sorted(p.name for p in folder.iterdir())
        (True, ['speakers.csv'])
        >>> ensure("fsdd", root=tmp.name, paths=["speakers.csv", "x.wav"])
        Traceback (most recent call last):
        ...
        ValueError: paths has 1 files that are not in the 'fsdd' data set, e.g. 'x.wav'
        >>> tmp.cleanup()
    """
    from tqdm.auto import tqdm

    files, ds = checksums(dataset), _dataset(dataset)
    paths = list(files) if paths is None else list(paths)
    unknown = [p for p in paths if p not in files]
    if unknown:
        raise ValueError(f"paths has {len(unknown)} files that are not in the {dataset!r} data "
                         f"set, e.g. {unknown[0]!r}")
    folder, base_url = data_root(root) / dataset, _base_url(base_url)
    missing = [p for p in paths if not (folder / p).is_file()]
    if archive is None:
        archive = bool(ds.archive_url) and not base_url and len(missing) > _ARCHIVE_THRESHOLD
    if missing and archive:
        _from_archive(dataset, folder, missing, base_url=base_url, timeout=timeout,
                      retries=retries, progress=progress)
        missing = [p for p in missing if not (folder / p).is_file()]
    for rel in tqdm(missing, desc=f"downloading {dataset}", unit="file", leave=False,
                    disable=not progress or len(missing) < 2, mininterval=0.5):
        _obtain(dataset, rel, folder, base_url=base_url, timeout=timeout, retries=retries,
                progress=progress and len(missing) == 1)
    hashed = [_verify(folder, rel, files[rel], save=False) for rel in paths]
    if any(hashed):
        _save_stamps(folder)
    return folder


def _from_archive(dataset, folder: Path, wanted, *, base_url, timeout, retries, progress):
    """Download the data set's archive and extract the ``wanted`` files, each verified."""
    ds, files = DATASETS[dataset], checksums(dataset)
    name = ds.archive_url.rsplit("/", 1)[-1]
    url = file_url(dataset, name, base_url) if base_url else ds.archive_url
    _announce(dataset)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".archive.", suffix=".part")
    os.close(fd)
    try:
        _download(url, Path(tmp), None, timeout=timeout, retries=retries, progress=progress,
                  desc=f"{dataset} archive")
        wanted = set(wanted)
        with tarfile.open(tmp, "r:gz") as tar:
            for member in tar:
                rel = member.name[len(ds.archive_prefix):]
                if not member.name.startswith(ds.archive_prefix) or rel not in wanted:
                    continue
                data = tar.extractfile(member).read()
                if hashlib.sha256(data).hexdigest() != files[rel]:
                    raise ChecksumError(f"{rel} in the archive {url} fails its checksum; "
                                        "it was not kept. " + _local_copy_hint(folder / rel))
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                _atomic_write_bytes(folder / rel, data)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
