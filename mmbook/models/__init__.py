"""Complete models from the chapters.

* :class:`HybridCNNRNN` (chapter 6): the seeds' hybrid model, a CNN for images and an
  RNN for audio joined in one network.
* :class:`LSTMAttentionFusion` (chapter 7): the seeds' LSTM fusion model with
  cross-modal attention, done right.
* chapter 12: visual question answering (:mod:`.vqa`: question-only and image-only
  baselines, CNN + LSTM, FiLM, co-attention, Relation Network) and captioning
  (:class:`CaptionModel`, :mod:`.captioning`).
"""

import importlib

_LAZY = {"HybridCNNRNN": "hybrid", "LSTMAttentionFusion": "lstm_attention"}
_LAZY.update({name: "vqa" for name in ("QuestionOnlyVQA", "ImageOnlyVQA", "ConcatVQA", "FiLMVQA",
                                       "CoAttentionVQA", "RelationNetworkVQA")})
_LAZY.update({"CaptionModel": "captioning"})
__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mmbook.models' has no attribute {name!r}")
