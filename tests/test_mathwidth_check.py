"""The logic of the rendered-HTML formula-width check, on small fixtures (no browser)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "mathwidth", Path(__file__).parent / "rendered" / "mathwidth.py")
mathwidth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mathwidth)

PAGE = """<html><head></head><body><main><article style="width:600px">
<p>text</p></article></main></body></html>"""


def test_script_goes_before_body_end_once():
    out = mathwidth.with_measurement(PAGE)
    assert out.count(mathwidth.MARKER_ID) == 1
    assert out.index(mathwidth.MARKER_ID) < out.index("</body>")
    assert out.endswith("</html>")
    with pytest.raises(ValueError, match="</body>"):
        mathwidth.with_measurement("<html>no body end</html>")


def test_measurements_read_back_from_a_dumped_dom():
    rows = [{"index": 0, "display": True, "width": 900.5, "column": 640.0, "tex": "a < b & c"},
            {"index": 1, "display": False, "width": 40.0, "column": 640.0, "tex": "x"}]
    # Chromium escapes the text of the <pre> when it serialises the DOM
    text = (json.dumps(rows).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))
    dom = f'<html><body><p>x</p><pre id="{mathwidth.MARKER_ID}">{text}</pre></body></html>'
    assert mathwidth.read_measurements(dom) == rows
    assert mathwidth.read_measurements("<html><body></body></html>") is None


def test_too_wide_flags_only_formulas_wider_than_their_column():
    rows = [{"width": 900.0, "column": 640.0, "tex": "wide"},
            {"width": 640.5, "column": 640.0, "tex": "within tolerance"},
            {"width": 300.0, "column": 640.0, "tex": "narrow"},
            {"width": 500.0, "column": 420.0, "tex": "wide in a narrow column"}]
    assert [r["tex"] for r in mathwidth.too_wide(rows)] == ["wide", "wide in a narrow column"]
    assert mathwidth.too_wide([]) == []
