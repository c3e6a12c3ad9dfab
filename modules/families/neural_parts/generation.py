"""The Neural Parts generator (registered for task `neural_parts`): per object, each primitive as a mesh
(a sphere of radius r pushed through the INN), their union, and a picture.

Output: <exp>/evaluation_<ckpt>_@parts<V>/generation/<category>/<model>/
    part_000.obj ... part_<M-1>.obj   one mesh per primitive (the original's forward_pass.py names)
    union.obj                         all primitives in one file (the original's overall.obj)
    union.png                         input image | union from the input camera | union from a 3/4 view,
                                      coloured by primitive
Spheres: the ico-sphere of level 4 (2562 vertices) by default; generate.py has no flag for it, so the
level is the generator option `sphere_level` when called from Python.
"""
import os
import time

import numpy as np
import torch
from matplotlib import colormaps
from tqdm import tqdm

from modules.families.neural_parts.evaluation import evaluate_generation, markdown_table
from modules.geometry.cameras import Camera
from modules.geometry.io import save_mesh
from modules.models.neural_parts import NeuralParts
from modules.utils import ShapeLabError
from modules.vis.images import save_image_grid
from modules.vis.render import render_image, turntable_cameras


def primitive_colors(m):
    """(m,3) float colours, one per primitive (matplotlib tab10, then tab20)."""
    cmap = colormaps["tab10" if m <= 10 else "tab20"]
    return np.asarray([cmap(i % cmap.N)[:3] for i in range(m)], np.float32)


def union_mesh(verts, faces):
    """verts (M,V,3), faces (F,3) -> (vertices (M*V,3), faces (M*F,3), primitive id per face (M*F,))."""
    M, V = verts.shape[:2]
    all_faces = torch.cat([faces + m * V for m in range(M)])
    owner = torch.arange(M).repeat_interleave(len(faces))
    return verts.reshape(-1, 3), all_faces, owner


def render_union(verts, faces, owner, camera=None, size=224):
    """(size,size,3) uint8 picture of the union, faces coloured by primitive (rasterizer, exact occlusion)."""
    colors = torch.from_numpy(primitive_colors(int(owner.max()) + 1))[owner]
    cam = camera or turntable_cameras(verts, n_views=1, width=size, height=size)[0]
    return render_image(verts.float(), faces, cam, face_colors=colors, supersample=2)


@torch.no_grad()
def generate_object(model, sample, obj_dir, level=4, pictures=True, device="cpu"):
    """Write the primitives, their union and the picture of one dataset sample. Returns seconds taken."""
    start = time.perf_counter()
    F_prim = model.primitive_features(sample["image"][None].to(device))
    verts, faces = model.primitive_meshes(F_prim, level=level)
    verts, faces = verts[0].float().cpu(), faces.cpu()
    if not torch.isfinite(verts).all():
        raise ShapeLabError("the network produced non-finite vertices")
    os.makedirs(obj_dir, exist_ok=True)
    for m in range(verts.shape[0]):
        save_mesh(os.path.join(obj_dir, f"part_{m:03d}.obj"), verts[m].numpy(), faces.numpy())
    v, f, owner = union_mesh(verts, faces)
    save_mesh(os.path.join(obj_dir, "union.obj"), v.numpy(), f.numpy())
    seconds = time.perf_counter() - start
    if pictures:
        image = sample["image"]
        size = int(image.shape[-1])
        panels = [image]
        titles = ["input"]
        if "image.K" in sample:
            cam = Camera(sample["image.K"].double(), sample["image.R"].double(), sample["image.t"].double(),
                         size, int(image.shape[-2]))
            panels.append(torch.from_numpy(render_union(v, f, owner, cam)).permute(2, 0, 1))
            titles.append("union, input camera")
        panels.append(torch.from_numpy(render_union(v, f, owner, size=size)).permute(2, 0, 1))
        titles.append(f"{verts.shape[0]} primitives")
        save_image_grid(os.path.join(obj_dir, "union.png"), panels, titles=titles, nrow=len(panels))
    return seconds


def generate(model, dataset, out_dir, level=4, pictures=True, overwrite=False, device="cpu", progress=True,
             log=print):
    """Every item of a NeuralPartsDataset -> out_dir/generation/<category>/<model>/ (see module docstring).
    Existing objects (union.obj present) are skipped unless overwrite. Returns generate.py's summary dict."""
    if len(dataset) == 0:
        raise ShapeLabError(f"no objects to generate: the '{dataset.split}' split of {dataset.root} is empty")
    model.eval()
    summary = {"done": 0, "skipped": 0, "failed": [], "seconds": []}
    for i in tqdm(range(len(dataset)), desc="generate", disable=not progress):
        item = dataset.items[i]
        obj_dir = os.path.join(out_dir, "generation", item.group, item.name)
        if os.path.exists(os.path.join(obj_dir, "union.obj")) and not overwrite:
            summary["skipped"] += 1
            continue
        try:
            summary["seconds"].append(generate_object(model, dataset[i], obj_dir, level, pictures, device))
            summary["done"] += 1
        except ShapeLabError as err:
            log(f"error: {item.group}/{item.name}: {err} (skipped)")
            summary["failed"].append((f"{item.group}/{item.name}", str(err)))
    return summary


class NeuralPartsGenerator:
    """generate.py for task `neural_parts`. Options used: pictures, overwrite (generate.py's flags) and
    sphere_level (not a flag; default 4). Meshing flags (-method, -mise_res, ...) do not apply."""

    def __init__(self, section):
        self.cfg = section["config"]

    def spec(self, opts):
        return f"parts{opts.get('sphere_level', 4)}"

    @staticmethod
    def evaluate(generation_path, device, progress=True):
        """evaluate.py for this family: the original's metrics (see evaluation.py). Returns the failed count."""
        rows, means, out_dir = evaluate_generation(generation_path, device, progress=progress)
        print(markdown_table(means, len(rows)))
        print(f"wrote {out_dir}/evaluation_results.csv, evaluation_results.md")
        return sum(1 for r in rows if r.get("error"))

    def run(self, model, dataset, out_dir, opts, device):
        if not isinstance(model, NeuralParts):
            raise ShapeLabError(f"the neural_parts generator needs a NeuralParts model, got {type(model).__name__}")
        level = int(opts.get("sphere_level", 4))
        summary = generate(model, dataset, out_dir, level, opts.get("pictures", True), opts.get("overwrite", False),
                           device)
        summary["info"] = {"primitives": model.n_primitives, "sphere": f"ico_sphere({level})",
                           "method": "primitives"}
        return summary
