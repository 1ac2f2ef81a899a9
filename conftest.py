"""Test configuration: data location, determinism, a per-notebook time summary."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
SHARED_DATA = ROOT.parent / "shared" / "data"

# Tests read the real data from ../shared/data (read-only) and build derived files in
# _build/mmbook-cache, unless the caller set the variables already.
if "MMBOOK_DATA" not in os.environ and (SHARED_DATA / "README.md").exists():
    os.environ["MMBOOK_DATA"] = str(SHARED_DATA)
os.environ.setdefault("MMBOOK_CACHE", str(ROOT / "_build" / "mmbook-cache"))


def pytest_addoption(parser):
    parser.addoption("--rendered", action="store_true",
                     help="run the rendered-HTML checks (needs `make book` first)")
    parser.addoption("--grade-full-chapters", action="store_true",
                     help="tests/test_grade_chapters.py grades whole chapters, not the cells "
                          "their exercises need (about 25 minutes)")
    parser.addoption("--seeds", action="store_true",
                     help="run the chapters with learned comparisons under other seeds "
                          "(tests/test_seeds.py, several minutes)")


def pytest_configure(config):
    config.addinivalue_line("markers", "seeds: executes chapters under other MMBOOK_SEED "
                                       "values; selected by --seeds")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--seeds"):
        skip_seeds = pytest.mark.skip(reason="other-seed runs of the chapters: use --seeds")
        for item in items:
            if "seeds" in item.keywords:
                item.add_marker(skip_seeds)
    if config.getoption("--rendered"):
        return
    skip = pytest.mark.skip(reason="rendered-HTML check: run `make html-check` after `make book`")
    for item in items:
        if "rendered" in item.nodeid.split("::")[0].split("/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The raw data: $MMBOOK_DATA (../shared/data here), else the user cache that
    `make data` fills (GitHub's runners)."""
    from mmbook.data import DATASETS
    from mmbook.data import data_root as find_root

    path = find_root()
    missing = [name for name in DATASETS if not (path / name / "SHA256SUMS").exists()]
    assert not missing, f"the data root {path} lacks {missing}: run `make data`"
    return path


_NB_TIMES: dict = defaultdict(float)


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _NB_TIMES[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if _NB_TIMES:
        terminalreporter.section("notebook execution time (sum of cell times)")
        for path, secs in sorted(_NB_TIMES.items()):
            terminalreporter.write_line(f"{secs:7.1f} s  {path}")
        terminalreporter.write_line(f"{sum(_NB_TIMES.values()):7.1f} s  total")


@pytest.fixture(autouse=True)
def _seed():
    from mmbook.utils import set_seed

    set_seed(0)
    yield




@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``make gpu-check`` (MMBOOK_REQUIRE_CUDA=1) a test skipped for want of CUDA fails:
    on a GPU machine no test may be silently skipped because of its device."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("MMBOOK_REQUIRE_CUDA") == "1" and report.skipped:
        reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else "")
        if "cuda" in reason.lower() or "gpu" in reason.lower():
            report.outcome = "failed"
            report.longrepr = f"skipped on a CUDA machine: {reason}"
