"""Voxels -> cube meshes (PyTorch3D `cubify` semantics): one cube per occupied voxel, shared vertices
merged, faces between two occupied voxels removed, outward-facing triangles."""
import torch

from modules.geometry.meshes import Meshes
from modules.utils import ShapeLabError

# unit vectors of the (x, y, z) axes; x <-> W, y <-> H, z <-> D
_AXES = torch.eye(3, dtype=torch.int64)


@torch.no_grad()
def cubify(voxels, thresh, feats=None, device=None, align="topleft"):
    """Mesh the occupied voxels of each grid.

    Args:
        voxels: (N, D, H, W) occupancy values; a voxel is occupied when value >= thresh (as PyTorch3D's code).
        thresh: scalar threshold.
        feats: optional (N, K, D, H, W) per-voxel features, only with align="center" (as PyTorch3D);
            returned per face as `meshes.face_features` (list of (F_i, K)) since our Meshes has no textures.
        align: "topleft" (voxel (d, h, w) spans [w, w+1] x [h, h+1] x [d, d+1] grid units and grid point
            i maps to 2 i / (size - 1) - 1), "corner" (the mesh spans exactly [-1, 1]: 2 i / size - 1) or
            "center" (voxel centres at 2 i / (size - 1) - 1, cubes half a cell around them).
    Returns:
        Meshes of N meshes with vertices (x, y, z) in PyTorch3D's normalised convention (x <-> W,
        y <-> H, z <-> D), vertices ordered like PyTorch3D's (by h, then w, then d). Empty grids give
        meshes with 0 vertices and 0 faces.
    """
    if align not in ("topleft", "corner", "center"):
        raise ShapeLabError(f'cubify align={align!r}: expected "topleft", "corner" or "center"')
    if not torch.is_tensor(voxels) or voxels.ndim != 4:
        raise ShapeLabError(f"cubify voxels: expected a (N, D, H, W) tensor, got {getattr(voxels, 'shape', voxels)}")
    if voxels.is_floating_point() and torch.isnan(voxels).any():
        raise ShapeLabError("cubify voxels: contain NaN values")
    if feats is not None and align != "center":
        raise ShapeLabError('cubify feats: only supported with align="center" (as PyTorch3D)')
    device = torch.device(device) if device is not None else voxels.device
    N, D, H, W = voxels.shape
    occ = (voxels >= thresh).to(device)
    # (N, x, y, z) layout, padded by one empty voxel on every side so boundary faces are kept
    occ_xyz = torch.nn.functional.pad(occ.permute(0, 3, 2, 1).to(torch.uint8), (1, 1, 1, 1, 1, 1)).bool()
    core = occ_xyz[:, 1:-1, 1:-1, 1:-1]
    quads, quad_mesh, quad_voxel = [], [], []
    for a in range(3):
        u, v = (a + 1) % 3, (a + 2) % 3  # e_u x e_v = e_a
        for sign in (1, -1):
            shift = [slice(1, -1)] * 3
            shift[a] = slice(1 + sign, occ_xyz.shape[a + 1] - 1 + sign)
            neighbour = occ_xyz[(slice(None), *shift)]
            n_x_y_z = torch.nonzero(core & ~neighbour)  # (Q, 4): mesh, x, y, z of the voxel
            if n_x_y_z.numel() == 0:
                continue
            base = n_x_y_z[:, 1:] + (_AXES[a].to(device) if sign > 0 else 0)  # corner on the face plane
            eu, ev = _AXES[u].to(device), _AXES[v].to(device)
            corners = [base, base + eu, base + eu + ev, base + ev]  # counter-clockwise around +e_a
            if sign < 0:
                corners = corners[::-1]
            quads.append(torch.stack(corners, dim=1))  # (Q, 4, 3) grid corner coordinates x, y, z
            quad_mesh.append(n_x_y_z[:, 0])
            quad_voxel.append(n_x_y_z[:, 1:])
    verts_list, faces_list, feats_list = [], [], []
    if quads:
        quads, quad_mesh, quad_voxel = torch.cat(quads), torch.cat(quad_mesh), torch.cat(quad_voxel)
        # vertex ids ordered by (h, w, d) = (y, x, z) like PyTorch3D's grid
        ids = (quads[..., 1] * (W + 1) + quads[..., 0]) * (D + 1) + quads[..., 2]  # (Q, 4)
        tris = torch.cat([ids[:, [0, 1, 2]], ids[:, [0, 2, 3]]])  # (2Q, 3)
        tri_mesh = torch.cat([quad_mesh, quad_mesh])
        tri_voxel = torch.cat([quad_voxel, quad_voxel])
    sizes = torch.tensor([W, H, D], dtype=torch.float32, device=device)
    for n in range(N):
        if not len(quads) or not (tri_mesh == n).any():
            verts_list.append(torch.zeros((0, 3), dtype=torch.float32, device=device))
            faces_list.append(torch.zeros((0, 3), dtype=torch.int64, device=device))
            feats_list.append(None)
            continue
        sel = tri_mesh == n
        uniq, faces = torch.unique(tris[sel], sorted=True, return_inverse=True)
        h, rest = uniq // ((W + 1) * (D + 1)), uniq % ((W + 1) * (D + 1))
        w, d = rest // (D + 1), rest % (D + 1)
        grid = torch.stack([w, h, d], dim=1).to(torch.float32)
        if align == "center":
            grid = grid - 0.5
        margin = 0.0 if align == "corner" else 1.0
        verts_list.append(grid * 2.0 / (sizes - margin) - 1.0)
        faces_list.append(faces)
        if feats is not None:
            vox = tri_voxel[sel]  # x, y, z of the voxel each triangle belongs to
            feats_list.append(feats[n][:, vox[:, 2], vox[:, 1], vox[:, 0]].t().to(device))
    meshes = Meshes(verts_list, faces_list)
    if feats is not None:
        meshes.face_features = feats_list
    return meshes
