"""Fitting one target shape (the seed's section 1, `fit_data.py`): a free voxel grid (BCE on logits), a free point
cloud (Chamfer) or an ico-sphere with free vertex offsets (Chamfer on surface samples + w_smooth Laplacian),
through the shared input-optimisation loop (`modules.engine.input_optimization.optimize_inputs`: checkpoints and
resume, TensorBoard `loss/<term>` per iteration, Ctrl-C safe).

<save_dir>/fit_<type>/       checkpoints/latest.pt, summary/ (TensorBoard), config.yaml
<save_dir>/fit_<type>.{binvox,npy | ply | obj}   the fitted object (--save_predictions), and target_<type>.*
<save_dir>/fit_<type>.gif    360-degree turntable, fitted | target (--save_visualizations)
<save_dir>/fit_<type>.png    fitted | target; fit_<type>_loss.png the loss curve (--save_visualizations)
<save_dir>/fit_<type>_metrics.yaml   vox: IoU (sigmoid > 0.5 vs the target grid); point / mesh: the seed's
                             precision / recall / F1 at tau 0.01..0.05 and the ONet distances against the target

The mesh fit starts from `ico_sphere(4)` scaled to `init_radius` (default 0.5, the bounding sphere of a
ShapeNet model, whose bounding-box diagonal is 1, and the template radius of the trained mesh decoder). The
seed's unscaled unit sphere (`init_radius=1`) spends its first few thousand Adam steps at lr 4e-4 shrinking onto
the target (a vertex moves at most ~lr per step), which is why 4000 steps reached only F1@0.05 87-92 with it.
The Laplacian weight then decays (`smooth_final`): a constant w_smooth 0.1 holds the surface off thin parts
(the uniform Laplacian is a mean of norms, so its pull does not fade as the Chamfer distance does).
"""
import os
import time

import numpy as np
import torch

from modules.data.fields import FieldsDataset, MeshField, VoxelsField
from modules.engine.input_optimization import optimize_inputs
from modules.families.svr.generation import save_side_by_side_gif, voxel_mesh
from modules.families.svr.training import synset_of
from modules.geometry.binvox import write_binvox
from modules.geometry.io import save_mesh, save_point_cloud
from modules.geometry.meshes import Meshes
from modules.geometry.sample_points_from_meshes import sample_points_from_meshes
from modules.losses.svr import FIT_TYPES, fit_loss
from modules.metrics import eval_pointcloud, iou, sample_mesh_surface
from modules.models.svr import MeshFit, PointFit, VoxelFit
from modules.utils import ShapeLabError, save_yaml
from modules.vis import save_loss_curve_png, save_panels_png

TARGET_POOL = 100_000     # mesh fits draw each step's n_points target samples from this many surface points
INIT_RADIUS = 0.5         # mesh fits: radius of the starting ico-sphere (the seed: 1.0, see the module docstring)
SMOOTH_FINAL = 0.1        # mesh fits: the Laplacian weight ends at w_smooth * SMOOTH_FINAL (the seed: 1, constant)


def smooth_weight(w_smooth, smooth_final, it, max_iter):
    """The Laplacian weight at iteration `it` of `max_iter`: w_smooth * smooth_final ** (it / (max_iter - 1)), a
    geometric decay from w_smooth (it = 0) to w_smooth * smooth_final (the last iteration); constant when
    smooth_final is 1."""
    return w_smooth * smooth_final ** (it / max(1, max_iter - 1))


def load_target(root, fmt="r2n2", category="chair", index=0, split="train"):
    """The seed's target: item `index` of a split -> {"voxels": (32,32,32) bool, "vertices", "faces", "name"}."""
    if index < 0:
        raise ShapeLabError(f"--index {index}: expected >= 0")
    ds = FieldsDataset(root, fmt, split, [VoxelsField(), MeshField()], train=False,
                       categories=[synset_of(category)] if category else None)
    if index >= len(ds):
        raise ShapeLabError(f"--index {index}: the {split} split of {root} has {len(ds)} items"
                            + (f" of {category}" if category else ""))
    s = ds[index]
    return {"voxels": s["voxels"].numpy() > 0.5, "vertices": s["mesh.vertices"].numpy(),
            "faces": s["mesh.faces"].numpy(), "name": f"{s['category']}/{s['model']}"}


def check_args(fit_type, lr, max_iter, n_points, w_chamfer, w_smooth, init_radius=INIT_RADIUS, eval_every=0,
               smooth_final=SMOOTH_FINAL):
    if fit_type not in FIT_TYPES:
        raise ShapeLabError(f"--type {fit_type!r}: expected one of {', '.join(FIT_TYPES)}")
    if isinstance(n_points, bool) or int(n_points) != n_points or n_points < 1:
        raise ShapeLabError(f"--n_points {n_points}: expected a positive integer")
    if not lr > 0:
        raise ShapeLabError(f"--lr {lr}: expected > 0")
    if max_iter < 0:
        raise ShapeLabError(f"--max_iter {max_iter}: expected >= 0")
    if w_chamfer < 0 or w_smooth < 0:
        raise ShapeLabError(f"--w_chamfer {w_chamfer} / --w_smooth {w_smooth}: expected >= 0")
    if not 0 < smooth_final <= 1:
        raise ShapeLabError(f"--smooth_final {smooth_final}: expected a number in (0, 1]")
    if not init_radius > 0:
        raise ShapeLabError(f"--init_radius {init_radius}: expected > 0")
    if isinstance(eval_every, bool) or int(eval_every) != eval_every or eval_every < 0:
        raise ShapeLabError(f"--eval_every {eval_every}: expected an integer >= 0")


def fit(fit_type, target, save_dir=None, lr=4e-4, max_iter=10000, n_points=5000, w_chamfer=1.0, w_smooth=0.1,
        seed=0, save_predictions=True, save_visualizations=True, progress=True, gif_frames=24,
        init_radius=INIT_RADIUS, eval_every=0, w_edge=0.0, w_normal=0.0, smooth_final=SMOOTH_FINAL):
    """Fit one representation to `target` (see `load_target`) -> {"metrics", "history", "result", "paths", "trace"}.

    save_dir None: nothing is written (in memory; tests). Returns the fitted result as numpy: vox `probs`
    (R,R,R); point `points` (n,3); mesh `vertices`, `faces`. Mesh only: init_radius, the starting sphere's
    radius; the Laplacian weight decays geometrically from w_smooth to w_smooth * smooth_final over max_iter
    (`smooth_weight`; 1: constant, the seed); w_edge, w_normal: `mesh_edge_loss`, `mesh_normal_consistency`.
    eval_every > 0: `trace` lists the metrics ({"iteration", "iou"} or {"iteration", "f1@0.05", ...}) every
    eval_every iterations (evaluation draws no random numbers from the fit's stream: the fit is unchanged).
    """
    check_args(fit_type, lr, max_iter, n_points, w_chamfer, w_smooth, init_radius, eval_every, smooth_final)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    tv = torch.as_tensor(target["vertices"], dtype=torch.float32)
    tf = torch.as_tensor(target["faces"], dtype=torch.int64)
    target_mesh = Meshes([tv], [tf])
    with torch.no_grad():
        pool = sample_points_from_meshes(target_mesh, TARGET_POOL)     # (1, P, 3)
    eval_points = pool[0, :n_points].double().numpy()
    if fit_type == "vox":
        module = VoxelFit(target["voxels"].shape[0], generator=g)
        goal = torch.as_tensor(target["voxels"], dtype=torch.float32)[None]
        params = {"logits": module.logits}
    elif fit_type == "point":
        module = PointFit(n_points, generator=g)
        goal = pool[:, :n_points]           # fixed, as the seed samples the target once
        params = {"points": module.points}
    else:
        module = MeshFit(level=4, radius=init_radius)
        params = {"offsets": module.offsets}

    def objective(it):
        if fit_type == "mesh":              # fresh target samples every step, as the seed
            idx = torch.randint(TARGET_POOL, (n_points,))
            w_s = smooth_weight(w_smooth, smooth_final, it, max_iter)
            loss, terms = fit_loss("mesh", module(), pool[:, idx], n_points, w_chamfer, w_s, w_edge, w_normal)
        else:
            loss, terms = fit_loss(fit_type, module(), goal)
        return loss, {k: float(v) for k, v in terms.items()}

    out_dir = os.path.join(save_dir, f"fit_{fit_type}") if save_dir else None
    if out_dir:
        save_yaml({"type": fit_type, "target": target["name"], "lr": lr, "max_iter": max_iter, "n_points": n_points,
                   "w_chamfer": w_chamfer, "w_smooth": w_smooth, "seed": seed,
                   **({"init_radius": init_radius, "smooth_final": smooth_final, "w_edge": w_edge,
                       "w_normal": w_normal} if fit_type == "mesh" else {})},
                  os.path.join(out_dir, "config.yaml"))
    trace = []

    def on_step(it, logs):
        if eval_every and it % eval_every == 0:
            m = _evaluate(fit_type, module, target, eval_points, n_points, seed)[1]
            trace.append({"iteration": it, **{k: m[k] for k in ("iou", "f1@0.05", "precision@0.05", "recall@0.05")
                                                if k in m}})

    start = time.perf_counter()
    history = optimize_inputs(params, objective, max_iter, out_dir=out_dir, step_rule="adam", lr=lr,
                              ckpt_every=1000, progress=progress, desc=f"fit {fit_type}", on_step=on_step)
    result, metrics = _evaluate(fit_type, module, target, eval_points, n_points, seed)
    metrics["final_loss"] = history[-1]["loss"] if history else None
    metrics["iterations"] = max_iter
    metrics["seconds"] = time.perf_counter() - start     # this call's fit and evaluation (not a resumed part)
    paths = []
    if save_dir:
        paths = _write_outputs(save_dir, fit_type, result, target, history, metrics, save_predictions,
                               save_visualizations, gif_frames)
    return {"metrics": metrics, "history": history, "result": result, "paths": paths, "trace": trace}


@torch.no_grad()
def _evaluate(fit_type, module, target, eval_points, n_points, seed):
    """The fitted object as numpy and its metrics against the target (IoU for vox; F1@tau on surface samples)."""
    if fit_type == "vox":
        probs = torch.sigmoid(module()[0]).numpy()
        result = {"probs": probs}
        metrics = {"iou": iou(probs > 0.5, target["voxels"])}
        v, f = voxel_mesh(probs, 0.5)
        if len(f):
            pts, _ = sample_mesh_surface(v, f, n_points, seed=seed)
            metrics.update(_surface_metrics(pts, eval_points))
    elif fit_type == "point":
        result = {"points": module()[0].numpy().copy()}
        metrics = _surface_metrics(result["points"], eval_points)
    else:
        verts, faces = module()
        result = {"vertices": verts[0].numpy().copy(), "faces": faces.numpy()}
        pts, _ = sample_mesh_surface(result["vertices"], result["faces"], n_points, seed=seed)
        metrics = _surface_metrics(pts, eval_points)
    return result, metrics


def _surface_metrics(pred_points, gt_points):
    m = eval_pointcloud(np.asarray(pred_points, np.float64), gt_points)
    keep = [k for k in m if k.startswith(("precision@", "recall@", "f1@"))] + ["chamfer-L1", "chamfer-L2"]
    return {k: float(m[k]) for k in keep}


def _panel(fit_type, result, title):
    if fit_type == "point":
        return {"points": result["points"], "title": title}
    if fit_type == "vox":
        v, f = voxel_mesh(result["probs"], 0.5)
        if len(f) == 0:
            return {"points": np.zeros((1, 3)), "title": title + " (empty)"}
        return {"vertices": v, "faces": f, "title": title}
    return {"vertices": result["vertices"], "faces": result["faces"], "title": title}


def _write_outputs(save_dir, fit_type, result, target, history, metrics, save_predictions, save_visualizations,
                   gif_frames=24):
    base = os.path.join(save_dir, f"fit_{fit_type}")
    paths = []
    if save_predictions:
        if fit_type == "vox":
            write_binvox(base + ".binvox", result["probs"] > 0.5, translate=(-0.5, -0.5, -0.5), scale=1.0)
            np.save(base + ".npy", result["probs"].astype(np.float32))
            write_binvox(os.path.join(save_dir, "target_vox.binvox"), target["voxels"], (-0.5, -0.5, -0.5), 1.0)
            paths += [base + ".binvox", base + ".npy"]
        elif fit_type == "point":
            save_point_cloud(base + ".ply", result["points"])
            paths.append(base + ".ply")
        else:
            save_mesh(base + ".obj", result["vertices"], result["faces"])
            paths.append(base + ".obj")
    if save_visualizations:
        if fit_type == "vox":
            tgt = _panel("vox", {"probs": target["voxels"].astype(np.float64)}, "target")
        elif fit_type == "point":
            pts, _ = sample_mesh_surface(target["vertices"], target["faces"], len(result["points"]), seed=0)
            tgt = {"points": pts, "title": "target"}
        else:
            tgt = {"vertices": target["vertices"], "faces": target["faces"], "title": "target"}
        panels = [_panel(fit_type, result, "fitted (source)"), tgt]
        save_panels_png(base + ".png", panels, panel_size=3.0)
        save_side_by_side_gif(base + ".gif", panels, n_frames=gif_frames)
        steps = np.arange(1, len(history) + 1)
        keys = list(history[0]) if history else ["loss"]
        keys = keys if len(keys) > 2 else ["loss"]        # one term: it is the loss
        curves = {k: [h.get(k, np.nan) for h in history] for k in keys}
        save_loss_curve_png(base + "_loss.png", {k: steps for k in curves}, curves,
                            title=f"fit {fit_type}: {target['name']}", xlabel="iteration", logy=True)
        paths += [base + ".png", base + ".gif", base + "_loss.png"]
    save_yaml({"target": target["name"], **metrics}, base + "_metrics.yaml")
    paths.append(base + "_metrics.yaml")
    return paths
