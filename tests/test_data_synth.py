"""The procedural dataset: primitives' distances, grammars, exact labels, determinism, resume,
readers on generated files, and real-mesh preprocessing with a corrupt file."""
import os

import numpy as np
import pytest

from modules.data import categories, genren, humans, ifnet, onet, r2n2, shapenet_part
from modules.data.primitives import (Box, Capsule, Clipped, Cone, Cylinder, Difference, Ellipsoid, Sphere, Torus,
                                     rotation, union_sdf, grid_sdf)
from modules.data.shapes import MAKERS
from modules.data.synth import SynthConfig, build_shape, generate, occupancy, sample_shape, sample_surface

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXACT = [
    Box(0, (0.3, 0.2, 0.1), center=(0.05, 0, 0), rot=rotation("y", 0.4), radius=0.03),
    Sphere(0, 0.3, center=(0.1, 0.0, -0.1)),
    Cylinder(0, 0.2, 0.3, rot=rotation("x", 0.7), rounding=0.02),
    Capsule(0, (-0.2, 0, 0), (0.2, 0.3, 0.1), 0.08),
    Torus(0, 0.3, 0.07, rot=rotation("z", 0.5)),
    Cone(0, 0.3, 0.05, 0.25, rot=rotation("x", 0.3)),
]


def _grad(prim, p, eps=1e-6):
    g = np.stack([(prim.sdf(p + e) - prim.sdf(p - e)) / (2 * eps) for e in np.eye(3) * eps], 1)
    return g


@pytest.mark.parametrize("prim", EXACT, ids=lambda p: p.kind)
def test_primitive_sdf_is_a_distance(prim):
    """Exact SDF: |grad| = 1 away from the medial axis, and x - sdf(x) grad(x) lands on the surface."""
    rng = np.random.default_rng(0)
    p = rng.uniform(-0.7, 0.7, (4000, 3))
    d = prim.sdf(p)
    g = _grad(prim, p)
    norm = np.linalg.norm(g, axis=1)
    outside = d > 0.01
    assert np.mean(np.abs(norm[outside] - 1) < 1e-3) > 0.99
    q = p[outside] - d[outside, None] * g[outside] / norm[outside, None]
    assert np.mean(np.abs(prim.sdf(q)) < 1e-4) > 0.99


def test_transformed_primitive_scales_distance():
    rng = np.random.default_rng(1)
    p = rng.uniform(-1, 1, (500, 3))
    for prim in EXACT + [Ellipsoid(0, (0.3, 0.2, 0.1)), Clipped(Sphere(0, 0.3), [((0, 1, 0), (0, 0.1, 0))]),
                         Difference(Sphere(0, 0.3), Sphere(0, 0.2, center=(0, 0.2, 0)))]:
        t = prim.transformed(2.0, np.array([0.1, -0.2, 0.3]))
        np.testing.assert_allclose(t.sdf(p * 2.0 + [0.1, -0.2, 0.3]), 2.0 * prim.sdf(p), atol=1e-9)


def test_culled_union_matches_dense():
    shape_prims, _ = MAKERS["chair"](np.random.default_rng(3))
    p = np.random.default_rng(0).uniform(-1, 1, (20000, 3))
    dense, lab = union_sdf(shape_prims, p)
    culled, lab2 = union_sdf(shape_prims, p, far=0.05)
    near = dense < 0.05
    np.testing.assert_array_equal(dense[near], culled[near])
    np.testing.assert_array_equal(lab[near], lab2[near])
    np.testing.assert_array_equal(dense < 0, occupancy(shape_prims, p))
    # coarse-to-fine grid equals the dense grid wherever the sign matters (near the surface)
    g = grid_sdf(shape_prims, 40, -2.0, 2.0)
    c = np.linspace(-2, 2, 40)
    full = union_sdf(shape_prims, np.stack(np.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 3))[0].reshape(g.shape)
    assert np.array_equal(g < 0, full < 0)
    band = np.abs(full) < 0.1
    np.testing.assert_allclose(g[band], full[band])


@pytest.mark.parametrize("name", categories.ALL_CATEGORIES)
def test_grammar_covers_parts_and_varies(name):
    ids = set(categories.part_ids(name))
    seen, variants = set(), set()
    for i in range(60):
        if name == "human":
            from modules.data.shapes import human_sequence_params, make_human
            prims, v = make_human(human_sequence_params(np.random.default_rng(i)), i % 20)
        else:
            prims, v = MAKERS[name](np.random.default_rng(i))
        labels = {p.part for p in prims}
        assert labels <= ids, f"{name}: labels {labels - ids} are not part ids of the category"
        seen |= labels
        variants.add(v)
    assert seen == ids, f"{name}: part ids {ids - seen} never generated"
    assert len(variants) >= 3 or name == "human" and len(variants) >= 2


@pytest.mark.parametrize("name", ["chair", "lamp", "mug", "airplane", "human"])
def test_labels_agree_with_exported_mesh(name):
    """Exact SDF occupancy vs mesh_contains on the marching-cubes mesh; samples lie on the mesh."""
    from modules.geometry.mesh_contains import mesh_contains
    shape = build_shape(name, 1, seed=0, resolution=96)
    if name != "human":
        ext = shape.vertices.max(0) - shape.vertices.min(0)
        assert ext.max() == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(shape.vertices.max(0) + shape.vertices.min(0), 0, atol=1e-5)
    cfg = SynthConfig(n_surface=4000, n_uniform=20000)
    s = sample_shape(shape, cfg, np.random.default_rng(0))
    inside = mesh_contains(shape.vertices, shape.faces, s["uniform"])
    assert np.mean(inside == s["uniform_occ"]) > 0.995
    assert s["uniform_occ"].any()
    assert set(np.unique(s["labels"])) <= set(categories.part_ids(name))
    # normals agree with the analytic SDF gradient
    eps = 1e-5
    g = np.stack([union_sdf(shape.prims, s["surface"] + e)[0] - union_sdf(shape.prims, s["surface"] - e)[0]
                  for e in np.eye(3) * eps], 1)
    g /= np.linalg.norm(g, axis=1, keepdims=True) + 1e-12
    assert np.median(np.sum(g * s["normals"], 1)) > 0.95


def test_surface_sampler_lies_on_triangles():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 2]], float)
    f = np.array([[0, 1, 2], [0, 3, 1]])
    pts, nrm = sample_surface(v, f, 20000, np.random.default_rng(0))
    on_first = np.abs(pts[:, 2]) < 1e-12
    on_second = np.abs(pts[:, 1]) < 1e-12
    assert np.all(on_first | on_second)
    # area-weighted: the second triangle has twice the area
    assert np.mean(on_second) == pytest.approx(2 / 3, abs=0.02)
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1, atol=1e-9)


def _small_cfg(out, **kw):
    return SynthConfig(out=str(out), views=1, n_surface=3000, n_uniform=3000, n_ifnet_surface=1000,
                       n_part_points=500, n_genren=500, resolution=48, **kw)


def _tree_bytes(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = generate(_small_cfg(out), ["chair", "human"], 2, jobs=1, progress=False)
    assert summary["written"] == 4 and not summary["failed"]
    return out


def test_same_seed_same_bytes_and_resume(small_dataset, tmp_path):
    again = generate(_small_cfg(tmp_path / "b"), ["human", "chair"], 2, jobs=2, progress=False)
    assert again["written"] == 4
    a, b = _tree_bytes(small_dataset), _tree_bytes(tmp_path / "b")
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []
    # resume: everything done is skipped; a shape without its marker is redone
    os.remove(os.path.join(tmp_path / "b", ".done", "03001627", "synth_00001.json"))
    res = generate(_small_cfg(tmp_path / "b"), ["human", "chair"], 2, jobs=1, progress=False)
    assert (res["skipped"], res["written"]) == (3, 1)
    c = generate(_small_cfg(tmp_path / "c", seed=1), ["chair"], 1, progress=False)
    assert c["written"] == 1
    assert _tree_bytes(tmp_path / "c")["onet/03001627/synth_00000/points.npz"] != a["onet/03001627/synth_00000/points.npz"]


def test_readers_load_generated_files(small_dataset):
    from modules.geometry.binvox import read_binvox
    root = str(small_dataset)
    sp = os.path.join(root, "shapenet_part")
    assert shapenet_part.read_synsetoffset2category(sp) == {"chair": "03001627"}
    items = sum((shapenet_part.read_split(sp, s) for s in shapenet_part.SPLITS), [])
    assert sorted(items) == [("03001627", "synth_00000"), ("03001627", "synth_00001")]
    shape = shapenet_part.read_shape(sp, *items[0])
    assert shape["points"].shape == (500, 3) and set(shape["labels"]) <= set(categories.part_ids("chair"))
    on = os.path.join(root, "onet")
    ids = sum((onet.read_split(on, s) for s in onet.SPLITS), [])
    assert len(ids) == 2 and onet.read_metadata(on)["03001627"]["name"] == "chair"
    d = os.path.join(on, *ids[0])
    pts, occ = onet.read_points_npz(os.path.join(d, "points.npz"))
    assert pts.shape == (3000, 3) and occ.any() and np.abs(pts).max() <= 0.55
    pc, nrm = onet.read_pointcloud_npz(os.path.join(d, "pointcloud.npz"))
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1, atol=2e-3)
    assert len(onet.read_cameras_npz(os.path.join(d, "img_choy2016", "cameras.npz"), num_views=1)) == 1
    split = ifnet.read_split_npz(os.path.join(root, "ifnet", "split.npz"))
    assert sorted(sum(split.values(), [])) == ["03001627/synth_00000", "03001627/synth_00001"]
    p, o = ifnet.read_boundary_samples(os.path.join(root, "ifnet", "03001627", "synth_00000", "boundary_0.01_samples.npz"))
    assert p.shape == (3000, 3) and 0.2 < o.mean() < 0.8     # sigma 0.01 straddles the surface
    images, meta = r2n2.read_renderings(os.path.join(root, "r2n2"), "03001627", "synth_00000")
    assert images.shape == (1, 137, 137, 4) and (images[0, ..., 3] > 0).mean() > 0.02
    grid, _, _ = read_binvox(r2n2.binvox_path(os.path.join(root, "r2n2"), "03001627", "synth_00000"))
    assert grid.shape == (32, 32, 32) and grid.any()
    hs = humans.read_splits_csv(os.path.join(root, "humans", "d-faust_splits.csv"))
    frames = sum(hs.values(), [])
    assert sorted(frames) == [("seq_000", 0), ("seq_000", 1)] and len(hs) == 1   # one sequence, one split
    paths = humans.frame_paths(os.path.join(root, "humans"), "seq_000", 1)
    hp, hn, hl = humans.read_surface_points(paths["surface"])
    assert set(np.unique(hl)) <= set(categories.part_ids("human"))
    assert r2n2.read_image(paths["render"], "RGB").shape == (224, 224, 3)
    pcs, nrms = genren.read_shape(os.path.join(root, "genren", "chair", "shapes"), "synth_00000")
    assert pcs.shape == (500, 3)


def test_corrupt_mesh_is_reported_and_skipped(tmp_path):
    import trimesh
    from modules.data.mesh_dataset import MeshConfig, preprocess_meshes
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    trimesh.creation.box().export(src / "box.obj")
    trimesh.creation.icosphere(1).export(src / "sub" / "ball.off")
    (src / "broken.obj").write_text("v 0 0\nf 1 2 7\n")
    cfg = MeshConfig(out=str(tmp_path / "out"), views=0, formats=("onet", "ifnet"), n_surface=2000, n_uniform=2000)
    summary = preprocess_meshes(cfg, [str(src)], jobs=1, progress=False)
    assert summary["written"] == 2
    assert [os.path.basename(p) for p, _ in summary["failed"]] == ["broken.obj"]
    pts, occ = onet.read_points_npz(tmp_path / "out" / "onet" / "mesh" / "box" / "points.npz")
    # a unit box normalised to the unit cube: inside iff all |x| < 0.5 (points are stored as float16,
    # so those within float16 rounding of the faces are left out)
    clear = np.all(np.abs(np.abs(pts) - 0.5) > 1e-3, axis=1)
    np.testing.assert_array_equal(occ[clear], np.all(np.abs(pts) < 0.5, axis=1)[clear])
    assert preprocess_meshes(cfg, [str(src)], progress=False)["skipped"] == 2


def test_cli_parts_and_errors(capsys):
    import preprocess
    preprocess.main(["parts", "--category", "lamp"])
    out = capsys.readouterr().out
    assert "24 base" in out and "27 tube" in out
    with pytest.raises(SystemExit) as exit_info:
        preprocess.main(["synth", "--categories", "chiar", "--per-category", "1"])
    assert exit_info.value.code == 2 and "did you mean chair" in capsys.readouterr().err


def test_xyz_export_subdivides(tmp_path):
    """NST seed preprocessing: one Loop subdivision of a closed mesh adds one vertex per edge."""
    import trimesh
    from modules.data.mesh_dataset import mesh_to_xyz
    from modules.geometry.io import load_point_cloud
    box = trimesh.creation.box()
    box.export(tmp_path / "box.off")
    n_edges = len(box.edges_unique)
    assert mesh_to_xyz(str(tmp_path / "box.off"), str(tmp_path / "box.xyz"), iters=0) == 8
    assert mesh_to_xyz(str(tmp_path / "box.off"), str(tmp_path / "box.xyzn"), iters=1) == 8 + n_edges
    cloud = load_point_cloud(tmp_path / "box.xyzn")
    assert cloud["points"].shape == (8 + n_edges, 3)
    np.testing.assert_allclose(np.linalg.norm(cloud["normals"], axis=1), 1, atol=1e-4)
    assert load_point_cloud(tmp_path / "box.xyz")["normals"] is None


def test_mesh_item_names():
    from modules.data.mesh_dataset import mesh_items
    items = mesh_items(["sn/03001627/abc/models/model_normalized.obj", "sn/02691156/xyz/model.obj",
                        "scans/a/part.ply", "scans/b/part.ply", "scans/c.off"])
    assert [(s, i) for _, s, i in items][:2] == [("03001627", "abc"), ("02691156", "xyz")]
    names = [i for _, s, i in items[2:]]
    assert len(set(names)) == 3 and names[2] == "c" and all(s == "mesh" for _, s, _ in items[2:])
