"""Mesh regularisers with PyTorch3D weighting: every mesh counts equally (per-mesh mean), then ÷N."""
import torch

from modules.geometry.meshes import Meshes
from modules.utils import ShapeLabError


def _empty_loss(meshes):
    return torch.tensor(0.0, dtype=torch.float32, device=meshes.device, requires_grad=True)


def _check(meshes, fn):
    if not isinstance(meshes, Meshes):
        raise ShapeLabError(f"{fn}: expected a Meshes object, got {type(meshes).__name__}")


def _per_mesh_mean(values, mesh_idx, N):
    """sum_n mean_{i in mesh n} values_i / N (meshes with no items contribute 0)."""
    counts = torch.bincount(mesh_idx, minlength=N).clamp(min=1).to(values.dtype)
    return (values / counts[mesh_idx]).sum() / N


def mesh_edge_loss(meshes, target_length=0.0):
    """mean over each mesh's unique edges of (|v_i - v_j| - target_length)^2, averaged over meshes."""
    _check(meshes, "mesh_edge_loss")
    if meshes.isempty():
        return _empty_loss(meshes)
    v = meshes.verts_packed()
    e = meshes.edges_packed()
    length = (v[e[:, 0]] - v[e[:, 1]]).norm(dim=1)
    return _per_mesh_mean((length - target_length) ** 2, meshes.edges_packed_to_mesh_idx(), len(meshes))


@torch.no_grad()
def _laplacian_entries(verts, faces, edges, method, eps=1e-12):
    """Sparse (rows, cols, vals) of the Laplacian weights; constant w.r.t. autograd as in PyTorch3D."""
    V = verts.shape[0]
    if method == "uniform":
        rows = torch.cat([edges[:, 0], edges[:, 1]])
        cols = torch.cat([edges[:, 1], edges[:, 0]])
        deg = torch.bincount(rows, minlength=V).to(verts.dtype)
        return rows, cols, 1.0 / deg[rows], None
    # cotangent weights: edge opposite corner k gets cot(angle at k) = (b^2 + c^2 - a^2) / (4 area)
    v0, v1, v2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    a, b, c = (v1 - v2).norm(dim=1), (v0 - v2).norm(dim=1), (v0 - v1).norm(dim=1)
    s = 0.5 * (a + b + c)
    area = (s * (s - a) * (s - b) * (s - c)).clamp(min=eps).sqrt()  # Heron, clamped for slivers
    a2, b2, c2 = a * a, b * b, c * c
    cot = torch.stack([b2 + c2 - a2, a2 + c2 - b2, a2 + b2 - c2], dim=1) / (4.0 * area[:, None])
    ii = faces[:, [1, 2, 0]].reshape(-1)
    jj = faces[:, [2, 0, 1]].reshape(-1)
    vals = cot.reshape(-1)
    rows, cols, vals = torch.cat([ii, jj]), torch.cat([jj, ii]), torch.cat([vals, vals])
    areas = torch.zeros(V, dtype=verts.dtype, device=verts.device).index_add_(0, faces.reshape(-1),
                                                                              area.repeat_interleave(3))
    inv_areas = torch.where(areas > 0, 1.0 / areas.clamp(min=eps), torch.zeros_like(areas))
    return rows, cols, vals, inv_areas


def mesh_laplacian_smoothing(meshes, method="uniform"):
    """Laplacian smoothing: mean over each mesh's vertices of |L v_i| (L2 norm, not squared), ÷N.

    method "uniform": L v_i = mean of the neighbours - v_i.
    "cot": L v_i = sum_j w_ij v_j / sum_j w_ij - v_i with w_ij = cot a_ij + cot b_ij.
    "cotcurv": (sum_j w_ij (v_j - v_i)) / (4 A_i), A_i = area of the faces around v_i.
    The weights are constants (no gradient), exactly as PyTorch3D. Empty meshes give 0.
    """
    _check(meshes, "mesh_laplacian_smoothing")
    if method not in ("uniform", "cot", "cotcurv"):
        raise ShapeLabError(f'mesh_laplacian_smoothing method={method!r}: expected "uniform", "cot" or "cotcurv"')
    if meshes.isempty():
        return _empty_loss(meshes)
    verts = meshes.verts_packed()
    rows, cols, vals, inv_areas = _laplacian_entries(verts, meshes.faces_packed(), meshes.edges_packed(), method)
    lv = torch.zeros_like(verts).index_add(0, rows, vals[:, None] * verts[cols])  # (sum_j L_ij v_j)
    if method == "uniform":
        # isolated vertices have no neighbours: L_ii = -1 still applies (PyTorch3D's L = D^-1 A - I)
        loss = lv - verts
    else:
        with torch.no_grad():
            row_sum = torch.zeros(verts.shape[0], dtype=verts.dtype, device=verts.device).index_add_(0, rows, vals)
        if method == "cot":
            norm_w = torch.where(row_sum > 0, 1.0 / row_sum.clamp(min=1e-30), torch.zeros_like(row_sum))
            loss = lv * norm_w[:, None] - verts
        else:
            loss = (lv - row_sum[:, None] * verts) * (0.25 * inv_areas)[:, None]
    return _per_mesh_mean(loss.norm(dim=1), meshes.verts_packed_to_mesh_idx(), len(meshes))


def mesh_normal_consistency(meshes):
    """Mean over each mesh's pairs of faces sharing an edge of 1 - cos(n0, n1), averaged over meshes.

    For an edge (v0, v1) shared by faces with opposite vertices a and b, n0 = (v1 - v0) x (a - v0) and
    n1 = (b - v0) x (v1 - v0), so the term does not depend on face orientation. Non-manifold edges
    (k > 2 faces) contribute every unordered pair of their faces (PyTorch3D's list for k >= 4 has a
    few ordered duplicates; we count each pair once). Boundary edges contribute nothing.
    """
    _check(meshes, "mesh_normal_consistency")
    if meshes.isempty():
        return _empty_loss(meshes)
    verts = meshes.verts_packed()
    faces = meshes.faces_packed()
    edges = meshes.edges_packed()
    with torch.no_grad():
        edge_of = meshes.faces_packed_to_edges_packed().reshape(-1)  # (3F,) edge opposite corner k
        opposite = faces.reshape(-1)  # the corner opposite that edge
        order = torch.sort(edge_of, stable=True).indices
        edge_sorted, opp_sorted = edge_of[order], opposite[order]
        counts = torch.bincount(edge_of, minlength=edges.shape[0])
        starts = torch.cumsum(counts, 0) - counts
        two = torch.nonzero(counts == 2)[:, 0]
        pair_edge = [two]
        pair_a, pair_b = [opp_sorted[starts[two]]], [opp_sorted[starts[two] + 1]]
        for e in torch.nonzero(counts > 2)[:, 0].tolist():  # rare non-manifold edges
            group = opp_sorted[int(starts[e]):int(starts[e] + counts[e])]
            i, j = torch.triu_indices(len(group), len(group), offset=1, device=group.device)
            pair_edge.append(torch.full_like(i, e))
            pair_a.append(group[i])
            pair_b.append(group[j])
        pair_edge, pair_a, pair_b = torch.cat(pair_edge), torch.cat(pair_a), torch.cat(pair_b)
    if pair_edge.numel() == 0:
        return (verts * 0.0).sum()
    v0, v1 = verts[edges[pair_edge, 0]], verts[edges[pair_edge, 1]]
    n0 = torch.cross(v1 - v0, verts[pair_a] - v0, dim=1)
    n1 = -torch.cross(v1 - v0, verts[pair_b] - v0, dim=1)
    loss = 1 - torch.cosine_similarity(n0, n1, dim=1)
    mesh_idx = meshes.edges_packed_to_mesh_idx()[pair_edge]
    return _per_mesh_mean(loss, mesh_idx, len(meshes))
