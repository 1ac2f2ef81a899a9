"""``python -m mmbook.data`` (``make data``): fetch and verify ahead of class, then offline.

Against an HTTP mirror on 127.0.0.1 serving a copy of the mfeat and mnist files of the data
root; one file can be served corrupted.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading

import pytest

from mmbook.data import checksums
from mmbook.data import download as dl
from mmbook.data.__main__ import main


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path, data_root, monkeypatch):
    """Serves mfeat/ and mnist/ on 127.0.0.1; yields (served folder, server)."""
    served = tmp_path / "served"
    for name in ("mfeat", "mnist"):
        (served / name).mkdir(parents=True)
        for rel in checksums(name):
            shutil.copy(data_root / name / rel, served / name / rel)
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    monkeypatch.setenv("MMBOOK_DATA_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
    monkeypatch.setenv("MMBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MMBOOK_DATA", raising=False)
    monkeypatch.setattr(dl, "_ANNOUNCED", set())
    monkeypatch.setattr(dl, "_VERIFIED", {})
    yield served, httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_fetches_verifies_then_works_offline(mirror, tmp_path, capsys):
    served, httpd = mirror
    root = tmp_path / "class-data"  # named but missing: created
    assert main(["mfeat", "mnist", "--root", str(root)]) == 0
    out = capsys.readouterr()
    assert "mfeat: 6 files, 6 to download" in out.out and "mnist: 4 files verified" in out.out
    assert "downloading mfeat" in out.err  # the progress bar
    assert len(httpd.requests) == 10
    for name in ("mfeat", "mnist"):
        for rel in checksums(name):
            assert (root / name / rel).read_bytes() == (served / name / rel).read_bytes()
        sums = (root / name / "SHA256SUMS").read_text().splitlines()  # sha256sum -c format
        assert {line.split("  ")[1]: line.split("  ")[0] for line in sums} == checksums(name)
    # offline: the mirror is gone, and everything is verified from disk
    httpd.requests.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MMBOOK_DATA_URL", "http://127.0.0.1:9")  # nothing listens there
        assert main(["mfeat", "mnist", "--root", str(root), "--no-progress"]) == 0
    assert "mfeat: 6 files, 0 to download" in capsys.readouterr().out
    assert httpd.requests == []


def test_mmbook_data_is_the_default_root(mirror, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMBOOK_DATA", str(tmp_path / "from-env"))
    assert main(["mfeat", "--no-progress"]) == 0
    assert (tmp_path / "from-env" / "mfeat" / "mfeat-mor.csv").is_file()
    assert f"data root: {tmp_path / 'from-env'}" in capsys.readouterr().out


def test_a_corrupted_download_fails_and_leaves_nothing(mirror, tmp_path, capsys):
    served, _ = mirror
    (served / "mfeat" / "mfeat-zer.csv").write_text("not the published file\n")
    root = tmp_path / "root"
    assert main(["mfeat", "--root", str(root), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "mfeat: FAILED" in err and "fails its checksum" in err
    assert not (root / "mfeat" / "mfeat-zer.csv").exists()
    assert not [p for p in (root / "mfeat").iterdir() if p.name.endswith(".part")]


def test_unknown_data_set_is_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["mfeet"])
    assert stop.value.code == 2 and "unknown data set 'mfeet'" in capsys.readouterr().err
