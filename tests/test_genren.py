"""genren: model heads, loss terms against closed forms / dense references, the training phases (losses fall), the
loadtest modes and bad input. Tiny sizes (configs/genren/tiny.yaml's model) and a generated data folder."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import modules.families  # noqa: F401
from modules.config import load_config
from modules.data import genren as genren_io
from modules.families.genren.evaluation import (frechet_distance, image_statistics, r2n2_view_rotation,
                                                view_rotation)
from modules.families.genren.training import GenRenTask, GenrenUnpairedDataset, load_rgba
from modules.geometry.ico_sphere import icosa_sphere, ico_sphere
from modules.losses import genren as L
from modules.models.genren import CyclicGenRen, angle_triplet_to_matrix, parameter_counts, spherical_uvs
from modules.registry import MODELS
from modules.utils import ROOT, ShapeLabError

TINY = os.path.join(ROOT, "configs", "genren", "tiny.yaml")


pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_cfg(overrides=()):
    return load_config(TINY, list(overrides))


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return MODELS.build(tiny_cfg()["model"])


def ellipsoid_cloud(radii, n=400, seed=0):
    g = np.random.default_rng(seed)
    d = g.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    pts = d * np.asarray(radii)
    nrm = d / np.asarray(radii)
    return pts.astype(np.float32), (nrm / np.linalg.norm(nrm, axis=1, keepdims=True)).astype(np.float32)


def write_dataset(root, n_shapes=10, views=2, size=48):
    """ROOT/toy/{shapes,images}: ellipsoid clouds and RGBA ellipse images named <id>_NN.png."""
    shapes, images = os.path.join(root, "toy", "shapes"), os.path.join(root, "toy", "images")
    os.makedirs(images, exist_ok=True)
    g = np.random.default_rng(1)
    for i in range(n_shapes):
        r = 0.2 + 0.3 * g.random(3)
        genren_io.write_shape(shapes, f"s{i}", *ellipsoid_cloud(r, seed=i))
        for k in range(views):
            yy, xx = np.mgrid[:size, :size]
            a, b = size * (0.15 + 0.2 * g.random()), size * (0.15 + 0.2 * g.random())
            inside = ((xx - size / 2) / a) ** 2 + ((yy - size / 2) / b) ** 2 < 1
            rgba = np.zeros((size, size, 4), np.uint8)
            rgba[inside] = np.r_[(g.random(3) * 255).astype(np.uint8), 255]
            Image.fromarray(rgba, "RGBA").save(os.path.join(images, f"s{i}_{k:02d}.png"))
    return root


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_dataset(str(tmp_path_factory.mktemp("genren_data")))


def batch_from(ds, n):
    items = [ds[i % len(ds)] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in ("image", "points", "normals")} | {
        "has_shape": torch.tensor([it["has_shape"] for it in items])}


# --- the model ----------------------------------------------------------------------------------------------------

def test_template_and_full_size_parameter_counts():
    v, f = icosa_sphere(10)
    assert v.shape == (1002, 3) and f.shape == (2000, 3)
    assert torch.allclose(v.norm(dim=1), torch.ones(1002), atol=1e-6)
    m = CyclicGenRen()
    c = parameter_counts(m)
    V3 = 3 * 1002
    # the deformation decoder [64, 600, 900, 1200, 3|V|] with BatchNorm: Linear weights + biases + BN affine
    expect = (64 * 600 + 600 + 2 * 600) + (600 * 900 + 900 + 2 * 900) + (900 * 1200 + 1200 + 2 * 1200) + (1200 * V3 + V3)
    assert c["deformation_decoder"] == expect
    assert c["image_encoder"] == 11_179_648 + 512 * 512 + 512 + 2 * 512      # RGBA ResNet-18 + fc 512 + BN
    assert c["total"] == 65_333_534 and c["generator total"] == 41_923_399


def test_heads_shapes():
    m = tiny_model()
    B, H, V = 3, 2, m.nV
    pts, nrm = torch.rand(B, 64, 3) - 0.5, torch.nn.functional.normalize(torch.randn(B, 64, 3), dim=2)
    c1 = m.cycle_1(pts, nrm)
    f = c1["forward"]
    assert f["renders"].shape == (B, 4, 32, 32) and f["verts"].shape == (B, V, 3) and f["v"].shape == (B, 8)
    assert f["R"].shape == (B, 1, 3, 3) and f["t"].shape == (B, 1, 3) and f["texture_image"].shape == (B, 3, 32, 32)
    out = m.cycle_2(f["renders"].detach())
    assert out["R"].shape == (B, H, 3, 3) and out["t"].shape == (B, H, 3) and out["probs"].shape == (B, H)
    assert out["xi_T"].shape == (B, H, 16) and out["colors"].shape == (B, H, V, 3)
    assert out["texture_images"].shape == (B, H, 3, 32, 32) and out["renders"].shape == (B, H, 4, 32, 32)
    assert out["posed"].shape == (B, H, V, 3)
    assert torch.allclose(out["probs"].sum(1), torch.ones(B))
    lo, hi = m.t_mins, m.t_maxs
    assert bool(((out["t"] >= lo) & (out["t"] <= hi)).all())
    assert m.critics["image"](out["renders"][:, 0]).shape == (B, 1)
    assert m.critics["shape"](out["v"], out["verts"]).shape == (B, 1)
    assert m.critics["texture"](out["texture_images"][:, 0]).shape == (B, 1)
    Rp = m.critics["cptc"](out["texture_images"][:, 0])
    assert torch.allclose(Rp @ Rp.transpose(1, 2), torch.eye(3).expand(B, 3, 3), atol=1e-5)
    dr = m.cycle_1_domain_randomized(pts, nrm)
    assert dr["forward"]["colors"].shape == (B, V, 3) and dr["back"]["R"].shape == (B, H, 3, 3)


def test_rotations_uvs_and_view_conventions():
    a = torch.randn(20, 3)
    R = angle_triplet_to_matrix(a)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(20, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(20), atol=1e-5)
    # a pure rotation about z by theta: angle (theta, 0, 0), geodesic distance theta from the identity
    th = torch.tensor([0.3, 1.0, 2.5])
    Rz = angle_triplet_to_matrix(torch.stack([th, 0 * th, 0 * th], 1))
    assert torch.allclose(L.rotation_angle(Rz, torch.eye(3).expand(3, 3, 3)), th, atol=1e-4)
    uv = spherical_uvs(icosa_sphere(4)[0])
    assert uv.abs().max() <= 1.0 + 1e-6
    # R2N2 view at azimuth 0, elevation 0 is genren's own camera: identity object rotation
    assert torch.allclose(r2n2_view_rotation(0.0, 0.0), torch.eye(3), atol=1e-6)
    # azimuth 90: the camera on +x sees what genren sees after rotating the shape's +x to +z
    R = r2n2_view_rotation(90.0, 0.0)
    assert torch.allclose(R @ torch.tensor([1.0, 0, 0]), torch.tensor([0, 0, 1.0]), atol=1e-6)
    assert torch.allclose(view_rotation(90.0, 0.0), R, atol=1e-6)


def test_pixel_unprojection_reads_the_rendered_vertex_colours():
    m = tiny_model()
    verts = m.template_verts[None] * 0.45
    colors = (m.template_verts[None] + 1) / 2
    img = m.render(verts, colors)
    got = m.unproject(img, verts)[0]                       # (V,4)
    front = verts[0, :, 2] > 0.3      # facing the camera (eye on +z), away from the silhouette (z = r²/d = 0.17)
    assert front.sum() >= 5
    assert torch.allclose((got[front, :3] + 1) / 2, colors[0, front], atol=0.12)
    assert bool((got[front, 3] > 0.9).all())


# --- losses -------------------------------------------------------------------------------------------------------

def test_mesh_regularisers_against_dense_and_closed_forms():
    v, f = icosa_sphere(3)
    topo = L.mesh_topology(f, v.shape[0])
    x = (v * torch.tensor([0.3, 0.5, 0.2]))[None].repeat(2, 1, 1)
    A = torch.zeros(v.shape[0], v.shape[0])
    A[topo["edges"][:, 0], topo["edges"][:, 1]] = 1
    A[topo["edges"][:, 1], topo["edges"][:, 0]] = 1
    Lap = torch.eye(v.shape[0]) - A / A.sum(1, keepdim=True)
    assert torch.allclose(L.laplacian_loss(x, topo), (Lap @ x[0]).pow(2).sum(), rtol=1e-5)
    edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).sort(1).values.unique(dim=0)
    assert torch.equal(topo["edges"].sort(1).values.unique(dim=0), edges)
    # a fine sphere is almost flat at each edge; a coarse one less so; scaling does not change dihedral angles
    fine = icosa_sphere(8)
    assert L.flatten_loss(fine[0][None], L.mesh_topology(fine[1], fine[0].shape[0])) / 1920 < \
        L.flatten_loss(v[None], topo) / 270
    assert torch.allclose(L.flatten_loss(2 * v[None], topo), L.flatten_loss(v[None], topo), rtol=2e-2)   # eps=1e-5 terms aside
    assert L.perturbation_variance(torch.ones(2, v.shape[0], 3), f) == 0


def test_chamfer_normals_sinkhorn_swd():
    sphere = ico_sphere(3)
    v, f = sphere.verts_packed()[None], sphere.faces_packed()
    pts, nrm = v.clone(), v.clone()                      # unit sphere: normals = positions
    cham, normals = L.chamfer_and_normals(v, f, pts, nrm, n_samples=2000)
    assert cham < 0.01 and normals < -1.95                # -|n.n'| summed over both directions -> -2
    cham2, _ = L.chamfer_and_normals(v * 1.2, f, pts, nrm, n_samples=2000)
    assert cham2 > 4 * cham
    R = angle_triplet_to_matrix(torch.randn(12, 3))
    t = torch.rand(12, 3)
    assert abs(float(L.pose_distribution_loss(R, t, R, t))) < 1e-5
    assert float(L.pose_distribution_loss(R, t, R, t + 0.5)) > 0.1
    g = torch.Generator().manual_seed(0)
    assert L.sliced_wasserstein_to_normal(torch.randn(256, 8, generator=g), generator=g) < \
        L.sliced_wasserstein_to_normal(3 * torch.randn(256, 8, generator=g), generator=g) / 10
    probs = torch.tensor([[1.0, 0.0]])
    img = torch.zeros(1, 4, 8, 8)
    ren = torch.stack([img, img + 1], 1)
    assert float(L.weighted_image_l1(img, ren, probs)) == 0.0
    assert float(L.weighted_image_l1(img, ren, probs.flip(1))) == pytest.approx(4.0)


def test_image_statistics_distance():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(40, 4, 16, 16, generator=g) * 2 - 1
    a[:, 3] = (a[:, 3] > 0).float()
    b = a.clone()
    b[:, :3] = b[:, :3] * 0.2
    sa, sb = image_statistics(a), image_statistics(b)
    assert sa.shape == (40, 10)
    assert frechet_distance(sa, sa) < 1e-6 < frechet_distance(sa, sb)


# --- training phases ------------------------------------------------------------------------------------------------

class _Optim:
    """The engine's Optimizers, built as the trainer builds them (same settings path)."""

    def __new__(cls, task, model, cfg):
        from modules.engine.optimizers import Optimizers
        return Optimizers(task.parameter_groups(model), cfg["training"], cfg["task"]["optimizers"], 10, 100)


def _run_phase(phase, steps, data_root, key, seed=0, lr=None):
    opt = "mesh_ae" if phase == "mesh_ae" else "generator"
    cfg = tiny_cfg([f"data.root={data_root}", "task.chamfer_only_iters=1000", "task.stage_2_pretrain_iters=1000",
                    "task.mode_1_iters=1000", "task.mode_2_iters=1000", "task.gen_lr_pt1_ms=[]"] +
                   ([f"task.optimizers.{opt}.lr={lr}"] if lr else []))
    task = GenRenTask(cfg["task"])
    first = {"mesh_ae": 0, "dr_pretrain": 1000, "mode_1": 2000, "mode_2": 3000, "mode_3": 4000}[phase]
    assert task.phase(first) == phase
    model = MODELS.build(cfg["model"])
    torch.manual_seed(seed)
    ds = GenrenUnpairedDataset("train", root=data_root, img_size=32, n_points=128, held_out=0.0)
    np.random.seed(seed)
    batch = batch_from(ds, 4)
    optim = _Optim(task, model, cfg)
    model.train()
    vals = []
    for s in range(steps):
        torch.manual_seed(seed + s)
        loss, logs = task.training_step(model, batch, optim, first + s)
        assert torch.isfinite(loss)
        vals.append(logs[key])
    return vals


def test_mesh_ae_pretraining_chamfer_falls(data_root):
    vals = _run_phase("mesh_ae", 30, data_root, "mesh_ae/cham_o", lr=4e-3)
    assert np.mean(vals[-3:]) < 0.5 * np.mean(vals[:3])


def test_domain_randomized_pretraining_losses_fall(data_root):
    vals = _run_phase("dr_pretrain", 12, data_root, "dr/cham_o", lr=4e-3)
    assert np.mean(vals[-3:]) < 0.7 * np.mean(vals[:3])


@pytest.mark.parametrize("phase", ["mode_1", "mode_2", "mode_3"])
def test_modes_image_reconstruction_falls(data_root, phase):
    vals = _run_phase(phase, 10, data_root, "cy2/img_l1", lr=4e-3)
    assert np.mean(vals[-3:]) < 0.8 * np.mean(vals[:3])


def test_schedule_boundaries_and_annealing():
    task = GenRenTask(load_config(os.path.join(ROOT, "configs", "genren", "BASE.yaml"))["task"])
    assert [task.phase(s) for s in (0, 4999, 5000, 7999, 8000, 10999, 11000, 13999, 14000, 99998)] == \
        ["mesh_ae", "mesh_ae", "dr_pretrain", "dr_pretrain", "mode_1", "mode_1", "mode_2", "mode_2", "mode_3", "mode_3"]
    assert task.cy2_weight(8000) == pytest.approx(0.01)
    assert task.cy2_weight(8500) == pytest.approx(0.505)
    assert task.cy2_weight(20000) == pytest.approx(0.999)
    assert task.cy1_balance(11000) == pytest.approx((0.01, 0.99))
    assert sorted(task.parameter_groups(CyclicGenRen(icosa_frequency=2, texture_ngf=32, image_critic_ndf=32,
                                                     texture_critic_ndf=32))) == \
        ["cptc_critic", "generator", "image_critic", "mesh_ae", "shape_critic", "texture_critic"]


@pytest.mark.slow
def test_engine_runs_every_phase_and_resumes(data_root, tmp_path):
    out = str(tmp_path / "run")
    cmd = [sys.executable, "genren_train.py", "tiny", out, f"data.root={data_root}", "data.held_out=0.34"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert os.path.isfile(os.path.join(out, "checkpoints", "latest.pt"))
    r = subprocess.run(cmd + ["training.max_steps=11"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "resuming from step 10" in r.stdout, r.stderr[-2000:]
    r = subprocess.run([sys.executable, "genren_loadtest.py", os.path.join(out, "checkpoints", "latest.pt"),
                        str(tmp_path / "v"), "img_recon", "--imgs_dir", os.path.join(data_root, "toy", "images"),
                        "--n", "3"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert os.path.isfile(tmp_path / "v" / "vision_grid.png")


# --- loadtest and bad input -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def state_dict_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("genren_model") / "model.state_dict.pt")
    torch.save(tiny_model().state_dict(), path)
    return path


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _in_process(main, args, capsys):
    """Run a script's main(argv) in this process (no interpreter start-up): -> Result(returncode, stdout, stderr)."""
    capsys.readouterr()
    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as err:
        code = err.code
    out = capsys.readouterr()
    return Result(code, out.out, out.err)


@pytest.fixture
def loadtest(capsys):
    import genren_loadtest
    return lambda *args: _in_process(genren_loadtest.main, args, capsys)


@pytest.fixture
def train_script(capsys):
    import genren_train
    return lambda *args: _in_process(genren_train.main, args, capsys)


def test_loadtest_modes_write_their_files(state_dict_file, data_root, tmp_path, loadtest):
    imgs, shapes = os.path.join(data_root, "toy", "images"), os.path.join(data_root, "toy", "shapes")
    r = loadtest(state_dict_file, tmp_path / "v", "img_recon", "--options_choice", "tiny", "--imgs_dir", imgs,
                 "--n", 2)
    assert r.returncode == 0, r.stderr
    names = sorted(os.listdir(tmp_path / "v"))
    assert names == ["s0_00-input.png", "s0_00-rerender.png", "s0_00-texture.png", "s0_00.ply",
                     "s0_01-input.png", "s0_01-rerender.png", "s0_01-texture.png", "s0_01.ply", "vision_grid.png"]
    import trimesh
    mesh = trimesh.load(tmp_path / "v" / "s0_00.ply", process=False)
    assert len(mesh.vertices) == 42 and len(mesh.faces) == 80 and mesh.visual.vertex_colors.shape == (42, 4)
    assert Image.open(tmp_path / "v" / "s0_00-texture.png").size == (32, 32)
    r = loadtest(state_dict_file, tmp_path / "g", "shape_recon", "--options_choice", "tiny", "--shapes_dir", shapes,
                 "--n", 2, "--n_renders", 3)
    assert r.returncode == 0, r.stderr
    renders = [n for n in os.listdir(tmp_path / "g") if "-render-" in n]
    assert len(renders) == 6 and os.path.isfile(tmp_path / "g" / "graphics_grid.png")
    # an existing folder: refused without --allow_overwrite, written with it
    r = loadtest(state_dict_file, tmp_path / "g", "shape_recon", "--options_choice", "tiny", "--shapes_dir", shapes)
    assert r.returncode == 2 and "--allow_overwrite" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = loadtest(state_dict_file, tmp_path / "g", "shape_recon", "--options_choice", "tiny", "--shapes_dir", shapes,
                 "--n", 1, "--allow_overwrite", "True")
    assert r.returncode == 0, r.stderr


def test_bad_input(state_dict_file, data_root, tmp_path, loadtest, train_script):
    imgs = os.path.join(data_root, "toy", "images")
    r = loadtest(state_dict_file, tmp_path / "x", "img_recon", "--options_choice", "nonexistent", "--imgs_dir", imgs)
    assert r.returncode == 2 and "valid option sets" in r.stderr and "chairs" in r.stderr and "tiny" in r.stderr
    r = train_script("nonexistent", tmp_path / "t")
    assert r.returncode == 2 and "valid option sets" in r.stderr and not os.path.exists(tmp_path / "t")
    # shape files of the wrong shape
    bad = tmp_path / "bad_shapes"
    genren_io.write_shape(str(bad), "a", np.zeros((50, 2), np.float32), np.zeros((50, 2), np.float32))
    r = loadtest(state_dict_file, tmp_path / "y", "shape_recon", "--options_choice", "tiny", "--shapes_dir", bad)
    assert r.returncode == 2 and "(NP,3)" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "y")
    # images without alpha: refused (one line), or masked by non-white pixels on request
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    arr = np.full((40, 40, 3), 255, np.uint8)
    arr[10:30, 12:28] = (200, 30, 30)
    Image.fromarray(arr, "RGB").save(rgb / "im.png")
    r = loadtest(state_dict_file, tmp_path / "z", "img_recon", "--options_choice", "tiny", "--imgs_dir", rgb)
    assert r.returncode == 2 and "no alpha" in r.stderr and not os.path.exists(tmp_path / "z")
    x = load_rgba(str(rgb / "im.png"), 40, "white_background")
    assert x[3].sum() == 20 * 16 and x[:3, 0, 0].tolist() == [-1.0, -1.0, -1.0]
    # an existing non-empty training folder without a checkpoint
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "note.txt").write_text("x")
    r = train_script("tiny", tmp_path / "exists", f"data.root={data_root}")
    assert r.returncode == 2 and "--allow_overwrite" in r.stderr
    with pytest.raises(ShapeLabError, match="data.root"):
        GenrenUnpairedDataset("train", root=str(tmp_path / "missing"))


def test_dataset_split_and_normalisation(data_root):
    tr = GenrenUnpairedDataset("train", root=data_root, img_size=32, n_points=100, held_out=0.34)
    va = GenrenUnpairedDataset("val", root=data_root, img_size=32, n_points=100, held_out=0.34)
    assert not {s for s, _ in tr.shapes} & {s for s, _ in va.shapes}
    assert len(tr.shapes) + len(va.shapes) == 10 and len(va.shapes) >= 1
    s = va[0]
    assert s["has_shape"] and s["image_name"].startswith(s["shape_name"] + "_")
    ext = s["points"].max(0).values - s["points"].min(0).values
    assert float(ext.max()) <= 1.0 + 1e-5 and float(ext.max()) > 0.9
    assert s["image"].shape == (4, 32, 32) and s["image"][:3].min() >= -1 and s["image"][3].max() <= 1
