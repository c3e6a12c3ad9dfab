"""Image attribution for the Neural Parts and genren image encoders (and the one dispatch shared with the single-view
models): every family's maps have the input's H x W, are finite and not constant; a primitive's volume target
equals the closed form for a sphere primitive; IG is complete on an RGBA genren target with the alpha-keeping
baseline (alpha's attribution exactly 0); RGB inputs keep the old baseline; a --target a family does not support is
exit 2 with one line; the command writes its pictures. Tiny models from configs/<family>/tiny.yaml, random
weights, generated data."""
import math
import os

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import attribution
import eval_model
from modules.attribution import images as A
from modules.config import load_config
from modules.data import genren as genren_io
from modules.data import humans
from modules.families.genren.attribution import (BLACK, GenrenVisionModel, build_target, pose_target,
                                                 texture_target)
from modules.families.neural_parts.evaluation import PrimitiveVolumeModel, mesh_volume, primitive_volumes
from modules.geometry import ico_sphere
from modules.geometry.cameras import look_at_camera
from modules.geometry.io import save_mesh
from modules.models.svr import PointDecoder, SingleViewModel
from modules.registry import MODELS
from modules.utils import ROOT, ShapeLabError

pytestmark = pytest.mark.usefixtures("single_thread")

NP_TINY = os.path.join(ROOT, "configs", "neural_parts", "tiny.yaml")
GENREN_TINY = os.path.join(ROOT, "configs", "genren", "tiny.yaml")
SVR_CKPT = os.path.join(ROOT, "pretrained_models", "svr_point_chairs.pt")


# ----------------------------------------------------------------------------- tiny models, data, checkpoints

def np_model(n_primitives=2, seed=0):
    torch.manual_seed(seed)
    return MODELS.build({**load_config(NP_TINY)["model"], "n_primitives": n_primitives}).eval()


def genren_model(seed=0):
    torch.manual_seed(seed)
    return MODELS.build(load_config(GENREN_TINY)["model"]).eval()


def rgba_images(n=2, size=32, seed=0):
    """(n,4,S,S) genren images: coloured ellipses over black (RGB in [-1,1]) with their alpha mask."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = []
    for _ in range(n):
        a, b = size * (0.2 + 0.2 * torch.rand(2, generator=g))
        mask = (((xx - size / 2) / a) ** 2 + ((yy - size / 2) / b) ** 2 < 1).float()
        rgb = torch.rand(3, size, size, generator=g) * 2 - 1
        out.append(torch.cat([rgb * mask - (1 - mask), mask[None]], 0))
    return torch.stack(out)


def write_humans(root, n=3, size=64):
    """Humans layout with n sphere frames (seq_000/<i>), all in the test split."""
    sphere = ico_sphere(2)
    v0, f = sphere.verts_list()[0].numpy(), sphere.faces_list()[0].numpy()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        r = 0.2 + 0.05 * i
        p = humans.frame_paths(root, "seq_000", i)
        save_mesh(p["mesh"], v0 * r, f)
        d = rng.normal(size=(2500, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        humans.write_surface_points(p["surface"], d * r, d, np.full(2500, 50))
        u = rng.uniform(-0.55, 0.55, (3000, 3))
        humans.write_points_npz(p["points"], u, np.linalg.norm(u, axis=1) < r)
        yy, xx = np.mgrid[:size, :size]
        img = np.full((size, size, 3), 255, np.uint8)
        img[(yy - 28) ** 2 + (xx - 36) ** 2 < (r * 100) ** 2] = (200, 80, 40)
        os.makedirs(os.path.dirname(p["render"]), exist_ok=True)
        Image.fromarray(img).save(p["render"])
        humans.write_camera(p["camera"], look_at_camera((0, 0, 2.0), width=size, height=size, dtype=torch.float64))
        rows.append(("seq_000", i, "test"))
    humans.write_splits_csv(os.path.join(root, "d-faust_splits.csv"), rows)
    return root


def write_genren(root, n_shapes=3, size=32):
    """genren layout ROOT/toy/{images,shapes}: ellipsoid clouds and RGBA ellipse images <id>_00.png."""
    shapes, images = os.path.join(root, "toy", "shapes"), os.path.join(root, "toy", "images")
    os.makedirs(images, exist_ok=True)
    g = np.random.default_rng(1)
    for i in range(n_shapes):
        d = g.normal(size=(300, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        genren_io.write_shape(shapes, f"s{i}", (d * (0.2 + 0.3 * g.random(3))).astype(np.float32),
                              d.astype(np.float32))
        rgba = np.zeros((size, size, 4), np.uint8)
        yy, xx = np.mgrid[:size, :size]
        rgba[((xx - 16) / (5 + 2 * i)) ** 2 + ((yy - 16) / 8) ** 2 < 1] = (200, 60 * i, 90, 255)
        Image.fromarray(rgba, "RGBA").save(os.path.join(images, f"s{i}_00.png"))
    return root


def save_engine_checkpoint(path, model, cfg):
    torch.save({"model": model.state_dict(), "model_name": cfg["model"]["name"], "config": cfg}, path)
    return str(path)


@pytest.fixture(scope="module")
def np_checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("np_attr")
    root = write_humans(str(d / "humans"))
    cfg = load_config(NP_TINY, [f"data.root={root}", "model.n_primitives=2"])
    return save_engine_checkpoint(d / "np.pt", np_model(2), cfg)


@pytest.fixture(scope="module")
def genren_checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("genren_attr")
    root = write_genren(str(d / "data"))
    # held_out 0.999: every shape (and its image) is in the held-out split the command reads
    cfg = load_config(GENREN_TINY, [f"data.root={root}", "data.held_out=0.999"])
    return save_engine_checkpoint(d / "genren.pt", genren_model(), cfg)


# ----------------------------------------------------------------------------- maps of every family

def _check_map(result, shape):
    assert result.map.shape == shape
    assert torch.isfinite(result.map).all()
    assert float(result.map.max() - result.map.min()) > 0           # not constant


@pytest.mark.parametrize("method", ["gradcam++", "gbp", "ig"])
def test_neural_parts_maps(method):
    model = np_model(2)
    images = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(0))
    wrapped = PrimitiveVolumeModel(model, torch.tensor([0, 1]), level=2)
    res = A.attribute(method, wrapped, images, lambda out: out["volume"], layer="layer3", n_steps=4)
    _check_map(res, (2, 64, 48))


@pytest.mark.parametrize("method", ["gradcam++", "gbp", "ig"])
@pytest.mark.parametrize("target", ["shape", "pose", "texture"])
def test_genren_maps_on_rgba(method, target):
    wrapped = GenrenVisionModel(genren_model())
    images = rgba_images(2)
    points = torch.rand(2, 64, 3) - 0.5
    fn, _, _ = build_target(target, wrapped, images, points)
    res = A.attribute(method, wrapped, images, fn, layer="layer2", n_steps=4, black=BLACK)
    _check_map(res, (2, 32, 32))
    if method != "gradcam++":
        assert res.raw.shape == (2, 4, 32, 32)


def test_single_view_maps_keep_their_shape():
    torch.manual_seed(0)
    model = SingleViewModel("point", PointDecoder(n_points=32, hidden=[16])).eval()
    batch = {"image": torch.rand(1, 3, 40, 36), "pointcloud": torch.rand(1, 50, 3) - 0.5}
    res = A.attribute("gradcam++", model, batch["image"], A.loss_target("point", batch), layer="layer3")
    _check_map(res, (1, 40, 36))


# ----------------------------------------------------------------------------- targets against closed forms

def test_primitive_volume_of_a_sphere_primitive_is_the_ico_sphere_volume():
    model = np_model(2)
    with torch.no_grad():                   # every primitive: the sphere of radius r at the origin
        for layer in model.inn.layers:
            for net in (layer.map_s, layer.map_t):
                lin = net[-2] if isinstance(net[-1], torch.nn.Hardtanh) else net[-1]
                lin.weight.zero_(), lin.bias.zero_()
        for net, bias in ((model.inn.scales, [0.0, 0.0, 0.0]), (model.inn.rotations, [1.0, 0, 0, 0]),
                          (model.inn.translations, [0.1, 0.0, 0.0])):
            net[-1].weight.zero_()
            net[-1].bias.copy_(torch.tensor(bias))
    sphere = ico_sphere(3)
    exact = float(mesh_volume(sphere.verts_list()[0][None].double() * model.radius, sphere.faces_list()[0]))
    vols = primitive_volumes(model, torch.rand(2, 3, 64, 64))
    assert vols.shape == (2, 2)
    np.testing.assert_allclose(vols.numpy(), exact, rtol=1e-5)      # a translation does not change it
    assert exact == pytest.approx(4 / 3 * math.pi * model.radius ** 3, rel=0.03)   # inscribed polyhedron


def test_the_pose_hypothesis_is_fixed_on_the_input_for_every_path_point():
    wrapped = GenrenVisionModel(genren_model())
    images = rgba_images(2)
    with torch.no_grad():
        out = wrapped(images)
    hyp = torch.tensor([1, 0])
    stacked = {k: torch.cat([v, v, v]) for k, v in out.items()}     # IG's step-major stack of 3 path points
    assert torch.equal(pose_target(hyp)(stacked), out["probs"][[0, 1], [1, 0]].repeat(3))
    assert torch.allclose(texture_target(hyp)(out), out["xi_T"][[0, 1], [1, 0]].norm(dim=-1))


def test_integrated_gradients_complete_on_rgba_with_the_alpha_keeping_baseline():
    wrapped = GenrenVisionModel(genren_model())
    images = rgba_images(2)
    fn, _, _ = build_target("texture", wrapped, images)
    res = A.integrated_gradients(wrapped, images, fn, n_steps=32, black=BLACK)
    base = A.black_baseline(images, BLACK)
    assert torch.equal(base[:, 3], images[:, 3]) and (base[:, :3] == BLACK).all()
    assert torch.equal(res.raw[:, 3], torch.zeros_like(res.raw[:, 3]))        # the mask is never changed
    gap = A.target_values(wrapped, images, fn) - A.target_values(wrapped, base, fn)
    total = res.map.sum(dim=(1, 2))
    assert float(gap.abs().min()) > 1e-3                                      # a non-trivial test
    np.testing.assert_allclose(total.numpy(), gap.numpy(), rtol=0.03, atol=1e-6)


def test_rgb_inputs_keep_the_black_baseline():
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(A.black_baseline(x), torch.zeros_like(x))
    with pytest.raises(ShapeLabError, match=r"\(B, 3, H, W\) or RGBA \(B, 4, H, W\)"):
        A.attribute("gbp", torch.nn.Identity(), torch.rand(1, 2, 8, 8), lambda out: out.sum((1, 2, 3)))


# ----------------------------------------------------------------------------- the commands

def _one_line_exit_2(capsys, argv, main=attribution.main):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_a_target_the_family_lacks_is_one_line(np_checkpoint, genren_checkpoint, tmp_path, capsys):
    out = str(tmp_path / "out")
    line = _one_line_exit_2(capsys, ["--checkpoint_path", np_checkpoint, "--target", "pose", "--output_dir", out])
    assert "--target 'pose'" in line and "neural_parts" in line and "primitive" in line
    line = _one_line_exit_2(capsys, ["--checkpoint_path", genren_checkpoint, "--visualizer", "ig", "--target",
                                     "loss", "--output_dir", out])
    assert "genren" in line and "shape | pose | texture" in line
    line = _one_line_exit_2(capsys, ["--checkpoint_path", SVR_CKPT, "--visualizer", "gbp", "--target", "primitive",
                                     "--output_dir", out], main=eval_model.main)
    assert "svr" in line and "loss | occupancy" in line
    line = _one_line_exit_2(capsys, ["--checkpoint_path", np_checkpoint, "--primitive", "7", "--output_dir", out])
    assert "--primitive 7" in line and "0..1" in line
    line = _one_line_exit_2(capsys, ["--checkpoint_path", genren_checkpoint, "--primitive", "0", "--output_dir", out])
    assert "--primitive" in line and "genren" in line
    assert not os.path.exists(out)


def test_neural_parts_command_writes_its_pictures(np_checkpoint, tmp_path, capsys):
    out = tmp_path / "np"
    results = attribution.main(["--checkpoint_path", np_checkpoint, "--visualizer", "gradcam++", "--layer", "layer3",
                                "--max_iter", "1", "--primitive", "all", "--randomization_check",
                                "--output_dir", str(out)])
    assert len(results) == 2                                          # one picture per primitive
    for k in (0, 1):
        stem = out / f"gradcam++_neural_parts_primitive_p{k}"
        for suffix in (".png", "_inputs.png", "_maps.npy", ".yaml", "_randomized.png", "_randomization.yaml"):
            assert (stem.parent / (stem.name + suffix)).is_file(), suffix
        maps = np.load(str(stem) + "_maps.npy")
        assert maps.shape == (1, 64, 64) and np.isfinite(maps).all()
        info = yaml.safe_load(open(str(stem) + ".yaml"))
        assert [i["id"] for i in info["images"]] == [f"seq_000/00000 p{k}"]
        assert all(i["value"] > 0 for i in info["images"])            # volumes
        rnd = yaml.safe_load(open(str(stem) + "_randomization.yaml"))
        assert len(rnd["spearman_per_image"]) == 1
    assert "randomisation check" in capsys.readouterr().out


def test_genren_command_writes_its_pictures_through_eval_model(genren_checkpoint, tmp_path, capsys):
    out = tmp_path / "genren"
    res = eval_model.main(["--checkpoint_path", genren_checkpoint, "--visualizer", "gbp", "--target", "shape",
                           "--max_iter", "2", "--output_dir", str(out)])
    stem = out / "gbp_genren_shape"
    assert (out / "gbp_genren_shape.png").is_file() and (out / "gbp_genren_shape_inputs.png").is_file()
    info = yaml.safe_load(open(str(stem) + ".yaml"))
    assert info["target"] == "-chamfer"                               # every held-out image has its shape
    assert len(info["images"]) == 2 and all(i["value"] < 0 for i in info["images"])
    assert res["maps"].shape == (2, 32, 32)
    assert "gbp on 2 images" in capsys.readouterr().out
