"""A small batch-of-triangle-meshes container with the PyTorch3D `Meshes` accessors the ops and the
mesh models need (list / packed / padded views, edges, normals, areas, vertex offsets)."""
import torch

from modules.geometry.knn import all_finite
from modules.utils import ShapeLabError


class Meshes:
    """A batch of N triangle meshes.

    Args:
        verts: list of (V_i, 3) float tensors, or a padded (N, V, 3) tensor (every mesh then has V verts).
        faces: list of (F_i, 3) integer tensors, or a padded (N, F, 3) tensor where rows of -1 are padding.
        names: optional list of N names used in error messages (e.g. file names).
    Raises ShapeLabError naming the mesh when a face indexes a vertex that does not exist, shapes are
    wrong or vertices are NaN/inf. Packed views concatenate the meshes (faces offset into packed verts);
    padded views pad verts with 0 and faces with -1.
    """

    def __init__(self, verts, faces, names=None):
        if torch.is_tensor(verts):
            if verts.ndim != 3:
                raise ShapeLabError(f"Meshes verts: expected (N, V, 3) or a list, got {tuple(verts.shape)}")
            verts = list(verts.unbind(0))
        if torch.is_tensor(faces):
            if faces.ndim != 3:
                raise ShapeLabError(f"Meshes faces: expected (N, F, 3) or a list, got {tuple(faces.shape)}")
            faces = [f[(f >= 0).all(dim=1)] for f in faces.unbind(0)]  # drop -1 padding rows
        verts, faces = list(verts), list(faces)
        if len(verts) != len(faces):
            raise ShapeLabError(f"Meshes: {len(verts)} vertex sets but {len(faces)} face sets")
        self.names = list(names) if names is not None else [f"mesh {i}" for i in range(len(verts))]
        for i, (v, f) in enumerate(zip(verts, faces)):
            name = self.names[i]
            if not torch.is_tensor(v) or v.ndim != 2 or v.shape[1] != 3:
                raise ShapeLabError(f"{name}: vertices must be a (V, 3) tensor, got {getattr(v, 'shape', v)}")
            if not torch.is_tensor(f) or f.ndim != 2 or f.shape[1] != 3:
                raise ShapeLabError(f"{name}: faces must be a (F, 3) tensor, got {getattr(f, 'shape', f)}")
            if f.is_floating_point():
                raise ShapeLabError(f"{name}: faces must hold integer vertex indices, got {f.dtype}")
            if not all_finite(v):
                raise ShapeLabError(f"{name}: vertices contain NaN or infinite coordinates")
            if f.numel() and (int(f.min()) < 0 or int(f.max()) >= v.shape[0]):
                raise ShapeLabError(f"{name}: faces index vertices in [{int(f.min())}, {int(f.max())}] "
                                    f"but the mesh has {v.shape[0]} vertices")
        self._verts = verts
        self._faces = [f.to(torch.int64) for f in faces]
        self.device = verts[0].device if verts else torch.device("cpu")
        self._cache = {}

    # ---- sizes and indexing ----
    def __len__(self):
        return len(self._verts)

    def __getitem__(self, i):
        if isinstance(i, int):
            i = [i]
        if isinstance(i, slice):
            i = range(len(self))[i]
        return Meshes([self._verts[j] for j in i], [self._faces[j] for j in i], [self.names[j] for j in i])

    def isempty(self):
        return len(self) == 0 or all(v.shape[0] == 0 for v in self._verts)

    def num_verts_per_mesh(self):
        return torch.tensor([v.shape[0] for v in self._verts], dtype=torch.int64, device=self.device)

    def num_faces_per_mesh(self):
        return torch.tensor([f.shape[0] for f in self._faces], dtype=torch.int64, device=self.device)

    # ---- list / packed / padded views ----
    def verts_list(self):
        return list(self._verts)

    def faces_list(self):
        return list(self._faces)

    def verts_packed(self):
        return torch.cat(self._verts, dim=0)

    def mesh_to_verts_packed_first_idx(self):
        n = self.num_verts_per_mesh()
        return torch.cumsum(n, 0) - n

    def mesh_to_faces_packed_first_idx(self):
        n = self.num_faces_per_mesh()
        return torch.cumsum(n, 0) - n

    def verts_packed_to_mesh_idx(self):
        return torch.repeat_interleave(torch.arange(len(self), device=self.device), self.num_verts_per_mesh())

    def faces_packed_to_mesh_idx(self):
        return torch.repeat_interleave(torch.arange(len(self), device=self.device), self.num_faces_per_mesh())

    def faces_packed(self):
        """(sum F_i, 3) indices into verts_packed()."""
        if "faces_packed" not in self._cache:
            offsets = self.mesh_to_verts_packed_first_idx().tolist()
            self._cache["faces_packed"] = torch.cat([f + o for f, o in zip(self._faces, offsets)], dim=0)
        return self._cache["faces_packed"]

    def verts_padded(self):
        """(N, max V, 3), zero padded."""
        return torch.nn.utils.rnn.pad_sequence(self._verts, batch_first=True, padding_value=0.0)

    def faces_padded(self):
        """(N, max F, 3), padded with -1."""
        return torch.nn.utils.rnn.pad_sequence(self._faces, batch_first=True, padding_value=-1)

    # ---- edges ----
    def _compute_edges(self):
        faces = self.faces_packed()
        F = faces.shape[0]
        # edge k of a face is the one opposite its vertex k: (v1, v2), (v2, v0), (v0, v1)
        e = torch.stack([faces[:, [1, 2]], faces[:, [2, 0]], faces[:, [0, 1]]], dim=1).reshape(-1, 2)
        e, _ = e.sort(dim=1)
        V = max(1, int(self.verts_packed().shape[0]))
        key = e[:, 0] * V + e[:, 1]
        uniq, inverse = torch.unique(key, sorted=True, return_inverse=True)
        edges = torch.stack([uniq // V, uniq % V], dim=1)
        self._cache["edges_packed"] = edges
        self._cache["faces_packed_to_edges_packed"] = inverse.view(F, 3)
        self._cache["edges_packed_to_mesh_idx"] = self.verts_packed_to_mesh_idx()[edges[:, 0]]

    def edges_packed(self):
        """(E, 2) unique undirected edges (smaller index first) of all meshes, in packed vertex indices."""
        if "edges_packed" not in self._cache:
            self._compute_edges()
        return self._cache["edges_packed"]

    def faces_packed_to_edges_packed(self):
        """(F, 3): column k is the edge opposite vertex k of each face."""
        if "faces_packed_to_edges_packed" not in self._cache:
            self._compute_edges()
        return self._cache["faces_packed_to_edges_packed"]

    def edges_packed_to_mesh_idx(self):
        if "edges_packed_to_mesh_idx" not in self._cache:
            self._compute_edges()
        return self._cache["edges_packed_to_mesh_idx"]

    def num_edges_per_mesh(self):
        return torch.bincount(self.edges_packed_to_mesh_idx(), minlength=len(self))

    # ---- normals and areas (recomputed: vertices may change under autograd) ----
    def _face_cross(self):
        v = self.verts_packed()
        f = self.faces_packed()
        v0, v1, v2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
        return torch.cross(v1 - v0, v2 - v0, dim=1)

    def faces_areas_packed(self):
        return 0.5 * self._face_cross().norm(dim=1)

    def faces_normals_packed(self):
        """(F, 3) unit face normals (right-hand rule on v0, v1, v2); zero-area faces give 0."""
        c = self._face_cross()
        return c / c.norm(dim=1, keepdim=True).clamp(min=1e-12)

    def verts_normals_packed(self):
        """(V, 3) unit vertex normals: area-weighted sum of the adjacent face normals."""
        c = self._face_cross()
        f = self.faces_packed()
        n = torch.zeros_like(self.verts_packed())
        for k in range(3):
            n = n.index_add(0, f[:, k], c)
        return n / n.norm(dim=1, keepdim=True).clamp(min=1e-12)

    def verts_normals_list(self):
        return list(self.verts_normals_packed().split(self.num_verts_per_mesh().tolist()))

    # ---- new meshes ----
    def _with_verts(self, verts_list):
        out = Meshes.__new__(Meshes)
        out._verts, out._faces, out.names = verts_list, self._faces, self.names
        out.device = verts_list[0].device if verts_list else self.device
        out._cache = {k: v for k, v in self._cache.items()}  # topology caches stay valid
        return out

    def offset_verts(self, vert_offsets_packed):
        """New Meshes with verts + offsets; offsets (sum V_i, 3) or (3,) for all vertices."""
        offs = vert_offsets_packed
        if offs.shape == (3,):
            offs = offs.expand_as(self.verts_packed())
        if offs.shape != self.verts_packed().shape:
            raise ShapeLabError(f"offset_verts: expected offsets of shape {tuple(self.verts_packed().shape)} "
                                f"or (3,), got {tuple(offs.shape)}")
        new = self.verts_packed() + offs
        return self._with_verts(list(new.split(self.num_verts_per_mesh().tolist())))

    def update_padded(self, new_verts_padded):
        """New Meshes with the same faces and vertices taken from a (N, max V, 3) tensor."""
        return self._with_verts([new_verts_padded[i, :v.shape[0]] for i, v in enumerate(self._verts)])

    def to(self, device):
        out = Meshes.__new__(Meshes)
        out._verts = [v.to(device) for v in self._verts]
        out._faces = [f.to(device) for f in self._faces]
        out.names, out.device, out._cache = self.names, torch.device(device), {}
        return out

    def clone(self):
        return Meshes([v.clone() for v in self._verts], [f.clone() for f in self._faces], self.names)

    def detach(self):
        return self._with_verts([v.detach() for v in self._verts])

    def __repr__(self):
        return f"Meshes(n={len(self)}, verts={self.num_verts_per_mesh().tolist()}, " \
               f"faces={self.num_faces_per_mesh().tolist()})"


def join_meshes_as_batch(meshes):
    """Concatenate several Meshes batches into one."""
    verts, faces, names = [], [], []
    for m in meshes:
        verts += m.verts_list()
        faces += m.faces_list()
        names += m.names
    return Meshes(verts, faces, names)
