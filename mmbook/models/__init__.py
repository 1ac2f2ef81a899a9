"""Complete models from the chapters.

* :class:`HybridCNNRNN` (chapter 6): the seeds' hybrid model, a CNN for images and an
  RNN for audio joined in one network.
* :class:`LSTMAttentionFusion` (chapter 7): the seeds' LSTM fusion model with
  cross-modal attention, done right.
* :class:`DualEncoder` (chapter 11): a CLIP-style dual encoder for cross-modal retrieval.
"""

import importlib

_LAZY = {"HybridCNNRNN": "hybrid", "LSTMAttentionFusion": "lstm_attention",
         "DualEncoder": "dual_encoder"}
__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mmbook.models' has no attribute {name!r}")
