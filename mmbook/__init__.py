"""mmbook: the package behind *Multimodal Fusion with Neural Networks, interactively*.

One module per chapter topic; every from-scratch piece is tested against torch or
scikit-learn. Submodules are imported on first use (``mmbook.fusion`` etc.), so
``import mmbook`` stays fast and does not pull in optional dependencies such as
ipywidgets.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "utils",
    "data",
    "text",
    "rnn",
    "conv",
    "attention",
    "kernels",
    "losses",
    "metrics",
    "optim",
    "encoders",
    "graph",
    "subspace",
    "estimators",
    "missing",
    "fusion",
    "models",
    "distributed",
    "train",
    "profile",
    "plot",
    "widgets",
    "exercises",
    "examples",
    "execute",
    "sandbox",
    "grade",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'mmbook' has no attribute {name!r}")
