"""The real-DFAUST reader/preprocessor on tiny registrations files written in exactly DFAUST's layout."""
import os

import h5py
import numpy as np
import pytest

from modules.data import humans
from modules.data.dfaust import parse_args, run_dfaust, scan_hdf5
from modules.geometry import ico_sphere
from modules.utils import ShapeLabError

CENTRE, RADIUS = np.array([0.0, 0.55, 0.0]), 0.4     # metres: stored frame = origin, radius 0.2


def sphere():
    s = ico_sphere(2)
    return s.verts_list()[0].numpy().astype(np.float64), s.faces_list()[0].numpy()


def write_registrations(path, sequences, faces=True, drop_face=False):
    """DFAUST layout: '<subject>_<sequence>' (V,3,T) vertices and 'faces' (F,3)."""
    v, f = sphere()
    with h5py.File(path, "w") as h:
        for name, T in sequences.items():
            frames = np.stack([v * RADIUS + CENTRE + [0.01 * t, 0, 0] for t in range(T)], axis=2)
            h.create_dataset(name, data=frames.astype(np.float32))
        if faces:
            h.create_dataset("faces", data=(f[1:] if drop_face else f).astype(np.uint32))
    return path


def write_splits(path, rows):
    with open(path, "w") as fh:
        fh.write("id,split\n" + "".join(f"{s}/{k:05d},{sp}\n" for s, k, sp in rows))


def args_for(tmp_path, *extra):
    return parse_args(["--hdf5", str(tmp_path / "registrations_m.hdf5"), "--out", str(tmp_path / "out"),
                       "--n_surface", "500", "--n_volume", "3000", "--image_size", "32", "--no-progress", *extra])


@pytest.fixture
def dfaust_dir(tmp_path):
    write_registrations(tmp_path / "registrations_m.hdf5", {"50002_jumping": 23, "50004_punching": 22})
    write_splits(tmp_path / "d-faust_splits.csv", [("50002_jumping", 19, "train"), ("50002_jumping", 20, "train"),
                                                   ("50002_jumping", 22, "val"), ("50004_punching", 21, "test")])
    return tmp_path


def test_writes_the_human_layout_skipping_20_frames_and_honouring_the_splits(dfaust_dir):
    summary = run_dfaust(args_for(dfaust_dir))
    out = str(dfaust_dir / "out")
    assert summary["written"] == 3 and not summary["failed"]
    # frame 19 is listed but among the 20 skipped; 50002/00021 and 50004/00020 are not listed
    assert humans.read_splits_csv(os.path.join(out, "d-faust_splits.csv")) == {
        "train": [("50002_jumping", 20)], "val": [("50002_jumping", 22)], "test": [("50004_punching", 21)]}
    p = humans.frame_paths(out, "50002_jumping", 22)
    pts, nrm, labels = humans.read_surface_points(p["surface"])
    shift = np.array([0.01 * 22, 0, 0]) / 2                          # stored = (x - (0,0.55,0)) / 2
    assert pts.shape == (500, 3) and (labels == -1).all()
    assert np.allclose(np.linalg.norm(pts - shift, axis=1), 0.2, atol=5e-3)
    assert np.allclose(np.linalg.norm(nrm, axis=1), 1, atol=1e-2)
    vol, occ = humans.read_points_npz(p["points"])
    assert vol.shape == (3000, 3) and np.abs(vol).max() <= 0.55 + 1e-3
    d = np.linalg.norm(vol - shift, axis=1)
    assert (occ[d < 0.18] == 1).all() and (occ[d > 0.21] == 0).all()
    assert os.path.isfile(p["mesh"]) and os.path.isfile(p["render"]) and os.path.isfile(p["camera"])
    # resumable: a second run writes nothing
    assert run_dfaust(args_for(dfaust_dir))["written"] == 0


def test_shards_split_the_frames(dfaust_dir):
    a = run_dfaust(args_for(dfaust_dir, "--shard", "0/2"))
    b = run_dfaust(args_for(dfaust_dir, "--shard", "1/2"))
    assert (a["written"], b["written"]) == (2, 1)
    rows = humans.read_splits_csv(str(dfaust_dir / "out" / "d-faust_splits.csv"))
    assert sum(len(v) for v in rows.values()) == 3


@pytest.mark.parametrize("case, match", [
    ("no_faces", "has no 'faces' dataset"),
    ("short", "has 15 frames, not more than the 20 skipped"),
    ("open", "not watertight"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, case, match):
    write_registrations(tmp_path / "registrations_m.hdf5", {"50002_jumping": 15 if case == "short" else 22},
                        faces=case != "no_faces", drop_face=case == "open")
    write_splits(tmp_path / "d-faust_splits.csv", [("50002_jumping", 20, "train")])
    with pytest.raises(ShapeLabError, match=match) as err:
        run_dfaust(args_for(tmp_path))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_allow_open_uses_winding_numbers(tmp_path):
    write_registrations(tmp_path / "registrations_m.hdf5", {"50002_jumping": 21}, drop_face=True)
    write_splits(tmp_path / "d-faust_splits.csv", [("50002_jumping", 20, "train")])
    assert run_dfaust(args_for(tmp_path, "--allow_open"))["written"] == 1
    assert scan_hdf5(str(tmp_path / "registrations_m.hdf5")) == {"50002_jumping": 21}


def test_preprocess_dfaust_subcommand_reports_a_missing_file(tmp_path, capsys):
    import preprocess
    with pytest.raises(SystemExit) as exit_:
        preprocess.main(["dfaust", "--hdf5", str(tmp_path / "registrations_m.hdf5"), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "registrations_m.hdf5" in err[0]
    assert not (tmp_path / "out").exists()
