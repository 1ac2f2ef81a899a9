r"""Graphs for fusion: similarity network fusion, graph convolution, attention over modalities.

* :func:`make_affinity` and :func:`similarity_network_fusion`: per-view affinity graphs
  fused by cross-diffusion into one graph (Wang et al., 2014), written from the authors'
  released code and tested against ``snfpy``;
* :func:`normalize_adjacency` and :class:`GraphConv`: the graph convolution of Kipf &
  Welling (2017), :math:`H' = \hat D^{-1/2} (A + I) \hat D^{-1/2} H W`, tested against
  ``torch_geometric.nn.GCNConv``;
* :class:`ModalityGraphAttention`: a graph whose nodes are the M modality embeddings of
  one sample and whose edges are attention weights (Veličković et al., 2018), tested
  against ``torch_geometric.nn.GATConv``. The fusion built on it,
  :class:`mmbook.fusion.ModalityGraphFusion`, lives in the fusion package (this module
  sits below it and imports nothing above :mod:`mmbook.utils`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from .utils import (
    as_sparse_coo,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_present,
    check_shape,
    fill_absent,
    is_sparse,
    to_tensor,
)

__all__ = [
    "make_affinity", "similarity_network_fusion", "knn_graph", "normalize_adjacency",
    "GraphConv", "ModalityGraphAttention",
]

_EPS = 2.220446049250313e-16  # np.spacing(1), the constant SNF's code uses


# ----------------------------------------------------------------------------- checks
def _check_K(K, n: int, name: str = "K") -> int:
    K = check_positive_int(K, name)
    if K >= n:
        raise ValueError(f"{name} must be smaller than the number of samples N={n}, got {K}")
    return K


def _check_square(a, name: str) -> torch.Tensor:
    a = to_tensor(a, name)
    if not a.is_floating_point():
        a = a.double()
    check_shape(a, ("N", "N"), name)
    return a


def _check_affinity(a, name: str) -> torch.Tensor:
    a = _check_square(a, name)
    if bool((a < 0).any()):
        raise ValueError(f"{name} must be non-negative (an affinity), got min {a.min().item():.3g}")
    if not torch.allclose(a, a.T, rtol=1e-5, atol=1e-8 * float(a.abs().max())):
        diff = (a - a.T).abs().max().item()
        raise ValueError(f"{name} must be symmetric, but |{name} - {name}.T| reaches {diff:.3g}")
    empty = a.sum(1) <= 0
    if bool(empty.any()):
        rows = torch.nonzero(empty).flatten()[:5].tolist()
        raise ValueError(f"{name} has rows {rows} with no affinity at all (isolated nodes): "
                         f"their normalisation would divide by 0")
    return a


# ----------------------------------------------------------------------------- SNF
def _zscore(x: torch.Tensor) -> torch.Tensor:
    """Standardise each column (ddof=1); a constant column becomes 0, as in ``snfpy``."""
    std = x.std(0, keepdim=True)  # (1, D)
    z = (x - x.mean(0, keepdim=True)) / std
    return torch.where(std > 0, z, torch.zeros_like(z))


def make_affinity(x, K: int = 20, mu: float = 0.5, normalize: bool = True) -> torch.Tensor:
    r"""The scaled exponential affinity of SNF's code, on squared Euclidean distances.

    With :math:`\rho_{ij} = \lVert x_i - x_j \rVert^2` (squared, as SNFtool's ``dist2``
    and ``snfpy``'s default ``metric="sqeuclidean"``) and :math:`\bar\rho_i` the mean of
    :math:`\rho_{ij}` over the K nearest neighbours of i,

    .. math::
        \sigma_{ij} = \frac{\bar\rho_i + \bar\rho_j + \rho_{ij}}{3}, \qquad
        W_{ij} = \frac{1}{\sqrt{2\pi}\,\mu\sigma_{ij}}
                 \exp\Big(-\frac{\rho_{ij}^2}{2\mu^2\sigma_{ij}^2}\Big),

    a normal density in :math:`\rho` with a scale adapted to each pair's neighbourhoods.
    (The paper writes :math:`\exp(-\rho^2/(\mu\,\sigma))` with :math:`\rho` the plain
    distance; the released code, and so ``snfpy``, squares the distance twice and uses
    the normal density. We follow the code.)

    Args:
        x: the features of one view, ``(N, D)``.
        K: neighbours in :math:`\bar\rho_i`, ``1 <= K < N``.
        mu: the scale factor :math:`\mu > 0` (0.3-0.8 is the recommended range).
        normalize: standardise each feature first (ddof=1, as ``snfpy``).

    Returns:
        the symmetric affinity :math:`W`, ``(N, N)``, in ``x``'s floating dtype.

    Shape:
        - x: :math:`(N, D)`
        - output: :math:`(N, N)`

    Examples:
        >>> W = make_affinity(torch.randn(30, 4, dtype=torch.float64), K=5)
        >>> W.shape, bool(torch.allclose(W, W.T))
        (torch.Size([30, 30]), True)
    """
    x = to_tensor(x, "x", ndim=2)
    if not x.is_floating_point():
        x = x.double()
    K, mu = _check_K(K, len(x)), check_positive(mu, "mu")
    z = _zscore(x) if normalize else x
    rho = torch.cdist(z, z) ** 2  # (N, N) squared distances
    rho.fill_diagonal_(0)
    rho_bar = rho.sort(dim=1).values[:, 1:K + 1].mean(1) + _EPS  # (N,)
    sigma = (rho_bar[:, None] + rho_bar[None, :] + rho) / 3  # (N, N)
    sigma = sigma * (sigma > _EPS) + _EPS
    scale = mu * sigma
    W = torch.exp(-rho ** 2 / (2 * scale ** 2)) / (math.sqrt(2 * math.pi) * scale)
    return (W + W.T) / 2


def _row_normalize(W: torch.Tensor) -> torch.Tensor:
    return W / W.sum(1, keepdim=True)


def _local_kernel(P: torch.Tensor, K: int) -> torch.Tensor:
    r"""S: keep the K largest entries of each row of P, renormalised to sum to 1 (sparse CSR).

    Ties at the K-th value are broken by position (``snfpy``'s percentile cut keeps all
    tied entries; the two agree whenever the K-th and (K+1)-th values differ).
    """
    values, cols = P.topk(K, dim=1)  # (N, K)
    values = values / values.sum(1, keepdim=True)
    rows = torch.arange(len(P), device=P.device).repeat_interleave(K)
    index = torch.stack([rows, cols.flatten()])  # (2, N K)
    S = torch.sparse_coo_tensor(index, values.flatten(), P.shape, check_invariants=True)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": it is what we need
        warnings.simplefilter("ignore", UserWarning)
        return S.coalesce().to_sparse_csr()


def _symmetrize(A: torch.Tensor) -> torch.Tensor:
    return (A + A.T) / 2


def similarity_network_fusion(affinities: Sequence, K: int = 20, t: int = 20,
                              alpha: float = 1.0) -> torch.Tensor:
    r"""Similarity network fusion (SNF): M affinity graphs fused into one by cross-diffusion.

    Each view's affinity :math:`W^{(v)}` gives a full kernel :math:`P^{(v)}` (rows
    normalised, then symmetrised) and a sparse local kernel :math:`S^{(v)}` (each row's K
    largest entries of :math:`P^{(v)}`, renormalised). Every view then diffuses the
    average of the *other* views through its own local neighbourhoods, t times:

    .. math::
        P^{(v)} \leftarrow S^{(v)} \Big(\frac{1}{M-1}\sum_{k \ne v} P^{(k)}\Big)
        S^{(v)\top}, \qquad
        P^{(v)} \leftarrow \tfrac12\big(P^{(v)} + P^{(v)\top}\big) + \alpha I,

    and the result is :math:`W = \frac1M \sum_v P^{(v)}`, rows normalised, then
    :math:`\tfrac12 (W + W^\top + I)`. Strong edges supported by several views survive;
    edges seen by one view only fade.

    The :math:`\alpha I` update is that of the authors' MATLAB release (``SNF.m``, its
    ``BOnormalized``), of the first R releases of SNFtool (up to 2.2, 2014) and of
    ``snfpy`` (``_B0_normalized``), which the tests compare against. The paper, and the
    CRAN SNFtool since 2.2.1 (2017), normalise instead: :math:`P_{ii} = 1/2` and the
    off-diagonal entries divided by :math:`2\sum_{k\ne i}P_{ik}`, after every step, and
    end with :math:`\tfrac12 (W + W^\top)` (no :math:`+I`). We follow the MATLAB code
    and ``snfpy``.

    Args:
        affinities: M >= 2 symmetric, non-negative ``(N, N)`` affinity matrices (tensors
            or arrays), e.g. from :func:`make_affinity`.
        K: neighbours kept in each local kernel, ``1 <= K < N``.
        t: diffusion iterations (>= 0; 10-20 is the recommended range).
        alpha: the self-similarity added to the diagonal after each step (> 0).

    Returns:
        the fused affinity, ``(N, N)``, symmetric, in the inputs' floating dtype.

    Raises:
        ValueError: fewer than 2 matrices, a matrix that is not square, not symmetric,
            negative, non-finite or with a row of zeros (an isolated node), matrices of
            different sizes, or K >= N.

    Shape:
        - affinities: M tensors :math:`(N, N)`
        - output: :math:`(N, N)`

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> Ws = [make_affinity(torch.randn(40, 3, generator=g), K=5) for _ in range(3)]
        >>> W = similarity_network_fusion(Ws, K=5, t=10)
        >>> W.shape, bool(torch.isfinite(W).all())
        (torch.Size([40, 40]), True)

    Reference: Wang, Mezlini, Demir, et al., "Similarity network fusion for aggregating
    data types on a genomic scale", Nature Methods 11, 333-337 (2014).
    """
    if isinstance(affinities, torch.Tensor) or not isinstance(affinities, Sequence):
        raise ValueError(f"affinities must be a list of (N, N) matrices, got "
                         f"{type(affinities).__name__}")
    if len(affinities) < 2:
        raise ValueError(f"affinities must hold at least 2 matrices (one per view), got "
                         f"{len(affinities)}")
    Ws = [_check_affinity(a, f"affinities[{v}]") for v, a in enumerate(affinities)]
    n = Ws[0].shape[0]
    for v, W in enumerate(Ws[1:], start=1):
        if W.shape != Ws[0].shape:
            raise ValueError(f"affinities[{v}] has shape {tuple(W.shape)} but affinities[0] "
                             f"has {tuple(Ws[0].shape)}: every view must describe the same "
                             f"N samples")
    Ws = [W.to(Ws[0].dtype) for W in Ws]
    K, t = _check_K(K, n), check_nonnegative_int(t, "t")
    alpha = check_positive(alpha, "alpha")
    M, eye = len(Ws), torch.eye(n, dtype=Ws[0].dtype, device=Ws[0].device)
    P = [_symmetrize(_row_normalize(W)) for W in Ws]
    S = [_local_kernel(Pv, K) for Pv in P]
    for _ in range(t):
        total = sum(P)
        diffused = [Sv @ (Sv @ (total - Pv)).T / (M - 1)
                    for Sv, Pv in zip(S, P)]  # S (sum_{k!=v} P_k) S^T, by symmetry
        P = [_symmetrize(Dv + alpha * eye) for Dv in diffused]
    W = _row_normalize(sum(P) / M)
    return (W + W.T + eye) / 2


# ----------------------------------------------------------------------------- GCN
def knn_graph(affinity, K: int = 10) -> torch.Tensor:
    """Sparsify an affinity into a symmetric K-nearest-neighbour graph, zero diagonal.

    Keeps, in each row, the K largest off-diagonal affinities, then symmetrises with the
    maximum (an edge kept by either end stays), so every node has degree >= K.

    Args:
        affinity: a symmetric non-negative ``(N, N)`` matrix.
        K: neighbours per node, ``1 <= K < N``.

    Returns:
        a dense ``(N, N)`` weighted adjacency with a zero diagonal.

    Examples:
        >>> A = knn_graph(torch.rand(6, 6).add(torch.rand(6, 6).T), K=2)
        >>> bool((A > 0).sum(1).min() >= 2), bool(A.diagonal().eq(0).all())
        (True, True)
    """
    W = _check_square(affinity, "affinity")
    K = _check_K(K, len(W))
    W = W.clone().fill_diagonal_(-math.inf)
    values, cols = W.topk(K, dim=1)  # (N, K)
    A = torch.zeros_like(W).scatter_(1, cols, values.clamp_min(0))
    return torch.maximum(A, A.T)


def normalize_adjacency(adjacency, add_self_loops: bool = True) -> torch.Tensor:
    r"""The symmetric normalisation of Kipf & Welling: :math:`\hat D^{-1/2} \hat A \hat D^{-1/2}`.

    .. math:: \hat A = A + I, \qquad \hat D_{ii} = \sum_j \hat A_{ij}.

    A node of degree 0 (possible only with ``add_self_loops=False``) gets
    :math:`\hat D^{-1/2}_{ii} = 0` (as in ``torch_geometric``): its row and column are 0,
    never NaN. :math:`I` is added to whatever diagonal :math:`A` has (``GCNConv`` instead
    keeps existing self-loop weights; the two agree on graphs with a zero diagonal).

    Args:
        adjacency: a non-negative ``(N, N)`` weighted adjacency, dense or sparse (any
            torch layout, or ``scipy.sparse``; other layouts than COO are converted).
        add_self_loops: add :math:`I` first.

    Returns:
        the normalised adjacency, dense for a dense input, sparse COO for a sparse one.

    Raises:
        ValueError: not square, negative or non-finite weights.

    Shape:
        - adjacency: :math:`(N, N)`
        - output: :math:`(N, N)`

    Examples:
        >>> A = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # two nodes, one edge
        >>> normalize_adjacency(A)  # (A + I) / 2: each node has degree 2
        tensor([[0.5000, 0.5000],
                [0.5000, 0.5000]])
        >>> normalize_adjacency(torch.zeros(2, 2), add_self_loops=False)  # degree 0: 0
        tensor([[0., 0.],
                [0., 0.]])
    """
    if is_sparse(adjacency):
        return _normalize_sparse(as_sparse_coo(adjacency, "adjacency"), add_self_loops)
    A = _check_square(adjacency, "adjacency")
    if bool((A < 0).any()):
        raise ValueError(f"adjacency must be non-negative, got min {A.min().item():.3g}")
    if add_self_loops:
        A = A + torch.eye(len(A), dtype=A.dtype, device=A.device)
    d = A.sum(1)  # (N,) degrees
    d_inv_sqrt = torch.where(d > 0, d.clamp_min(_EPS).rsqrt(), torch.zeros_like(d))
    return d_inv_sqrt[:, None] * A * d_inv_sqrt[None, :]


def _normalize_sparse(A: torch.Tensor, add_self_loops: bool) -> torch.Tensor:
    check_shape(A, ("N", "N"), "adjacency")
    (rows, cols), w = A.indices(), A.values()
    if bool((~torch.isfinite(w)).any()) or bool((w < 0).any()):
        raise ValueError("adjacency must hold finite, non-negative weights")
    n = A.shape[0]
    if add_self_loops:
        loop = torch.arange(n, device=w.device)
        rows, cols = torch.cat([rows, loop]), torch.cat([cols, loop])
        w = torch.cat([w, torch.ones(n, dtype=w.dtype, device=w.device)])
    d = torch.zeros(n, dtype=w.dtype, device=w.device).index_add_(0, rows, w)
    d_inv_sqrt = torch.where(d > 0, d.clamp_min(_EPS).rsqrt(), torch.zeros_like(d))
    w = d_inv_sqrt[rows] * w * d_inv_sqrt[cols]
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), w, A.shape,
                                   check_invariants=True).coalesce()


class GraphConv(nn.Module):
    r"""Graph convolution (Kipf & Welling, 2017).

    .. math:: H' = \hat D^{-1/2} (A + I) \hat D^{-1/2} H W + b

    Each node averages its neighbours' (and its own) transformed features, weighted by
    :math:`1/\sqrt{\hat d_i \hat d_j}`; the non-linearity :math:`\sigma` is applied by the
    caller. With ``normalize=False`` the adjacency is taken as already normalised (compute
    :func:`normalize_adjacency` once for a fixed graph).

    **Direction.** Row i of the product gathers from the columns: :math:`A_{ij}` is the
    edge *from* node j *to* node i, so a directed adjacency is laid out
    ``A[target, source]`` and :math:`\hat d_i` counts the edges into i. This is what
    ``torch_geometric.nn.GCNConv`` computes for an ``edge_index`` of (source, target)
    rows, but ``torch_geometric.utils.to_dense_adj(edge_index)`` lays the same edges out
    as ``adj[source, target]``: pass its transpose,
    ``to_dense_adj(edge_index)[0].T``. (An undirected graph is symmetric: no difference.)

    Args:
        in_features: node feature size.
        out_features: output feature size.
        bias: add a learnable bias :math:`b`.
        normalize: normalise the adjacency in every call.

    Shape:
        - x: :math:`(N, D_{in})` node features
        - adjacency: :math:`(N, N)`, ``A[target, source]``; dense or sparse (COO, or
          CSR / CSC / BSR / BSC / ``scipy.sparse``, converted to COO)
        - output: :math:`(N, D_{out})`

    Examples:
        >>> conv = GraphConv(4, 2)
        >>> A = torch.tensor([[0., 1, 0], [1, 0, 1], [0, 1, 0]])
        >>> conv(torch.randn(3, 4), A).shape
        torch.Size([3, 2])

    Reference: Kipf & Welling, "Semi-supervised classification with graph convolutional
    networks", ICLR 2017.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 normalize: bool = True):
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        self.normalize = bool(normalize)
        self.linear = nn.Linear(in_features, out_features, bias=False)  # H W
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        check_shape(x, ("N", self.in_features), "x")
        check_shape(adjacency, (x.shape[0], x.shape[0]), "adjacency")
        if is_sparse(adjacency):  # CSR, CSC, ... or scipy: the COO path, on x's device
            adjacency = as_sparse_coo(adjacency, "adjacency").to(x.device)
        A_hat = normalize_adjacency(adjacency) if self.normalize else adjacency
        h = self.linear(x)  # (N, D_out)
        A_hat = A_hat.to(h.dtype)
        out = torch.sparse.mm(A_hat, h) if A_hat.is_sparse else A_hat @ h
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, normalize={self.normalize}"


# ----------------------------------------------------------------------------- modality graph
class ModalityGraphAttention(nn.Module):
    r"""Graph attention over the modality nodes of each sample (Veličković et al., 2018).

    The M modalities of a sample are the nodes of a complete graph with self-loops; an
    absent modality is removed from the graph. With :math:`h_i` node i's features,

    .. math::
        e_{ij} = \operatorname{LeakyReLU}\big(a_{\mathrm{dst}}^\top W h_i
                 + a_{\mathrm{src}}^\top W h_j\big), \qquad
        \alpha_{ij} = \operatorname{softmax}_{j \text{ present}}(e_{ij}), \qquad
        h_i' = \sum_j \alpha_{ij} W h_j + b,

    which is ``GATConv`` (one head) on that graph; the attention weights
    :math:`\alpha` are kept in :attr:`last_weights` (detached).

    Args:
        in_features: node feature size (the same for every node).
        out_features: output size per node.
        negative_slope: LeakyReLU slope (0.2 in the paper).

    An absent node follows the package's rule (:func:`mmbook.utils.fill_absent`): its
    features are set to 0 before anything reads them (even NaN is gone), no node attends
    to it, and its output row and weights are 0; a sample with no node present raises.

    Shape:
        - h: :math:`(N, M, D_{in})`
        - present: :math:`(N, M)` or :math:`(M,)` bool, optional (True = the node is there)
        - output: :math:`(N, M, D_{out})`; rows of absent nodes are 0
        - last_weights: :math:`(N, M, M)`, row i = how node i attends to each node j

    Examples:
        >>> gat = ModalityGraphAttention(8, 4)
        >>> out = gat(torch.randn(5, 3, 8))
        >>> out.shape, bool(torch.allclose(gat.last_weights.sum(-1), torch.ones(5, 3)))
        (torch.Size([5, 3, 4]), True)
    """

    def __init__(self, in_features: int, out_features: int, negative_slope: float = 0.2):
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        self.negative_slope = check_positive(negative_slope, "negative_slope", allow_zero=True)
        self.linear = nn.Linear(in_features, out_features, bias=False)  # W
        self.att_src = nn.Parameter(torch.empty(out_features))
        self.att_dst = nn.Parameter(torch.empty(out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        bound = math.sqrt(6.0 / (1 + out_features))  # glorot, as torch_geometric
        nn.init.uniform_(self.att_src, -bound, bound)
        nn.init.uniform_(self.att_dst, -bound, bound)
        self.last_weights = None

    def forward(self, h: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        check_shape(h, ("N", "M", self.in_features), "h")
        N, M = h.shape[:2]
        if present is not None:
            present = check_present(present, M, N, h.device)  # (N, M)
            h = torch.stack(fill_absent(list(h.unbind(1)), present, name="h"), 1)  # (N, M, D)
        Wh = self.linear(h)  # (N, M, D_out)
        e = (Wh @ self.att_dst)[:, :, None] + (Wh @ self.att_src)[:, None, :]  # (N, M, M)
        e = nn.functional.leaky_relu(e, self.negative_slope)
        if present is not None:
            e = e.masked_fill(~present[:, None, :], -math.inf)  # no edge from an absent j
        alpha = torch.softmax(e, dim=-1)  # (N, M, M)
        out = alpha @ Wh + self.bias  # (N, M, D_out)
        if present is not None:  # an absent node i: no output, no weights
            alpha, out = (torch.where(present[:, :, None], t, 0.0) for t in (alpha, out))
        self.last_weights = alpha.detach()  # for inspection: no graph kept between calls
        return out

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}"
