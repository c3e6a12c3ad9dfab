"""Geometry core: PyTorch3D-named ops (knn_points, chamfer_distance, ...) and mesh/voxel tools."""
# --- ops (knn, chamfer, fps, ball query, sampling, ico sphere, mesh losses, cubify) ---
from modules.geometry.knn import knn_gather, knn_points, knn_search_numpy  # noqa: F401
from modules.geometry.chamfer import chamfer_distance  # noqa: F401
from modules.geometry.sample_farthest_points import masked_gather, sample_farthest_points  # noqa: F401
from modules.geometry.ball_query import ball_query  # noqa: F401
from modules.geometry.meshes import Meshes, join_meshes_as_batch  # noqa: F401
from modules.geometry.sample_points_from_meshes import sample_points_from_meshes  # noqa: F401
from modules.geometry.ico_sphere import ico_sphere  # noqa: F401
from modules.geometry.mesh_losses import (  # noqa: F401
    mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency)
from modules.geometry.cubify import cubify  # noqa: F401

# --- meshes and volumes (io, mesh_contains, voxels, binvox, marching cubes / MISE) ---
from modules.geometry.io import (load_mesh, save_mesh, load_point_cloud, save_point_cloud,  # noqa: F401
                                 load_seg, save_seg)
from modules.geometry.mise import marching_cubes, mise_extract, dense_extract, grid_points  # noqa: F401
from modules.geometry.mesh_contains import mesh_contains, winding_number  # noqa: F401
from modules.geometry.voxels import voxelize_mesh, voxelize_points, surface_voxels, voxel_centers  # noqa: F401
from modules.geometry.binvox import read_binvox, write_binvox, binvox_voxel_centers  # noqa: F401

# --- soft rasterizer (SoftRas semantics, differentiable) ---
from modules.geometry.soft_rasterizer import (SoftRasterizationSettings, SoftRenderer, camera_from_view_transform,  # noqa: F401
                                              look_at_view_transform, project_vertices, rasterize_soft,
                                              sample_vertex_colors, soft_render, soft_silhouette)
