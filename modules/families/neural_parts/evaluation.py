"""Neural Parts evaluation with the original's metrics (paschalidoud/neural_parts `scripts/evaluate.py`).

- `iou`: weighted volumetric IoU on the volume samples, occupancy = min_m phi_m <= 0 with the RADIAL phi,
  iou = sum w (A and B) / max(1, sum w (A or B)) (the original's formula; with the "equal" samples the
  weights make it an estimate of the IoU under uniform sampling of the box).
- `chamfer-L1` = 0.5 (accuracy + completeness) with unsquared Euclidean nearest-neighbour distances
  (`modules.metrics.eval_pointcloud`, the ONet definition) between 10k points sampled area-weighted on the
  primitives' meshes (the original's `sphere_mesh(1000)` UV spheres pushed through the INN), points inside
  another primitive discarded, and the target surface points.
- `chamfer-L1-reimpl`: the eggfryonrice re-implementation's "Chamfer-L1", NOT the paper's metric: the SUM
  of the two directions' mean Manhattan (L1-norm) nearest-neighbour distances, no 0.5, between the S*M
  (200*M) points on the primitives (unmasked) and 2000 target points. Printed so a reader can compare
  with its table.

`evaluate_model` runs them over a dataset; `evaluate_generation` does so for a folder written by
generate.py (what evaluate.py calls for this family):

    python -m modules.families.neural_parts.evaluation -generation_path experiments/E/evaluation_best_@parts/generation
"""
import argparse
import csv
import os

import numpy as np
import torch
from tqdm import tqdm

from modules.attribution.images import tile
from modules.engine.attribution import explain_images
from modules.engine.generation import build_dataset, load_trained_model
from modules.geometry import Meshes, ico_sphere, sample_points_from_meshes
from modules.metrics import eval_pointcloud
from modules.config import read_yaml
from modules.utils import ShapeLabError, atomic_write, cli_main, get_device

METRICS = ("iou", "chamfer-L1", "accuracy", "completeness", "chamfer-L1-reimpl")
PAPER_DFAUST = {2: (0.675, 0.101), 5: (0.673, 0.097), 8: (0.676, 0.090), 10: (0.678, 0.095)}
REIMPL_DFAUST = {2: (0.640, 0.109), 5: (0.654, 0.092), 8: (0.645, 0.089), 10: (0.643, 0.089)}


def weighted_iou(phi, occ, weights=None):
    """The original's weighted IoU per sample.

    phi (B,N,M) radial implicit values (< 0 inside), occ (B,N) 0/1 targets, weights (B,N) or None.
    Returns (B,) float tensor: sum w (pred & gt) / max(1, sum w (pred | gt)).
    """
    if phi.ndim != 3 or occ.shape != phi.shape[:2]:
        raise ShapeLabError(f"weighted_iou: phi {tuple(phi.shape)} and occ {tuple(occ.shape)}; expected (B,N,M), (B,N)")
    pred = phi.min(-1).values <= 0
    gt = occ > 0.5
    # float64 sums: 5000-100k float32 weights would lose ~1e-4 relative
    w = torch.ones_like(occ, dtype=torch.float64) if weights is None else weights.to(torch.float64)
    inter = (w * (pred & gt)).sum(-1)
    union = (w * (pred | gt)).sum(-1)
    return (inter / union.clamp_min(1.0)).to(phi.dtype)


@torch.no_grad()
def primitive_surface_points(model, F_prim, n_samples=10000, uv_points=1000, generator=None):
    """The original's evaluation point set for one object.

    F_prim (1,M,D). Samples n_samples points area-weighted on the M primitive meshes (UV spheres with at
    least uv_points vertices through the INN), then drops those inside another primitive (radial
    phi_m' < 0 for some m' != own). Returns (points (K,3) float64 array, own primitive (K,) int64), K <= n.
    """
    verts, faces = model.primitive_meshes(F_prim, uv_points=uv_points)            # (1,M,V,3), (F,3)
    M = verts.shape[1]
    v = verts[0]
    tri = v[:, faces]                                                                # (M,F,3,3)
    areas = 0.5 * torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0]).norm(dim=-1).sum(-1)
    if not torch.isfinite(areas).all() or float(areas.sum()) <= 0:
        return np.zeros((0, 3)), np.zeros(0, np.int64)
    counts = torch.bincount(torch.multinomial(areas / areas.sum(), n_samples, replacement=True, generator=generator),
                            minlength=M)
    meshes = Meshes([v[m] for m in range(M)], [faces] * M)
    with torch.random.fork_rng(devices=[]):
        if generator is not None:
            torch.manual_seed(int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator)))
        samples = sample_points_from_meshes(meshes, int(counts.max()))               # (M,max,3)
    points = torch.cat([samples[m, :int(counts[m])] for m in range(M)])
    own = torch.repeat_interleave(torch.arange(M, device=points.device), counts.to(points.device))
    phi = model.phi(points[None], F_prim, chunk_size=20000)[0]                       # (K,M)
    phi[torch.arange(len(own)), own] = 0.0
    keep = (phi >= 0).all(-1)
    return points[keep].double().cpu().numpy(), own[keep].cpu().numpy()


def manhattan_chamfer_sum(pred, gt, chunk=2048):
    """The re-implementation's "Chamfer-L1": mean_p min_g |p-g|_1 + mean_g min_p |p-g|_1 (no 0.5).

    pred (P,3), gt (G,3) arrays or tensors -> float.
    """
    a = torch.as_tensor(np.asarray(pred), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(gt), dtype=torch.float64)
    if len(a) == 0 or len(b) == 0:
        raise ShapeLabError("manhattan_chamfer_sum: empty point set")

    def nn(x, y):
        return torch.cat([torch.cdist(c, y, p=1).min(1).values for c in x.split(chunk)])

    return float(nn(a, b).mean() + nn(b, a).mean())


@torch.no_grad()
def evaluate_sample(model, sample, device="cpu", n_samples=10000, uv_points=1000, reimpl_gt=2000, seed=0):
    """All metrics of one dataset sample (a dict of NeuralPartsDataset) -> {metric: float}."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    image = sample["image"][None].to(device)
    F_prim = model.primitive_features(image)
    phi = model.phi(sample["points"][None].to(device), F_prim, chunk_size=20000)
    out = {"iou": float(weighted_iou(phi, sample["occ"][None].to(device), sample["weights"][None].to(device))[0])}
    pts, _ = primitive_surface_points(model, F_prim, n_samples, uv_points, gen)
    gt = sample["surface_points"].double().numpy()
    m = eval_pointcloud(pts, gt)
    out.update({k: m[k] for k in ("chamfer-L1", "accuracy", "completeness")})
    sphere = model.sample_sphere_points(model.n_points_on_sphere, 1, device, F_prim.dtype, generator=None)
    prim = model.inn(F_prim, sphere).reshape(-1, 3).cpu()
    out["chamfer-L1-reimpl"] = manhattan_chamfer_sum(prim, gt[:reimpl_gt])
    out["kept_points"] = float(len(pts))
    return out


def evaluate_model(model, dataset, device="cpu", n_samples=10000, uv_points=1000, progress=True, seed=0):
    """Metrics of every item of a NeuralPartsDataset (evaluation mode, fixed draws) -> (rows, means)."""
    if len(dataset) == 0:
        raise ShapeLabError("evaluate: the dataset is empty")
    model.eval()
    rows = []
    for i in tqdm(range(len(dataset)), desc="evaluate", disable=not progress):
        s = dataset[i]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)
            row = evaluate_sample(model, s, device, n_samples, uv_points, seed=seed + i)
        rows.append({"category": s["category"], "model": s["model"], **row})
    means = {k: float(np.mean([r[k] for r in rows])) for k in METRICS}
    return rows, means


def markdown_table(means, n_objects):
    """One table: ours (paper definitions) and ours with the re-implementation's Chamfer definition."""
    return "\n".join([
        f"| metric ({n_objects} objects) | value |", "|---|---|",
        f"| IoU (weighted, volume samples) | {means['iou']:.4f} |",
        f"| Chamfer-L1 = 0.5 (acc + comp), Euclidean (paper) | {means['chamfer-L1']:.4f} |",
        f"| accuracy / completeness | {means['accuracy']:.4f} / {means['completeness']:.4f} |",
        f"| re-implementation's \"Chamfer-L1\" (sum of Manhattan NN means, not the paper's) | "
        f"{means['chamfer-L1-reimpl']:.4f} |"])


def write_results(out_dir, rows, means):
    """evaluation_results.csv (one row per object) and evaluation_results.md next to generation/."""
    os.makedirs(out_dir, exist_ok=True)
    csv_path = os.path.join(out_dir, "evaluation_results.csv")
    cols = ["category", "model", *METRICS, "kept_points"]
    with atomic_write(csv_path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([r[c] if isinstance(r[c], str) else f"{r[c]:.6f}" for c in cols])
    md_path = os.path.join(out_dir, "evaluation_results.md")
    with atomic_write(md_path) as tmp, open(tmp, "w") as f:
        f.write(markdown_table(means, len(rows)) + "\n")
    return csv_path, md_path


def evaluate_generation(generation_path, device="cpu", n_samples=10000, uv_points=1000, progress=True):
    """Metrics of a generate.py output folder of this family: reads generation_config.yaml next to
    generation/ (checkpoint, data root, split), rebuilds model and data, writes the results files.
    Returns (rows, means, out_dir)."""
    path = os.path.normpath(generation_path)
    out_dir = os.path.dirname(path) if os.path.basename(path) == "generation" else path
    cfg_path = os.path.join(out_dir, "generation_config.yaml")
    if not os.path.isfile(cfg_path):
        raise ShapeLabError(f"-generation_path {generation_path}: no generation_config.yaml in {out_dir}")
    gen_cfg = read_yaml(cfg_path)
    model, cfg = load_trained_model(gen_cfg["checkpoint"], device)
    if cfg["task"]["name"] != "neural_parts":
        raise ShapeLabError(f"{cfg_path}: checkpoint of task '{cfg['task']['name']}', expected neural_parts")
    data = gen_cfg.get("data") or {}
    dataset, _ = build_dataset(cfg["data"], data.get("split", "test"), root=data.get("root"),
                               max_items=gen_cfg.get("objects") or None)
    rows, means = evaluate_model(model, dataset, device, n_samples, uv_points, progress)
    write_results(out_dir, rows, means)
    return rows, means, out_dir


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-generation_path", "--generation_path", required=True)
    p.add_argument("-n_samples", "--n_samples", type=int, default=10000, help="points on the primitives (10k)")
    p.add_argument("-device", "--device", default="auto")
    p.add_argument("-no_progress", "--no_progress", action="store_true")
    a = p.parse_args(argv)
    rows, means, out_dir = evaluate_generation(a.generation_path, get_device(a.device), a.n_samples,
                                               progress=not a.no_progress)
    print(markdown_table(means, len(rows)))
    print(f"wrote {out_dir}/evaluation_results.csv, evaluation_results.md")


if __name__ == "__main__":
    import modules.families  # noqa: F401  (registers the families when run as a script)
    main()


# ----------------------------------------------------------------------------- attribution
# `attribution.py --checkpoint_path <neural_parts checkpoint> --visualizer M [--primitive K|largest|all]`:
# Grad-CAM-family maps of the image encoder for the target "volume of primitive k".

ATTRIBUTION_TARGETS = ("primitive",)


def mesh_volume(verts, faces):
    """Enclosed volume of closed, outward-oriented triangle meshes (divergence theorem).

    verts (B,V,3), faces (F,3) int64 -> (B,) = sum over faces of v0 . (v1 x v2) / 6."""
    tri = verts[:, faces]                                                       # (B,F,3,3)
    return (tri[..., 0, :] * torch.linalg.cross(tri[..., 1, :], tri[..., 2, :], dim=-1)).sum((-1, -2)) / 6.0


class PrimitiveVolumeModel(torch.nn.Module):
    """NeuralParts seen by `modules.attribution.images`: forward(images (B,3,H,W)) -> {"volume": (B,)} the
    volume enclosed by primitive primitives[b] of image b: the ico-sphere (level `level`, radius r) pushed
    through the INN, whose volume follows from the divergence theorem. Smooth in the image and deterministic
    (the INN is a homeomorphism, so the pushed sphere is a closed surface with the sphere's orientation); the
    soft grid occupancy of `primitive_volume_target` has gradients only within ~1/sharpness of the surface.
    `encoder` is the model's ResNet-18 (+ head) for the layer-based maps.

    primitives: (B,) int64, one primitive per image (tiled when IG stacks path points of the batch)."""

    def __init__(self, model, primitives, level=3):
        super().__init__()
        self.model, self.encoder = model, model.encoder
        self.primitives = torch.as_tensor(primitives, dtype=torch.long).reshape(-1)
        sphere = ico_sphere(level)
        self.register_buffer("sphere", sphere.verts_list()[0] * model.radius, persistent=False)
        self.register_buffer("faces", sphere.faces_list()[0], persistent=False)

    def forward(self, images):
        F_prim = self.model.primitive_features(images)                              # (B,M,D)
        k = tile(self.primitives.to(F_prim.device), F_prim.shape[0])
        F_k = F_prim[torch.arange(F_prim.shape[0], device=F_prim.device), k][:, None]  # (B,1,D)
        y = self.sphere.to(F_prim.dtype)[None, :, None].expand(F_prim.shape[0], -1, 1, -1)
        verts = self.model.inn(F_k, y)[:, :, 0]                                    # (B,V,3)
        return {"volume": mesh_volume(verts, self.faces)}


@torch.no_grad()
def primitive_volumes(model, images, level=3):
    """(B,M) volume of every primitive of every image (eval mode), as PrimitiveVolumeModel computes it."""
    M = model.n_primitives
    B = images.shape[0]
    was = model.training
    model.eval()
    try:
        vols = [PrimitiveVolumeModel(model, torch.full((B,), m), level).to(images.device)(images)["volume"]
                for m in range(M)]
    finally:
        model.train(was)
    return torch.stack(vols, 1)


def parse_primitive(value, n_primitives):
    """--primitive: None/'largest' (per image, the primitive of largest volume), 'all', or an index 0..M-1."""
    text = "largest" if value is None else str(value).strip().lower()
    if text in ("largest", "all"):
        return text
    try:
        k = int(text)
    except ValueError:
        k = None
    if k is None or not 0 <= k < n_primitives:
        raise ShapeLabError(f"--primitive {value}: expected an index 0..{n_primitives - 1} (the model has "
                            f"{n_primitives} primitives), 'largest' or 'all'")
    return k


def attribution_main(args, checkpoint, cfg):
    """Maps of args.visualizer for the volume of a primitive, on the first args.max_iter images of the
    checkpoint's data split (the family's dataset: humans or onet layout) -> list of explain_images results.

    --primitive largest (default): per image, the primitive with the largest volume on that image (chosen on
    the input and held fixed, so IG's path explains one function), one map per image; K: primitive K; all: one
    picture per primitive. Pictures: <output_dir>/<method>_neural_parts_primitive[_p<k>].png (see
    modules.engine.attribution)."""
    device = get_device(getattr(args, "device", "cpu"))
    model, cfg = load_trained_model(checkpoint, device, "neural_parts")
    choice = parse_primitive(getattr(args, "primitive", None), model.n_primitives)
    cats = [c for c in args.categories.split(",") if c] if getattr(args, "categories", None) else None
    split = getattr(args, "split", "test") or "test"
    dataset, section = build_dataset(cfg["data"], split, root=getattr(args, "data_root", None), categories=cats,
                                     max_items=args.max_iter)
    if len(dataset) == 0:
        raise ShapeLabError(f"neural_parts data {section['root']}: split '{split}' has no images")
    samples = [dataset[i] for i in range(min(len(dataset), args.max_iter))]
    images = torch.stack([s["image"] for s in samples]).to(device)
    names = [f"{s['category']}/{s['model']}" if s["category"] else str(s["model"]) for s in samples]
    volumes = primitive_volumes(model, images)
    B = images.shape[0]
    if choice == "largest":
        jobs = [(volumes.argmax(1).cpu(), "")]
    else:
        jobs = [(torch.full((B,), k), f"_p{k}") for k in (range(model.n_primitives) if choice == "all" else [choice])]
    kwargs = {"layer": getattr(args, "layer", "layer4") or "layer4", "n_steps": getattr(args, "n_steps", 32)}
    results = []
    for prims, suffix in jobs:
        wrapped = PrimitiveVolumeModel(model, prims).to(device)
        stem = os.path.join(args.output_dir, f"{args.visualizer}_neural_parts_primitive{suffix}")
        ids = [f"{n} p{int(k)}" for n, k in zip(names, prims)]
        res = explain_images(args.visualizer, wrapped, images, lambda out: out["volume"], stem, ids, "volume",
                             randomization=getattr(args, "randomization_check", False), checkpoint=checkpoint,
                             definition="enclosed volume of primitive p<k> (the ico-sphere level 3 pushed through "
                                        "the INN; stored frame units^3)", **kwargs)
        print(f"{args.visualizer} on {B} images of {section['root']} ({split} split), model {checkpoint} (target: "
              f"volume of primitive "
              f"{choice if choice != 'all' else int(prims[0])}) -> " + ", ".join(res["paths"]))
        results.append(res)
    return results


# ----------------------------------------------------------------------------- soft grid volume (kept for callers)

class RadialPhiModel(torch.nn.Module):
    """NeuralParts seen by `modules.attribution.images`: forward(images, queries (B,N,3)) -> {"phi_volume"
    (B,N,M)} with the RADIAL phi (deterministic; the Euclidean phi samples random sphere points), and the
    model's `encoder` for the layer-based maps."""

    def __init__(self, model):
        super().__init__()
        self.model, self.encoder = model, model.encoder

    def forward(self, images, queries):
        return {"phi_volume": self.model.phi(queries, self.model.primitive_features(images))}


def primitive_volume_queries(resolution=16, half=0.55):
    """(1, R^3, 3) grid of query points over the volume box [-half, half]^3."""
    t = torch.linspace(-half, half, int(resolution))
    return torch.stack(torch.meshgrid(t, t, t, indexing="ij"), -1).reshape(1, -1, 3)


def primitive_volume_target(k, sharpness=250.0):
    """Target "the volume of primitive k": the fraction of the query grid inside it, soft
    (mean of sigmoid(-sharpness * phi_k), the occupancy of the losses). output -> (B,)."""
    def target(out):
        phi = out["phi_volume"]
        if not 0 <= int(k) < phi.shape[-1]:
            raise ShapeLabError(f"primitive {k}: the model has {phi.shape[-1]} primitives")
        return torch.sigmoid(-sharpness * phi[..., int(k)]).mean(1)
    return target
