"""evaluate.py end to end on a tiny hand-made generation folder (ONet and IF-Net layouts)."""
import csv
import os

import numpy as np
import pytest
import trimesh

import evaluate
from modules.data.ifnet import write_surface_samples
from modules.data.onet import write_pointcloud_npz, write_points_npz
from modules.evaluation import summarize
from modules.geometry.io import save_mesh

N = 4000  # points per cloud: small so the test is fast; the protocol's 100k is the default


def _sphere_cloud(radius, rng):
    u = rng.normal(size=(N, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return radius * u, u


@pytest.fixture()
def folders(tmp_path):
    rng = np.random.default_rng(0)
    gt, gen = tmp_path / "gt", tmp_path / "exp" / "generation"
    sphere = trimesh.creation.icosphere(4, radius=0.38)
    objects = {("03001627", "good1"): "sphere", ("03001627", "broken"): "broken",
               ("03001627", "empty"): "empty", ("02691156", "good2"): "sphere", ("02691156", "ifnet"): "ifnet",
               ("02691156", "ifnet_npy"): "ifnet_npy"}
    for (syn, oid), kind in objects.items():
        gdir, odir = gt / syn / oid, gen / syn / oid
        os.makedirs(gdir)
        os.makedirs(odir)
        if kind == "ifnet":
            gt_mesh = trimesh.creation.icosphere(4, radius=0.4)
            save_mesh(gdir / "isosurf_scaled.off", gt_mesh.vertices, gt_mesh.faces)
        elif kind == "ifnet_npy":  # IF-Net folder without the mesh: surface samples only
            write_surface_samples(gdir / "surface_30000_samples.npy", _sphere_cloud(0.4, rng)[0])
        else:
            write_pointcloud_npz(gdir / "pointcloud.npz", *_sphere_cloud(0.4, rng))
            pts = rng.uniform(-0.55, 0.55, (N, 3))
            write_points_npz(gdir / "points.npz", pts, np.linalg.norm(pts, axis=1) < 0.4)
        mesh_path = odir / "surface_reconstruction.off"
        if kind == "broken":
            mesh_path.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 9\n")
        elif kind == "empty":
            save_mesh(mesh_path, np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
        else:
            save_mesh(mesh_path, sphere.vertices, sphere.faces)
    return tmp_path


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_evaluate_end_to_end_with_a_broken_and_an_empty_mesh(folders, capsys):
    with pytest.raises(SystemExit) as exit_info:       # one object failed: exit code 1, after the summary
        evaluate.main(["-generation_path", str(folders / "exp" / "generation"), "-gt_path", str(folders / "gt"),
                       "-reconst", "-n_samples", str(N), "-iou_samples", str(N), "-no_progress"])
    assert exit_info.value.code == 1
    out_dir = folders / "exp"
    rows = {r["id"]: r for r in _read_csv(out_dir / "evaluation_results.csv")}
    assert set(rows) == {"good1", "good2", "broken", "empty", "ifnet", "ifnet_npy"}
    assert "broken/surface_reconstruction.off" in rows["broken"]["error"] and "index" in rows["broken"]["error"]
    assert rows["broken"]["iou"] == ""
    assert rows["empty"]["error"] == "" and float(rows["empty"]["chamfer-L1"]) == pytest.approx(3 ** 0.5)
    assert float(rows["empty"]["iou"]) == 0.0
    for oid in ("good1", "good2", "ifnet"):
        assert rows[oid]["error"] == ""
        assert float(rows[oid]["iou"]) == pytest.approx((0.38 / 0.4) ** 3, abs=0.03)
        assert float(rows[oid]["chamfer-L1"]) == pytest.approx(0.02, abs=0.005)
    assert rows["ifnet_npy"]["error"] == "" and rows["ifnet_npy"]["iou"] == "" and rows["ifnet_npy"]["normals"] == ""
    assert float(rows["ifnet_npy"]["chamfer-L1"]) == pytest.approx(0.02, abs=0.005)
    classes = {r["class"]: r for r in _read_csv(out_dir / "evaluation_results_classes.csv")}
    assert classes["03001627"]["objects"] == "3" and classes["03001627"]["failed"] == "1"
    assert classes["03001627"]["name"] == "chair"
    good = [float(rows[k]["iou"]) for k in ("good1", "empty", "good2", "ifnet")]
    assert float(classes["object mean"]["iou"]) == pytest.approx(np.mean(good))
    chair, plane = np.mean(good[:2]), np.mean(good[2:])
    assert float(classes["class mean"]["iou"]) == pytest.approx((chair + plane) / 2)
    md = (out_dir / "evaluation_results.md").read_text()
    assert "| **object mean** |" in md and "03001627/broken" in md
    out, err = capsys.readouterr()
    assert "1 of 6 predicted meshes are empty" in out
    assert len(err.strip().splitlines()) == 1 and "1 of 6 objects failed" in err and "broken" in err


def test_evaluate_parallel_matches_serial_and_finds_gt_from_generation_config(folders):
    from modules.evaluation import evaluate_generation
    (folders / "exp" / "generation_config.yaml").write_text(f"data:\n  root: {folders / 'gt'}\n")
    kw = dict(n_samples=N, iou_samples=N, progress=False)
    serial, _, _ = evaluate_generation(str(folders / "exp"), jobs=1, **kw)  # gt root from generation_config
    parallel, _, _ = evaluate_generation(str(folders / "exp"), gt_path=str(folders / "gt"), jobs=2, **kw)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(serial) == strip(parallel)


def test_evaluate_bad_arguments_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        evaluate.main(["-generation_path", str(tmp_path / "nope")])
    assert e.value.code == 2 and "not a folder" in capsys.readouterr().err
    os.makedirs(tmp_path / "generation")
    with pytest.raises(SystemExit) as e:
        evaluate.main(["-generation_path", str(tmp_path / "generation"), "-gt_path", str(tmp_path)])
    assert e.value.code == 2 and "no <class>/<id>/surface_reconstruction.off" in capsys.readouterr().err


def test_summary_counts_failures_and_skips_them_in_means():
    rows = [{"class": "a", "id": "1", "iou": 0.5, "error": ""}, {"class": "a", "id": "2", "error": "bad"},
            {"class": "b", "id": "3", "iou": 1.0, "error": ""}]
    summary = {e["class"]: e for e in summarize(rows)}
    assert summary["a"]["failed"] == 1 and summary["a"]["iou"] == 0.5
    assert summary["class mean"]["iou"] == 0.75 and summary["object mean"]["iou"] == 0.75


def _sphere_mesh_into(path, radius=0.38):
    sphere = trimesh.creation.icosphere(3, radius=radius)
    save_mesh(path, sphere.vertices, sphere.faces)


def test_onet_folder_without_points_npz_or_lst_files(tmp_path, capsys):
    """Partial ONet layout: pointcloud.npz only (no points.npz, no .lst): the surface metrics, IoU left empty
    and said so; -device is accepted."""
    rng = np.random.default_rng(0)
    gdir, odir = tmp_path / "gt" / "03001627" / "a", tmp_path / "exp" / "generation" / "03001627" / "a"
    os.makedirs(gdir)
    os.makedirs(odir)
    write_pointcloud_npz(gdir / "pointcloud.npz", *_sphere_cloud(0.4, rng))
    _sphere_mesh_into(odir / "surface_reconstruction.off")
    evaluate.main(["-generation_path", str(tmp_path / "exp"), "-gt_path", str(tmp_path / "gt"), "-n_samples", str(N),
                   "-no_progress", "-device", "cpu"])
    row = _read_csv(tmp_path / "exp" / "evaluation_results.csv")[0]
    assert row["error"] == "" and row.get("iou", "") == ""
    assert float(row["chamfer-L1"]) == pytest.approx(0.02, abs=0.006) and float(row["normals"]) > 0.9
    assert "no points.npz: IoU left empty" in row["note"]
    assert "1 object(s): no points.npz: IoU left empty" in capsys.readouterr().out


def _write_human_layout(root, with_labels=True):
    """The layout `preprocess.py synth` writes for humans (modules.data.humans): a sphere 'body', 2 frames."""
    from modules.data import humans
    rng = np.random.default_rng(1)
    for frame in (0, 1):
        paths = humans.frame_paths(str(root), "seq_000", frame)
        for key in ("mesh", "surface", "points"):
            os.makedirs(os.path.dirname(paths[key]), exist_ok=True)
        body = trimesh.creation.icosphere(4, radius=0.4)
        save_mesh(paths["mesh"], body.vertices, body.faces)
        pts, nrm = _sphere_cloud(0.4, rng)
        if with_labels:
            humans.write_surface_points(paths["surface"], pts, nrm, np.full(len(pts), 50))
        else:                                   # a real, unlabelled body
            np.savez(paths["surface"], points=pts.astype(np.float16), normals=nrm.astype(np.float16))
        uniform = rng.uniform(-0.55, 0.55, (N, 3))
        humans.write_points_npz(paths["points"], uniform, np.linalg.norm(uniform, axis=1) < 0.4)
    humans.write_splits_csv(os.path.join(root, "d-faust_splits.csv"), [("seq_000", 0, "test"), ("seq_000", 1, "test")])


@pytest.mark.parametrize("with_labels", [True, False])
def test_human_sequences_layout(tmp_path, with_labels):
    gt = tmp_path / "humans"
    _write_human_layout(gt, with_labels)
    for frame in ("00000", "00001"):
        odir = tmp_path / "exp" / "generation" / "seq_000" / frame
        os.makedirs(odir)
        _sphere_mesh_into(odir / "surface_reconstruction.off")
    evaluate.main(["-generation_path", str(tmp_path / "exp" / "generation"), "-gt_path", str(gt), "-data_type",
                   "human", "-n_samples", str(N), "-no_progress"])
    rows = _read_csv(tmp_path / "exp" / "evaluation_results.csv")
    assert [r["id"] for r in rows] == ["00000", "00001"]
    for row in rows:
        assert row["error"] == ""
        assert float(row["iou"]) == pytest.approx((0.38 / 0.4) ** 3, abs=0.04)
        assert float(row["chamfer-L1"]) == pytest.approx(0.02, abs=0.006)
