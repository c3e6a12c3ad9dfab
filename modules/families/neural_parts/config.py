"""Config defaults of the Neural Parts family (also the schema the config loader checks keys against).

Values follow the original (paschalidoud/neural_parts `config/dfaust_6.yaml`); see
`/work/shared/reference/neuralparts-svr-genren.md` section A and README "Neural Parts".
"""

MODEL = {
    "n_primitives": 5,            # M
    "encoder": "resnet18",        # torchvision ResNet (resnet18 | resnet34 | resnet50)
    "encoder_head": [512, 256],   # fc -> Linear(512,512)-ReLU-Linear(512,256): image feature of 256
    "frozen_bn": True,            # FrozenBatchNorm2d (the original's freeze_bn)
    "encoder_weights": None,      # null (random init), "imagenet" (torchvision's cache) or a .pth path
    "feature_dim": 256,           # learned per-primitive embedding e_m
    "n_blocks": 4,                # coupling layers of the INN
    "hidden_size": 256,           # every MLP of the INN
    "proj_dims": 128,             # shared point projection Linear(3,256)-ReLU-Linear(256,128)
    "sphere_radius": 0.25,        # r
    "n_points_on_sphere": 200,    # S: 200 for DFAUST / humans, 500 for ShapeNet objects
    "euclidean_phi": True,        # the original's euclidean_phi_volume for the volume losses
    "seed": 0,                    # seed of the coupling masks
}

DATA = {
    "root": "data/synth_np/humans",   # a humans (DFAUST layout) root, or an onet root (objects)
    "layout": "humans",               # humans | onet
    "categories": [],                 # onet synsets (empty: all); ignored for humans
    "image_size": 224,                # input renders resized to this (null: as stored)
    "n_surface": 1500,                # target surface points per sample (DFAUST yaml 1500, ShapeNet 2000)
    "n_volume": 5000,                 # volume points per sample
    "volume_sampling": "equal",       # equal: half in / half out with importance weights (original) | uniform
    "eval_surface": 10000,            # target surface points in evaluation (Chamfer ground truth)
    "max_items": 0,                   # only the first N samples of a split (0: all)
    "max_per_class": 0,               # accepted from generate.py; onet only (0: all)
    "cache": False,                   # accepted from generate.py; nothing is cached
    "format": None,                   # accepted from generate.py's -data_type; ignored
}

TASK = {
    "weights": {                      # the original's loss weights; 0 switches a term off (ablation)
        "reconstruction": 0.3,
        "normal_consistency": 0.01,
        "occupancy": 1.0,
        "coverage": 0.01,
        "overlap": 0.1,
    },
    "sharpness": 250.0,               # 1 / tau of the sigmoids (tau = 0.004)
    "min_n_points": 10,               # k of the coverage loss
    "max_shared_points": 1.95,        # lambda of the overlap loss
}

# ranges and choices of the keys above (modules.config spec syntax)
MODEL_SCHEMA = {"n_primitives": "int >= 1", "encoder": "resnet18 | resnet34 | resnet50",
                "encoder_weights": "null | str", "feature_dim": "int >= 1", "n_blocks": "int >= 1",
                "hidden_size": "int >= 1", "proj_dims": "int >= 1", "sphere_radius": "float > 0",
                "n_points_on_sphere": "int >= 1"}
DATA_SCHEMA = {"layout": "humans | onet", "image_size": "null | int >= 8", "n_surface": "int >= 1",
               "n_volume": "int >= 2", "volume_sampling": "equal | uniform", "eval_surface": "int >= 1",
               "max_items": "int >= 0", "max_per_class": "int >= 0", "format": "null | str"}
TASK_SCHEMA = {"sharpness": "float > 0", "min_n_points": "int >= 1", "max_shared_points": "float > 0"}
