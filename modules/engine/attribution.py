"""What attribution.py does for an image model once its family has built the pieces (a model wrapper with an
`encoder`, the images, a target function): the maps of one method, the pictures and the randomisation check.

Writes, for `stem` = <output_dir>/<method>_<family>_<target>[_p<k>]:
  <stem>.png                 heat map over each input (own colour bar per panel), titled "<id> / <label> = <S(x)>"
  <stem>_inputs.png          the inputs, titled by id
  <stem>_maps.npy            (N,H,W) float32 maps as the method returns them (IG signed)
  <stem>.yaml                method, checkpoint, target and its definition, per-image id and target value
  with randomization:
  <stem>_randomized.png      the maps of the same model with its image encoder re-initialised
  <stem>_randomization.yaml  Spearman rank correlation trained vs re-initialised, per image and mean
The single-view family writes the same files from modules/families/svr/evaluation.py (attribution_main).
"""
import os

import numpy as np

from modules.attribution import images as attr
from modules.utils import atomic_write, save_yaml
from modules.vis.images import save_heatmap_overlays, save_image_grid

METHOD_KWARGS = ("layer", "n_steps", "black")     # the rest of **kwargs goes to the model's forward (queries, ...)


def explain_images(method, model, images, target_fn, stem, ids, label, display=None, randomization=False,
                   checkpoint=None, definition="", seed=0, log=print, **kwargs):
    """Maps of `method` (modules.attribution.images.METHODS) for images (B,3|4,H,W) -> dict maps (B,H,W),
    values (B,) the target S(x) per image, paths, and with `randomization` the check's result.

    model: an nn.Module with `encoder` (an ImageEncoder) whose forward feeds `target_fn` (see
    modules.attribution.images); ids: one name per image; label: short target name for titles; display:
    (B,3|4,H,W) images in [0,1] to draw on (default `images`); kwargs: layer, n_steps, black and the forward's
    extra inputs."""
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    forward_kwargs = {k: v for k, v in kwargs.items() if k not in METHOD_KWARGS}
    values = attr.target_values(model, images, target_fn, **forward_kwargs).cpu()
    result = attr.attribute(method, model, images, target_fn, **kwargs)
    shown = attr.display_map(method, result.map).cpu()
    display = (images if display is None else display).detach().cpu()
    titles = [f"{i}\n{label} = {float(v):.4g}" for i, v in zip(ids, values)]
    save_heatmap_overlays(stem + ".png", display, shown, titles=titles, shared_scale=False)
    save_image_grid(stem + "_inputs.png", display, titles=[str(i) for i in ids], nrow=4)
    with atomic_write(stem + "_maps.npy") as tmp:
        np.save(tmp, result.map.cpu().numpy().astype(np.float32))
    save_yaml({"method": method, "checkpoint": checkpoint, "target": label, "definition": definition,
               "images": [{"id": str(i), "value": float(v)} for i, v in zip(ids, values)]}, stem + ".yaml")
    out = {"maps": result.map, "values": values,
           "paths": [stem + ".png", stem + "_inputs.png", stem + "_maps.npy", stem + ".yaml"]}
    if randomization:
        check = attr.randomization_check(method, model, images, target_fn, seed=seed, trained_map=result.map,
                                         **kwargs)
        save_heatmap_overlays(stem + "_randomized.png", display, check["maps"][1],
                              titles=[f"{i} (random encoder)" for i in ids], shared_scale=False)
        save_yaml({"method": method, "checkpoint": checkpoint, "target": label,
                   "spearman_per_image": [float(x) for x in check["spearman"]], "spearman_mean": check["mean"]},
                  stem + "_randomization.yaml")
        out["randomization"] = check
        out["paths"] += [stem + "_randomized.png", stem + "_randomization.yaml"]
        n_defined = int(np.isfinite(check["spearman"]).sum())
        log(f"model-parameter randomisation check ({method}, {label}): mean Spearman correlation trained vs "
            f"re-initialised encoder = {check['mean']:.3f} over {n_defined} of {len(images)} images (near 0: the "
            f"maps depend on the weights; images with a constant map are left out)")
    return out
