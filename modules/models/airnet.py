"""AIR-Net (Giebenhain & Goldluecke, 3DV 2021): attention encoder over the point cloud, attention decoder.

Encoder: point cloud (B,N,3) -> global code z (B,D), anchors (B,M,3) and anchor features (B,M,D).
  1. A position-only vector-attention block (Point Transformer) over the k nearest neighbours.
  2. Per downsampling layer: attentive set abstraction (farthest point sampling picks the centres,
     two rounds of vector cross-attention centre -> k neighbours), an element-wise MLP, a local
     vector-attention block, a width change after the first layer, another element-wise MLP.
  3. `nfinal_trans` vector self-attention blocks among all anchors (or among 2k neighbours when
     full_sa is false), each followed by an element-wise MLP.
  4. z = MLP(max-pool of the anchor features).
Decoder: per query point, vector cross-attention from z to its k nearest anchors plus one global
token (z itself, without a positional term), then a ResNet MLP conditioned on the attended feature
at every block, then one occupancy logit.

Vector attention (Zhao et al., Point Transformer): for a query feature q and neighbours (k_j, v_j)
at relative position d_j, weights = softmax_j(gamma(q - k_j + delta(d_j))) per channel and the output
is sum_j weights_j * (v_j + delta(d_j)); delta and gamma are two-layer MLPs.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from modules.geometry.knn import knn_gather, knn_points
from modules.geometry.sample_farthest_points import sample_farthest_points
from modules.models.layers import ResnetBlockFC
from modules.models.occupancy import check_point_cloud


def _mlp2(d_in, d):
    return nn.Sequential(nn.Linear(d_in, d), nn.ReLU(), nn.Linear(d, d))


def _bn_last(bn, x):
    """BatchNorm1d over the channel axis of a (B, N, C) tensor."""
    return bn(x.transpose(1, 2)).transpose(1, 2)


def _knn_idx(query, ref, k):
    """(B,Q,3), (B,R,3) -> (B,Q,k) indices of the nearest reference points (no gradient needed)."""
    with torch.no_grad():
        return knn_points(query.detach(), ref.detach(), K=k).idx


def _vector_attention(gamma, q, k, v, pos):
    """q (B,N,D); k, v, pos (B,N,K,D) -> (B,N,D). Softmax over the neighbours, per channel."""
    w = torch.softmax(gamma(q[:, :, None] - k + pos), dim=2)
    return (w * (v + pos)).sum(dim=2)


class PointTransformerBlock(nn.Module):
    """Vector self-attention among the k nearest neighbours (or all points), residual + BatchNorm.

    pos_only: no input features; the block attends over relative positions only (the first block of
    the encoder), which keeps it translation-equivariant. No residual in that case.
    """

    def __init__(self, dim, k, pos_only=False, group_all=False):
        super().__init__()
        self.k, self.pos_only, self.group_all = k, pos_only, group_all
        self.fc_delta = _mlp2(3, dim)
        self.fc_gamma = _mlp2(dim, dim)
        if not pos_only:
            self.w_q = nn.Linear(dim, dim, bias=False)
            self.w_k = nn.Linear(dim, dim, bias=False)
            self.w_v = nn.Linear(dim, dim, bias=False)
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, xyz, feats=None):
        B, N, _ = xyz.shape
        if self.group_all:
            idx = torch.arange(N, device=xyz.device).expand(B, N, N)
        else:
            idx = _knn_idx(xyz, xyz, min(self.k, N))
        pos = self.fc_delta(xyz[:, :, None] - knn_gather(xyz, idx))       # (B,N,K,D)
        if self.pos_only:
            w = torch.softmax(self.fc_gamma(pos), dim=2)
            out = (w * pos).sum(dim=2)
        else:
            out = _vector_attention(self.fc_gamma, self.w_q(feats), knn_gather(self.w_k(feats), idx),
                                    knn_gather(self.w_v(feats), idx), pos) + feats
        return _bn_last(self.bn, out)


class AttentiveSetAbstraction(nn.Module):
    """Downsample to `npoint` farthest-point-sampled centres; each centre attends to its k nearest
    input points twice (the second round queries with the first round's result); residual to the
    centre's own feature."""

    def __init__(self, npoint, k, dim):
        super().__init__()
        self.npoint, self.k = npoint, k
        self.fc_delta = _mlp2(3, dim)
        self.fc_gamma1, self.fc_gamma2 = _mlp2(dim, dim), _mlp2(dim, dim)
        self.w_q1, self.w_k1, self.w_v1 = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.w_q2, self.w_k2, self.w_v2 = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.ffn = nn.ModuleDict({"conv1": nn.Conv1d(dim, dim, 1), "bn": nn.BatchNorm1d(dim),
                                  "conv2": nn.Conv1d(dim, dim, 1)})
        self.bn_round1, self.bn_sum, self.bn_out = (nn.BatchNorm1d(dim) for _ in range(3))

    def forward(self, xyz, feats):
        with torch.no_grad():
            centre_idx = sample_farthest_points(xyz.detach(), K=self.npoint)[1]   # (B,M), start index 0
        gather = lambda x: x.gather(1, centre_idx[..., None].expand(-1, -1, x.shape[-1]))  # noqa: E731
        centres = gather(xyz)
        idx = _knn_idx(centres, xyz, min(self.k, xyz.shape[1]))
        pos = self.fc_delta(knn_gather(xyz, idx) - centres[:, :, None])
        r1 = _vector_attention(self.fc_gamma1, gather(self.w_q1(feats)), knn_gather(self.w_k1(feats), idx),
                               knn_gather(self.w_v1(feats), idx), pos)
        h = self.ffn["conv2"](F.relu(self.ffn["bn"](self.ffn["conv1"](r1.transpose(1, 2))))).transpose(1, 2)
        r1 = _bn_last(self.bn_round1, r1 + h)
        r2 = _vector_attention(self.fc_gamma2, self.w_q2(r1), knn_gather(self.w_k2(feats), idx),
                               knn_gather(self.w_v2(feats), idx), pos)
        out = _bn_last(self.bn_sum, r1 + r2) + gather(feats)
        return centres, _bn_last(self.bn_out, out)


class ElementwiseMLP(nn.Module):
    """Two per-point linear layers with BN/ReLU, a skip connection and a final BN."""

    def __init__(self, dim):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(dim, dim, 1), nn.Conv1d(dim, dim, 1)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm1d(dim), nn.BatchNorm1d(dim), nn.BatchNorm1d(dim)

    def forward(self, x):
        x = x.transpose(1, 2)
        h = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return self.bn3(x + h).transpose(1, 2)


class AIRNetEncoder(nn.Module):
    def __init__(self, npoints_per_layer=(300, 200, 100), nneigh=16, nneigh_reduced=16, nfinal_trans=3,
                 attn_dim=256, attn_dim_reduced=256, full_sa=True):
        super().__init__()
        npoints_per_layer = list(npoints_per_layer)
        if len(npoints_per_layer) < 2 or any(b > a for a, b in zip(npoints_per_layer, npoints_per_layer[1:])):
            raise ValueError(f"npoints_per_layer={npoints_per_layer}: need >= 2 non-increasing sizes")
        self.npoints_per_layer, self.nneigh_reduced = npoints_per_layer, nneigh_reduced
        self.block_begin = PointTransformerBlock(attn_dim_reduced, nneigh_reduced, pos_only=True)
        self.set_abstractions, self.mlps_extra, self.blocks, self.mlps = (nn.ModuleList() for _ in range(4))
        for i, (n_old, n_new) in enumerate(zip(npoints_per_layer, npoints_per_layer[1:])):
            dim = attn_dim_reduced if i == 0 else attn_dim
            self.set_abstractions.append(AttentiveSetAbstraction(n_new, min(nneigh, n_old), dim))
            self.mlps_extra.append(ElementwiseMLP(dim))
            self.blocks.append(PointTransformerBlock(dim, min(nneigh, n_new)))
            self.mlps.append(ElementwiseMLP(attn_dim))
        self.widen = nn.Linear(attn_dim_reduced, attn_dim) if attn_dim_reduced != attn_dim else nn.Identity()
        self.final_blocks = nn.ModuleList(PointTransformerBlock(attn_dim, 2 * nneigh, group_all=full_sa)
                                          for _ in range(nfinal_trans))
        self.final_mlps = nn.ModuleList(ElementwiseMLP(attn_dim) for _ in range(nfinal_trans))
        self.fc_global = _mlp2(attn_dim, attn_dim)

    @property
    def min_points(self):
        """Fewest input points the encoder accepts: the first FPS must find distinct centres."""
        return max(self.npoints_per_layer[1], self.nneigh_reduced)

    def forward(self, xyz):
        check_point_cloud(xyz, self.min_points, "AIR-Net encoder")
        feats = self.block_begin(xyz)
        for i, sa in enumerate(self.set_abstractions):
            xyz, feats = sa(xyz, feats)
            feats = self.blocks[i](xyz, self.mlps_extra[i](feats))
            if i == 0:
                feats = self.widen(feats)
            feats = self.mlps[i](feats)
        for block, mlp in zip(self.final_blocks, self.final_mlps):
            feats = mlp(block(xyz, feats))
        z = self.fc_global(feats.max(dim=1).values)
        return {"z": z, "anchors": xyz, "anchor_feats": feats}


class AnchorCrossAttention(nn.Module):
    """Each query attends (vector attention, query vector = W_q z) to its k nearest anchors plus the
    global token z (whose positional term is zero)."""

    def __init__(self, dim_in, dim, k):
        super().__init__()
        self.k, self.dim = k, dim
        self.fc_delta = _mlp2(3, dim)
        self.fc_gamma = _mlp2(dim, dim)
        self.w_q, self.w_k, self.w_v = (nn.Linear(dim_in, dim, bias=False) for _ in range(3))
        self.w_k_global = nn.Linear(dim_in, dim, bias=False)
        self.w_v_global = nn.Linear(dim_in, dim, bias=False)

    def forward(self, queries, z, anchors, anchor_feats):
        B, Q, _ = queries.shape
        idx = _knn_idx(queries, anchors, min(self.k, anchors.shape[1]))
        k = torch.cat([knn_gather(self.w_k(anchor_feats), idx), self.w_k_global(z)[:, None, None].expand(B, Q, 1, -1)], 2)
        v = torch.cat([knn_gather(self.w_v(anchor_feats), idx), self.w_v_global(z)[:, None, None].expand(B, Q, 1, -1)], 2)
        pos = self.fc_delta(queries[:, :, None] - knn_gather(anchors, idx))
        pos = F.pad(pos, (0, 0, 0, 1))                                    # zero positional term for z
        q = self.w_q(z)[:, None].expand(B, Q, -1)
        return _vector_attention(self.fc_gamma, q, k, v, pos)


class AIRNetDecoder(nn.Module):
    def __init__(self, dim_in=256, attn_dim=200, nneigh=7, hidden_dim=128, nblocks=5):
        super().__init__()
        self.cross = AnchorCrossAttention(dim_in, attn_dim, nneigh)
        self.fc_in = nn.Linear(attn_dim, hidden_dim)
        self.fc_c = nn.ModuleList(nn.Linear(attn_dim, hidden_dim) for _ in range(nblocks))
        self.blocks = nn.ModuleList(ResnetBlockFC(hidden_dim) for _ in range(nblocks))
        self.fc_out = nn.Linear(hidden_dim, 1)

    def forward(self, queries, encoding):
        c = self.cross(queries, encoding["z"], encoding["anchors"], encoding["anchor_feats"])
        net = self.fc_in(c)
        for fc_c, block in zip(self.fc_c, self.blocks):
            net = block(net + fc_c(c))
        return self.fc_out(F.relu(net)).squeeze(-1)


def build_airnet(cfg):
    encoder = AIRNetEncoder(cfg["npoints_per_layer"], cfg["encoder_nneigh"], cfg["encoder_nneigh_reduced"],
                            cfg["nfinal_trans"], cfg["encoder_attn_dim"], cfg["encoder_attn_dim_reduced"],
                            cfg["full_sa"])
    decoder = AIRNetDecoder(cfg["encoder_attn_dim"], cfg["decoder_attn_dim"], cfg["decoder_nneigh"],
                            cfg["decoder_hidden_dim"], cfg["decoder_nblocks"])
    return encoder, decoder

