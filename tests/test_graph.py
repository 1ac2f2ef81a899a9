"""mmbook.graph against snfpy (SNF, affinities) and torch_geometric (GCNConv, GATConv)."""

import numpy as np
import pytest
import torch

from mmbook.fusion import Fusion, ModalityGraphFusion
from mmbook.graph import (
    GraphConv,
    ModalityGraphAttention,
    knn_graph,
    make_affinity,
    normalize_adjacency,
    similarity_network_fusion,
)


@pytest.fixture
def snf_compute(monkeypatch):
    """snfpy 0.2.2 calls check_array(force_all_finite=...), renamed ensure_all_finite."""
    snf_compute = pytest.importorskip("snf.compute")
    from sklearn.utils import validation

    def check_array(array, *args, force_all_finite=None, **kwargs):
        if force_all_finite is not None:
            kwargs["ensure_all_finite"] = force_all_finite
        return validation.check_array(array, *args, **kwargs)

    monkeypatch.setattr(snf_compute, "check_array", check_array)
    return snf_compute


def _views(n=60, dims=(5, 8, 3), seed=0):
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=(n, 2))  # a structure the views share
    return [np.c_[centre, rng.normal(size=(n, d))] for d in dims]


def test_make_affinity_matches_snfpy(snf_compute):
    xs = _views()
    ref = snf_compute.make_affinity(*xs, K=10, mu=0.5)
    for x, r in zip(xs, ref):
        torch.testing.assert_close(make_affinity(x, K=10, mu=0.5), torch.from_numpy(r),
                                   rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("K,t", [(10, 20), (5, 3), (20, 0)])
def test_snf_matches_snfpy(snf_compute, K, t):
    ref_aff = snf_compute.make_affinity(*_views(), K=K, mu=0.5)
    want = snf_compute.snf(*ref_aff, K=K, t=t)
    got = similarity_network_fusion([torch.from_numpy(a) for a in ref_aff], K=K, t=t)
    torch.testing.assert_close(got, torch.from_numpy(want), rtol=1e-9, atol=1e-12)


def test_snf_float32_and_arrays():
    affs = [make_affinity(x.astype(np.float32), K=8) for x in _views()]
    assert affs[0].dtype == torch.float32
    W = similarity_network_fusion([a.numpy() for a in affs], K=8, t=5)
    assert W.dtype == torch.float32 and torch.isfinite(W).all()
    torch.testing.assert_close(W, W.T)


def test_snf_bad_input_is_named():
    a = make_affinity(_views()[0], K=5)
    with pytest.raises(ValueError, match="at least 2"):
        similarity_network_fusion([a], K=5)
    with pytest.raises(ValueError, match=r"affinities\[1\] must have 2 dimensions|shape"):
        similarity_network_fusion([a, a[:, :10]], K=5)
    with pytest.raises(ValueError, match="every view must describe the same"):
        similarity_network_fusion([a, a[:30, :30]], K=5)
    asym = a.clone()
    asym[0, 1] += 1.0
    with pytest.raises(ValueError, match=r"affinities\[1\] must be symmetric"):
        similarity_network_fusion([a, asym], K=5)
    with pytest.raises(ValueError, match="K must be smaller than the number of samples N=60"):
        similarity_network_fusion([a, a], K=60)
    isolated = a.clone()
    isolated[3, :] = 0
    isolated[:, 3] = 0
    with pytest.raises(ValueError, match=r"rows \[3\] .*isolated"):
        similarity_network_fusion([a, isolated], K=5)
    nan = a.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        similarity_network_fusion([a, nan], K=5)
    with pytest.raises(ValueError, match="K must be smaller"):
        make_affinity(np.ones((4, 2)), K=4)


def _random_graph(n=7, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    A = torch.rand(n, n, generator=g, dtype=dtype) * (torch.rand(n, n, generator=g) > 0.5)
    A = torch.maximum(A, A.T)
    return A.fill_diagonal_(0)


@pytest.mark.parametrize("sparse", [False, True])
def test_graph_conv_matches_gcnconv(sparse):
    GCNConv = pytest.importorskip("torch_geometric.nn").GCNConv
    torch.manual_seed(0)
    A, x = _random_graph(), torch.randn(7, 4, dtype=torch.float64)
    ref, ours = GCNConv(4, 3).double(), GraphConv(4, 3).double()
    with torch.no_grad():
        ref.bias.normal_()
        ours.linear.weight.copy_(ref.lin.weight)
        ours.bias.copy_(ref.bias)
    edge_index = A.nonzero().T
    want = ref(x, edge_index, A[edge_index[0], edge_index[1]])
    torch.testing.assert_close(ours(x, A.to_sparse() if sparse else A), want)
    # precomputed normalisation gives the same layer
    fixed = GraphConv(4, 3, normalize=False).double()
    fixed.load_state_dict(ours.state_dict())
    torch.testing.assert_close(fixed(x, normalize_adjacency(A)), want)


def _gcn_reference(seed=0, directed=False):
    """GCNConv and a GraphConv with the same weights, a weighted graph as edge_index."""
    GCNConv = pytest.importorskip("torch_geometric.nn").GCNConv
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    A = torch.rand(7, 7, generator=g, dtype=torch.float64) * (torch.rand(7, 7, generator=g) > 0.6)
    A = A.fill_diagonal_(0) if directed else torch.maximum(A, A.T).fill_diagonal_(0)
    ref, ours = GCNConv(4, 3).double(), GraphConv(4, 3).double()
    with torch.no_grad():
        ref.bias.normal_()
        ours.linear.weight.copy_(ref.lin.weight)
        ours.bias.copy_(ref.bias)
    edge_index = A.nonzero().T  # rows (source, target) for torch_geometric
    return ref, ours, edge_index, A[edge_index[0], edge_index[1]]


def test_directed_graph_is_laid_out_target_source_as_gcnconv():
    """torch_geometric's to_dense_adj(edge_index) is adj[source, target]: GraphConv, like
    GCNConv's messages source -> target, needs its transpose, A[target, source]."""
    to_dense_adj = pytest.importorskip("torch_geometric.utils").to_dense_adj
    ref, ours, edge_index, w = _gcn_reference(directed=True)
    x = torch.randn(7, 4, dtype=torch.float64)
    want = ref(x, edge_index, w)
    adj = to_dense_adj(edge_index, edge_attr=w, max_num_nodes=7)[0]  # (source, target)
    assert not torch.equal(adj, adj.T)  # a directed graph
    torch.testing.assert_close(ours(x, adj.T), want)
    assert not torch.allclose(ours(x, adj), want)  # the untransposed layout is another graph


@pytest.mark.parametrize("layout", ["csr", "csc", "bsr", "scipy"])
def test_graph_conv_accepts_every_sparse_layout(layout):
    """A CSR adjacency failed inside torch ("unsupported tensor layout: SparseCsr"); every
    sparse layout is converted to COO and gives GCNConv's result."""
    import scipy.sparse

    ref, ours, edge_index, w = _gcn_reference(seed=1)
    x = torch.randn(7, 4, dtype=torch.float64)
    want = ref(x, edge_index, w)
    A = torch.zeros(7, 7, dtype=torch.float64)
    A[edge_index[1], edge_index[0]] = w  # A[target, source]
    convert = {"csr": lambda a: a.to_sparse_csr(), "csc": lambda a: a.to_sparse_csc(),
               "bsr": lambda a: a.to_sparse_bsr((1, 1)),
               "scipy": lambda a: scipy.sparse.csr_matrix(a.numpy())}[layout]
    torch.testing.assert_close(ours(x, convert(A)), want)
    fixed = GraphConv(4, 3, normalize=False).double()
    fixed.load_state_dict(ours.state_dict())
    torch.testing.assert_close(fixed(x, convert(normalize_adjacency(A))), want)
    normalized = normalize_adjacency(convert(A))
    assert normalized.layout == torch.sparse_coo
    torch.testing.assert_close(normalized.to_dense(), normalize_adjacency(A))
    bad = A.clone()
    bad[edge_index[1, 0], edge_index[0, 0]] = float("nan")
    with pytest.raises(ValueError, match=r"adjacency \(its stored values\) holds 1 NaN"):
        ours(x, convert(bad))


def test_dense_only_functions_take_sparse_input_as_dense(snf_compute):
    """knn_graph and SNF compute dense (N, N) results: a sparse input is made dense."""
    Ws = [make_affinity(v, K=5) for v in _views(n=30)]
    for layout in ("to_sparse", "to_sparse_csr"):
        sparse = [getattr(W, layout)() for W in Ws]
        torch.testing.assert_close(similarity_network_fusion(sparse, K=5, t=5),
                                   similarity_network_fusion(Ws, K=5, t=5))
        torch.testing.assert_close(knn_graph(sparse[0], K=3), knn_graph(Ws[0], K=3))


def test_normalize_adjacency_isolated_nodes_are_zero_not_nan():
    A = _random_graph()
    A[2, :] = 0
    A[:, 2] = 0
    N = normalize_adjacency(A, add_self_loops=False)
    assert torch.isfinite(N).all() and N[2].abs().sum() == 0
    Ns = normalize_adjacency(A.to_sparse(), add_self_loops=False).to_dense()
    torch.testing.assert_close(Ns, N)
    # with self-loops an isolated node keeps only itself
    assert normalize_adjacency(A)[2, 2] == 1
    with pytest.raises(ValueError, match="non-negative"):
        normalize_adjacency(-A)
    with pytest.raises(ValueError, match="adjacency"):
        normalize_adjacency(torch.ones(3, 4))


def test_knn_graph_is_symmetric_with_min_degree():
    W = make_affinity(_views()[0], K=5)
    A = knn_graph(W, K=4)
    torch.testing.assert_close(A, A.T)
    assert (A.diagonal() == 0).all() and ((A > 0).sum(1) >= 4).all()


def test_graph_conv_bad_shapes():
    conv = GraphConv(4, 2)
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(3, 5), torch.eye(3))
    with pytest.raises(ValueError, match="adjacency"):
        conv(torch.randn(3, 4), torch.eye(4))


def test_modality_graph_attention_matches_gatconv():
    GATConv = pytest.importorskip("torch_geometric.nn").GATConv
    torch.manual_seed(0)
    N, M, D, E = 4, 3, 5, 6
    h = torch.randn(N, M, D, dtype=torch.float64)
    ref, ours = GATConv(D, E, heads=1).double(), ModalityGraphAttention(D, E).double()
    with torch.no_grad():
        ref.bias.normal_()
        ours.linear.weight.copy_(ref.lin.weight)
        ours.att_src.copy_(ref.att_src.flatten())
        ours.att_dst.copy_(ref.att_dst.flatten())
        ours.bias.copy_(ref.bias)
    # one complete graph (without self-loops: GATConv adds them) per sample
    i, j = torch.meshgrid(torch.arange(M), torch.arange(M), indexing="ij")
    off = i != j
    edges = torch.cat([torch.stack([j[off], i[off]]) + n * M for n in range(N)], dim=1)
    want = ref(h.reshape(N * M, D), edges).reshape(N, M, E)
    torch.testing.assert_close(ours(h), want)
    assert ours.last_weights.shape == (N, M, M)
    torch.testing.assert_close(ours.last_weights.sum(-1), torch.ones(N, M, dtype=h.dtype))
    assert ours.last_weights.grad_fn is None  # kept for inspection, without the graph


def test_modality_graph_fusion_contract_and_absent_modalities():
    torch.manual_seed(0)
    fusion = ModalityGraphFusion((6, 4, 3), out_features=8)
    assert isinstance(fusion, Fusion) and fusion.num_modalities == 3
    zs = [torch.randn(5, d) for d in (6, 4, 3)]
    z = fusion(zs)
    assert z.shape == (5, 8) and fusion.last_weights.shape == (5, 3, 3)
    present = torch.tensor([True, False, True])
    z_p = fusion(zs, present)
    w = fusion.last_weights
    assert (w[:, :, 1] == 0).all() and torch.isfinite(z_p).all()
    # removing modality 1 from the graph equals never having it: its values do not matter
    zs2 = [zs[0], torch.randn(5, 4) * 100, zs[2]]
    torch.testing.assert_close(fusion(zs2, present), z_p)
    with pytest.raises(ValueError, match="at least one modality"):
        fusion(zs, torch.tensor([False, False, False]))
    with pytest.raises(ValueError, match=r"zs\[1\]"):
        fusion([zs[0], torch.randn(5, 7), zs[2]])
