"""Guards on the book itself: table of contents, stripped notebooks, setup cells, config."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]


def _toc_files(node) -> list:
    files = []
    if isinstance(node, dict):
        if "file" in node:
            files.append(node["file"])
        if "root" in node:
            files.append(node["root"])
        for v in node.values():
            files += _toc_files(v)
    elif isinstance(node, list):
        for v in node:
            files += _toc_files(v)
    return files


TOC = _toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))


def _cells(nb_path: Path) -> list:
    return json.loads(nb_path.read_text())["cells"]


def _src(cell) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 1, "book/ holds no notebooks"


@pytest.mark.parametrize("entry", TOC)
def test_every_toc_entry_exists(entry):
    candidates = [ROOT / f"{entry}{ext}" for ext in (".ipynb", ".md")]
    assert any(p.exists() for p in candidates), f"_toc.yml lists {entry} but no file exists"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_is_in_the_toc(nb):
    assert f"book/{nb.stem}" in TOC, f"{nb.name} is not listed in _toc.yml"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped(nb):
    for i, cell in enumerate(_cells(nb)):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{nb.name} cell {i} has stored outputs (make strip)"
            assert cell.get("execution_count") is None, f"{nb.name} cell {i} has an execution count"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_title_goals_and_seeds(nb):
    first = _cells(nb)[0]
    text = _src(first)
    assert first["cell_type"] == "markdown" and text.lstrip().startswith("# "), \
        f"{nb.name} must open with a markdown title"
    assert re.search(r"learning goals", text, re.I), f"{nb.name}: no learning goals in cell 1"
    assert re.search(r"seed", text, re.I), f"{nb.name}: cell 1 does not name the seed sections"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_colab_setup_cell(nb):
    code = [c for c in _cells(nb) if c["cell_type"] == "code"]
    assert code, f"{nb.name} has no code"
    setup = code[0]
    src = _src(setup)
    assert "hide-cell" in setup.get("metadata", {}).get("tags", []), \
        f"{nb.name}: the setup cell must be tagged hide-cell"
    assert '"google.colab" in sys.modules' in src, f"{nb.name}: setup cell must test for Colab"
    assert f"git+{REPO_URL}" in src, \
        f"{nb.name}: setup cell must install from the repository in _config.yml ({REPO_URL})"
    # everything that installs must sit under the Colab test
    body = src.split('if "google.colab" in sys.modules:', 1)
    assert len(body) == 2 and "pip" not in body[0], f"{nb.name}: installs outside Colab"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_seeds_and_checks_claims(nb):
    src = "\n".join(_src(c) for c in _cells(nb) if c["cell_type"] == "code")
    assert "set_seed(" in src, f"{nb.name} never calls set_seed"
    assert re.search(r"^\s*assert ", src, re.M), f"{nb.name} asserts none of its claims"


def test_config_has_launch_buttons_and_exercises():
    assert CONFIG["launch_buttons"]["colab_url"].startswith("https://colab.research.google.com")
    assert CONFIG["execute"]["allow_errors"] is False
    exts = CONFIG["sphinx"]["extra_extensions"]
    for ext in ("sphinx_exercise", "sphinx_togglebutton", "sphinx-mathjax-offline"):
        assert ext in exts
    assert (ROOT / CONFIG["bibtex_bibfiles"][0]).exists()
