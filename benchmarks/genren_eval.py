"""genren on held-out embedded data: train under a fixed CPU budget, then measure what the paper claims.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/genren_eval.py [--root data/synth_genren] [--config small]
        [--steps 1050] [--out experiments/genren_eval] [--svr_budget_s auto] [--skip_svr]

Data: `preprocess.py synth --out data/synth_genren --categories chair,airplane,car --per-category 30
--formats genren,r2n2 --views 8` (the genren layout for training; the R2N2 copy gives each image's camera,
azimuth/elevation, for the pose error, and the single-view baseline's data). Held-out = the genren dataset's
held-out shapes (crc32 of the id, data.held_out 0.1) and all their images.

Measured, on the held-out images (vision cycle, most probable hypothesis):
  * Chamfer-L1 and F-score@1% (ONet definitions, modules.metrics.eval_mesh, 20k surface samples) of the
    reconstructed canonical mesh (the predicted pose undone) against the true shape's 10k points;
  * silhouette IoU of the re-render (alpha > 0.5) against the input mask;
  * pose error: geodesic angle between the predicted object rotation and the true one (from the R2N2 metadata
    of the same view), median and fraction under 30°;
graphics cycle: Fréchet distance between Gaussians fitted to per-image statistics (foreground fraction,
bounding box, foreground colour mean/std, mask edge density) of generated renders (held-out shapes x random poses
and textures) and of the real held-out images; the real training images against the same set give the floor.
Baselines in the same run: the template sphere (no learning; radius 1 as the model starts, and radius 0.5) and,
if importable, the supervised single-view mesh decoder (svr_mesh, 16-889) trained on the same shapes' R2N2 renders
for the same wall-clock budget as genren.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import modules.startup  # noqa: E402,F401,I001  (first project import: Ctrl-C while the imports load exits quietly)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import modules.families  # noqa: E402,F401
from modules.config import load_config  # noqa: E402
from modules.data import genren as genren_io  # noqa: E402
from modules.data import r2n2  # noqa: E402
from modules.data.categories import SYNSETS  # noqa: E402
from modules.engine.trainer import Trainer  # noqa: E402
from modules.families.genren.evaluation import (frechet_distance, graphics_grid, image_statistics,  # noqa: E402
                                                pose_error_degrees, r2n2_view_rotation, reconstruction_grid,
                                                silhouette_iou)
from modules.families.genren.training import GenrenUnpairedDataset, normalize_cloud  # noqa: E402
from modules.geometry.ico_sphere import icosa_sphere  # noqa: E402
from modules.metrics import eval_mesh  # noqa: E402
from modules.models.genren import parameter_counts  # noqa: E402
from modules.utils import ROOT, cli_main, save_yaml  # noqa: E402
from modules.vis.images import save_image_grid  # noqa: E402


def train_genren(args, exp):
    cfg = load_config(os.path.join(ROOT, "configs", "genren", f"{args.config}.yaml"),
                      [f"data.root={os.path.join(args.root, 'genren')}", f"training.max_steps={args.steps}",
                       "training.progress=false", f"experiment.seed={args.seed}"]
                      + ([f"training.time_budget_s={args.time_budget_s}"] if args.time_budget_s else []))
    trainer = Trainer(cfg, exp)
    task, times = trainer.task, {}
    inner = task.training_step

    def timed(model, batch, optim, step):
        t = time.perf_counter()
        out = inner(model, batch, optim, step)
        times.setdefault(task.phase(step), []).append(time.perf_counter() - t)
        return out
    task.training_step = timed
    t0 = time.time()
    metrics = trainer.fit()
    wall = time.time() - t0
    return cfg, trainer.model, times, wall, metrics


def held_out_set(args, cfg):
    ds = GenrenUnpairedDataset("val", root=os.path.join(args.root, "genren"), img_size=cfg["data"]["img_size"],
                               n_points=cfg["data"]["n_pc_points"], held_out=cfg["data"]["held_out"])
    train = GenrenUnpairedDataset("train", root=os.path.join(args.root, "genren"), img_size=cfg["data"]["img_size"],
                                  n_points=cfg["data"]["n_pc_points"], held_out=cfg["data"]["held_out"])
    items = []
    for i, (path, s) in enumerate(ds.images):
        sid, sdir = ds.shapes[s]
        cat = os.path.basename(os.path.dirname(sdir))
        view = int(os.path.splitext(os.path.basename(path))[0].rsplit("_", 1)[1])
        pts, nrm = genren_io.read_shape(sdir, sid)
        pts, _, _ = normalize_cloud(pts)
        items.append(dict(image=ds._image(i), sid=sid, cat=cat, view=view, points=pts.numpy(),
                          normals=torch.nn.functional.normalize(nrm, dim=1).numpy()))
    for it in items:                     # ids repeat across categories: the category folder names the synset
        it["synset"] = SYNSETS[it["cat"]]
        meta = r2n2.read_rendering_metadata(os.path.join(r2n2.rendering_dir(os.path.join(args.root, "r2n2"),
                                                                           it["synset"], it["sid"]),
                                                         "rendering_metadata.txt"))
        az, el = float(meta[it["view"]][0]), float(meta[it["view"]][1])
        it["R_true"] = r2n2_view_rotation(az, el)
    return items, ds, train


def shape_metrics(verts, faces, it, n=20000):
    m = eval_mesh((verts, faces), it["points"], it["normals"], n_samples=n)
    return m["chamfer-L1"], m["f-score"]


@torch.no_grad()
def eval_genren(model, items, batch=16):
    model.eval()
    faces = model.template_faces.numpy()
    rows = {"chamfer-L1": [], "f-score": [], "silhouette IoU": [], "pose error (deg)": []}
    for a in range(0, len(items), batch):
        chunk = items[a:a + batch]
        x = torch.stack([it["image"] for it in chunk])
        out = model.cycle_2(x)
        best = model.best_hypothesis(out)
        idx = torch.arange(len(chunk))
        rer = out["renders"][idx, best]
        rows["silhouette IoU"] += silhouette_iou(rer[:, 3], x[:, 3]).tolist()
        Rb = out["R"][idx, best]
        for k, it in enumerate(chunk):
            c, f = shape_metrics(out["verts"][k].numpy(), faces, it)
            rows["chamfer-L1"].append(c)
            rows["f-score"].append(f)
            rows["pose error (deg)"].append(float(pose_error_degrees(Rb[k], it["R_true"])))
    return rows


@torch.no_grad()
def eval_sphere(model, items, radius):
    v, f = icosa_sphere(10)
    verts = (v * radius).numpy()
    sil = model.render((v * radius)[None], torch.full((1, v.shape[0], 3), 0.5))[0, 3]
    rows = {"chamfer-L1": [], "f-score": [], "silhouette IoU": [], "pose error (deg)": []}
    for it in items:
        c, fs = shape_metrics(verts, f.numpy(), it)
        rows["chamfer-L1"].append(c)
        rows["f-score"].append(fs)
        rows["silhouette IoU"].append(float(silhouette_iou(sil[None], it["image"][3][None])[0]))
        rows["pose error (deg)"].append(float(pose_error_degrees(torch.eye(3), it["R_true"])))
    return rows


def svr_baseline(args, items, budget_s, exp):
    """Train svr_mesh (supervised, R2N2 renders of the same training shapes) for budget_s; evaluate on the held-out
    images' R2N2 twins (same shape and camera, the material render on white). None when the family is missing."""
    try:
        from modules.families.svr.training import build_dataset  # noqa: F401  (is the family there?)
    except ImportError as err:
        return None, f"svr family not importable ({err})"
    r2 = os.path.join(args.root, "r2n2")
    held = {(it["synset"], it["sid"]) for it in items}
    split_root = os.path.join(exp, "r2n2_split")
    os.makedirs(split_root, exist_ok=True)
    for d in ("ShapeNetCore.v1", "ShapeNetRendering", "ShapeNetVox32"):
        link = os.path.join(split_root, d)
        if not os.path.exists(link):
            os.symlink(os.path.abspath(os.path.join(r2, d)), link)
    split = {"train": {}, "val": {}, "test": {}}
    for syn in sorted(os.listdir(os.path.join(r2, "ShapeNetRendering"))):
        for sid in sorted(os.listdir(os.path.join(r2, "ShapeNetRendering", syn))):
            part = "test" if (syn, sid) in held else "train"
            split[part].setdefault(syn, {})[sid] = list(range(8))
            if part == "test":
                split["val"].setdefault(syn, {})[sid] = [0]
    with open(os.path.join(split_root, "split.json"), "w") as f:
        json.dump(split, f)
    cfg = load_config(os.path.join(ROOT, "configs", "svr", "mesh.yaml"),
                      [f"data.root={split_root}", "data.categories=[]", f"training.time_budget_s={budget_s}",
                       "training.max_steps=100000", "training.progress=false", "training.val_every=0",
                       "training.max_epochs=100000", f"experiment.seed={args.seed}"])
    tr = Trainer(cfg, os.path.join(exp, "svr_mesh"))
    t0 = time.time()
    tr.fit()
    steps = tr.step
    model = tr.model.eval()
    size = cfg["data"]["image_size"]
    rows = {"chamfer-L1": [], "f-score": []}
    with torch.no_grad():
        for it in items:
            img = r2n2.read_image(r2n2.image_path(r2, it["synset"], it["sid"], it["view"]), "RGBA")
            x = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)
            x = x[:3] * x[3:] + (1 - x[3:])                             # the svr dataset's RGB on white
            x = torch.nn.functional.interpolate(x[None], size=(size, size), mode="bilinear", antialias=True)
            verts = model(x)[0]
            # the R2N2 frame is the normalised frame / bbox diagonal: back to the normalised frame (largest side 1)
            lo, hi = it["points"].min(0), it["points"].max(0)
            verts = verts.numpy() * float(np.linalg.norm(hi - lo))
            c, fs = shape_metrics(verts, model.faces.numpy(), it)
            rows["chamfer-L1"].append(c)
            rows["f-score"].append(fs)
    return rows, f"svr_mesh (supervised), {steps} steps in {time.time() - t0:.0f} s"


@torch.no_grad()
def graphics_statistics(model, items, train_ds, n_renders=3, seed=0):
    model.eval()
    g = torch.Generator().manual_seed(seed)
    shapes = {}
    for it in items:
        shapes.setdefault((it["cat"], it["sid"]), it)
    pts, nrm = [], []
    for it in shapes.values():
        sel = np.random.default_rng(0).choice(len(it["points"]), 1000, replace=False)
        pts.append(torch.from_numpy(it["points"][sel]))
        nrm.append(torch.from_numpy(it["normals"][sel]))
    pts, nrm = torch.stack(pts), torch.stack(nrm)
    gen = []
    for _ in range(n_renders):
        xi_p = torch.randn(len(pts), model.dim_xi_p, generator=g)
        xi_T = torch.randn(len(pts), model.dim_xi_T, generator=g)
        gen.append(model.shape_to_image(pts, nrm, xi_p=xi_p, xi_T=xi_T)["renders"])
    gen = torch.cat(gen)
    real = torch.stack([it["image"] for it in items])
    train_real = torch.stack([train_ds._image(i) for i in range(0, len(train_ds), max(1, len(train_ds) // 200))])
    # the template: random domain-randomised poses and two-colour textures of the unit sphere
    B = len(gen)
    R, t = model.random_dr_pose(B)
    sphere = model.render(model.pose_transform(model.template_verts[None].expand(B, -1, -1), R, t)[:, 0],
                          model.random_dr_texture(B))
    s_real = image_statistics(real).numpy()
    return {"generated (genren)": frechet_distance(image_statistics(gen).numpy(), s_real),
            "template sphere, random pose/texture": frechet_distance(image_statistics(sphere).numpy(), s_real),
            "real training images (floor)": frechet_distance(image_statistics(train_real).numpy(), s_real)}, pts, nrm


def summarize(rows):
    out = {}
    for k, v in rows.items():
        v = np.asarray(v, np.float64)
        if k == "pose error (deg)":
            out["pose error median (deg)"] = float(np.median(v))
            out["pose error < 30 deg"] = float((v < 30).mean())
        else:
            out[k] = float(v.mean())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default="data/synth_genren")
    ap.add_argument("--config", default="small", help="configs/genren/<name>.yaml")
    ap.add_argument("--steps", type=int, default=1050)
    ap.add_argument("--out", default="experiments/genren_eval")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--svr_budget_s", default="auto", help="seconds for the svr baseline (auto: genren's wall time)")
    ap.add_argument("--skip_svr", action="store_true")
    ap.add_argument("--time_budget_s", type=float, default=None,
                    help="stop genren's training after this many seconds even before --steps (a guard for fixed-time runs)")
    ap.add_argument("--train_wall_s", type=float, default=None,
                    help="when --out already holds the finished genren run: its training wall time (svr budget)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    exp = os.path.join(args.out, f"genren_{args.config}")
    cfg, model, times, wall, _ = train_genren(args, exp)
    if not times and args.train_wall_s:          # rerun on a finished experiment: the first run's figures
        wall = float(args.train_wall_s)
    model = model.cpu().eval()
    counts = parameter_counts(model)
    print(f"genren ({args.config}): {counts['generator total']:,} generator + {counts['critics total']:,} critic "
          f"parameters; {args.steps} steps, batch {cfg['training']['batch_size']}, {wall:.0f} s wall, "
          f"{args.threads} threads")
    if times:
        print("steps/s per phase: " + ", ".join(f"{p} {len(t) / sum(t):.3f} ({len(t)} steps)" for p, t in times.items()))
    items, val_ds, train_ds = held_out_set(args, cfg)
    print(f"held out: {len(items)} images of {len({(it['cat'], it['sid']) for it in items})} shapes")
    results = {"genren": summarize(eval_genren(model, items)),
               "template sphere r=1 (no learning)": summarize(eval_sphere(model, items, 1.0)),
               "template sphere r=0.5 (no learning)": summarize(eval_sphere(model, items, 0.5))}
    note = "skipped (--skip_svr)"
    if not args.skip_svr:
        budget = wall if args.svr_budget_s == "auto" else float(args.svr_budget_s)
        rows, note = svr_baseline(args, items, budget, args.out)
        if rows is not None:
            results["svr_mesh (supervised)"] = summarize(rows)
    print(f"single-view baseline: {note}")
    keys = ["chamfer-L1", "f-score", "silhouette IoU", "pose error median (deg)", "pose error < 30 deg"]
    print(f"\n{'method':<40}" + "".join(f"{k:>26}" for k in keys))
    for name, r in results.items():
        print(f"{name:<40}" + "".join(f"{r[k]:>26.4f}" if k in r else f"{'-':>26}" for k in keys))
    stats, pts, nrm = graphics_statistics(model, items, train_ds)
    print("\ngraphics cycle: Fréchet distance of image statistics to the held-out real images")
    for k, v in stats.items():
        print(f"  {k:<45}{v:.4f}")
    torch.manual_seed(0)
    pick = torch.linspace(0, len(items) - 1, 6).long().tolist()
    x = torch.stack([items[i]["image"] for i in pick])
    save_image_grid(os.path.join(args.out, "vision_grid.png"), [reconstruction_grid(model, x)])
    save_image_grid(os.path.join(args.out, "graphics_grid.png"), [graphics_grid(model, pts[:6], nrm[:6])])
    save_yaml({"config": args.config, "steps": args.steps, "wall_s": wall, "threads": args.threads,
               "steps_per_s": {p: len(t) / sum(t) for p, t in times.items()}, "results": results,
               "graphics_frechet": stats, "svr": note, "parameters": counts}, os.path.join(args.out, "results.yaml"))
    print(f"\npictures and results.yaml in {args.out}")


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
