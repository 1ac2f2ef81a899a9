"""The built book, loaded from disk in headless Chromium with no network.

Run by ``make html-check`` (``pytest tests/rendered --rendered``) after ``make book``.
Chromium executes the page's JavaScript (MathJax, the ipywidgets manager) and we read
the resulting DOM: math must be typeset, figures present, the Colab launch link there
on every notebook page, and every widget area must show the widget or its static
fallback. A screenshot of the introduction is kept in ``_build/screenshots``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from bs4 import BeautifulSoup
from mathwidth import read_measurements, too_wide, with_measurement

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
MD_PAGES = ["intro", "glossary", "bibliography", "errata", "teacher_guide"]
PAGES = [p.stem for p in NOTEBOOKS] + MD_PAGES
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


def _chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.fail("chromium is not installed: `make chromium` (apt-get install chromium), or "
                "set CHROMIUM to a Chromium or Chrome")


def _run_chromium(args, timeout=120) -> str:
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run([_chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                             capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"chromium failed ({out.returncode}): {out.stderr[-2000:]}")
    return out.stdout


def _dump_dom(page: str) -> str:
    path = HTML / "book" / f"{page}.html"
    return _run_chromium(["--virtual-time-budget=30000", "--dump-dom", path.as_uri()])


@pytest.fixture(scope="session")
def dom() -> dict:
    if not (HTML / "index.html").exists():
        pytest.fail("no built book in _build/html: run `make book` first")
    missing = [p for p in PAGES if not (HTML / "book" / f"{p}.html").exists()]
    assert not missing, f"pages missing from the build: {missing}"
    with ThreadPoolExecutor(max_workers=2) as pool:
        doms = dict(zip(PAGES, pool.map(_dump_dom, PAGES)))
    return {p: BeautifulSoup(d, "html.parser") for p, d in doms.items()}


def _prose_text(soup) -> str:
    """Visible text outside code: scripts, styles and code blocks removed."""
    soup = BeautifulSoup(str(soup), "html.parser")
    for tag in soup(["script", "style", "pre", "code", "noscript", "mjx-container",
                     "mjx-assistive-mml"]):
        tag.decompose()
    for tag in soup.select(".highlight, .cell_input, .cell_output"):
        tag.decompose()
    main = soup.select_one("main") or soup
    return main.get_text(" ")


def _notebook_has_math(nb: Path) -> bool:
    cells = json.loads(nb.read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return bool(re.search(r"\$[^$\s][^$]*\$|\$\$", text))


RAW_TEX = re.compile(r"\\[()\[\]]|\$\$|\$\S|\S\$|\\[A-Za-z]{2,}")


@pytest.mark.parametrize("page", PAGES)
def test_no_raw_tex_left(dom, page):
    """No TeX delimiter, stray dollar or TeX command is left in the visible prose."""
    text = _prose_text(dom[page])
    found = [(m.group(), text[max(0, m.start() - 40): m.end() + 40].replace("\n", " "))
             for m in RAW_TEX.finditer(text)]
    assert not found, f"{page}: math not typeset: {found[:5]}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_math_is_typeset(dom, nb):
    if not _notebook_has_math(nb):
        pytest.skip(f"{nb.name} has no math")
    assert dom[nb.stem].select("mjx-container"), f"{nb.stem}: MathJax typeset nothing"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_launch_link(dom, nb):
    links = [a["href"] for a in dom[nb.stem].select("a[href]")
             if a["href"].startswith("https://colab.research.google.com/github/")]
    assert any(h.endswith(f"book/{nb.name}") for h in links), f"{nb.stem}: no Colab link"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_present(dom, nb):
    src = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"])
    if "plt." not in src and "show_images" not in src:
        pytest.skip(f"{nb.name} draws no figure")
    imgs = dom[nb.stem].select(".cell_output img")
    assert imgs, f"{nb.stem}: no figure in the rendered outputs"
    for img in imgs:
        s = img.get("src", "")
        if not s.startswith("data:"):
            target = (HTML / "book" / s).resolve()
            assert target.exists(), f"{nb.stem}: figure {s} is missing from the build"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_widget_areas_show_widget_or_fallback(dom, nb):
    raw = (HTML / "book" / f"{nb.stem}.html").read_text()
    n_widgets = raw.count(WIDGET_MIME)
    if n_widgets == 0:
        pytest.skip(f"{nb.name} shows no widget")
    soup = dom[nb.stem]
    for script in soup.find_all("script", type=WIDGET_MIME):
        cell = script.find_parent(class_="cell") or script.parent
        rendered = cell.select(".jupyter-widgets, .widget-inline-hbox, .widget-box, "
                               ".lm-Widget, .widget-slider")
        fallback = cell.select("img")
        prev = cell.find_previous_sibling(class_="cell")
        if prev is not None:
            fallback += prev.select(".cell_output img")
        assert rendered or fallback, f"{nb.stem}: a widget area shows neither widget nor figure"


def test_screenshot_of_the_introduction():
    out = ROOT / "_build" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    shot = out / "intro.png"
    shot.unlink(missing_ok=True)
    _run_chromium(["--window-size=1280,1800", "--virtual-time-budget=15000",
                   f"--screenshot={shot}", (HTML / "book" / "intro.html").as_uri()])
    assert shot.exists() and shot.stat().st_size > 10_000, "screenshot missing or blank"


def _math_widths(page: str) -> list | None:
    """Lay the page out at 1280 px in Chromium and measure every formula against its column."""
    src = HTML / "book" / f"{page}.html"
    probe = src.with_name(f"_mathwidth_{page}.html")  # same folder: relative links still work
    probe.write_text(with_measurement(src.read_text()))
    try:
        dom = _run_chromium(["--window-size=1280,900", "--virtual-time-budget=30000",
                             "--dump-dom", probe.as_uri()])
    finally:
        probe.unlink(missing_ok=True)
    return read_measurements(dom)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_formula_wider_than_its_column(nb):
    """Wide display equations must be broken into lines: none may overflow at 1280 px."""
    if not _notebook_has_math(nb):
        pytest.skip(f"{nb.name} has no math")
    rows = _math_widths(nb.stem)
    assert rows is not None, f"{nb.stem}: the measuring script did not run"
    assert rows, f"{nb.stem}: no typeset formula was measured"
    wide = too_wide(rows)
    assert not wide, (f"{nb.stem}: {len(wide)} formula(s) wider than the column: "
                      + "; ".join(f"{r['width']:.0f} px > {r['column']:.0f} px: {r['tex']!r}"
                                  for r in wide[:5]))


# -- the kernel-free explorers (mmbook.widgets.static): move each slider in Chromium
KERNEL_FREE = [("07_attention", "attention-explorer"), ("09_kernels", "kernel-explorer"),
               ("12_vision_language", "vqa-explorer"), ("12_vision_language", "caption-explorer")]

_ERRORS_JS = """<script>window.__mmbookErrors = [];
window.addEventListener("error", function (e) { window.__mmbookErrors.push(String(e.message)); });
</script>"""

# For every slider in turn: click (mousedown + mouseup, as a reader does) on a step other
# than the active one, wait, and record what the figure shows. Results go to <pre>.
_MOVE_JS = """<script>
(function () {
  var gd, results = [], order = [];
  function snap() {
    var title = gd.querySelector(".gtitle");
    var images = [].map.call(gd.querySelectorAll(".hm image"), function (i) {
      return i.getAttribute("href") || i.getAttribute("xlink:href"); });
    return {frame: Number(gd.getAttribute("data-mmbook-frame")),
            title: title ? title.textContent : null, images: images,
            data: gd.data.map(function (t) { return t.z || t.y; }),
            active: gd.layout.sliders.map(function (s) { return s.active || 0; })};
  }
  function group(name) {
    var groups = gd.querySelectorAll(".slider-group");
    for (var i = 0; i < groups.length; i++) {
      var cv = groups[i].querySelector(":scope > text");  // "name: value" above the rail
      if (cv && cv.textContent.indexOf(name + ":") === 0) { return groups[i]; }
    }
    return null;
  }
  function click(name, step) {
    var g = group(name), rail = g.querySelector(".slider-rail-touch-rect");
    var tick = g.querySelectorAll(".slider-tick-rect")[step].getBoundingClientRect();
    var r = rail.getBoundingClientRect();
    var opts = {bubbles: true, cancelable: true, view: window, button: 0,
                clientX: tick.left + tick.width / 2, clientY: r.top + r.height / 2};
    rail.dispatchEvent(new MouseEvent("mousedown", opts));
    gd.dispatchEvent(new MouseEvent("mouseup", opts));
  }
  function finish(extra) {
    var pre = document.createElement("pre");
    pre.id = "mmbook-check";
    pre.textContent = JSON.stringify(Object.assign({moves: results,
      errors: window.__mmbookErrors || []}, extra || {}));
    document.body.appendChild(pre);
  }
  function next() {
    if (!order.length) { return finish(); }
    var name = order.shift(), before = snap(), i = gd.layout.sliders.map(
      function (s) { return s.name; }).indexOf(name);
    var n = gd.layout.sliders[i].steps.length, a = before.active[i];
    var step = a === n - 1 ? 0 : n - 1;
    try { click(name, step); } catch (e) { return finish({error: String(e)}); }
    setTimeout(function () {
      results.push({slider: name, step: step, before: before, after: snap()});
      next();
    }, 500);
  }
  function start() {
    gd = document.getElementById(%(div)s);
    if (!gd || !gd._fullLayout || !gd.getAttribute("data-mmbook-frame")) {
      return setTimeout(start, 100);
    }
    order = gd.layout.sliders.map(function (s) { return s.name; });
    next();
  }
  window.addEventListener("load", function () { setTimeout(start, 200); });
})();
</script>"""


@pytest.mark.parametrize(("page", "div"), KERNEL_FREE, ids=[d for _, d in KERNEL_FREE])
def test_kernel_free_explorer_moves(page, div):
    """Moving each slider of a kernel-free explorer redraws the precomputed frame."""
    src = HTML / "book" / f"{page}.html"
    if not src.exists():
        pytest.fail(f"no built page {src}: run `make book` first")
    raw = src.read_text()
    assert raw.count(f'id="{div}"') == 1, f"{page}: the explorer {div} is not on the page once"
    assert "cdn.plot.ly" not in raw and "plotly.min.js" in raw, f"{page}: plotly.js not vendored"
    assert (HTML / "plotly.min.js").exists(), "plotly.min.js missing from the build's root"
    cell = BeautifulSoup(raw, "html.parser").find(id=div).find_parent(class_="cell")
    assert not cell.find_all("script", type=WIDGET_MIME) and not cell.select(".cell_output img"), (
        f"{page}: the explorer's cell renders the live widget or a picture beside the figure")
    probe = src.with_name(f"_probe_{page}_{div}.html")
    probe.write_text(raw.replace("<head>", "<head>" + _ERRORS_JS, 1)
                     .replace("</body>", _MOVE_JS % {"div": json.dumps(div)} + "</body>", 1))
    try:
        soup = BeautifulSoup(_run_chromium(["--window-size=1280,2000",
                                            "--virtual-time-budget=60000", "--dump-dom",
                                            probe.as_uri()]), "html.parser")
    finally:
        probe.unlink(missing_ok=True)
    spec = json.loads(soup.find("script", id=f"{div}-frames").string)
    pre = soup.find("pre", id="mmbook-check")
    assert pre is not None, f"{page}: the slider probe never ran (plotly.js not loaded?)"
    check = json.loads(pre.string)
    # sphinx-thebe declares THEBE_JS_URL twice on every page (not ours, harmless)
    errors = [e for e in check["errors"] if "THEBE_JS_URL" not in e]
    assert not check.get("error") and not errors, (page, check.get("error"), errors)
    moves = check["moves"]
    assert [m["slider"] for m in moves] == spec["names"]
    for move in moves:
        before, after, i = move["before"], move["after"], spec["names"].index(move["slider"])
        expected_active = list(before["active"])
        expected_active[i] = move["step"]
        expected = int(np.ravel_multi_index(expected_active, spec["shape"]))
        assert after["active"] == expected_active, (page, move["slider"], after["active"])
        assert after["frame"] == expected != before["frame"], (page, move["slider"])
        frame = spec["frames"][expected]
        shown = [spec["pool"][k].get("z", spec["pool"][k].get("y")) for k in frame["data"]]
        assert after["data"] == shown, f"{page}: {move['slider']}: not the precomputed values"
        # a title's lines (<br> in the figure) are separate text nodes on the page
        assert after["title"] == frame["title"].replace("<br>", "") != before["title"], (
            page, after["title"])
        assert after["images"] and after["images"] != before["images"], (
            f"{page}: moving {move['slider']} did not change the picture")
