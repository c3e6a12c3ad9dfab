"""Meshes from trained occupancy networks: load a checkpoint, encode each test cloud, extract the
iso-surface with MISE or dense marching cubes, write `surface_reconstruction.off` and a picture.

Output layout (AIR-Nets): <exp>/evaluation_<ckpt>_@<spec>/generation/<synset>/<id>/surface_reconstruction.off
with <spec> = <mise_res>x<mise_steps> (MISE) or <mcubes_res> (dense). Next to `generation/`,
`generation_config.yaml` records the checkpoint, method, threshold and data.
"""
import os
import time

import numpy as np
import torch
import yaml

from modules.utils import ShapeLabError, atomic_write

MISE_BOX = (-0.51, 0.51)        # AIR-Nets: box 1.02
MCUBES_BOX = (-0.501, 0.501)    # AIR-Nets: dense grid over [-0.501, 0.501]
CHECKPOINT_NAMES = ("best.pt", "latest.pt")


def resolve_checkpoint(exp_dir=None, checkpoint=None, ckpt_name=None):
    """-> (checkpoint path, label used in the output folder name)."""
    if ckpt_name is not None:
        candidates = [ckpt_name] + ([os.path.join(exp_dir, "checkpoints", ckpt_name)] if exp_dir else [])
        for path in candidates:
            if os.path.isfile(path):
                return path, os.path.splitext(os.path.basename(path))[0]
        raise ShapeLabError(f"-ckpt_name {ckpt_name}: no such file (looked at {', '.join(candidates)})")
    if exp_dir is None:
        raise ShapeLabError("give -exp_name (an experiment folder) or -ckpt_name (a checkpoint file)")
    ckpt_dir = os.path.join(exp_dir, "checkpoints")
    if checkpoint is not None:
        path = os.path.join(ckpt_dir, f"epoch_{checkpoint}.pt")
        if not os.path.isfile(path):
            have = sorted(f for f in os.listdir(ckpt_dir)) if os.path.isdir(ckpt_dir) else []
            raise ShapeLabError(f"-checkpoint {checkpoint}: {path} not found (checkpoints: {', '.join(have) or 'none'})")
        return path, str(checkpoint)
    for name in CHECKPOINT_NAMES:
        path = os.path.join(ckpt_dir, name)
        if os.path.isfile(path):
            return path, os.path.splitext(name)[0]
    raise ShapeLabError(f"{ckpt_dir}: no best.pt or latest.pt; train first or give -checkpoint / -ckpt_name")


def load_occupancy_model(path, device="cpu", expect_model=None):
    """Build the model stored in a checkpoint (its `config`), load the weights; -> (model, config)."""
    from modules.engine.checkpoint import load_checkpoint, load_model_weights
    from modules.registry import MODELS
    state = load_checkpoint(path, expect_model)
    cfg = state.get("config")
    if not isinstance(cfg, dict) or "model" not in cfg:
        raise ShapeLabError(f"checkpoint {path}: has no 'config' with a model section; cannot rebuild the model")
    name = cfg["model"]["name"]
    if name not in ("airnet", "onet", "convonet", "ifnet"):
        raise ShapeLabError(f"checkpoint {path} holds a '{name}' model, not an occupancy network "
                            f"(airnet, onet, convonet, ifnet)")
    model = MODELS.build(cfg["model"])
    weights = {k: v.float() if v.is_floating_point() else v for k, v in state["model"].items()}  # fp16 storage
    load_model_weights(model, weights, path)
    return model.to(device).eval(), cfg


def spec_string(method, mise_res=64, mise_steps=2, mcubes_res=128):
    if method == "mise":
        return f"{mise_res}x{mise_steps}"
    if method == "mcubes":
        return f"{mcubes_res}"
    raise ShapeLabError(f"-method {method}: expected mise or mcubes")


@torch.no_grad()
def reconstruct(model, points, method="mise", mise_res=64, mise_steps=2, mcubes_res=128, threshold=None,
                batch_points=400000, device="cpu"):
    """Mesh of one input cloud (N,3) -> (vertices (V,3) float32, faces (F,3) int64, seconds)."""
    from modules.geometry import mise
    threshold = model.threshold if threshold is None else float(threshold)
    if not 0.0 < threshold < 1.0:
        raise ShapeLabError(f"-threshold {threshold}: expected a probability in (0, 1)")
    logit_threshold = float(np.log(threshold / (1.0 - threshold)))
    start = time.perf_counter()
    x = torch.as_tensor(np.asarray(points, np.float32), device=device)[None]
    encoding = model.encode(x)

    def occupancy_logits(query):                      # query: (M,3) tensor on `device`
        return model.decode(query[None], encoding)[0]

    if method == "mise":
        vertices, faces, _ = mise.mise_extract(occupancy_logits, mise_res, mise_steps, logit_threshold,
                                               batch_points, MISE_BOX, device=device)
    elif method == "mcubes":
        vertices, faces, _ = mise.dense_extract(occupancy_logits, mcubes_res, logit_threshold, batch_points,
                                                MCUBES_BOX, device=device)
    else:
        raise ShapeLabError(f"-method {method}: expected mise or mcubes")
    return np.asarray(vertices, np.float32), np.asarray(faces, np.int64), time.perf_counter() - start


def generate(model, dataset, out_dir, method="mise", mise_res=64, mise_steps=2, mcubes_res=128, threshold=None,
             batch_points=400000, device="cpu", seed=0, pictures=True, overwrite=False, progress=True, log=print):
    """Reconstruct every item of `dataset` (an OccupancyDataset) into out_dir/generation/<synset>/<id>/.

    Existing meshes are skipped unless overwrite. A failing item is reported and skipped.
    Returns {"done": n, "skipped": n, "failed": [(item, message)], "seconds": [per object]}.
    """
    from modules.geometry.io import save_mesh, save_point_cloud
    from tqdm import tqdm
    if len(dataset) == 0:
        raise ShapeLabError(f"no objects to generate: the '{dataset.split}' split of {dataset.root} is empty")
    gen_dir = os.path.join(out_dir, "generation")
    summary = {"done": 0, "skipped": 0, "failed": [], "seconds": []}
    for i in tqdm(range(len(dataset)), desc="generate", disable=not progress):
        synset, sid = dataset.items[i]
        obj_dir = os.path.join(gen_dir, synset, sid)
        mesh_path = os.path.join(obj_dir, "surface_reconstruction.off")
        if os.path.exists(mesh_path) and not overwrite:
            summary["skipped"] += 1
            continue
        try:
            points = dataset.input_points(i, np.random.RandomState(seed + i))
            vertices, faces, seconds = reconstruct(model, points, method, mise_res, mise_steps, mcubes_res,
                                                   threshold, batch_points, device)
            if len(faces) == 0:
                log(f"warning: {synset}/{sid}: the predicted occupancy never crosses the threshold; empty mesh")
            save_point_cloud(os.path.join(obj_dir, "input_points.ply"), points)
            save_mesh(mesh_path, vertices, faces)
            if pictures:
                save_picture(os.path.join(obj_dir, "reconstruction.png"), points, vertices, faces,
                             _ground_truth_mesh(dataset, i))
            summary["done"] += 1
            summary["seconds"].append(seconds)
        except ShapeLabError as err:
            log(f"error: {synset}/{sid}: {err} (skipped)")
            summary["failed"].append((f"{synset}/{sid}", str(err)))
    return summary


def _ground_truth_mesh(dataset, i):
    d = dataset.object_dir(i)
    for name in ("isosurf_scaled.off", "model.off"):
        path = os.path.join(d, name)
        if os.path.isfile(path):
            return path
    return None


def save_picture(path, points, vertices, faces, gt_mesh_path=None):
    """Input points | reconstruction | ground truth, side by side (PNG)."""
    from modules.geometry.io import load_mesh
    from modules.vis import save_panels_png
    panels = [{"points": points, "title": "input"}]
    if len(faces):
        panels.append({"vertices": vertices, "faces": faces, "title": "reconstruction"})
    if gt_mesh_path:
        gt = load_mesh(gt_mesh_path)
        panels.append({"vertices": np.asarray(gt.vertices), "faces": np.asarray(gt.faces), "title": "ground truth"})
    save_panels_png(path, panels)


def write_generation_config(out_dir, info):
    with atomic_write(os.path.join(out_dir, "generation_config.yaml")) as tmp:
        with open(tmp, "w") as f:
            yaml.safe_dump(info, f, sort_keys=False)


def export_pretrained(src, dst, data_root=None, note=None):
    """Copy a training checkpoint's model weights (fp16) and config into a small file for pretrained_models/.

    The optimiser and RNG states are dropped; `data_root` replaces the config's data.root (where
    generate.py looks for test shapes by default). load_occupancy_model() reads the result.
    """
    from modules.engine.checkpoint import load_checkpoint, save_checkpoint
    state = load_checkpoint(src)
    cfg = dict(state["config"])
    if data_root is not None:
        cfg["data"] = dict(cfg["data"], root=data_root)
    weights = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    out = {"model": weights, "model_name": state.get("model_name"), "config": cfg,
           "epoch": state.get("epoch"), "step": state.get("step"), "source": os.path.abspath(src)}
    if note:
        out["note"] = note
    save_checkpoint(dst, out)
    return dst
