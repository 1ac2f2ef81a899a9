"""Measure, in a laid-out page, whether any math element is wider than its column.

Chromium's ``--dump-dom`` returns the DOM after the page's scripts ran. We inject a small
script into a copy of the page: it waits for MathJax to finish typesetting, then, for
every ``mjx-container``, compares the width of the typeset formula (its ``mjx-math``
child, an inline block as wide as its content) with the width of the column that holds
it (the nearest ``article``, ``.bd-article`` or ``main``), and writes the measurements as
JSON into ``<pre id="mmbook-math-widths">``. The Python side reads them back and lists the
formulas that do not fit. The page is laid out at the width the book is read at
(1280 px, with the contents column shown).
"""

from __future__ import annotations

import json
import re

MARKER_ID = "mmbook-math-widths"

MEASURE_JS = """
<script>
(function () {
  function columnOf(el) {
    return el.closest('article, .bd-article, main') || document.body;
  }
  function measure() {
    var rows = [];
    document.querySelectorAll('mjx-container').forEach(function (el, i) {
      var math = el.querySelector('mjx-math') || el;
      var col = columnOf(el);
      var style = getComputedStyle(col);
      var colWidth = col.clientWidth - parseFloat(style.paddingLeft || 0)
                     - parseFloat(style.paddingRight || 0);
      rows.push({index: i, display: el.getAttribute('display') === 'true',
                 width: math.getBoundingClientRect().width, column: colWidth,
                 tex: (el.getAttribute('aria-label') || el.textContent || '').slice(0, 80)});
    });
    var pre = document.createElement('pre');
    pre.id = 'MARKER';
    pre.textContent = JSON.stringify(rows);
    document.body.appendChild(pre);
  }
  function whenTypeset() {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(function () { setTimeout(measure, 500); });
    } else if ((whenTypeset.tries = (whenTypeset.tries || 0) + 1) > 50) {
      measure();  // no MathJax on this page after 10 s: report what is there
    } else {
      setTimeout(whenTypeset, 200);
    }
  }
  window.addEventListener('load', whenTypeset);
})();
</script>
""".replace("MARKER", MARKER_ID)


def with_measurement(page_html: str) -> str:
    """The page with the measuring script inserted before ``</body>``."""
    if "</body>" not in page_html:
        raise ValueError("page has no </body>")
    head, tail = page_html.rsplit("</body>", 1)
    return head + MEASURE_JS + "</body>" + tail


def read_measurements(dom_html: str) -> list | None:
    """The measurements the script wrote into the dumped DOM, or None if it did not run."""
    m = re.search(rf'<pre id="{MARKER_ID}">(.*?)</pre>', dom_html, re.S)
    if m is None:
        return None
    text = (m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
            .replace("&amp;", "&"))
    return json.loads(text)


def too_wide(rows: list, tolerance_px: float = 1.0) -> list:
    """The formulas wider than their column (more than ``tolerance_px``)."""
    return [r for r in rows if r["width"] > r["column"] + tolerance_px]
