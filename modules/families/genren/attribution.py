"""What genren's RGBA image encoder looks at: Grad-CAM-family maps (modules.attribution.images) for three targets
of the vision direction image -> (shape latent v, pose hypotheses with probabilities, texture codes xi_T).

    python attribution.py --checkpoint_path experiments/genren_synth/checkpoints/best.pt --visualizer gradcam \\
        --target pose --max_iter 8 --output_dir experiments/attribution/genren

Targets (one scalar per image; the hypothesis h* is the most probable one ON THE INPUT, then held fixed so that
every forward of one attribution, e.g. IG's path points, explains the same function):
- `shape`: minus the Chamfer distance (squared Euclidean, mean of both directions summed, PyTorch3D's
  convention) between the reconstructed canonical mesh's vertices and the image's own shape's points (normalised
  as in training; the pose is not applied, as in genren's validation), when every image has its shape (held-out
  embedded data: <id>_NN.png names shape <id>); otherwise the norm ||v|| of the shape latent. The yaml and the
  log say which.
- `pose`: the probability p_{h*} of the most likely pose hypothesis.
- `texture`: the norm ||xi_T|| of the texture code of hypothesis h* (it also reads the image directly through the
  pixel unprojection, so GBP / IG see that path too; the CAMs see the encoder's part only).
CAMs default to `layer2` (genren's 64x64 inputs give layer4 a 2x2 grid). The encoder explained (layers,
randomisation check) is the RGBA ResNet-18 with its fc to dim_backbone; the
BatchNorm1d + ReLU after it and the heads keep their weights. IG's baseline keeps the input's alpha and sets RGB to
black (-1 in genren's [-1,1] colour range): the colours inside the silhouette are explained, the mask is not.
"""
import os

import torch
from torch import nn

from modules.attribution.images import tile
from modules.engine.attribution import explain_images
from modules.engine.generation import build_dataset, load_trained_model
from modules.families.genren.evaluation import to_display
from modules.geometry.chamfer import chamfer_distance
from modules.utils import ShapeLabError, get_device

TARGETS = ("shape", "pose", "texture")
BLACK = -1.0          # a black pixel in genren's RGB range [-1, 1]
DEFAULT_LAYER = "layer2"    # 64x64 inputs: layer4 is a 2x2 grid (1x1 at 32x32), layer2 an 8x8 one


class GenrenVisionModel(nn.Module):
    """CyclicGenRen's vision direction seen by modules.attribution.images: forward(images (B,4,S,S)) ->
    `infer_image`'s dict (v (B,dim_v), probs (B,H), xi_T (B,H,dim_xi_T), verts (B,V,3), ...); `encoder` is the
    RGBA ImageEncoder (ResNet-18 + fc) for the layer-based maps and the randomisation check."""

    def __init__(self, model):
        super().__init__()
        self.model, self.encoder = model, model.image_encoder[0]

    def forward(self, images):
        return self.model.infer_image(images)


@torch.no_grad()
def most_likely_hypothesis(wrapped, images):
    """(B,) index of the most probable pose hypothesis of each image (eval mode)."""
    was = wrapped.training
    wrapped.eval()
    try:
        return wrapped(images)["probs"].argmax(1)
    finally:
        wrapped.train(was)


def _pick(x, hyp):
    """x (N,H,...) and hyp (B,) tiled to N -> x[n, hyp[n]] (N,...)."""
    h = tile(hyp.to(x.device), x.shape[0])
    return x[torch.arange(x.shape[0], device=x.device), h]


def pose_target(hyp):
    """fn(out) -> (B,) probability of hypothesis hyp[b] (the most likely one on the input)."""
    return lambda out: _pick(out["probs"], hyp)


def texture_target(hyp):
    """fn(out) -> (B,) ||xi_T|| of hypothesis hyp[b]."""
    return lambda out: _pick(out["xi_T"], hyp).norm(dim=-1)


def shape_target(points=None):
    """fn(out) -> (B,): -Chamfer(canonical mesh vertices, points (B,N,3)) when points are given, else ||v||."""
    if points is None:
        return lambda out: out["v"].norm(dim=1)

    def minus_chamfer(out):
        verts = out["verts"]
        return -chamfer_distance(verts, tile(points, len(verts)).to(verts), batch_reduction=None)[0]
    return minus_chamfer


def build_target(name, wrapped, images, points=None):
    """-> (target fn, label, definition) for --target `name` on these images."""
    if name not in TARGETS:
        raise ShapeLabError(f"--target {name!r}: a genren checkpoint supports {', '.join(TARGETS)}")
    if name == "shape":
        if points is not None:
            return shape_target(points), "-chamfer", ("minus the Chamfer distance (squared, both directions) "
                                                      "between the canonical mesh vertices and the image's shape")
        return shape_target(None), "|v|", "norm of the shape latent v (no ground-truth shape for every image)"
    hyp = most_likely_hypothesis(wrapped, images)
    if name == "pose":
        return pose_target(hyp), "p(best pose)", "probability of the most likely pose hypothesis (fixed on the input)"
    return texture_target(hyp), "|xi_T|", "norm of the texture code of the most likely pose hypothesis"


def attribution_data(cfg, split="test", data_root=None, categories=None, n=10):
    """The first n images of the checkpoint's genren data (split 'test'/'val': the held-out shapes' images with
    their own shapes) -> list of samples. data_root replaces the checkpoint's data folders (genren layout)."""
    data = dict(cfg["data"])
    if data_root is not None:
        data.update(root=data_root, img_data_dir=None, shape_data_dir=None)
    dataset, _ = build_dataset(data, split, categories=categories, val_items=n)
    return [dataset[i] for i in range(min(len(dataset), n))]


def attribution_main(args, checkpoint, cfg):
    """Maps of args.visualizer for args.target (shape | pose | texture; default shape) on the first args.max_iter
    images of the checkpoint's data -> explain_images result. Writes <output_dir>/<method>_genren_<target>.*"""
    name = getattr(args, "target", None) or "shape"
    if name not in TARGETS:
        raise ShapeLabError(f"--target {name!r}: a genren checkpoint supports {', '.join(TARGETS)}")
    device = get_device(getattr(args, "device", "cpu"))
    model, cfg = load_trained_model(checkpoint, device, "genren")
    cats = [c for c in args.categories.split(",") if c] if getattr(args, "categories", None) else None
    samples = attribution_data(cfg, getattr(args, "split", "test") or "test", getattr(args, "data_root", None),
                               cats, args.max_iter)
    images = torch.stack([s["image"] for s in samples]).to(device)
    points = torch.stack([s["points"] for s in samples]).to(device) if all(s["has_shape"] for s in samples) else None
    wrapped = GenrenVisionModel(model).to(device)
    target, label, definition = build_target(name, wrapped, images, points)
    ids = [os.path.splitext(s["image_name"])[0] for s in samples]
    stem = os.path.join(args.output_dir, f"{args.visualizer}_genren_{name}")
    res = explain_images(args.visualizer, wrapped, images, target, stem, ids, label, display=to_display(images),
                         randomization=getattr(args, "randomization_check", False), checkpoint=checkpoint,
                         definition=definition, layer=getattr(args, "layer", None) or DEFAULT_LAYER,
                         n_steps=getattr(args, "n_steps", 32), black=BLACK)
    where = getattr(args, "data_root", None) or cfg["data"].get("root") or cfg["data"].get("img_data_dir")
    print(f"{args.visualizer} on {len(images)} images of {where} ({getattr(args, 'split', 'test') or 'test'} split), "
          f"model {checkpoint} (target: {name} = {definition}) -> "
          + ", ".join(res["paths"]))
    return res
