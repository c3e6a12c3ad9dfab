"""Pictures: point clouds coloured by part or attribution, meshes, panels, GIFs and curves.

Everything renders off-screen with matplotlib's Agg canvas (no display needed) and writes
files atomically. World space is y-up; pictures show shapes upright.
"""
from modules.vis.colors import attribution_colors, part_colors, PART_PALETTE  # noqa: F401
from modules.vis.figures import figure_to_array, new_figure, save_figure  # noqa: F401
from modules.vis.meshes import draw_mesh, mesh_image, save_mesh_png  # noqa: F401
from modules.vis.plots import save_gif, save_loss_curve_png, save_panels_png, save_turntable_gif  # noqa: F401
from modules.vis.pointclouds import draw_point_cloud, point_cloud_image, save_point_cloud_png  # noqa: F401
