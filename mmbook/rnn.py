"""Recurrent networks from their equations: RNN, LSTM and GRU cells, and LSTM/GRU/RNN layers.

Every module here computes the textbook equations with parameters named after their
symbols (``W_xi``, ``W_hi``, ``b_xi`` ...), loads its weights from the matching torch
module with :meth:`from_torch`, and is tested to equal it (outputs and gradients).

Two forms of the same equations live here:

* the **cells** (:class:`RNNCellScratch`, :class:`LSTMCellScratch`, :class:`GRUCellScratch`)
  write one line per gate, each gate with its own weight matrices, the way the equations
  read;
* the **layers** (:class:`LSTMScratch`, :class:`GRUScratch`, :class:`RNNScratch`) stack the
  gates' weights the way torch stores them (rows ``i, f, g, o`` for the LSTM, ``r, z, n``
  for the GRU) and compute the input part :math:`W_x x_t` of every time step in one
  matrix product before the loop over time, since it does not depend on :math:`h_{t-1}`.

Biases: torch keeps two bias vectors per gate, :math:`b_{x\\ast}` (input side) and
:math:`b_{h\\ast}` (hidden side); only their sum matters (except for the GRU's candidate
gate, where :math:`r_t` multiplies the hidden side). The modules keep both, so that
weights copy one to one and parameter counts equal torch's.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .utils import check_choice, check_dtype, check_lengths, check_positive_int, check_shape

__all__ = [
    "RNNCellScratch", "LSTMCellScratch", "GRUCellScratch",
    "RNNScratch", "LSTMScratch", "GRUScratch",
]


# ----------------------------------------------------------------------------- cells
class _CellBase(nn.Module):
    """Shared plumbing of the cells: gate parameters, stacking, loading, shape checks."""

    gates: tuple = ()  # gate names, in torch's row order

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        input_size = check_positive_int(input_size, "input_size")
        hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        kw = {"device": device, "dtype": dtype}
        H, D = hidden_size, input_size
        for gate in self.gates:
            setattr(self, f"W_x{gate}", nn.Parameter(torch.empty(H, D, **kw)))  # (H, D)
            setattr(self, f"W_h{gate}", nn.Parameter(torch.empty(H, H, **kw)))  # (H, H)
            b_x = nn.Parameter(torch.empty(H, **kw)) if bias else None
            b_h = nn.Parameter(torch.empty(H, **kw)) if bias else None
            self.register_parameter(f"b_x{gate}", b_x)
            self.register_parameter(f"b_h{gate}", b_h)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in :math:`[-1/\\sqrt{H}, 1/\\sqrt{H}]`, as torch initialises its RNNs."""
        k = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"

    @property
    def W_h_dtype(self) -> torch.dtype:
        """The parameters' dtype (inputs must have it)."""
        return getattr(self, f"W_h{self.gates[0]}").dtype

    def _affine(self, kind: str, gate: str, v: torch.Tensor) -> torch.Tensor:
        """:math:`W_{kind,gate} v + b_{kind,gate}` (``kind`` is ``"x"`` or ``"h"``)."""
        W, b = getattr(self, f"W_{kind}{gate}"), getattr(self, f"b_{kind}{gate}")
        out = v @ W.T
        return out if b is None else out + b

    def stacked(self):
        """The gates' weights stacked as torch stores them.

        Returns:
            ``(W_x, W_h, b_x, b_h)`` of shapes ``(kH, D)``, ``(kH, H)``, ``(kH,)``, ``(kH,)``
            with k gates in torch's row order; the biases are ``None`` when ``bias=False``.
        """
        W_x = torch.cat([getattr(self, f"W_x{g}") for g in self.gates])
        W_h = torch.cat([getattr(self, f"W_h{g}") for g in self.gates])
        if not self.bias:
            return W_x, W_h, None, None
        b_x = torch.cat([getattr(self, f"b_x{g}") for g in self.gates])
        b_h = torch.cat([getattr(self, f"b_h{g}") for g in self.gates])
        return W_x, W_h, b_x, b_h

    @torch.no_grad()
    def load_stacked(self, W_x, W_h, b_x=None, b_h=None) -> _CellBase:
        """Copy torch-layout weights (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``)."""
        k, H, D = len(self.gates), self.hidden_size, self.input_size
        check_shape(W_x, (k * H, D), "weight_ih")
        check_shape(W_h, (k * H, H), "weight_hh")
        if self.bias != (b_x is not None):
            raise ValueError(f"bias={self.bias} but the source "
                             f"{'has no' if b_x is None else 'has'} biases")
        sources = {"W_x": W_x, "W_h": W_h, "b_x": b_x, "b_h": b_h}
        for prefix, src in sources.items():
            if src is None:
                continue
            for gate, chunk in zip(self.gates, src.chunk(k, dim=0)):
                getattr(self, f"{prefix}{gate}").copy_(chunk)
        return self

    @classmethod
    def _from_torch_cell(cls, module, torch_cls):
        if not isinstance(module, torch_cls):
            raise TypeError(f"{cls.__name__}.from_torch expects a torch.nn.{torch_cls.__name__}, "
                            f"got {type(module).__name__}")
        p = module.weight_ih
        cell = cls(module.input_size, module.hidden_size, bias=module.bias,
                   device=p.device, dtype=p.dtype)
        return cell.load_stacked(module.weight_ih, module.weight_hh,
                                 getattr(module, "bias_ih", None), getattr(module, "bias_hh", None))

    def _check_input(self, x: torch.Tensor, state, n_states: int):
        """Validate ``x`` (N, D) or (D,) and the state; return batched x, state, unbatched."""
        if not isinstance(x, torch.Tensor) or x.dim() not in (1, 2):
            got = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
            raise ValueError(f"input must have shape (N, {self.input_size}) or "
                             f"({self.input_size},), got {got}")
        unbatched = x.dim() == 1
        x = x.unsqueeze(0) if unbatched else x
        check_shape(x, ("N", self.input_size), "input")
        check_dtype(x, self.W_h_dtype, "input", type(self).__name__)
        N, H = x.shape[0], self.hidden_size
        if state is None:
            state = tuple(x.new_zeros(N, H) for _ in range(n_states))
        else:
            state = (state,) if isinstance(state, torch.Tensor) else tuple(state)
            if len(state) != n_states:
                raise ValueError(f"state must hold {n_states} tensor(s), got {len(state)}")
            state = tuple(s.unsqueeze(0) if unbatched else s for s in state)
            for name, s in zip(("h", "c"), state):
                check_shape(s, (N, H), name)
        return x, state, unbatched


class RNNCellScratch(_CellBase):
    r"""The vanilla (Elman) RNN cell.

    .. math::
        h_t = \tanh(W_{xh} x_t + b_{xh} + W_{hh} h_{t-1} + b_{hh})

    (``nonlinearity="relu"`` replaces tanh by ReLU.) Equal to :class:`torch.nn.RNNCell`.

    Args:
        input_size: D, features of :math:`x_t`.
        hidden_size: H, features of :math:`h_t`.
        bias: learn :math:`b_{xh}` and :math:`b_{hh}`.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Attributes:
        W_xh: :math:`(H, D)`, torch's ``weight_ih``.
        W_hh: :math:`(H, H)`, torch's ``weight_hh``.
        b_xh, b_hh: :math:`(H,)` each (``None`` when ``bias=False``), torch's ``bias_ih``,
            ``bias_hh``.

    Shape:
        - x: :math:`(N, D)` or :math:`(D,)`; h: :math:`(N, H)` or :math:`(H,)`, zeros if None.
        - output: :math:`h_t` with the shape of h.

    Examples:
        >>> cell = RNNCellScratch(input_size=3, hidden_size=5)
        >>> cell.W_xh.shape, cell.W_hh.shape
        (torch.Size([5, 3]), torch.Size([5, 5]))
        >>> cell(torch.randn(2, 3)).shape
        torch.Size([2, 5])
        >>> ref = torch.nn.RNNCell(3, 5)
        >>> x = torch.randn(2, 3)
        >>> torch.allclose(RNNCellScratch.from_torch(ref)(x), ref(x), atol=1e-6)
        True
    """

    gates = ("h",)

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None):
        check_choice(nonlinearity, ("tanh", "relu"), "nonlinearity")
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def _act(self, a: torch.Tensor) -> torch.Tensor:
        return torch.tanh(a) if self.nonlinearity == "tanh" else torch.relu(a)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        x, (h,), unbatched = self._check_input(x, h, 1)
        h = self._act(self._affine("x", "h", x) + self._affine("h", "h", h))
        return h.squeeze(0) if unbatched else h

    def step(self, xw: torch.Tensor, state: tuple, W_h, b_h) -> tuple:
        """One time step given the input part ``xw`` = :math:`W_{xh} x_t + b_{xh}`."""
        (h,) = state
        a = xw + h @ W_h.T
        return (self._act(a if b_h is None else a + b_h),)

    @classmethod
    def from_torch(cls, module: nn.RNNCell) -> RNNCellScratch:
        """A copy of ``module`` (an :class:`torch.nn.RNNCell`)."""
        cell = cls._from_torch_cell(module, nn.RNNCell)
        cell.nonlinearity = module.nonlinearity
        return cell


class LSTMCellScratch(_CellBase):
    r"""The LSTM cell, one line per gate.

    .. math::
        \begin{aligned}
        i_t &= \sigma(W_{xi} x_t + b_{xi} + W_{hi} h_{t-1} + b_{hi}) && \text{input gate}\\
        f_t &= \sigma(W_{xf} x_t + b_{xf} + W_{hf} h_{t-1} + b_{hf}) && \text{forget gate}\\
        g_t &= \tanh(W_{xg} x_t + b_{xg} + W_{hg} h_{t-1} + b_{hg}) && \text{candidate}\\
        o_t &= \sigma(W_{xo} x_t + b_{xo} + W_{ho} h_{t-1} + b_{ho}) && \text{output gate}\\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t\\
        h_t &= o_t \odot \tanh(c_t)
        \end{aligned}

    Equal to :class:`torch.nn.LSTMCell` (whose ``weight_ih`` rows are ``i, f, g, o``).

    Args:
        input_size: D, features of :math:`x_t`.
        hidden_size: H, features of :math:`h_t` and :math:`c_t`.
        bias: learn the biases :math:`b_{x\ast}, b_{h\ast}`.

    Attributes:
        W_xi, W_xf, W_xg, W_xo: :math:`(H, D)` each; stacked in this order they are torch's
            ``weight_ih`` :math:`(4H, D)`.
        W_hi, W_hf, W_hg, W_ho: :math:`(H, H)` each; stacked, ``weight_hh`` :math:`(4H, H)`.
        b_xi, b_xf, b_xg, b_xo, b_hi, b_hf, b_hg, b_ho: :math:`(H,)` each (``None`` when
            ``bias=False``); stacked, ``bias_ih`` and ``bias_hh`` :math:`(4H,)`.

    Shape:
        - x: :math:`(N, D)` or :math:`(D,)`; state: ``(h, c)``, each :math:`(N, H)`, zeros
          if None.
        - output: ``(h_t, c_t)``, each :math:`(N, H)`.

    Examples:
        >>> cell = LSTMCellScratch(input_size=3, hidden_size=5)
        >>> cell.W_xf.shape, cell.W_hf.shape, cell.b_xf.shape
        (torch.Size([5, 3]), torch.Size([5, 5]), torch.Size([5]))
        >>> h, c = cell(torch.randn(2, 3))
        >>> h.shape, c.shape
        (torch.Size([2, 5]), torch.Size([2, 5]))
        >>> ref = torch.nn.LSTMCell(3, 5)
        >>> x = torch.randn(2, 3)
        >>> torch.allclose(LSTMCellScratch.from_torch(ref)(x)[0], ref(x)[0], atol=1e-6)
        True
    """

    gates = ("i", "f", "g", "o")

    def forward(self, x: torch.Tensor, state: tuple | None = None) -> tuple:
        x, (h, c), unbatched = self._check_input(x, state, 2)
        i = torch.sigmoid(self._affine("x", "i", x) + self._affine("h", "i", h))
        f = torch.sigmoid(self._affine("x", "f", x) + self._affine("h", "f", h))
        g = torch.tanh(self._affine("x", "g", x) + self._affine("h", "g", h))
        o = torch.sigmoid(self._affine("x", "o", x) + self._affine("h", "o", h))
        c = f * c + i * g
        h = o * torch.tanh(c)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)

    def step(self, xw: torch.Tensor, state: tuple, W_h, b_h) -> tuple:
        """One time step given the input part ``xw`` = :math:`W_x x_t + b_x` of all gates."""
        h, c = state
        a = xw + h @ W_h.T  # (N, 4H)
        a_i, a_f, a_g, a_o = (a if b_h is None else a + b_h).chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
        c = f * c + i * g
        return o * torch.tanh(c), c

    @classmethod
    def from_torch(cls, module: nn.LSTMCell) -> LSTMCellScratch:
        """A copy of ``module`` (an :class:`torch.nn.LSTMCell`)."""
        return cls._from_torch_cell(module, nn.LSTMCell)


class GRUCellScratch(_CellBase):
    r"""The GRU cell, in torch's convention.

    .. math::
        \begin{aligned}
        r_t &= \sigma(W_{xr} x_t + b_{xr} + W_{hr} h_{t-1} + b_{hr}) && \text{reset gate}\\
        z_t &= \sigma(W_{xz} x_t + b_{xz} + W_{hz} h_{t-1} + b_{hz}) && \text{update gate}\\
        n_t &= \tanh(W_{xn} x_t + b_{xn} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))
               && \text{candidate}\\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}
        \end{aligned}

    Equal to :class:`torch.nn.GRUCell` (``weight_ih`` rows ``r, z, n``).

    Args:
        input_size: D, features of :math:`x_t`.
        hidden_size: H, features of :math:`h_t`.
        bias: learn the biases.

    Attributes:
        W_xr, W_xz, W_xn: :math:`(H, D)` each; stacked, torch's ``weight_ih`` :math:`(3H, D)`.
        W_hr, W_hz, W_hn: :math:`(H, H)` each; stacked, ``weight_hh`` :math:`(3H, H)`.
        b_xr, b_xz, b_xn, b_hr, b_hz, b_hn: :math:`(H,)` each (``None`` when
            ``bias=False``); stacked, ``bias_ih`` and ``bias_hh`` :math:`(3H,)`.

    Shape:
        - x: :math:`(N, D)` or :math:`(D,)`; h: :math:`(N, H)` or :math:`(H,)`, zeros if None.
        - output: :math:`h_t` with the shape of h.

    Examples:
        >>> cell = GRUCellScratch(input_size=3, hidden_size=5)
        >>> cell.W_xn.shape, cell.W_hn.shape
        (torch.Size([5, 3]), torch.Size([5, 5]))
        >>> ref = torch.nn.GRUCell(3, 5)
        >>> x = torch.randn(2, 3)
        >>> torch.allclose(GRUCellScratch.from_torch(ref)(x), ref(x), atol=1e-6)
        True
    """

    gates = ("r", "z", "n")

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        x, (h,), unbatched = self._check_input(x, h, 1)
        r = torch.sigmoid(self._affine("x", "r", x) + self._affine("h", "r", h))
        z = torch.sigmoid(self._affine("x", "z", x) + self._affine("h", "z", h))
        n = torch.tanh(self._affine("x", "n", x) + r * self._affine("h", "n", h))
        h = (1 - z) * n + z * h
        return h.squeeze(0) if unbatched else h

    def step(self, xw: torch.Tensor, state: tuple, W_h, b_h) -> tuple:
        """One time step given the input part ``xw`` = :math:`W_x x_t + b_x` of all gates."""
        (h,) = state
        hw = h @ W_h.T  # (N, 3H)
        x_r, x_z, x_n = xw.chunk(3, dim=-1)
        h_r, h_z, h_n = (hw if b_h is None else hw + b_h).chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return ((1 - z) * n + z * h,)

    @classmethod
    def from_torch(cls, module: nn.GRUCell) -> GRUCellScratch:
        """A copy of ``module`` (an :class:`torch.nn.GRUCell`)."""
        return cls._from_torch_cell(module, nn.GRUCell)


# ----------------------------------------------------------------------------- layers
class _SequenceBase(nn.Module):
    """A stack of cells run over time; handles batch_first, states, lengths and packing."""

    _cell_cls = None
    _torch_cls = None
    _n_states = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 batch_first: bool = True, bias: bool = True, device=None, dtype=None,
                 **cell_kwargs):
        super().__init__()
        num_layers = check_positive_int(num_layers, "num_layers")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.bias = batch_first, bias
        self.cells = nn.ModuleList(
            self._cell_cls(input_size if layer == 0 else hidden_size, hidden_size, bias,
                           device=device, dtype=dtype, **cell_kwargs)
            for layer in range(num_layers))

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}, bias={self.bias}")

    # -- input handling
    def _initial_state(self, state, N: int, x: torch.Tensor, unbatched: bool) -> list:
        """Per layer, a tuple of ``(N, H)`` tensors."""
        shape = (self.num_layers, N, self.hidden_size)
        if state is None:
            return [tuple(x.new_zeros(N, self.hidden_size) for _ in range(self._n_states))
                    for _ in range(self.num_layers)]
        state = (state,) if isinstance(state, torch.Tensor) else tuple(state)
        if len(state) != self._n_states:
            raise ValueError(f"state must hold {self._n_states} tensor(s) "
                             f"{'(h_0, c_0)' if self._n_states == 2 else 'h_0'}, got {len(state)}")
        names = ("h_0", "c_0")
        if unbatched:
            for name, s in zip(names, state):
                check_shape(s, shape[:1] + shape[2:], name)
            state = tuple(s.unsqueeze(1) for s in state)
        for name, s in zip(names, state):
            check_shape(s, shape, name)
        return [tuple(s[layer] for s in state) for layer in range(self.num_layers)]

    # -- the computation
    def _run_layer(self, cell, x: torch.Tensor, state: tuple, lengths) -> tuple:
        """Run one cell over ``x`` (N, L, D); past ``lengths`` states freeze, outputs are 0."""
        W_x, W_h, b_x, b_h = cell.stacked()
        xw = x @ W_x.T  # (N, L, kH): the input part of every step at once
        if b_x is not None:
            xw = xw + b_x
        outputs = []
        for t in range(x.shape[1]):
            new = cell.step(xw[:, t], state, W_h, b_h)
            if lengths is not None:
                valid = (lengths > t).unsqueeze(1)  # (N, 1)
                new = tuple(torch.where(valid, n, s) for n, s in zip(new, state))
                outputs.append(torch.where(valid, new[0], torch.zeros_like(new[0])))
            else:
                outputs.append(new[0])
            state = new
        return torch.stack(outputs, dim=1), state  # (N, L, H)

    def forward(self, x, state=None, lengths=None):
        packed = isinstance(x, PackedSequence)
        if packed:
            if lengths is not None:
                raise ValueError("pass either a PackedSequence or lengths, not both")
            padded, lengths = pad_packed_sequence(x, batch_first=True)
            output, final = self._forward_padded(padded, state, lengths, unbatched=False)
            return self._repack(output, lengths, x), self._pack_state(final)
        if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3):
            got = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
            order = "(N, L, D)" if self.batch_first else "(L, N, D)"
            raise ValueError(f"input must have shape {order} or (L, D) with D="
                             f"{self.input_size}, got {got}")
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(0)
        elif not self.batch_first:
            x = x.transpose(0, 1)  # (L, N, D) -> (N, L, D)
        output, final = self._forward_padded(x, state, lengths, unbatched)
        if unbatched:
            return output.squeeze(0), self._pack_state(tuple(s.squeeze(1) for s in final))
        if not self.batch_first:
            output = output.transpose(0, 1)  # (N, L, H) -> (L, N, H)
        return output, self._pack_state(final)

    def _forward_padded(self, x, state, lengths, unbatched: bool):
        check_shape(x, ("N", "L", self.input_size), "input")
        N, L = x.shape[:2]
        if L == 0:
            raise ValueError(f"input has length L=0 (shape {tuple(x.shape)} as (N, L, D)): a "
                             f"recurrent layer needs at least one time step")
        check_dtype(x, self.cells[0].W_h_dtype, "input", type(self).__name__)
        if lengths is not None:
            lengths = check_lengths(lengths, N, L, min_length=1).to(x.device)
        states = self._initial_state(state, N, x, unbatched)
        finals = []
        for cell, layer_state in zip(self.cells, states):
            x, layer_final = self._run_layer(cell, x, layer_state, lengths)
            finals.append(layer_final)
        # per state kind, (num_layers, N, H)
        return x, tuple(torch.stack(kind) for kind in zip(*finals))

    def _pack_state(self, final: tuple):
        return final if self._n_states > 1 else final[0]

    @staticmethod
    def _repack(output: torch.Tensor, lengths: torch.Tensor, like: PackedSequence):
        """Pack ``output`` (N, L, H) with the batch order of the input ``like``."""
        order = like.sorted_indices
        if order is None:
            order = torch.arange(output.shape[0], device=output.device)
        sorted_out = output.index_select(0, order.to(output.device))
        data = pack_padded_sequence(sorted_out, lengths.cpu()[order.cpu()], batch_first=True).data
        return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)

    @classmethod
    def from_torch(cls, module):
        """A copy of ``module`` (the matching ``torch.nn`` recurrent layer)."""
        if not isinstance(module, cls._torch_cls):
            raise TypeError(f"{cls.__name__}.from_torch expects a torch.nn."
                            f"{cls._torch_cls.__name__}, got {type(module).__name__}")
        if module.bidirectional or getattr(module, "proj_size", 0) or module.dropout:
            raise ValueError(f"{cls.__name__} supports neither bidirectional, proj_size nor "
                             f"dropout; got bidirectional={module.bidirectional}, "
                             f"proj_size={getattr(module, 'proj_size', 0)}, "
                             f"dropout={module.dropout}")
        p = module.weight_ih_l0
        kwargs = {"nonlinearity": module.nonlinearity} if cls._torch_cls is nn.RNN else {}
        layer = cls(module.input_size, module.hidden_size, module.num_layers,
                    batch_first=module.batch_first, bias=module.bias,
                    device=p.device, dtype=p.dtype, **kwargs)
        for k, cell in enumerate(layer.cells):
            cell.load_stacked(*(getattr(module, f"{name}_l{k}", None)
                                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        return layer


class LSTMScratch(_SequenceBase):
    r"""A multi-layer LSTM, equal to :class:`torch.nn.LSTM` (unidirectional, no projection).

    Each layer :math:`\ell` runs :class:`LSTMCellScratch`'s equations over time,

    .. math::
        \begin{aligned}
        (i_t, f_t, g_t, o_t) &= (\sigma, \sigma, \tanh, \sigma)
            (W_x x_t + b_x + W_h h_{t-1} + b_h),\\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t),
        \end{aligned}

    with the gates' weights stacked (:math:`W_x` is :math:`(4H, D)`, rows ``i, f, g, o``),
    and layer :math:`\ell+1` reads layer :math:`\ell`'s :math:`h_t` as its :math:`x_t`.

    Variable lengths: pass a :class:`~torch.nn.utils.rnn.PackedSequence` as ``x`` (the output
    is then packed too), or a padded ``x`` and ``lengths``. Past a sequence's length its
    states stop changing and its outputs are zero (as ``pad_packed_sequence`` gives), so
    ``h_n``, ``c_n`` are the states at each sequence's last valid step, as with torch.

    Args:
        input_size: D, features of :math:`x_t`.
        hidden_size: H, features of :math:`h_t` and :math:`c_t`.
        num_layers: stacked LSTM layers.
        batch_first: inputs and outputs are :math:`(N, L, \cdot)` (True) or
            :math:`(L, N, \cdot)`.
        bias: learn the biases.

    Shape:
        - x: :math:`(N, L, D)` (batch_first), :math:`(L, N, D)`, unbatched :math:`(L, D)`, or a
          PackedSequence.
        - state: ``(h_0, c_0)``, each :math:`(\text{num\_layers}, N, H)`; zeros if None.
        - lengths: :math:`(N,)` integers in :math:`[1, L]`, or None.
        - output: ``(output, (h_n, c_n))``: output :math:`(N, L, H)` (the last layer's
          :math:`h_t` for every t), :math:`h_n, c_n` :math:`(\text{num\_layers}, N, H)`.

    Attributes:
        cells: one :class:`LSTMCellScratch` per layer; ``cells[0]`` has
            ``W_x* (H, D)``, the others ``W_x* (H, H)``; all have ``W_h* (H, H)`` and
            biases ``(H,)`` (see :class:`LSTMCellScratch`).

    Raises:
        ValueError: an input of length 0, or lengths outside :math:`[1, L]`.
        TypeError: an input whose dtype differs from the parameters'.

    Examples:
        >>> lstm = LSTMScratch(input_size=3, hidden_size=5, num_layers=2)
        >>> x = torch.randn(2, 7, 3)                       # (N, L, D)
        >>> out, (h_n, c_n) = lstm(x)
        >>> out.shape, h_n.shape
        (torch.Size([2, 7, 5]), torch.Size([2, 2, 5]))
        >>> ref = torch.nn.LSTM(3, 5, num_layers=2, batch_first=True)
        >>> torch.allclose(LSTMScratch.from_torch(ref)(x)[0], ref(x)[0], atol=1e-6)
        True
        >>> out, _ = lstm(x, lengths=torch.tensor([7, 4]))  # steps past a length are 0
        >>> bool(out[1, 4:].eq(0).all())
        True
    """

    _cell_cls = LSTMCellScratch
    _torch_cls = nn.LSTM
    _n_states = 2


class GRUScratch(_SequenceBase):
    r"""A multi-layer GRU, equal to :class:`torch.nn.GRU`: :class:`GRUCellScratch` over time.

    Args and variable lengths as :class:`LSTMScratch`; the state is :math:`h` only.

    Shape:
        - x: :math:`(N, L, D)` (batch_first), :math:`(L, N, D)`, :math:`(L, D)` or packed.
        - state: h_0 :math:`(\text{num\_layers}, N, H)`; zeros if None.
        - output: ``(output, h_n)``: :math:`(N, L, H)` and :math:`(\text{num\_layers}, N, H)`.

    Attributes:
        cells: one :class:`GRUCellScratch` per layer (``W_x* (H, D)`` in the first layer,
            ``(H, H)`` after; ``W_h* (H, H)``; biases ``(H,)``).

    Examples:
        >>> gru = GRUScratch(input_size=3, hidden_size=5)
        >>> ref = torch.nn.GRU(3, 5, batch_first=True)
        >>> x = torch.randn(2, 7, 3)
        >>> torch.allclose(GRUScratch.from_torch(ref)(x)[0], ref(x)[0], atol=1e-6)
        True
    """

    _cell_cls = GRUCellScratch
    _torch_cls = nn.GRU


class RNNScratch(_SequenceBase):
    r"""A multi-layer vanilla RNN, equal to :class:`torch.nn.RNN`: :class:`RNNCellScratch` over
    time, :math:`h_t = \tanh(W_{xh} x_t + b_{xh} + W_{hh} h_{t-1} + b_{hh})`.

    Args and variable lengths as :class:`LSTMScratch`, plus ``nonlinearity``
    (``"tanh"`` or ``"relu"``).

    Shape:
        - x: :math:`(N, L, D)` (batch_first), :math:`(L, N, D)`, :math:`(L, D)` or packed.
        - state: h_0 :math:`(\text{num\_layers}, N, H)`; zeros if None.
        - output: ``(output, h_n)``: :math:`(N, L, H)` and :math:`(\text{num\_layers}, N, H)`.

    Attributes:
        cells: one :class:`RNNCellScratch` per layer (``W_xh (H, D)`` in the first layer,
            ``(H, H)`` after; ``W_hh (H, H)``; biases ``(H,)``).

    Examples:
        >>> rnn = RNNScratch(input_size=3, hidden_size=5, nonlinearity="relu")
        >>> ref = torch.nn.RNN(3, 5, nonlinearity="relu", batch_first=True)
        >>> x = torch.randn(2, 7, 3)
        >>> torch.allclose(RNNScratch.from_torch(ref)(x)[0], ref(x)[0], atol=1e-6)
        True
    """

    _cell_cls = RNNCellScratch
    _torch_cls = nn.RNN

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 batch_first: bool = True, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        super().__init__(input_size, hidden_size, num_layers, batch_first, bias,
                         device=device, dtype=dtype, nonlinearity=nonlinearity)
