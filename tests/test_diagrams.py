"""The book's concept diagrams: readable at the book's width, nothing overflows."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mmbook import plot  # noqa: E402

DIAGRAMS = ["fusion_levels_diagram", "lstm_cell_diagram", "qkv_attention_diagram",
            "tensor_fusion_diagram", "cca_diagram"]


@pytest.mark.parametrize("name", DIAGRAMS)
def test_diagram_is_readable_and_fits(name):
    fig = getattr(plot, name)()
    try:
        assert fig.get_figwidth() <= 8.0 + 1e-9
        assert plot.diagram_text_problems(fig, column_px=700) == []
        assert len([t for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]) >= 4
    finally:
        plt.close(fig)


def test_the_check_finds_small_text_and_overflow():
    fig, ax = plt.subplots(figsize=(8, 2))
    ax.set(xlim=(0, 10), ylim=(0, 2))
    ax.text(1, 1, "tiny", fontsize=5)
    ax.text(9.9, 1, "this label runs off the right edge of the figure", fontsize=12)
    box = plot._box(ax, 5, 1, "a label far too long for its box", w=0.5, h=0.3)
    try:
        problems = plot.diagram_text_problems(fig, column_px=700)
        assert any("'tiny'" in p and "px" in p for p in problems), problems
        assert any("leaves the figure" in p for p in problems), problems
        assert any("overflows its box" in p for p in problems), problems
        assert box is not None
    finally:
        plt.close(fig)
