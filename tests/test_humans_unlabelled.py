"""Real, unlabelled bodies in the human-sequence layout: `preprocess.py mesh --formats humans` on a folder of
body meshes (.ply/.obj/.off, y-up metres like FAUST/DFAUST), the reader without part labels, Neural Parts
loading and training on it, evaluate.py -data_type human, and a corrupt file named, skipped, exit code 1.

The bodies are the embedded human generator's primitives (capsules and ellipsoids) meshed by marching
cubes, so the exact occupancy of every point is known (`synth.occupancy` on the primitives): the stored
labels are checked against it and against point-cloud-utils' winding number on the stored mesh.
(trimesh's `contains` needs rtree or embree, neither of which is installed here.)
"""
import json
import os

import numpy as np
import point_cloud_utils as pcu
import pytest
import torch
from PIL import Image

import modules.families  # noqa: F401  (registers the families)
import preprocess
from modules.config import load_config
from modules.data import humans
from modules.data.fields import FieldsDataset, PartLabelsField, PointCloudField
from modules.data.human_meshes import HUMAN_EXTENT, HUMAN_LOWEST_Y, assign_splits, plan_frames, sequence_of
from modules.data.shapes import human_sequence_params, make_human
from modules.data.synth import HUMAN_FEET_Y, HUMAN_SCALE, _normalise, mesh_of, occupancy
from modules.engine.trainer import build_components
from modules.evaluation import evaluate_generation
from modules.families.neural_parts.data import NeuralPartsDataset
from modules.geometry.io import load_mesh, save_mesh
from modules.geometry.mesh_contains import is_watertight
from modules.utils import EXIT_PARTIAL, ShapeLabError

CFG = os.path.join(os.path.dirname(__file__), "..", "configs", "neural_parts", "tiny.yaml")
METRES, SHIFT = 2.0, np.array([0.3, 0.55, -0.1])   # the test bodies: metres-like, feet off the origin


def body(seq_seed, frame, resolution=40):
    """(primitives in the canonical frame, vertices (V,3) in 'metres', faces) of one closed body."""
    prims, _ = make_human(human_sequence_params(np.random.default_rng(seq_seed)), frame)
    prims = _normalise(prims, HUMAN_SCALE, (0, HUMAN_FEET_Y, 0))
    v, f = mesh_of(prims, resolution)
    return prims, np.asarray(v, np.float64) * METRES + SHIFT, np.asarray(f, np.int64)


def run_preprocess(args):
    """preprocess.py in this process -> exit code (0 when main returns)."""
    try:
        preprocess.main(args)
        return 0
    except SystemExit as err:
        return err.code


@pytest.fixture(scope="module")
def real_bodies(tmp_path_factory):
    """Three frames of two sequences as FAUST-like files -> a humans root (one render each)."""
    src = tmp_path_factory.mktemp("bodies")
    prims, files = {}, {}
    for name, seed, frame, ext in (("walk_000", 0, 0, "ply"), ("walk_001", 0, 3, "obj"), ("jump_000", 1, 0, "off")):
        p, v, f = body(seed, frame)
        sid = name.rsplit("_", 1)[0] + "/" + f"{int(name[-3:]):05d}"
        files[sid] = str(src / f"{name}.{ext}")
        save_mesh(files[sid], v, f)
        prims[sid] = p
    out = tmp_path_factory.mktemp("out")
    code = run_preprocess(["mesh", "--in", str(src), "--formats", "humans", "--out", str(out), "-j", "1",
                           "--no-progress", "--views", "1"])
    assert code == 0
    return dict(root=str(out / "humans"), out=str(out), prims=prims, files=files)


def test_naming_rules_and_collisions(tmp_path):
    assert sequence_of("/d/FAUST/training/registrations/tr_reg_042.ply") == ("tr_reg", 42)
    assert sequence_of("/d/50002_chicken_wings/00021.obj") == ("50002_chicken_wings", 21)
    assert sequence_of("/d/scans/bob.ply") == ("bob", 0)
    assert sequence_of("/d/humans/seq_003/mesh_seq/00007.off") == ("seq_003", 7)
    assert sequence_of("/d/a b/x-7.off", "folder") == ("a_b", None)
    assert sequence_of("/d/s/tr_reg_042.ply", "file") == ("tr_reg_042", 0)
    frames = plan_frames(["/a/s/t_2.ply", "/a/s/t_10.ply", "/a/s/u.ply"])
    assert [(s, f) for _, s, f in frames] == [("t", 2), ("t", 10), ("u", 0)]
    assert [f for _, _, f in plan_frames(["/a/s/z.ply", "/a/s/b.obj"], "folder")] == [0, 1]
    with pytest.raises(ShapeLabError, match="both frame 3 of sequence 't'"):
        plan_frames(["/a/x/t_3.ply", "/a/y/t_003.obj"])
    with pytest.raises(ShapeLabError, match="would both be sequence 's'"):
        plan_frames(["/a/s/t_3.ply", "/b/s/t_4.ply"], "folder")


def test_splits_by_sequence_by_frame_and_fixed():
    frames = [(None, f"s{i}", k) for i in range(10) for k in range(4)]
    split, how = assign_splits(frames, 0, "sequence")
    by_seq = {}
    for (seq, _), name in split.items():
        by_seq.setdefault(seq, set()).add(name)
    assert how == "sequence" and all(len(v) == 1 for v in by_seq.values())       # no body in two splits
    assert sorted(n for v in by_seq.values() for n in v) == ["test"] * 2 + ["train"] * 7 + ["val"]
    one = [(None, "tr_reg", k) for k in range(100)]
    split, how = assign_splits(one, 0, "sequence")                                # FAUST: one sequence
    counts = {n: list(split.values()).count(n) for n in ("train", "val", "test")}
    assert how.startswith("frame") and counts == {"train": 70, "val": 10, "test": 20}
    assert set(assign_splits(one, 0, "test")[0].values()) == {"test"}


def test_layout_without_labels_and_plausible_occupancy(real_bodies):
    root = real_bodies["root"]
    rows = humans.read_splits_csv(os.path.join(root, "d-faust_splits.csv"))
    assert sorted((s, f) for v in rows.values() for s, f in v) == [("jump", 0), ("walk", 0), ("walk", 1)]
    assert sorted(rows) == ["test", "train", "val"]          # 3 frames of 2 sequences: one per split
    for sid, prims in real_bodies["prims"].items():
        seq, frame = sid.split("/")
        p = humans.frame_paths(root, seq, int(frame))
        for key in ("mesh", "surface", "points", "render", "camera"):
            assert os.path.isfile(p[key]), p[key]
        with np.load(p["surface"]) as z:
            assert sorted(z.files) == ["normals", "points"]                    # no labels file field
        pts, nrm, labels = humans.read_surface_points(p["surface"])
        assert labels is None and pts.shape == (100_000, 3)
        assert np.allclose(np.linalg.norm(nrm, axis=1), 1, atol=2e-3)
        mesh = load_mesh(p["mesh"])
        assert is_watertight(mesh.vertices, mesh.faces)
        u, occ = humans.read_points_npz(p["points"])
        assert len(u) == 100_000 and np.abs(u).max() <= 0.55 + 1e-3
        assert 0.005 < occ.mean() < 0.05                                       # a body in the padded box
        # the stored points taken back to the input file's frame (marker: original = stored * scale + loc),
        # against point-cloud-utils' winding number of the closed input mesh (another algorithm than ours)
        with open(os.path.join(real_bodies["out"], ".done", "99999999", f"{seq}_{frame}.json")) as f:
            m = json.load(f)
        original = u.astype(np.float64) * m["scale"] + np.asarray(m["loc"])
        src = load_mesh(real_bodies["files"][sid])
        inside = np.abs(pcu.triangle_soup_fast_winding_number(np.asarray(src.vertices, np.float64),
                                                              np.asarray(src.faces, np.int64), original)) > 0.5
        assert abs(occ.mean() - inside.mean()) < 0.02 * inside.mean()
        assert np.mean(occ == inside) > 0.999
        # and the exact occupancy of the primitives (the marching-cubes mesh is a little thinner)
        exact = occupancy(prims, (original - SHIFT) / METRES)
        assert abs(occ.mean() - exact.mean()) < 0.15 * exact.mean() and np.mean(occ == exact) > 0.995
        img = np.asarray(Image.open(p["render"]))
        assert img.shape == (224, 224, 3) and 0.02 < np.mean(img.min(-1) < 200) < 0.5
    # fitted frame: the first frame of "walk" has its feet at -0.47, longest edge 0.82 and its surface centroid
    # on the y axis, as the embedded bodies
    v = load_mesh(humans.frame_paths(root, "walk", 0)["mesh"]).vertices
    pts = humans.read_surface_points(humans.frame_paths(root, "walk", 0)["surface"])[0]
    assert v[:, 1].min() == pytest.approx(HUMAN_LOWEST_Y, abs=1e-3)
    assert (v.max(0) - v.min(0)).max() == pytest.approx(HUMAN_EXTENT, abs=1e-3)
    assert np.allclose(pts.mean(0)[[0, 2]], 0, atol=5e-3)
    # only the part-label field needs labels: a one-line error naming the file
    ds = FieldsDataset(root, "humans", "train", [PointCloudField(n=100), PartLabelsField()])
    with pytest.raises(ShapeLabError, match=r"surface_points_seq/\d{5}\.npz: no part 'labels'"):
        ds[0]


def test_neural_parts_loads_and_trains_on_the_unlabelled_sequence(real_bodies):
    ds = NeuralPartsDataset(real_bodies["root"], "humans", "train", image_size=32, n_surface=300, n_volume=2000)
    s = ds[0]
    assert s["image"].shape == (3, 32, 32) and s["surface_points"].shape == (300, 3)
    assert abs(float(s["occ"].mean()) - 0.5) < 0.05                 # the original's "equal" in/out sampling
    assert abs(float((s["weights"] * s["occ"]).mean()) - 0.015) < 0.01   # weighted: the true inside fraction
    # one training step with the engine's components (registries, config), without checkpoint I/O
    cfg = load_config(CFG, [f"data.root={real_bodies['root']}", "data.image_size=32", "data.n_volume=300"])
    model, task, train_set, val_set = build_components(cfg, "cpu")
    assert len(train_set) == 1 and len(val_set) == 1
    torch.manual_seed(0)
    batch = train_set.collate([train_set[0]])
    loss, terms = task.loss(model, batch)
    assert torch.isfinite(loss) and set(terms) >= {"reconstruction", "occupancy"}
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    loss.backward()
    torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3).step()
    after = [p.detach() for p in model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


def test_evaluate_human_against_unlabelled_ground_truth(real_bodies, tmp_path):
    root = real_bodies["root"]
    gen = tmp_path / "generation" / "walk" / "00001"
    gen.mkdir(parents=True)
    m = load_mesh(humans.frame_paths(root, "walk", 1)["mesh"])
    save_mesh(str(gen / "surface_reconstruction.off"), m.vertices, m.faces)     # a perfect reconstruction
    rows, summary, _ = evaluate_generation(str(tmp_path / "generation"), root, n_samples=5000, iou_samples=5000,
                                           data_type="human", progress=False)
    assert len(rows) == 1 and rows[0]["error"] == ""
    assert rows[0]["iou"] > 0.99 and rows[0]["chamfer-L1"] < 0.01


def test_corrupt_file_is_named_skipped_and_exit_partial(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _, v, f = body(2, 0, resolution=24)
    save_mesh(str(src / "tr_reg_000.ply"), v, f)
    (src / "tr_reg_001.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n0 0\n")
    out = tmp_path / "out"
    code = run_preprocess(["mesh", "--in", str(src), "--formats", "humans", "--out", str(out), "-j", "1",
                           "--no-progress", "--views", "0"])
    err = capsys.readouterr()
    assert code == EXIT_PARTIAL
    assert "tr_reg_001.ply" in err.err and len(err.err.strip().splitlines()) == 1
    assert "unreadable" in err.out and "tr_reg/00000" in err.out
    assert os.path.isfile(humans.frame_paths(str(out / "humans"), "tr_reg", 0)["points"])
    assert not os.path.exists(humans.frame_paths(str(out / "humans"), "tr_reg", 1)["points"])
    assert "unreadable" in (out / "humans_report.csv").read_text()
    with pytest.raises(ShapeLabError, match=r"renderings-downsampled/00000\.png: input render not found.*--views"):
        split, = humans.read_splits_csv(str(out / "humans" / "d-faust_splits.csv"))
        NeuralPartsDataset(str(out / "humans"), "humans", split)        # written with --views 0


def test_other_axes_resume_and_a_changed_split(tmp_path, capsys):
    """A z-up copy (--up z --front=-y) gives the same stored body as the y-up original; a rerun skips finished
    frames, and a rerun with another split only moves them in d-faust_splits.csv."""
    _, v, f = body(3, 0, resolution=24)
    turn = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], np.float64)      # y up -> z up, front +z -> -y
    (tmp_path / "y").mkdir()
    (tmp_path / "z").mkdir()
    save_mesh(str(tmp_path / "y" / "s_000.obj"), v, f)
    save_mesh(str(tmp_path / "z" / "s_000.obj"), v @ turn.T, f)
    common = ["-j", "1", "--no-progress", "--views", "0", "--formats", "humans"]
    assert run_preprocess(["mesh", "--in", str(tmp_path / "y"), "--out", str(tmp_path / "oy")] + common) == 0
    assert run_preprocess(["mesh", "--in", str(tmp_path / "z"), "--out", str(tmp_path / "oz"), "--up", "z",
                           "--front=-y"] + common) == 0
    a, b = (load_mesh(humans.frame_paths(str(tmp_path / o / "humans"), "s", 0)["mesh"]).vertices for o in ("oy", "oz"))
    assert np.allclose(a, b, atol=1e-5)
    capsys.readouterr()
    assert run_preprocess(["mesh", "--in", str(tmp_path / "y"), "--out", str(tmp_path / "oy"),
                           "--split_by", "test"] + common) == 0
    assert "0 written, 1 already done" in capsys.readouterr().out
    csv = humans.read_splits_csv(str(tmp_path / "oy" / "humans" / "d-faust_splits.csv"))
    assert csv == {"test": [("s", 0)]}
