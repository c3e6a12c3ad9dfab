"""Geometry core: PyTorch3D-named ops (knn_points, chamfer_distance, ...) and mesh/voxel tools."""
# --- ops (knn, chamfer, fps, ball query, sampling, ico sphere, mesh losses, cubify) ---
from modules.geometry.knn import knn_search_numpy  # noqa: F401

# --- meshes and volumes (io, mesh_contains, voxels, binvox, marching cubes / MISE) ---
from modules.geometry.io import (load_mesh, save_mesh, load_point_cloud, save_point_cloud,  # noqa: F401
                                 load_seg, save_seg)
from modules.geometry.mise import marching_cubes  # noqa: F401
