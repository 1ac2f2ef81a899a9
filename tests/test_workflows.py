"""The GitHub Actions workflows (.github/workflows), which cannot run here.

They are checked with actionlint (syntax, expressions, the inputs of each action version,
runner labels), and they must run the Makefile's targets rather than copies of its commands:
the book workflow `make book` and deploys `_build/html` to Pages, the pull-request workflow
`make test`, the weekly drift workflow `make test` without constraints.txt; each caches the
data sets keyed on the package's checksums and installs torch's CPU build.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CPU_TORCH = "https://download.pytorch.org/whl/cpu"
FILES = sorted(WORKFLOWS.glob("*.yml"))


def _load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _triggers(flow: dict) -> dict:
    return flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as True


def _steps(flow: dict) -> list:
    return [step for job in flow["jobs"].values() for step in job.get("steps", [])]


def _make_targets() -> set:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", text, flags=re.M))


def test_the_three_workflows_exist():
    assert [f.name for f in FILES] == ["book.yml", "drift.yml", "test.yml"]


def actionlint():
    """The actionlint binary the wheel put beside this interpreter (the venv's bin/, which need
    not be on PATH: make calls .venv/bin/python directly), else one on PATH."""
    here = Path(sys.executable).parent / "actionlint"
    exe = str(here) if here.exists() else shutil.which("actionlint")
    if exe is None:
        pytest.fail("actionlint is missing: pip install -c constraints.txt -r requirements.txt")
    return exe


def test_actionlint_finds_nothing():
    exe = actionlint()
    out = subprocess.run([exe, "-no-color", *map(str, FILES)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_can_fail(tmp_path):
    """The check is real: a wrong input and an unknown expression are reported."""
    exe = actionlint()
    bad = tmp_path / "bad.yml"
    bad.write_text((WORKFLOWS / "test.yml").read_text()
                   .replace("python-version:", "python-versions:")
                   .replace("github.ref", "github.reff"))
    out = subprocess.run([exe, "-no-color", str(bad)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1 and "python-versions" in out.stdout and "reff" in out.stdout


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_steps_call_the_makefile(path):
    """Every command is a Makefile target (or a copy/listing step), never a copy of one."""
    targets = _make_targets()
    for step in _steps(yaml.safe_load(path.read_text())):
        run = step.get("run")
        if run is None:
            continue
        for line in run.strip().splitlines():
            words = line.split()
            if words[0] == "make":
                assert set(words[1:]) <= targets, f"{path.name}: unknown target in {line!r}"
            else:
                assert words[0] in {"cp", ".venv/bin/python"} and "pytest" not in line, (
                    f"{path.name}: {line!r} should be a Makefile target")
            for command in ("jupyter-book", "pytest", "pip install", "mmbook.execute"):
                assert command not in line, f"{path.name}: {command} belongs in the Makefile"


def _runs(name: str) -> list:
    return [step["run"].strip() for step in _steps(_load(name)) if "run" in step]


def test_book_workflow_builds_and_deploys_to_pages():
    flow = _load("book.yml")
    assert _triggers(flow)["push"]["branches"] == ["main"]
    runs = _runs("book.yml")
    assert (runs.index("make data") < runs.index("make book") < runs.index("make pdf")
            < runs.index("make html-check"))  # the rendered checks read the PDF too
    uses = {step.get("uses", "").split("@")[0]: step for step in _steps(flow)}
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    assert "actions/deploy-pages" in uses
    deploy = flow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"


def test_pull_requests_run_make_test():
    flow = _load("test.yml")
    assert "pull_request" in _triggers(flow)
    assert "make test" in _runs("test.yml")


def test_drift_runs_weekly_without_the_constraints():
    flow = _load("drift.yml")
    (cron,) = [entry["cron"] for entry in _triggers(flow)["schedule"]]
    assert cron.split()[2:4] == ["*", "*"] and cron.split()[4] != "*"  # one day a week
    env = flow["jobs"]["newest"]["env"]
    assert env["CONSTRAINTS"] == "" and env["TORCH"] == "torch"
    assert "make test" in _runs("drift.yml")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_data_cache_and_cpu_torch(path):
    from mmbook.data.paths import _user_cache

    flow = yaml.safe_load(path.read_text())
    caches = [s["with"] for s in _steps(flow) if s.get("uses", "").startswith("actions/cache@")]
    assert caches, f"{path.name}: no data cache"
    (cache,) = caches
    assert cache["key"] == "mmbook-data-${{ hashFiles('mmbook/data/SHA256SUMS') }}"
    # where mmbook downloads to on a runner (no MMBOOK_DATA, no XDG_CACHE_HOME)
    assert cache["path"] == "~/.cache/mmbook/data"
    assert _user_cache() / "data" == Path.home() / ".cache" / "mmbook" / "data" or \
        "XDG_CACHE_HOME" in os.environ
    for job in flow["jobs"].values():
        if any("make setup" == s.get("run", "").strip() for s in job.get("steps", [])):
            assert job["env"]["TORCH_INDEX"] == CPU_TORCH, f"{path.name}: not the CPU torch"


@pytest.mark.parametrize(("variables", "expect", "refuse"), [
    ([f"TORCH_INDEX={CPU_TORCH}"],
     ["-c constraints.txt \"torch==2.13.0\"", f"--index-url {CPU_TORCH}"], []),
    ([f"TORCH_INDEX={CPU_TORCH}", "CONSTRAINTS=", "TORCH=torch"],
     ['"torch"', f"--index-url {CPU_TORCH}", "-r requirements.txt"], ["constraints.txt"]),
    ([], ["-c constraints.txt \"torch==2.13.0\""], ["--index-url"]),
])
def test_makefile_installs_what_the_workflows_ask(tmp_path, variables, expect, refuse):
    """`make setup` with the workflows' variables (dry run: prints, installs nothing)."""
    out = subprocess.run(["make", "-n", "-B", "setup", *variables,
                          f"VENV={tmp_path / 'venv'}"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.replace("\\\n", " ").splitlines()  # join continued lines
    pip = "\n".join(ln for ln in lines if "pip install" in ln)
    for text in expect:
        assert text in pip, (text, pip)
    for text in refuse:
        assert text not in pip, (text, pip)
