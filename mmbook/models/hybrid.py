"""The seeds' "hybrid model": a CNN for images and an RNN for a sequence, joined in one net.

Seed 004 (section 5.1) sketches it in Keras: ``LSTM(128)`` over a text input,
``Conv2D(32, 3x3) -> MaxPooling2D -> Flatten`` over a 28 x 28 image, ``Concatenate`` and
``Dense(10, softmax)``. That code does not run as written (its "text" input has shape
``(100,)``, but an LSTM needs ``(time, features)``: there is no embedding layer; the
training arrays ``text_data``, ``image_data``, ``labels`` are never defined; and
``categorical_crossentropy`` needs one-hot labels). :class:`HybridCNNRNN` is the same
architecture in PyTorch, on AV digits (the sequence is a spectrogram), built from
:mod:`mmbook.encoders` and :mod:`mmbook.fusion`, trained end to end.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..encoders import AudioEncoder, ImageEncoder
from ..fusion import ConcatFusion, MultimodalModel

__all__ = ["HybridCNNRNN"]


class HybridCNNRNN(MultimodalModel):
    r"""A CNN image encoder and an LSTM audio encoder, concatenated, then a linear head.

    .. math::
        z_1 = \mathrm{CNN}(x_{\text{image}}), \quad
        z_2 = h_{\ell}\ \text{of}\ \mathrm{LSTM}(x_{\text{audio}}), \quad
        \hat y = W [z_1; z_2] + b

    The whole network is trained end to end: the gradient of the classification loss
    reaches both encoders through the concatenation. Seed 004 calls this a "hybrid model";
    the modalities meet only once, at the concatenation of the finished encodings, so it
    is feature-level fusion with learned encoders. Model-level fusion, in the sense of
    Zeng et al., "A Survey of Affect Recognition Methods" (TPAMI 2009), lets the
    modalities' intermediate representations interact inside the model (for example
    :class:`mmbook.models.LSTMAttentionFusion`'s cross-modal attention).

    Args:
        num_classes: C (10 digits).
        image_channels: output channels of the CNN's conv blocks.
        image_features: size of the image representation :math:`z_1`.
        audio_input_size: features per audio frame F (64 for AV digits).
        audio_hidden_size: size of the LSTM state :math:`z_2`.
        cell: ``"lstm"`` (the seed's) or ``"gru"``.
        image_size: height = width of the images.

    Shape:
        - images: :math:`(N, 1, 28, 28)`
        - audio: :math:`(N, T, F)`; lengths: :math:`(N,)` or ``None`` (all T frames)
        - output: :math:`(N, C)` logits

    Examples:
        >>> model = HybridCNNRNN(num_classes=10, image_features=32, audio_hidden_size=16)
        >>> images, audio = torch.randn(4, 1, 28, 28), torch.randn(4, 41, 64)
        >>> model(images, audio, torch.tensor([41, 30, 20, 10])).shape
        torch.Size([4, 10])
        >>> model.head.in_features  # [z_1; z_2]: 32 image + 16 audio features
        48
    """

    def __init__(self, num_classes: int = 10, image_channels: Sequence[int] = (16, 32),
                 image_features: int = 64, audio_input_size: int = 64,
                 audio_hidden_size: int = 64, cell: str = "lstm", image_size: int = 28):
        image = ImageEncoder(1, image_channels, image_features, image_size=image_size)
        audio = AudioEncoder(audio_input_size, audio_hidden_size, cell=cell)
        sizes = (image.out_features, audio.out_features)
        super().__init__([image, audio], ConcatFusion(sizes), nn.Linear(sum(sizes), num_classes),
                         arity=(1, 2))
        self.num_classes = num_classes

    def forward(self, images: torch.Tensor, audio: torch.Tensor,
                lengths: torch.Tensor | None = None, present=None) -> torch.Tensor:
        return super().forward(images, audio, lengths, present=present)
