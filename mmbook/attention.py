"""Attention for fusion (chapter 7): from the masked softmax to a cross-modal transformer block.

Everything here is tested against PyTorch: :func:`scaled_dot_product_attention` against
``torch.nn.functional.scaled_dot_product_attention`` and
:class:`MultiheadCrossModalAttention` against ``torch.nn.MultiheadAttention``.

**The mask convention of the whole package** (also of :func:`mmbook.utils.lengths_to_mask`,
``present`` in :mod:`mmbook.fusion` and the encoders' masks): a boolean mask is ``True``
where a position is real and *may be attended to* (a real time step, a present modality),
``False`` for padding or an absent modality. It is the convention of
``F.scaled_dot_product_attention``'s ``attn_mask``, and it composes by ``&`` and reads
as "keep". A *float* mask is accepted wherever a mask is and is *added* to the scores,
as torch does: ``-inf`` forbids a key, a finite value biases it (see :func:`split_mask`).
A row in which every key is forbidden gets zero weights and a zero output on every path
(as ``F.scaled_dot_product_attention`` does), never NaN.

PyTorch's modules use the opposite boolean convention in one place, ``key_padding_mask``
of ``nn.MultiheadAttention`` (``True`` = padding, ignore). It is met at a single
boundary: :class:`MultiheadCrossModalAttention` accepts ``key_padding_mask`` exactly as
``nn.MultiheadAttention`` does (bool ``True`` = padding, or float added to the scores), so
that it stays a drop-in replacement, and converts it on entry; the package's own code
passes ``key_mask`` (``True`` = attend) instead.

Shape letters: N batch, L target (query) length, S source (key) length, E embedding,
H hidden, M or K modalities, D_m features of modality m.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .utils import check_positive, check_positive_int, check_shape, lengths_to_mask

__all__ = [
    "lengths_to_mask", "split_mask", "masked_softmax", "attention_entropy",
    "scaled_dot_product_attention",
    "seed_cross_modal_attention", "CrossModalAttention", "CoAttention",
    "MultiheadCrossModalAttention", "CrossModalTransformerBlock",
]


# ----------------------------------------------------------------------------- masks
def _check_mask(mask, shape, name: str = "mask") -> None:
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(mask).__name__}")
    try:
        torch.broadcast_shapes(mask.shape, shape)
    except RuntimeError:
        raise ValueError(f"{name} has shape {tuple(mask.shape)}, which does not broadcast to "
                         f"the scores' shape {tuple(shape)}") from None


def split_mask(mask, shape=None, name: str = "mask"):
    r"""Read a mask in the package's convention as ``(allowed, bias)``.

    * a bool mask: ``True`` = may attend; ``allowed`` is the mask, ``bias`` is ``None``;
    * a float mask: *added* to the scores (as in torch); ``-inf`` entries forbid a key,
      finite entries are a bias. ``allowed`` is ``mask > -inf`` and ``bias`` the mask with
      its ``-inf`` entries set to 0. NaN and ``+inf`` are refused.

    Args:
        mask: ``None``, a bool tensor or a floating tensor.
        shape: the scores' shape the mask must broadcast to (not checked when ``None``).
        name: the argument's name, used in messages.

    Returns:
        ``(allowed, bias)``: a bool tensor or ``None``, and a float tensor or ``None``.

    Examples:
        >>> allowed, bias = split_mask(torch.tensor([0.0, 1.0, float("-inf")]))
        >>> allowed, bias
        (tensor([ True,  True, False]), tensor([0., 1., 0.]))
    """
    if mask is None:
        return None, None
    if shape is not None:
        _check_mask(mask, shape, name)
    if mask.dtype == torch.bool:
        return mask, None
    if not mask.is_floating_point():
        raise ValueError(f"{name} must be bool (True = may attend) or floating (added to the "
                         f"scores), got dtype {mask.dtype}")
    if bool(torch.isnan(mask).any()) or bool((mask == math.inf).any()):
        raise ValueError(f"{name}: a float mask may hold finite values and -inf only "
                         f"(got NaN or +inf)")
    allowed = mask > -math.inf
    if bool(allowed.all()):
        return None, mask
    return allowed, mask.masked_fill(~allowed, 0.0)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1,
                   temperature: float = 1.0) -> torch.Tensor:
    r"""Softmax over ``dim`` that gives masked entries exactly zero weight.

    .. math:: \alpha_j = \frac{m_j \exp((s_j + b_j) / \tau)}{\sum_k m_k \exp((s_k + b_k) / \tau)}

    with :math:`m_j \in \{0, 1\}` the mask, :math:`b_j` an additive bias (a float mask)
    and :math:`\tau` the temperature. A row whose entries are all masked gets all-zero
    weights (not NaN), as in ``F.scaled_dot_product_attention``.

    Args:
        scores: attention scores :math:`s`.
        mask: bool, ``True`` where attending is allowed; or float, added to the scores
            (``-inf`` forbids); broadcastable to ``scores`` (see :func:`split_mask`).
        dim: the axis the weights sum to one over.
        temperature: :math:`\tau > 0`; large values flatten the weights, small values
            sharpen them towards the arg-max.

    Shape:
        - scores: :math:`(*)`
        - mask: broadcastable to :math:`(*)`
        - output: :math:`(*)`, summing to one over ``dim`` (or zero where all is masked)

    Examples:
        >>> scores = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
        >>> mask = torch.tensor([[True, True, False], [False, False, False]])
        >>> masked_softmax(scores, mask)
        tensor([[0.2689, 0.7311, 0.0000],
                [0.0000, 0.0000, 0.0000]])
    """
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"scores must be a tensor, got {type(scores).__name__}")
    temperature = check_positive(temperature, "temperature")
    allowed, bias = split_mask(mask, scores.shape)
    if bias is not None:
        scores = scores + bias.to(scores.dtype)
    scores = scores / temperature
    if allowed is None:
        return torch.softmax(scores, dim=dim)
    # a finite fill keeps fully masked rows NaN-free (also in the backward pass)
    filled = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=dim) * allowed


def attention_entropy(weights: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Entropy :math:`-\sum_j \alpha_j \log \alpha_j` (nats) of weights along ``dim``.

    ``log S`` means uniform attention over ``S`` keys; 0 means all weight on one key.

    Examples:
        >>> attention_entropy(torch.tensor([0.25, 0.25, 0.25, 0.25]))  # log 4
        tensor(1.3863)
        >>> float(attention_entropy(torch.tensor([1.0, 0.0]))) == 0.0  # all on one key
        True
    """
    return -(weights * torch.log(weights.clamp_min(1e-30))).sum(dim)


# ----------------------------------------------------------------------------- scaled dot product
def _check_qkv(q, k, v) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have at least 2 dimensions (..., length, features), "
                             f"got shape {tuple(t.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the last dimension E: q has shape "
                         f"{tuple(q.shape)} (..., L, E), k has shape {tuple(k.shape)} (..., S, E)")
    if k.shape[:-1] != v.shape[:-1]:
        raise ValueError(f"k and v must agree on (..., S): k has shape {tuple(k.shape)}, "
                         f"v has shape {tuple(v.shape)}")
    if q.shape[:-2] != k.shape[:-2]:
        raise ValueError(f"q and k must share the batch dimensions (...): q has shape "
                         f"{tuple(q.shape)}, k has shape {tuple(k.shape)}")


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, scale: float | None = None,
                                 need_weights: bool = True, temperature: float = 1.0):
    r"""Scaled dot-product attention, returning the output and the weights.

    .. math::
        A = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right), \qquad O = A V

    ``scale`` replaces :math:`1/\sqrt{d_k}`; ``temperature`` divides the scaled scores once
    more. With ``need_weights=False`` (and ``temperature=1``) it calls the fused
    ``F.scaled_dot_product_attention`` (the fast path) and returns ``weights=None``.

    Args:
        q, k, v: queries, keys and values.
        mask: boolean (``True`` = may attend) or float (added to the scores),
            broadcastable to :math:`(..., L, S)`.
        scale: score scale; default :math:`1/\sqrt{E}`.
        need_weights: return the weights (readable path) or not (fast path).
        temperature: softmax temperature :math:`\tau > 0`.

    Returns:
        ``(output, weights)``; ``weights`` is ``None`` on the fast path.

    Shape:
        - q: :math:`(..., L, E)`, k: :math:`(..., S, E)`, v: :math:`(..., S, E_v)`
        - output: :math:`(..., L, E_v)`, weights: :math:`(..., L, S)`

    Examples:
        >>> import torch.nn.functional as F
        >>> q, k, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 4)
        >>> out, weights = scaled_dot_product_attention(q, k, v)
        >>> out.shape, weights.shape
        (torch.Size([2, 3, 4]), torch.Size([2, 3, 5]))
        >>> bool(torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-6))
        True
        >>> mask = torch.zeros(3, 5)
        >>> mask[1] = float("-inf")          # row 1 may attend nowhere: its output is 0
        >>> out, _ = scaled_dot_product_attention(q, k, v, mask)
        >>> out[:, 1].abs().sum()
        tensor(0.)
    """
    _check_qkv(q, k, v)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    temperature = check_positive(temperature, "temperature")
    score_shape = q.shape[:-1] + k.shape[-2:-1]
    if mask is not None:
        split_mask(mask, score_shape)  # validates shape and values on both paths
        if mask.is_floating_point():
            mask = mask.to(q.dtype)
    if not need_weights and temperature == 1.0:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale), None
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., L, S)
    weights = masked_softmax(scores, mask, dim=-1, temperature=temperature)
    return weights @ v, (weights if need_weights else None)  # (..., L, E_v)


# ----------------------------------------------------------------------------- the seed's attention
def _check_states(states: Sequence[torch.Tensor], hidden_size: int | None = None) -> None:
    if isinstance(states, torch.Tensor) or len(states) < 2:
        raise ValueError("states must be a list of at least 2 modality tensors "
                         f"[(N, T, H), ...], got {type(states).__name__}")
    ref = tuple(states[0].shape)
    for m, h in enumerate(states):
        if tuple(h.shape) != ref:
            raise ValueError(f"states[{m}] has shape {tuple(h.shape)} but states[0] has {ref}: "
                             "this attention pairs step t of every modality, so all must be "
                             "(N, T, H) with the same T and H")
    if hidden_size is not None and ref[-1] != hidden_size:
        raise ValueError(f"states must have H = hidden_size = {hidden_size} features, got shape "
                         f"{ref}")


def seed_cross_modal_attention(states: Sequence[torch.Tensor], layers: Sequence[nn.Module]):
    r"""The seed's cross-modal attention code, reproduced faithfully, bug included.

    For every ordered pair :math:`m \neq n` it computes the score
    :math:`e = W_a^{(m)} [h^{(m)}; h^{(n)}]` of shape :math:`(N, 1)` and applies
    ``softmax(e, dim=1)``: a softmax over an axis of size one, so every weight is exactly 1
    and :math:`c^{(m)} = \sum_{n \neq m} h^{(n)}` whatever :math:`W_a` is (it gets no
    gradient). The seed also reads the weights back with the index
    ``i * (M - 1) + j``, which picks the wrong pair for some ``(i, j)``; with weights
    that are all 1 that second bug is invisible.

    Args:
        states: M tensors :math:`h^{(m)}` of shape :math:`(N, H)` (the seed used the last
            LSTM state of each modality).
        layers: M ``nn.Linear(2 * H, 1)``, one per query modality (the seed's
            ``attn_layers``).

    Returns:
        ``(contexts, weights)``: M tensors :math:`(N, H)` and the list of the
        :math:`M(M-1)` weight tensors :math:`(N, 1)` in the seed's order.

    Examples:
        >>> from torch import nn
        >>> states = [torch.randn(2, 4), torch.randn(2, 4)]
        >>> layers = [nn.Linear(8, 1), nn.Linear(8, 1)]
        >>> contexts, weights = seed_cross_modal_attention(states, layers)
        >>> bool(torch.stack(weights).eq(1).all())   # the size-one softmax: every weight is 1
        True
    """
    num_modalities = len(states)
    weights = []
    for i in range(num_modalities):
        for j in range(num_modalities):
            if i != j:
                e = layers[i](torch.cat([states[i], states[j]], dim=1))  # (N, 1)
                weights.append(F.softmax(e, dim=1))  # softmax over one entry: all ones
    contexts = []
    for i in range(num_modalities):
        c = 0
        for j in range(num_modalities):
            if i != j:
                c = c + weights[i * (num_modalities - 1) + j] * states[j]  # seed's indexing
        contexts.append(c)
    return contexts, weights


class CrossModalAttention(nn.Module):
    r"""The seed's per-step cross-modal attention, with the softmax over the other modalities.

    .. math::
        e_t^{(m,n)} = W_a^{(m)} \left[h_t^{(m)}; h_t^{(n)}\right], \qquad
        \alpha_t^{(m,n)} = \frac{\exp e_t^{(m,n)}}{\sum_{n' \neq m} \exp e_t^{(m,n')}}, \qquad
        c_t^{(m)} = \sum_{n \neq m} \alpha_t^{(m,n)} h_t^{(n)}

    Two honest caveats, both shown in chapter 7: with two modalities the sum over
    :math:`n \neq m` has a single term, so :math:`\alpha = 1` even when done right; and
    ``seed_bug=True`` reproduces the seed's code (softmax over a size-one axis), which
    gives :math:`\alpha = 1` for any number of modalities.

    Args:
        hidden_size: H, the size of every :math:`h_t^{(m)}`.
        num_modalities: M >= 2.
        seed_bug: reproduce the seed's softmax over a size-one axis.

    Shape:
        - states: a list of M tensors :math:`(N, T, H)` (or :math:`(N, H)`)
        - contexts: :math:`(N, T, M, H)`, :math:`c_t^{(m)}` in ``[:, t, m]``
        - weights: :math:`(N, T, M, M)`, :math:`\alpha_t^{(m,n)}` in ``[:, t, m, n]``; the
          diagonal is 0 and each row sums to 1 over :math:`n`

    Examples:
        >>> att = CrossModalAttention(hidden_size=4, num_modalities=3)
        >>> states = [torch.randn(2, 6, 4) for _ in range(3)]   # M x (N, T, H)
        >>> contexts, weights = att(states)
        >>> contexts.shape, weights.shape
        (torch.Size([2, 6, 3, 4]), torch.Size([2, 6, 3, 3]))
        >>> bool(torch.allclose(weights.sum(-1), torch.ones(2, 6, 3)))
        True
    """

    def __init__(self, hidden_size: int, num_modalities: int, seed_bug: bool = False):
        super().__init__()
        hidden_size = check_positive_int(hidden_size, "hidden_size")
        if check_positive_int(num_modalities, "num_modalities") < 2:
            raise ValueError(f"num_modalities must be >= 2, got {num_modalities}")
        self.hidden_size, self.num_modalities, self.seed_bug = hidden_size, num_modalities, seed_bug
        self.score = nn.ModuleList(nn.Linear(2 * hidden_size, 1) for _ in range(num_modalities))

    def forward(self, states: Sequence[torch.Tensor]):
        _check_states(states, self.hidden_size)
        if len(states) != self.num_modalities:
            raise ValueError(f"expected {self.num_modalities} modalities, got {len(states)}")
        h = torch.stack(list(states), dim=-2)  # (N, T, M, H)
        M = self.num_modalities
        pairs = torch.cat([h.unsqueeze(-2).expand(*h.shape[:-2], M, M, -1),   # h^m
                           h.unsqueeze(-3).expand(*h.shape[:-2], M, M, -1)],  # h^n
                          dim=-1)  # (N, T, M, M, 2H)
        e = torch.stack([self.score[m](pairs[..., m, :, :]) for m in range(M)], dim=-3)
        e = e.squeeze(-1)  # (N, T, M, M): e[..., m, n]
        others = ~torch.eye(M, dtype=torch.bool, device=e.device)  # n != m
        if self.seed_bug:
            alpha = torch.softmax(e.unsqueeze(-1), dim=-1).squeeze(-1) * others  # all ones
        else:
            alpha = masked_softmax(e, others, dim=-1)
        return alpha @ h, alpha  # (N, T, M, H), (N, T, M, M)


# ----------------------------------------------------------------------------- co-attention
class CoAttention(nn.Module):
    r"""Parallel co-attention (Lu et al., 2016): two sequences attend to each other through
    one affinity matrix, and each gets one attention map.

    .. math::
        \begin{gathered}
        C = \tanh\!\left(Q W_b V^\top\right), \\
        H^v = \tanh\!\left(V W_v^\top + C^\top Q W_q^\top\right), \qquad
        H^q = \tanh\!\left(Q W_q^\top + C\, V W_v^\top\right), \\
        a^v = \mathrm{softmax}_s\!\left(H^v w_{hv}\right), \qquad
        a^q = \mathrm{softmax}_l\!\left(H^q w_{hq}\right), \\
        \hat v = \textstyle\sum_s a^v_s v_s, \qquad \hat q = \sum_l a^q_l q_l
        \end{gathered}

    Lu et al. write the question's words as columns :math:`Q \in \mathbb R^{d \times L}`
    and the image's regions as :math:`V \in \mathbb R^{d \times S}`, so their
    :math:`C = \tanh(Q^\top W_b V)` and :math:`H^v = \tanh(W_v V + (W_q Q) C)`; the lines
    above are the same equations with one row per word or region (batch first). The
    affinity :math:`C_{ls}` ("how well word :math:`l` matches region :math:`s`") is read in
    both directions: region :math:`s` adds :math:`\sum_l C_{ls} W_q q_l`, what the words
    that match it say, to its own :math:`W_v v_s`, and a learned vector :math:`w_{hv}`
    scores the result. The scores :math:`H^v w_{hv}` are unbounded, so one region can take
    almost all the weight. (A softmax of :math:`C` itself cannot: its entries lie in
    :math:`[-1, 1]`, so over :math:`S` regions no weight exceeds
    :math:`e^2 / (e^2 + S - 1)`, about 0.105 for 64 regions.) This is one level of Lu et
    al.'s model, which applies it to words, phrases and the whole question.

    Masked positions (``False``) get zero weight, and their rows or columns of
    :math:`C` are zeroed, so padding never reaches the other modality.

    Args:
        dim_q: :math:`D_q`, features of ``q`` (e.g. the question's words).
        dim_v: :math:`D_v`, features of ``v`` (e.g. the image's regions).
        hidden_size: :math:`k`, the size of :math:`H^q` and :math:`H^v` (default
            :math:`\min(D_q, D_v)`).

    Shape:
        - q: :math:`(N, L, D_q)`, v: :math:`(N, S, D_v)`
        - mask_q: :math:`(N, L)`, mask_v: :math:`(N, S)`, bool, ``True`` = real
        - returns ``(q_hat (N, D_q), v_hat (N, D_v), a_q (N, L), a_v (N, S),
          affinity C (N, L, S))``

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> co = CoAttention(dim_q=4, dim_v=6, hidden_size=5)
        >>> q, v = torch.randn(2, 3, 4), torch.randn(2, 64, 6)
        >>> q_hat, v_hat, a_q, a_v, C = co(q, v)
        >>> [tuple(t.shape) for t in (q_hat, v_hat, a_q, a_v, C)]
        [(2, 4), (2, 6), (2, 3), (2, 64), (2, 3, 64)]
        >>> bool(torch.allclose(a_v.sum(-1), torch.ones(2)))
        True
        >>> v = torch.zeros(1, 64, 6)
        >>> v[0, 17] = 1.0                      # one region stands out among 64
        >>> with torch.no_grad():              # and w_hv points at its H^v
        ...     _ = co.w_hv.weight.copy_(20 * torch.tanh(co.W_v(v[0, 17])))
        >>> a_v = co(q[:1], v)[3]
        >>> int(a_v.argmax()), bool(a_v.max() > 0.9)
        (17, True)
    """

    def __init__(self, dim_q: int, dim_v: int, hidden_size: int | None = None):
        super().__init__()
        self.dim_q = check_positive_int(dim_q, "dim_q")
        self.dim_v = check_positive_int(dim_v, "dim_v")
        k = min(dim_q, dim_v) if hidden_size is None else hidden_size
        self.hidden_size = check_positive_int(k, "hidden_size")
        self.W_b = nn.Parameter(torch.empty(dim_q, dim_v))
        nn.init.xavier_uniform_(self.W_b)
        self.W_q = nn.Linear(dim_q, self.hidden_size, bias=False)
        self.W_v = nn.Linear(dim_v, self.hidden_size, bias=False)
        self.w_hq = nn.Linear(self.hidden_size, 1, bias=False)
        self.w_hv = nn.Linear(self.hidden_size, 1, bias=False)

    def affinity(self, q: torch.Tensor, v: torch.Tensor, mask_q=None, mask_v=None):
        """:math:`C = \\tanh(Q W_b V^\\top)`, zero in the rows and columns of masked
        positions: (N, L, S)."""
        C = torch.tanh(q @ self.W_b @ v.transpose(1, 2))  # (N, L, S)
        if mask_q is not None:
            C = C * mask_q[:, :, None].to(C.dtype)
        if mask_v is not None:
            C = C * mask_v[:, None, :].to(C.dtype)
        return C

    def forward(self, q, v, mask_q=None, mask_v=None):
        check_shape(q, ("N", None, self.dim_q), "q")
        check_shape(v, ("N", None, self.dim_v), "v")
        N, L, S = q.shape[0], q.shape[1], v.shape[1]
        if v.shape[0] != N:
            raise ValueError(f"q and v must share N: got shapes {tuple(q.shape)} (N, L, D_q) "
                             f"and {tuple(v.shape)} (N, S, D_v)")
        for name, m, shape in (("mask_q", mask_q, (N, L)), ("mask_v", mask_v, (N, S))):
            if m is not None:
                check_shape(m, shape, name)
                if m.dtype != torch.bool:
                    raise ValueError(f"{name} must be bool (True = real), got dtype {m.dtype}")
        C = self.affinity(q, v, mask_q, mask_v)  # (N, L, S)
        Wq_q, Wv_v = self.W_q(q), self.W_v(v)  # (N, L, k), (N, S, k)
        H_v = torch.tanh(Wv_v + C.transpose(1, 2) @ Wq_q)  # (N, S, k)
        H_q = torch.tanh(Wq_q + C @ Wv_v)  # (N, L, k)
        a_v = masked_softmax(self.w_hv(H_v).squeeze(-1), mask_v, dim=-1)  # (N, S)
        a_q = masked_softmax(self.w_hq(H_q).squeeze(-1), mask_q, dim=-1)  # (N, L)
        v_hat = (a_v.unsqueeze(-1) * v).sum(1)  # (N, D_v)
        q_hat = (a_q.unsqueeze(-1) * q).sum(1)  # (N, D_q)
        return q_hat, v_hat, a_q, a_v, C

    @torch.no_grad()
    def word_effects(self, q, v, mask_q=None, mask_v=None) -> torch.Tensor:
        r"""What each element of ``q`` does to the attention over ``v``: :math:`a^v` minus
        :math:`a^v` computed without that element.

        .. math:: \Delta^{(l)} = a^v - a^{v(-l)}, \qquad
                  a^{v(-l)} = \mathrm{softmax}_s\big(w_{hv}^\top
                  \tanh(W_v v_s + \textstyle\sum_{l' \ne l} C_{l's} W_q q_{l'})\big)

        Positive where word :math:`l` pulls the attention, negative where it pushes it
        away; each row sums to zero. A map per word that says what the word contributes
        (chapter 12's explorer): removing the colour word of "what is the shape of the
        red object?" takes the attention off the red object.

        Shape:
            - q, v, masks: as :meth:`forward`
            - output: :math:`(N, L, S)`, zero rows for masked words
        """
        C = self.affinity(q, v, mask_q, mask_v)  # (N, L, S)
        Wq_q, Wv_v = self.W_q(q), self.W_v(v)  # (N, L, k), (N, S, k)
        full = Wv_v + C.transpose(1, 2) @ Wq_q  # (N, S, k): all the words
        without = full[:, None] - C[..., None] * Wq_q[:, :, None]  # (N, L, S, k): word l out
        mask = None if mask_v is None else mask_v[:, None, :]
        a_v = masked_softmax(self.w_hv(torch.tanh(full)).squeeze(-1), mask_v, dim=-1)
        a_wo = masked_softmax(self.w_hv(torch.tanh(without)).squeeze(-1), mask, dim=-1)
        effect = a_v[:, None] - a_wo  # (N, L, S)
        return effect if mask_q is None else effect * mask_q[..., None].to(effect.dtype)

    def extra_repr(self) -> str:
        return f"dim_q={self.dim_q}, dim_v={self.dim_v}, hidden_size={self.hidden_size}"


# ----------------------------------------------------------------------------- multi-head
class MultiheadCrossModalAttention(nn.Module):
    r"""Multi-head attention with queries from one modality and keys/values from another.

    .. math::
        \mathrm{head}_i = \mathrm{softmax}\!\left(\frac{(X_\alpha W_i^Q)(X_\beta W_i^K)^\top}
        {\sqrt{E / h}}\right) X_\beta W_i^V, \qquad
        Y = [\mathrm{head}_1; \dots; \mathrm{head}_h] W^O

    as in the Multimodal Transformer (Tsai et al., 2019): modality :math:`\alpha` asks,
    modality :math:`\beta` answers. Equal to ``nn.MultiheadAttention(batch_first=True)``
    with the same weights (see :meth:`from_torch`), but it returns the weights of every
    head and accepts a temperature.

    Args:
        embed_dim: E, the query size and output size.
        num_heads: h; E must be divisible by h.
        kdim, vdim: sizes of keys and values (default E).
        bias: add biases to the projections.

    Shape:
        - query: :math:`(N, L, E)`, key: :math:`(N, S, E_k)`, value: :math:`(N, S, E_v)`
        - key_mask: :math:`(N, S)` bool, ``True`` = attend (the package's convention)
        - key_padding_mask: :math:`(N, S)` as in ``nn.MultiheadAttention``: bool ``True`` =
          padding, or float added to the scores (give this or ``key_mask``, not both)
        - attn_mask: :math:`(L, S)` or :math:`(N, h, L, S)`, bool ``True`` = may attend
          (the package's convention, as ``F.scaled_dot_product_attention``; note that
          ``nn.MultiheadAttention``'s bool ``attn_mask`` means the opposite), or float added
        - returns ``(output (N, L, E), weights (N, h, L, S) or None)``

    Examples:
        >>> from torch import nn
        >>> mha = nn.MultiheadAttention(8, num_heads=2, batch_first=True)
        >>> ours = MultiheadCrossModalAttention.from_torch(mha)
        >>> x, y = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
        >>> pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])  # torch: True = pad
        >>> out, w = ours(x, y, key_padding_mask=pad)
        >>> out.shape, w.shape
        (torch.Size([2, 3, 8]), torch.Size([2, 2, 3, 5]))
        >>> bool(torch.allclose(out, mha(x, y, y, key_padding_mask=pad)[0], atol=1e-6))
        True
        >>> same, _ = ours(x, y, key_mask=~pad)   # the package's convention: True = attend
        >>> bool(torch.allclose(out, same))
        True
    """

    def __init__(self, embed_dim: int, num_heads: int, kdim: int | None = None,
                 vdim: int | None = None, bias: bool = True):
        super().__init__()
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        num_heads = check_positive_int(num_heads, "num_heads")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.head_dim = embed_dim // num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(self.kdim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(self.vdim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> MultiheadCrossModalAttention:
        """A copy of ``nn.MultiheadAttention``'s weights (no bias_k/v, no dropout)."""
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("from_torch does not support add_bias_kv or add_zero_attn")
        bias = mha.in_proj_bias is not None
        new = cls(mha.embed_dim, mha.num_heads, mha.kdim, mha.vdim, bias=bias)
        E = mha.embed_dim
        with torch.no_grad():
            if mha._qkv_same_embed_dim:
                w = mha.in_proj_weight
                ws = (w[:E], w[E:2 * E], w[2 * E:])
            else:
                ws = (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight)
            for proj, wi in zip((new.q_proj, new.k_proj, new.v_proj), ws):
                proj.weight.copy_(wi)
            if bias:
                for i, proj in enumerate((new.q_proj, new.k_proj, new.v_proj)):
                    proj.bias.copy_(mha.in_proj_bias[i * E:(i + 1) * E])
                new.out_proj.bias.copy_(mha.out_proj.bias)
            new.out_proj.weight.copy_(mha.out_proj.weight)
        return new.to(mha.out_proj.weight.device, mha.out_proj.weight.dtype)

    def _split(self, x):
        N, T, _ = x.shape
        return x.view(N, T, self.num_heads, self.head_dim).transpose(1, 2)  # (N, h, T, E/h)

    def _key_mask(self, key_mask, key_padding_mask, N: int, S: int):
        """The keys' mask in the package's convention: ``(allowed, bias)``, each
        ``(N, 1, 1, S)`` or ``None``; this is where torch's ``key_padding_mask`` is met."""
        if key_mask is not None and key_padding_mask is not None:
            raise ValueError("pass key_mask (True = attend) or key_padding_mask (torch's "
                             "convention, True = padding), not both")
        if key_padding_mask is not None:
            check_shape(key_padding_mask, (N, S), "key_padding_mask")
            if key_padding_mask.dtype == torch.bool:
                key_mask = ~key_padding_mask  # torch: True = padding -> ours: True = attend
            else:
                key_mask = key_padding_mask  # float: added to the scores, as torch does
        elif key_mask is not None:
            check_shape(key_mask, (N, S), "key_mask")
        if key_mask is None:
            return None, None
        return split_mask(key_mask[:, None, None, :], None,
                          "key_padding_mask" if key_padding_mask is not None else "key_mask")

    def _mask(self, key_mask, key_padding_mask, attn_mask, N: int, L: int, S: int):
        """One mask for :func:`scaled_dot_product_attention`: bool when every part is bool,
        else float (``-inf`` where forbidden, plus the biases)."""
        k_allowed, k_bias = self._key_mask(key_mask, key_padding_mask, N, S)
        a_allowed, a_bias = split_mask(attn_mask, (N, self.num_heads, L, S), "attn_mask")
        allowed = [m for m in (k_allowed, a_allowed) if m is not None]
        biases = [b for b in (k_bias, a_bias) if b is not None]
        allowed = allowed[0] & allowed[1] if len(allowed) == 2 else (allowed or [None])[0]
        if not biases:
            return allowed
        bias = biases[0] + biases[1] if len(biases) == 2 else biases[0]
        if allowed is None:
            return bias
        return torch.where(allowed, bias, -math.inf)

    def forward(self, query, key, value=None, key_padding_mask=None, attn_mask=None,
                need_weights: bool = True, temperature: float = 1.0, key_mask=None):
        value = key if value is None else value
        check_shape(query, ("N", None, self.embed_dim), "query")
        check_shape(key, ("N", "S", self.kdim), "key")
        check_shape(value, ("N", "S", self.vdim), "value")
        if query.shape[0] != key.shape[0]:
            raise ValueError(f"query and key must share N: got {tuple(query.shape)} and "
                             f"{tuple(key.shape)}")
        N, L, S = query.shape[0], query.shape[1], key.shape[1]
        mask = self._mask(key_mask, key_padding_mask, attn_mask, N, L, S)
        q = self._split(self.q_proj(query))  # (N, h, L, E/h)
        k, v = self._split(self.k_proj(key)), self._split(self.v_proj(value))  # (N, h, S, E/h)
        out, weights = scaled_dot_product_attention(q, k, v, mask, need_weights=need_weights,
                                                    temperature=temperature)
        out = out.transpose(1, 2).reshape(N, L, self.embed_dim)  # (N, L, E)
        return self.out_proj(out), weights


class CrossModalTransformerBlock(nn.Module):
    r"""One cross-modal transformer layer (pre-norm, as in the Multimodal Transformer).

    .. math::
        \hat X_\alpha = X_\alpha + \mathrm{MHA}\big(\mathrm{LN}(X_\alpha),
        \mathrm{LN}(X_\beta), \mathrm{LN}(X_\beta)\big), \qquad
        Y = \hat X_\alpha + \mathrm{FFN}\big(\mathrm{LN}(\hat X_\alpha)\big)

    A sample whose source modality is absent (``source_present[n]`` False) skips the
    attention sub-layer only: :math:`\hat X_\alpha = X_\alpha`, and the feed-forward
    sub-layer still applies, :math:`Y = X_\alpha + \mathrm{FFN}(\mathrm{LN}(X_\alpha))`,
    so the block stays the same non-linear layer for its own tokens; nothing of the
    source reaches that sample's output.

    Args:
        embed_dim: E, features of the query modality (and of the output).
        num_heads: h.
        kdim: features of the source modality (default E).
        dim_feedforward: hidden size of the feed-forward network (default 4E).
        dropout: dropout after attention and inside the feed-forward network.

    Shape:
        - x: :math:`(N, L, E)`, source: :math:`(N, S, E_k)`,
          key_mask: :math:`(N, S)` (``True`` = attend) or key_padding_mask (``True`` =
          padding, as torch)
        - source_present: :math:`(N,)` bool, optional (default: every source present)
        - returns ``(y (N, L, E), weights (N, h, L, S))``

    Raises:
        ValueError: ``source_present`` not bool :math:`(N,)`.

    Examples:
        >>> block = CrossModalTransformerBlock(embed_dim=8, num_heads=2, kdim=6)
        >>> y, w = block(torch.randn(2, 3, 8), torch.randn(2, 5, 6))
        >>> y.shape, w.shape
        (torch.Size([2, 3, 8]), torch.Size([2, 2, 3, 5]))
        >>> x = torch.randn(2, 3, 8)
        >>> y, _ = block(x, torch.randn(2, 5, 6), source_present=torch.tensor([True, False]))
        >>> torch.allclose(y[1], x[1] + block.ff(block.norm_ff(x[1])))  # FFN only
        True
    """

    def __init__(self, embed_dim: int, num_heads: int, kdim: int | None = None,
                 dim_feedforward: int | None = None, dropout: float = 0.0):
        super().__init__()
        kdim = kdim or embed_dim
        self.attn = MultiheadCrossModalAttention(embed_dim, num_heads, kdim, kdim)
        self.norm_q, self.norm_kv, self.norm_ff = (nn.LayerNorm(embed_dim), nn.LayerNorm(kdim),
                                                   nn.LayerNorm(embed_dim))
        hidden = dim_feedforward or 4 * embed_dim
        self.ff = nn.Sequential(nn.Linear(embed_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(hidden, embed_dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, source, key_padding_mask=None, temperature: float = 1.0,
                key_mask=None, source_present=None):
        kv = self.norm_kv(source)
        a, weights = self.attn(self.norm_q(x), kv, kv, key_padding_mask=key_padding_mask,
                               temperature=temperature, key_mask=key_mask)
        a = self.dropout(a)  # (N, L, E)
        if source_present is not None:  # no source: skip the attention sub-layer only
            check_shape(source_present, (x.shape[0],), "source_present")
            if source_present.dtype != torch.bool:
                raise ValueError(f"source_present must be bool (True = the source is "
                                 f"there), got dtype {source_present.dtype}")
            a = torch.where(source_present.to(a.device)[:, None, None], a, 0.0)
        x = x + a
        return x + self.dropout(self.ff(self.norm_ff(x))), weights
