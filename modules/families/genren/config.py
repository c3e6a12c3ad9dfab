"""Config defaults of the genren family: the original's BASE options (options.py), full size. Each key keeps the
original's name where it has one (w_*, *_iters, translation_mins, ...); spec strings for the keys whose default
does not say it all (syntax: modules/config.py)."""

MODEL = {
    "icosa_frequency": 10,          # icosa_sphere(10): |V| = 1002, |F| = 2000 (the original's icosasphere_subdivs)
    "dim_v": 64,                    # dim_lat_pert
    "dim_xi_T": 128,
    "dim_xi_p": 16,
    "dim_backbone": 512,
    "num_hypotheses": 4,            # num_pose_hypotheses
    "image_size": 64,               # img_size
    "anti_aliasing": 2,             # rasterise at 2x, average-pool (SoftRas anti_aliasing=True)
    "sigma": 1.0e-5,
    "gamma": 1.0e-4,
    "texture_size": 64,             # tex_img_gen_type '64' (or 32)
    "texture_ngf": 1024,            # WGAN-GP generator width
    "image_critic_ndf": 1024,
    "texture_critic_ndf": 1024,
    "m_reduced_dim": 400,
    "shape_critic_reduced": 128,
    "critic_hidden": [512, 256, 128],
    "pointnet_width": 1.0,
    "cptc_width": 16,               # ResNet-20 base width of the CPTC critic
    "pose_buffer_size": 128,
    "translation_mins": [-0.5, -0.5, -0.5],
    "translation_maxs": [0.5, 0.5, 0.6],
    "eye_distance": 1.2,            # fixed_eye (0, 0, 1.2)
    "encoder_weights": None,        # None (random, the original), a torchvision file, or "imagenet"
}
MODEL_SCHEMA = {
    "icosa_frequency": "int >= 1", "dim_v": "int >= 1", "dim_xi_T": "int >= 1", "dim_xi_p": "int >= 1",
    "dim_backbone": "int >= 1", "num_hypotheses": "int >= 1", "image_size": "int >= 32", "anti_aliasing": "int >= 1",
    "sigma": "float > 0", "gamma": "float > 0", "texture_size": "int >= 32", "texture_ngf": "int >= 16",
    "image_critic_ndf": "int >= 16", "texture_critic_ndf": "int >= 16", "m_reduced_dim": "int >= 1",
    "shape_critic_reduced": "int >= 1", "critic_hidden": "list of int >= 1", "pointnet_width": "float > 0",
    "cptc_width": "int >= 1", "pose_buffer_size": "int >= 1", "translation_mins": "list of 3 float",
    "translation_maxs": "list of 3 float", "eye_distance": "float > 0", "encoder_weights": "null | str",
}

DATA = {
    "root": None,                   # genren layout with categories: ROOT/<category>/{images,shapes}/
    "categories": None,             # list of category folders under root (null: all)
    "img_data_dir": None,           # or the seed's two flat folders: PNG images ...
    "shape_data_dir": None,         # ... and X.PC.pt / X.normals.pt shapes
    "img_size": 64,
    "n_pc_points": 1000,            # points drawn per shape (without replacement)
    "held_out": 0.1,                # fraction of shapes (and their images) kept for val/test, by a hash of the id
    "no_alpha": "error",            # images without alpha: error | white_background (mask = not white)
    "val_items": 64,                # validation pairs per evaluation
}
DATA_SCHEMA = {"root": "null | str", "categories": "null | list of str", "img_data_dir": "null | str",
               "shape_data_dir": "null | str", "img_size": "int >= 8", "n_pc_points": "int >= 1",
               "held_out": "float in [0, 1)", "no_alpha": "error | white_background", "val_items": "int >= 1"}

TASK = {
    # schedule (optimizer steps of the generator); the original's BASE
    "chamfer_only_iters": 5000,      # mesh auto-encoder pretraining
    "stage_2_pretrain_iters": 3000,  # domain-randomised cycle 1 (random pose and texture)
    "mode_1_iters": 3000,            # domain-randomised cycle 1 + cycle 2 annealed in
    "mode_2_iters": 3000,            # full cycle 1 annealed in, domain-randomised annealed out
    "cy2_annealing_period": 1000,
    "initial_cy2_weight": 0.01,
    "gen_lr_pt1_gamma": 0.5,         # mesh-AE lr x gamma at each milestone (steps into pretraining)
    "gen_lr_pt1_ms": [4000],
    "img_critic_use_cy2_renders_chance": 0.5,   # real image replaced by its best re-render for the image critic
    "n_template_point_samples": 1000,
    "v_swd_nprojs": 150,
    "num_swd_projections_xi_T": 150,
    "img_critic_gp_pen_weight": 10.0,
    "tex_critic_gp_pen_weight": 10.0,
    "shape_critic_gp_pen_weight": 10.0,
    "drift_mag_weight": 0.01,
    # cycle 1 weights
    "w_cham_orig": 2000.0, "w_normals_orig": 5.0, "w_l2_con": 1000.0, "w_v_recon": 5.0, "w_pose_adv": 10.0,
    "w_adv_img": 0.2, "w_rot_recon": 5.0, "w_t_recon": 10.0, "w_xi_T": 5.0, "w_texture_recon_PTS2_FDR": 10.0,
    "w_texture_realism": 0.2,
    # cycle 2 weights
    "w_img_recon_l1": 40.0, "w_img_recon_pd": 200.0, "w_shape_adv_loss": 1.0, "w_xi_T_adv_loss": 5.0,
    "w_hyp_xi_T_match": 1.0, "w_hyp_t_match": 10.0, "w_adversarial_cptc_cy2": 0.35,
    # shared regularisers
    "w_R_negent": 0.1, "w_mesh_reg": 0.05, "w_delta_reg": 0.05, "w_v_reg": 5.0, "w_v_reg_cy2": 0.1,
    "visuals": 4,                    # images per TensorBoard grid
    "optimizers": {                  # Adam, betas (0.5, 0.99) everywhere (beta1_fp, beta2_fp)
        "mesh_ae": {"optimizer": "adam", "lr": 8.0e-4, "betas": [0.5, 0.99], "weight_decay": 1.0e-6,
                    "momentum": None, "grad_clip": None},          # gen_lr_pt1
        "generator": {"optimizer": "adam", "lr": 4.0e-4, "betas": [0.5, 0.99], "weight_decay": 1.0e-6,
                      "momentum": None, "grad_clip": None},        # gen_lr_main
        "image_critic": {"optimizer": "adam", "lr": 1.0e-4, "betas": [0.5, 0.99], "weight_decay": 1.0e-3,
                         "momentum": None, "grad_clip": None},     # imc_lr
        "shape_critic": {"optimizer": "adam", "lr": 1.0e-4, "betas": [0.5, 0.99], "weight_decay": 1.0e-3,
                         "momentum": None, "grad_clip": None},     # shc_lr
        "texture_critic": {"optimizer": "adam", "lr": 1.0e-4, "betas": [0.5, 0.99], "weight_decay": 1.0e-3,
                           "momentum": None, "grad_clip": None},   # C_lr
        "cptc_critic": {"optimizer": "adam", "lr": 5.0e-4, "betas": [0.5, 0.99], "weight_decay": 1.0e-6,
                        "momentum": None, "grad_clip": None},
    },
}
TASK_SCHEMA = {k: "int >= 0" for k in ("chamfer_only_iters", "stage_2_pretrain_iters", "mode_1_iters", "mode_2_iters",
                                      "cy2_annealing_period")}
TASK_SCHEMA.update({"initial_cy2_weight": "float in [0, 1]", "img_critic_use_cy2_renders_chance": "float in [0, 1]",
                    "gen_lr_pt1_ms": "list of int >= 0", "n_template_point_samples": "int >= 1",
                    "v_swd_nprojs": "int >= 1", "num_swd_projections_xi_T": "int >= 1", "visuals": "int >= 0"})

LOADTEST_SCHEMA = {     # genren_loadtest.py's flags
    "n": "int in [1, 100000]", "n_renders": "int in [1, 64]", "seed": "int >= 0",
}
