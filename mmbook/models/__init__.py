"""Complete models from the chapters.

* :class:`HybridCNNRNN` (chapter 6): the seeds' hybrid model, a CNN for images and an
  RNN for audio joined in one network.
* :class:`LSTMAttentionFusion` (chapter 7): the seeds' LSTM fusion model with
  cross-modal attention, done right.
* :class:`CrossModalAutoencoder` (chapter 10): encoders, a fusion over the present
  modalities and decoders; reconstructs any modality from the others.
* :class:`CrossEncoder` (chapter 10): the seed's cross-encoder, each modality's tokens
  attending to the other's, with a classification head.
* :mod:`mmbook.models.gan` (chapter 14): a conditional GAN (concatenation or projection
  discriminator, optional AC-GAN class loss) that trains with the ``Trainer``, measures
  of its samples, imputers and their comparison (multiple imputation), and gradient
  reversal: a modality-invariant encoder and domain-adversarial training (DANN).
* :class:`StreamingEncoder` (chapter 15): a recurrent encoder fed chunk by chunk;
  :class:`StreamingSpectrogram`, the causal audio front-end fed samples as they arrive.
* :class:`DualEncoder` (chapter 11): a CLIP-style dual encoder for cross-modal retrieval.
* chapter 12: visual question answering (:mod:`.vqa`: question-only and image-only
  baselines, CNN + LSTM, FiLM, co-attention, a Relation Network and an MLP on objects)
  and captioning (:class:`CaptionModel`, :class:`AttentionCaptionModel`,
  :mod:`.captioning`).
"""

import importlib

_LAZY = {"HybridCNNRNN": "hybrid", "LSTMAttentionFusion": "lstm_attention"}
_LAZY.update({name: "sentiment" for name in (  # chapter 13
    "ModalityEncoder", "UtteranceFusion", "WordLevelEarlyFusion", "CrossModalSentiment")})
_LAZY.update({"CrossModalAutoencoder": "autoencoder",
              "fit_cross_modal_autoencoder": "autoencoder", "CrossEncoder": "cross_encoder"})
_LAZY.update({name: "gan" for name in (  # chapter 14
    "ConditionalGenerator", "ConditionalDiscriminator", "ConditionalGAN", "GeneratorImputer",
    "HotDeckImputer", "ModalityInvariantEncoder", "DomainAdversarialNet", "GradientReversal")})
_LAZY.update({"StreamingEncoder": "streaming", "StreamingSpectrogram": "streaming"})  # ch. 15
_LAZY.update({"DualEncoder": "dual_encoder"})  # chapter 11
_LAZY.update({name: "vqa" for name in ("QuestionOnlyVQA", "ImageOnlyVQA", "ConcatVQA", "FiLMVQA",
                                       "CoAttentionVQA", "RelationNetworkVQA", "ObjectMLPVQA")})
_LAZY.update({"CaptionModel": "captioning", "AttentionCaptionModel": "captioning"})
__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mmbook.models' has no attribute {name!r}")
