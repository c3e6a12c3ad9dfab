"""Config defaults of the single-view reconstruction family (seed 003, the 16-889 assignment 2); also the
schema the config loader checks keys and types against.

Five model names, one per decoder (`--type` of the seed's scripts): svr_vox, svr_point, svr_mesh,
svr_implicit, svr_parametric. A checkpoint stores its model name, so loading one decoder's checkpoint
as another is refused (exit code 2) by the engine's checkpoint check.
"""
TYPES = ("vox", "point", "mesh", "implicit", "parametric")
MODEL_NAMES = {t: f"svr_{t}" for t in TYPES}

ENCODER = {
    "encoder_arch": "resnet18",   # torchvision ResNet without fc (avgpool kept): 512-d feature, as the seed
    "encoder_weights": None,      # null: random init (trained end to end); a torchvision .pth path or "imagenet"
}
VOX = {**ENCODER, "resolution": 32, "channels": 256, "threshold": 0.5}
POINT = {**ENCODER, "n_points": 1000, "hidden": [1024, 1024], "bound": 0.5}
MESH = {**ENCODER, "level": 4, "radius": 0.5, "hidden": [1024, 1024]}
IMPLICIT = {**ENCODER, "hidden_dim": 256, "n_blocks": 5, "threshold": 0.2}   # ONet's single-view threshold
PARAMETRIC = {**ENCODER, "n_patches": 25, "n_points": 2500, "grid_res": 10}   # AtlasNet: 25 patches, 2500 pts
MODELS = {"vox": VOX, "point": POINT, "mesh": MESH, "implicit": IMPLICIT, "parametric": PARAMETRIC}

# Ranges and choices the defaults alone do not say (syntax: modules/config.py); checked when a config is loaded,
# and the flags of train_model.py / fit_data.py / eval_model.py take their specs from here.
ENCODER_SCHEMA = {"encoder_arch": "resnet18 | resnet34",   # 512-d features, what every decoder expects
                  "encoder_weights": "null | str"}
THRESHOLD_SCHEMA = {"threshold": "float in (0, 1)"}
MODEL_SCHEMAS = {
    "vox": {**ENCODER_SCHEMA, **THRESHOLD_SCHEMA, "resolution": "int >= 4", "channels": "int >= 1"},
    "point": {**ENCODER_SCHEMA, "n_points": "int in [1, 100000]", "hidden": "list of int >= 1", "bound": "null | float > 0"},
    "mesh": {**ENCODER_SCHEMA, "level": "int in [0, 7]", "radius": "float > 0", "hidden": "list of int >= 1"},
    "implicit": {**ENCODER_SCHEMA, **THRESHOLD_SCHEMA, "hidden_dim": "int >= 1", "n_blocks": "int >= 1"},
    "parametric": {**ENCODER_SCHEMA, "n_patches": "int >= 1", "n_points": "int in [1, 100000]",
                   "grid_res": "int >= 2"},
}

DATA = {
    "format": "r2n2",             # r2n2 (ShapeNetRendering + ShapeNetVox32 + meshes) | onet (img_choy2016 + npz)
    "root": "data/synth_svr/r2n2",
    "categories": ["chair"],      # names or synsets; empty: all
    "targets": ["pointcloud"],    # ground truth to load: any of voxels, pointcloud, points, mesh
    "image_size": 137,            # every image is resized (antialiased) to this square size; R2N2's own size
    "n_points": 1000,             # ground-truth surface points per sample (seed HEAD: 1000; 2022: 5000)
    "n_queries": 2048,            # implicit: occupancy query points per sample (ONet: 2048)
    "eval_view": 0,               # the fixed view of val/test items (training draws a random view)
    "max_items": 0,               # only the first N items of a split (0: all)
    "max_per_class": 0,           # only the first N items of each category (0: all)
    "cache": False,               # accepted for generate.py (nothing is cached: meshes are sampled per call)
}

DATA_SCHEMA = {
    "format": "r2n2 | onet", "categories": "list of str", "targets": "list of str", "image_size": "int >= 32",
    "n_points": "int in [1, 100000]", "n_queries": "int in [1, 1000000]", "eval_view": "int >= 0",
    "max_items": "int >= 0", "max_per_class": "int >= 0",
}

TASK = {
    "w_chamfer": 1.0,             # mesh: weight of Chamfer (seed 1.0)
    "w_smooth": 0.1,              # mesh: weight of the uniform Laplacian smoothing (seed 0.1)
    "w_edge": 0.0,                # mesh: optional edge-length term
    "w_normal": 0.0,              # mesh: optional normal-consistency term
    "mesh_samples": 0,            # mesh: points sampled on the predicted mesh per step (0: data.n_points)
    "val_f1_points": 0,           # validation F1@0.05 sample count (0: data.n_points)
}
TASK_SCHEMA = {"w_chamfer": "float >= 0", "w_smooth": "float >= 0", "w_edge": "float >= 0", "w_normal": "float >= 0",
               "mesh_samples": "int >= 0", "val_f1_points": "int >= 0"}

FIT_SCHEMA = {          # fit_data.py's flags (one target, fitted by Adam)
    "lr": "float > 0", "max_iter": "int >= 1", "n_points": "int in [1, 100000]",   # <= fitting.TARGET_POOL
    "w_chamfer": "float >= 0", "w_smooth": "float >= 0", "index": "int >= 0", "gif_frames": "int in [1, 360]",
    "seed": "int >= 0", "init_radius": "float > 0", "smooth_final": "float in (0, 1]", "w_edge": "float >= 0",
    "w_normal": "float >= 0", "eval_every": "int >= 0",
}
EVAL_SCHEMA = {         # eval_model.py's flags
    "vis_freq": "int >= 0", "gifs": "int >= 0", "n_points": "int in [1, 100000]", "max_objects": "int >= 0",
    "mise_res": "int >= 2", "mise_steps": "int in [0, 6]", "max_iter": "int >= 1", "n_steps": "int in [1, 1000]",
}
