"""Config defaults of the occupancy family (also the schema the config loader checks keys against)."""

AIRNET = {          # configs/airnet300.yaml of the original
    "npoints_per_layer": [300, 200, 100],
    "encoder_nneigh": 16,
    "encoder_nneigh_reduced": 16,
    "nfinal_trans": 3,
    "encoder_attn_dim": 256,
    "encoder_attn_dim_reduced": 256,
    "full_sa": True,
    "decoder_attn_dim": 200,
    "decoder_nneigh": 7,
    "decoder_hidden_dim": 128,
    "decoder_nblocks": 5,        # honoured here; the original always used 5
}
ONET = {            # ResnetPointnet + DecoderCBatchNorm of the ONet config
    "c_dim": 512,
    "encoder_hidden_dim": 512,
    "decoder_hidden_dim": 256,
    "decoder_nblocks": 5,
}
CONVONET = {        # LocalPoolPointnet + LocalDecoder, 3 planes of 64^2 (or a 32^3 grid)
    "c_dim": 32,
    "encoder_hidden_dim": 32,
    "decoder_hidden_dim": 32,
    "nblocks": 5,
    "feature_type": "planes",    # planes (xz, xy, yz) | grid
    "plane_resolution": 64,
    "grid_resolution": 32,
    "unet_depth": 4,             # 2D U-Net of the plane variant
    "unet_filters": 32,
    "unet3d_levels": 3,          # 3D U-Net of the grid variant
    "unet3d_filters": 32,
    "padding": 0.02,             # AIR-Nets' value (ConvONet upstream: 0.1)
}
IFNET = {           # IF-Net ShapeNetPoints
    "resolution": 128,
    "hidden_dim": 256,
    "displacement": 0.0722,
}
THRESHOLDS = {"airnet": 0.5, "onet": 0.2, "convonet": 0.2, "ifnet": 0.5}   # each original's default

DATA = {
    "format": "ifnet",          # ifnet | onet
    "root": "data/synth/ifnet",
    "categories": [],           # names or synsets; empty: all
    "pc_samples": 300,          # input points (sparse 300 / dense 3000)
    "npoints_decoder": 1000,    # query points per shape
    "noise": 0.0,               # std of Gaussian input noise (AIR-Nets `noisy_obs`; 0.005 for ONet data)
    "iou_points": 10000,        # uniform points for the validation IoU (onet format)
    "max_items": 0,             # use only the first N shapes of a split (0: all)
    "max_per_class": 0,         # use only the first N shapes of each class (0: all)
    "cache": True,              # keep loaded arrays in memory
}

# The spec of each key whose default does not say it all (syntax: modules/config.py).
AIRNET_SCHEMA = {
    "npoints_per_layer": "list of 3 int >= 1", "encoder_nneigh": "int >= 1", "encoder_nneigh_reduced": "int >= 1",
    "nfinal_trans": "int >= 1", "encoder_attn_dim": "int >= 1", "encoder_attn_dim_reduced": "int >= 1",
    "decoder_attn_dim": "int >= 1", "decoder_nneigh": "int >= 1", "decoder_hidden_dim": "int >= 1",
    "decoder_nblocks": "int >= 1",
}
ONET_SCHEMA = {"c_dim": "int >= 1", "encoder_hidden_dim": "int >= 1", "decoder_hidden_dim": "int >= 1",
               "decoder_nblocks": "int >= 1"}
CONVONET_SCHEMA = {
    "c_dim": "int >= 1", "encoder_hidden_dim": "int >= 1", "decoder_hidden_dim": "int >= 1", "nblocks": "int >= 1",
    "feature_type": "planes | grid", "plane_resolution": "int >= 2", "grid_resolution": "int >= 2",
    "unet_depth": "int >= 1", "unet_filters": "int >= 1", "unet3d_levels": "int >= 1", "unet3d_filters": "int >= 1",
    "padding": "float in [0, 1)",
}
IFNET_SCHEMA = {"resolution": "int >= 2", "hidden_dim": "int >= 1", "displacement": "float >= 0"}
THRESHOLD_SCHEMA = {"threshold": "float in (0, 1)"}
DATA_SCHEMA = {
    "format": "ifnet | onet", "root": "str", "categories": "list of str", "pc_samples": "int >= 1",
    "npoints_decoder": "int >= 1", "noise": "float >= 0", "iou_points": "int >= 1", "max_items": "int >= 0",
    "max_per_class": "int >= 0",
}
