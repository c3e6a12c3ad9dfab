"""Readers of the real dataset formats on small hand-written files (as the original tools write them)."""
import json
import os

import numpy as np
import pytest
import torch

from modules.data import genren, humans, ifnet, onet, r2n2, shapenet_part
from modules.utils import ShapeLabError


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_shapenet_part_handwritten(tmp_path):
    root = str(tmp_path)
    _write(f"{root}/synsetoffset2category.txt", "Airplane\t02691156\nChair\t03001627\n")
    _write(f"{root}/03001627/points/abc.pts", "0.1 0.2 0.3\n-0.1 0.0 0.25\n0 0 0\n")
    _write(f"{root}/03001627/points_label/abc.seg", "1\n3\n4\n")
    _write(f"{root}/train_test_split/shuffled_train_file_list.json",
           json.dumps(["shape_data/03001627/abc", "shape_data/02691156/xyz"]))
    assert shapenet_part.read_synsetoffset2category(root) == {"airplane": "02691156", "chair": "03001627"}
    shape = shapenet_part.read_shape(root, "03001627", "abc")
    # the file is in ShapeNet v1 axes (front +x); read in the canonical frame (front +z): x = -z1, z = x1
    np.testing.assert_allclose(shape["points"][1], [-0.25, 0.0, -0.1], rtol=1e-6)
    raw = shapenet_part.read_shape(root, "03001627", "abc", frame="canonical")
    np.testing.assert_allclose(raw["points"][1], [-0.1, 0.0, 0.25], rtol=1e-6)
    assert shape["labels"].tolist() == [12, 14, 15]          # chair offset 12, local 1..4
    assert shape["category"] == "chair"
    assert shapenet_part.read_split(root, "train") == [("03001627", "abc"), ("02691156", "xyz")]


def test_shapenet_part_errors_name_file(tmp_path):
    root = str(tmp_path)
    _write(f"{root}/03001627/points/a.pts", "0 0 0\n1 1 1\n")
    _write(f"{root}/03001627/points_label/a.seg", "1\n")
    with pytest.raises(ShapeLabError, match=r"a\.seg: 1 labels but the \.pts file has 2"):
        shapenet_part.read_shape(root, "03001627", "a")
    _write(f"{root}/03001627/points_label/a.seg", "1\n5\n")
    with pytest.raises(ShapeLabError, match="label 5 out of range 1..4"):
        shapenet_part.read_shape(root, "03001627", "a")
    _write(f"{root}/train_test_split/shuffled_val_file_list.json", json.dumps(["03001627/a"]))
    with pytest.raises(ShapeLabError, match="shape_data/<synset>/<id>"):
        shapenet_part.read_split(root, "val")


def test_onet_handwritten(tmp_path):
    d = tmp_path / "02691156" / "m1"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    pts = rng.uniform(-0.55, 0.55, (1001, 3)).astype(np.float16)
    occ = rng.random(1001) < 0.3
    # exactly as ONet's sample_mesh.py stores them: float16 points, packbits occupancies, loc/scale
    np.savez(d / "points.npz", points=pts, occupancies=np.packbits(occ), loc=np.zeros(3), scale=1.0)
    np.savez(d / "pointcloud.npz", points=pts, normals=pts, loc=np.zeros(3), scale=1.0)
    p, o = onet.read_points_npz(d / "points.npz", frame="canonical")     # as stored
    assert p.dtype == np.float32 and o.dtype == bool and np.array_equal(o, occ)
    np.testing.assert_array_equal(p, pts.astype(np.float32))
    p, _ = onet.read_points_npz(d / "points.npz")                        # ShapeNet v1 axes -> canonical
    assert p.dtype == np.float32
    np.testing.assert_array_equal(p, np.stack([-pts[:, 2], pts[:, 1], pts[:, 0]], 1).astype(np.float32))
    p2, n2 = onet.read_pointcloud_npz(d / "pointcloud.npz")
    assert p2.shape == n2.shape == (1001, 3)
    np.savez(d / "bad.npz", points=pts)
    with pytest.raises(ShapeLabError, match=r"bad\.npz.*occupancies"):
        onet.read_points_npz(d / "bad.npz")
    np.savez(d / "bad2.npz", points=pts, occupancies=np.zeros(7, np.uint8))
    with pytest.raises(ShapeLabError, match="packbits of 1001 booleans"):
        onet.read_points_npz(d / "bad2.npz")
    _write(str(tmp_path / "02691156" / "train.lst"), "m1\nm2\n\n")
    assert onet.read_split(str(tmp_path), "train") == [("02691156", "m1"), ("02691156", "m2")]
    cams = {"world_mat_0": np.eye(4)[:3], "camera_mat_0": np.eye(3)}
    np.savez(d / "cameras.npz", **cams)
    (w, c), = onet.read_cameras_npz(d / "cameras.npz")
    assert w.shape == (3, 4) and c.shape == (3, 3)


def test_ifnet_handwritten(tmp_path):
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(500, 3))                 # the original stores float64 plus grid_coords
    occ = rng.random(500) < 0.5
    np.savez(tmp_path / "boundary_0.1_samples.npz", points=pts, occupancies=occ, grid_coords=pts)
    p, o = ifnet.read_boundary_samples(tmp_path / "boundary_0.1_samples.npz")
    assert p.dtype == np.float32 and np.array_equal(o, occ)
    np.save(tmp_path / "surface_30000_samples.npy", pts)
    assert ifnet.read_surface_samples(tmp_path / "surface_30000_samples.npy").shape == (500, 3)
    np.savez(tmp_path / "split.npz", train=np.array(["02691156/a", "02691156/b"]), val=np.array([]),
             test=np.array(["03001627/c"]))
    split = ifnet.read_split_npz(tmp_path / "split.npz")
    assert split == {"train": ["02691156/a", "02691156/b"], "val": [], "test": ["03001627/c"]}
    np.save(tmp_path / "bad.npy", pts[:, :2])
    with pytest.raises(ShapeLabError, match=r"must have shape \(N,3\)"):
        ifnet.read_surface_samples(tmp_path / "bad.npy")


def test_r2n2_handwritten(tmp_path):
    from PIL import Image
    d = r2n2.rendering_dir(str(tmp_path), "03001627", "m")
    os.makedirs(d)
    # two lines as in ShapeNetRendering's rendering_metadata.txt
    _write(os.path.join(d, "rendering_metadata.txt"), "293.7 25.9 0 0.8 25\n120.5 28.1 0 0.71 25\n")
    for i in range(2):
        Image.fromarray(np.full((137, 137, 4), 40 * i, np.uint8)).save(os.path.join(d, f"{i:02d}.png"))
    images, meta = r2n2.read_renderings(str(tmp_path), "03001627", "m")
    assert images.shape == (2, 137, 137, 4) and meta.shape == (2, 5)
    assert meta[1, 0] == pytest.approx(120.5)
    _write(os.path.join(d, "rendering_metadata.txt"), "1 2 3\n")
    with pytest.raises(ShapeLabError, match="expected 5 columns"):
        r2n2.read_rendering_metadata(os.path.join(d, "rendering_metadata.txt"))
    _write(str(tmp_path / "split.json"), json.dumps({"train": {"03001627": {"m": [0, 1]}}}))
    assert r2n2.read_split(str(tmp_path / "split.json"), "train") == [("03001627", "m", [0, 1])]


def test_humans_and_genren_handwritten(tmp_path):
    _write(str(tmp_path / "d-faust_splits.csv"), "id,split\n50002_walk/00003,train\n50002_walk/00004,test\n")
    assert humans.read_splits_csv(tmp_path / "d-faust_splits.csv") == {"train": [("50002_walk", 3)],
                                                                       "test": [("50002_walk", 4)]}
    _write(str(tmp_path / "bad.csv"), "sequence,frame\n")
    with pytest.raises(ShapeLabError, match="'id,split'"):
        humans.read_splits_csv(tmp_path / "bad.csv")
    shapes = tmp_path / "shapes"
    shapes.mkdir()
    torch.save(torch.rand(50, 3), shapes / "a.PC.pt")        # as genren's preprocessing writes them
    torch.save(torch.rand(50, 3), shapes / "a.normals.pt")
    torch.save(torch.rand(50, 2), shapes / "b.PC.pt")
    pc, nrm = genren.read_shape(str(shapes), "a")
    assert pc.shape == nrm.shape == (50, 3)
    assert genren.list_shapes(str(shapes)) == ["a", "b"]
    with pytest.raises(ShapeLabError, match=r"b\.PC\.pt.*\(NP,3\)"):
        genren.read_shape(str(shapes), "b")


def test_npz_writer_roundtrip_and_bytes(tmp_path):
    from modules.data.npz import save_npz
    a = np.arange(10, dtype=np.float32)
    save_npz(tmp_path / "x.npz", a=a, b=np.array(["u", "vw"]))
    save_npz(tmp_path / "y.npz", a=a, b=np.array(["u", "vw"]))
    assert (tmp_path / "x.npz").read_bytes() == (tmp_path / "y.npz").read_bytes()
    with np.load(tmp_path / "x.npz") as d:
        np.testing.assert_array_equal(d["a"], a)
        assert d["b"].tolist() == ["u", "vw"]
