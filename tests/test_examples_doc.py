"""Every public name of the tensor-facing modules has a doctested ``Examples:`` section.

Tensor-facing: every module below the top line of README's layer table (the top line is
plotting, widgets, scripts, exercises and grading). Public: the classes and functions in a
module's ``__all__`` that the module defines (a re-export is checked where it is defined).
Doctested: the docstring has an ``Examples:`` heading followed by ``>>>`` lines that
``doctest`` collects (``pytest --doctest-modules mmbook`` runs them).

``MISSING`` lists the names that have none yet. A new public name without Examples fails
this test; so does a listed name that gained some (take it off the list).
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re

import pytest
from test_imports import read_layers

import mmbook

#: Today's public names without a doctested Examples section; shrink it, never grow it.
MISSING = {
    # data loaders and files
    "mmbook.data.av_digits.AVDigits", "mmbook.data.av_digits.load_av_digits",
    "mmbook.data.av_digits.read_wav",
    "mmbook.data.av_digits.read_mnist", "mmbook.data.av_digits.mnist_pca",
    "mmbook.data.av_digits.av_wave",
    "mmbook.data.mfeat.load_mfeat",  # reads the real mfeat files: no example without them
}

_EXAMPLES = re.compile(r"^\s*Examples?:\s*$", re.M)


def tensor_facing_modules() -> list:
    """Every module (and submodule) of the layers below README's top line."""
    layers = read_layers()
    top = max(layers.values())
    names = []
    for name in sorted(n for n, layer in layers.items() if layer < top):
        module = importlib.import_module(f"mmbook.{name}")
        names.append(module.__name__)
        if hasattr(module, "__path__"):
            names += [m.name for m in pkgutil.walk_packages(module.__path__, f"{module.__name__}.")]
    return [importlib.import_module(n) for n in names]


def public_names() -> dict:
    """``{"module.name": object}`` for the classes and functions each module defines."""
    found = {}
    for module in tensor_facing_modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) \
                    and obj.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    return found


def has_doctested_examples(qualified: str, obj) -> bool:
    doc = inspect.getdoc(obj) or ""
    heading = _EXAMPLES.search(doc)
    if heading is None:
        return False
    module = inspect.getmodule(obj)
    tests = doctest.DocTestFinder(recurse=False).find(obj, qualified,
                                                      globs=vars(module).copy())
    return any(t.examples and t.docstring and heading.group(0).strip() in t.docstring
               and ">>>" in t.docstring[t.docstring.index(heading.group(0).strip()):]
               for t in tests)


def test_every_public_name_has_doctested_examples_or_is_listed():
    names = public_names()
    assert len(names) > 150  # the scan sees the package (not an empty import)
    without = {q for q, obj in names.items() if not has_doctested_examples(q, obj)}
    new = sorted(without - MISSING)
    assert not new, f"public names without a doctested Examples section: {new}"


def test_the_list_of_missing_examples_only_shrinks():
    names = public_names()
    stale = sorted(q for q in MISSING if q in names and has_doctested_examples(q, names[q]))
    gone = sorted(q for q in MISSING if q not in names)
    assert not stale, f"these have Examples now: take them off MISSING: {stale}"
    assert not gone, f"these are no longer public names: take them off MISSING: {gone}"


@pytest.mark.parametrize("module", ["mmbook.fusion", "mmbook.missing", "mmbook.utils",
                                    "mmbook.encoders", "mmbook.conv",
                                    "mmbook.models.cross_encoder", "mmbook.models.dual_encoder"])
def test_these_modules_have_examples_everywhere(module):
    assert not [q for q in MISSING if q.startswith(module + ".")]
    assert any(q.startswith(module + ".") for q in public_names())


def test_the_check_sees_a_missing_section():
    def documented():
        """Double.

        Examples:
            >>> 2 * 2
            4
        """

    def prose_only():
        """Double. Examples: call it with 2."""

    assert has_doctested_examples("x.documented", documented)
    assert not has_doctested_examples("x.prose_only", prose_only)
    assert "mmbook.models.lstm_attention.LSTMAttentionFusion" in public_names()
    assert mmbook.fusion.LowRankTensorFusion in public_names().values()
