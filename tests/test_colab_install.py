"""The Colab install path: the setup cell's pip command, run in a fresh virtual environment.

Colab comes with torch, numpy, scikit-learn, matplotlib and Jupyter preinstalled; the setup
cell of every chapter then runs ``pip install "mmbook @ git+<repository URL>"``. This test
does exactly that, with the URL replaced by a clean clone of this repository: a fresh venv
whose only extra site directory is this environment's (standing in for Colab's preinstalled
packages) installs mmbook from the clone with the cell's own command, imports it from
there (not from the working tree), and runs chapter 1's first experiment on a kernel of
that venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _setup_cell_command(nb_path: Path) -> list[str]:
    """The pip arguments of the chapter's hidden setup cell, as the cell passes them."""
    nb = nbformat.read(nb_path, as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code")
    match = re.search(r"subprocess\.run\(\[sys\.executable, (.*?)\], check=True\)",
                      setup.source, re.S)
    assert match, f"{nb_path.name}: the setup cell has no pip command"
    return json.loads("[" + match.group(1).replace("\n", " ") + "]")


def _first_experiment(nb_path: Path) -> nbformat.NotebookNode:
    """The chapter up to its first assert (its first checked experiment), setup cell removed."""
    nb = nbformat.read(nb_path, as_version=4)
    cells, seen_code = [], False
    for cell in nb.cells:
        if cell.cell_type == "code" and not seen_code:
            seen_code = True  # the Colab setup cell: replaced by the install below
            continue
        cells.append(cell)
        if cell.cell_type == "code" and re.search(r"^\s*assert ", cell.source, re.M):
            break
    nb.cells = cells
    return nb


def test_every_setup_cell_installs_from_the_configured_url():
    for nb_path in sorted((ROOT / "book").glob("*.ipynb")):
        args = _setup_cell_command(nb_path)
        assert args[:3] == ["-m", "pip", "install"], (nb_path.name, args)
        assert args[-1] == f"mmbook @ git+{REPO_URL}", (nb_path.name, args)


def test_setup_cell_installs_from_a_clean_clone_and_runs_chapter_1(tmp_path):
    from nbclient import NotebookClient

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{ROOT}", str(clone)],
                   check=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    venv_site = Path(subprocess.check_output(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True)
        .strip())
    # Colab's preinstalled packages: this environment's site-packages, after the venv's own
    (venv_site / "colab_preinstalled.pth").write_text(
        "\n".join([sysconfig.get_paths()["purelib"], *site.getsitepackages()]) + "\n")
    args = _setup_cell_command(ROOT / "book" / "01_introduction.ipynb")
    # the same requirement with the repository replaced by the clone; pip 23 refuses
    # "git+file:///..." (no host), so the clone's folder is given as a file URL: pip
    # builds the package from it exactly as it builds the one it fetches with git
    args[-1] = args[-1].replace(f"git+{REPO_URL}", f"file://{clone}")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([str(py), *args], check=True, cwd=tmp_path, env=env)
    where = subprocess.check_output([py, "-c", "import mmbook; print(mmbook.__file__)"],
                                    cwd=tmp_path, env=env, text=True).strip()
    assert Path(where).is_relative_to(venv), f"mmbook imported from {where}, not the venv"
    assert not Path(where).is_relative_to(ROOT)
    # a kernel of that venv runs chapter 1 up to its first checked claim
    kernels = tmp_path / "jupyter"
    subprocess.run([str(py), "-m", "ipykernel", "install", "--prefix", str(kernels),
                    "--name", "colab-like"], check=True, env=env, capture_output=True)
    nb = _first_experiment(ROOT / "book" / "01_introduction.ipynb")
    os.environ["JUPYTER_PATH"] = str(kernels / "share" / "jupyter")
    try:
        NotebookClient(nb, kernel_name="colab-like", timeout=600,
                       resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    finally:
        os.environ.pop("JUPYTER_PATH")
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.outputs)
    assert "running on" in outputs
