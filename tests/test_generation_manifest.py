"""generate.py records its run in generation/manifest.yaml; evaluate.py scores exactly those objects, not meshes an
earlier run left in a reused folder, and keeps scoring every mesh of a folder without a manifest (older runs)."""
import csv
import os
import shutil

import pytest
import torch
import yaml

import evaluate
import generate
from modules.config import resolve
from modules.engine.checkpoint import save_checkpoint
from modules.evaluation import MANIFEST_NAME, manifest_meshes, write_manifest
from modules.geometry.io import save_mesh
from modules.registry import MODELS
from test_occupancy_pipeline import SYNSET, make_tiny_data

TINY = {"npoints_per_layer": [64, 32, 16], "encoder_nneigh": 8, "encoder_nneigh_reduced": 8, "nfinal_trans": 1,
        "encoder_attn_dim": 16, "encoder_attn_dim_reduced": 16, "decoder_attn_dim": 16, "decoder_nneigh": 4,
        "decoder_hidden_dim": 16, "decoder_nblocks": 1}
EVAL = ["-n_samples", "400", "-iou_samples", "400", "-no_progress"]


@pytest.fixture()
def setup(tmp_path, single_thread):
    """Tiny ONet-layout data (4 ellipsoids: shape_00..01 train, shape_02 val, shape_03 test) and an untrained tiny
    AIR-Net checkpoint in an experiment folder."""
    make_tiny_data(str(tmp_path / "data"), n_shapes=4, n_points=600)
    cfg = resolve({"model": {"name": "airnet", **TINY},
                   "data": {"name": "occupancy", "format": "onet", "root": str(tmp_path / "data" / "onet"),
                            "pc_samples": 64},
                   "task": {"name": "occupancy"}})
    torch.manual_seed(0)
    model = MODELS.build(cfg["model"])
    exp = tmp_path / "experiments" / "tiny"
    (exp / "checkpoints").mkdir(parents=True)
    save_checkpoint(str(exp / "checkpoints" / "latest.pt"),
                    {"model": model.state_dict(), "model_name": "airnet", "config": cfg, "epoch": 1, "step": 1})
    return tmp_path


def _generate(base, *extra):
    generate.main(["-exp_name", "tiny", "--exp_root", str(base / "experiments"), "-method", "mcubes",
                   "-mcubes_res", "8", "--no_pictures", *extra])
    return base / "experiments" / "tiny" / "evaluation_latest_@8" / "generation"


def _stale_mesh(gen, cls, obj):
    """A mesh as an earlier run on other data would have left it (a small tetrahedron)."""
    path = gen / cls / obj / "surface_reconstruction.off"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_mesh(path, [[0, 0, 0], [0.2, 0, 0], [0, 0.2, 0], [0, 0, 0.2]], [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])


def _scored(gen):
    with open(gen.parent / "evaluation_results.csv") as f:
        return sorted(f"{r['class']}/{r['id']}" for r in csv.DictReader(f))


def test_evaluate_scores_the_manifest_objects_not_stale_meshes(setup, capsys):
    gen = _generate(setup)
    manifest = yaml.safe_load((gen / MANIFEST_NAME).read_text())
    assert manifest["complete"] is True and manifest["objects"] == [f"{SYNSET}/shape_03"]
    assert manifest["data"] == {"root": str(setup / "data" / "onet"), "split": "test"}
    assert manifest["checkpoint"] == str(setup / "experiments" / "tiny" / "checkpoints" / "latest.pt")
    # an earlier run's meshes: a train object of the same data (it has ground truth: without the manifest it
    # would be scored as if it were a test object) and an object of another class
    _stale_mesh(gen, SYNSET, "shape_00")
    _stale_mesh(gen, "02691156", "old_plane")
    capsys.readouterr()
    evaluate.main(["-generation_path", str(gen), *EVAL])
    out = capsys.readouterr().out
    assert _scored(gen) == [f"{SYNSET}/shape_03"]
    first = out.splitlines()[0]
    assert first.startswith("evaluating the 1 objects of generate.py's last run") and MANIFEST_NAME in first
    warning = [line for line in out.splitlines() if line.startswith("warning: ignoring")]
    assert len(warning) == 1 and "2 other mesh(es)" in warning[0] and f"{SYNSET}/shape_00" in warning[0]
    classes = list(csv.DictReader(open(gen.parent / "evaluation_results_classes.csv")))
    assert [r["class"] for r in classes] == [SYNSET, "class mean", "object mean"]
    assert classes[-1]["objects"] == "1"


def test_folder_without_manifest_scores_every_mesh_with_a_note(setup, capsys):
    gen = _generate(setup)
    _stale_mesh(gen, SYNSET, "shape_00")
    os.remove(gen / MANIFEST_NAME)                       # as a folder written before manifests looks
    capsys.readouterr()
    evaluate.main(["-generation_path", str(gen.parent), *EVAL])
    out = capsys.readouterr().out
    assert _scored(gen) == [f"{SYNSET}/shape_00", f"{SYNSET}/shape_03"]
    notes = [line for line in out.splitlines() if "no manifest.yaml" in line]
    assert len(notes) == 1 and notes[0].startswith("note:") and "all 2 meshes" in notes[0]


def test_rerun_on_other_data_regenerates_instead_of_reusing(setup, capsys):
    gen = _generate(setup)
    mesh = gen / SYNSET / "shape_03" / "surface_reconstruction.off"
    _stale_mesh(gen, SYNSET, "shape_03")                 # a marker: a rerun that reuses the mesh keeps it
    marker = mesh.read_bytes()
    _generate(setup)                                     # same checkpoint, data and settings: reused
    assert mesh.read_bytes() == marker
    other = setup / "other"                              # the same ids under another data root
    shutil.copytree(setup / "data" / "onet", other)
    capsys.readouterr()
    _generate(setup, "-data_root", str(other))
    out = capsys.readouterr().out
    assert "regenerating every object instead of reusing them" in out
    assert mesh.read_bytes() != marker
    manifest = yaml.safe_load((gen / MANIFEST_NAME).read_text())
    assert manifest["data"]["root"] == str(other) and manifest["inputs"]["data_root"] == str(other)


def test_interrupted_run_and_failed_objects(setup, capsys):
    gen = _generate(setup)
    manifest = yaml.safe_load((gen / MANIFEST_NAME).read_text())
    # generate.py failed on one object (it wrote no mesh, but an old one lies there): a row with its error
    _stale_mesh(gen, SYNSET, "shape_02")
    write_manifest(str(gen), {**manifest, "objects": manifest["objects"] + [f"{SYNSET}/shape_02"],
                              "failed": {f"{SYNSET}/shape_02": "boom"}})
    listed = manifest_meshes(str(gen), log=lambda line: None)
    assert [(c, o, e) for c, o, _, e in listed] == [(SYNSET, "shape_03", ""), (SYNSET, "shape_02",
                                                                               "generate.py failed: boom")]
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["-generation_path", str(gen), *EVAL])
    assert exc.value.code == 1
    rows = {r["id"]: r for r in csv.DictReader(open(gen.parent / "evaluation_results.csv"))}
    assert rows["shape_02"]["error"] == "generate.py failed: boom" and rows["shape_03"]["error"] == ""
    # a run that did not finish: evaluate.py says to rerun generate.py, exit 2, one line
    write_manifest(str(gen), {**manifest, "complete": False})
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["-generation_path", str(gen), *EVAL])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and "did not finish" in err


def test_object_keys_are_the_folders_each_generator_writes(setup, tmp_path):
    """The manifest's keys for the other families' datasets: Neural Parts (items with .group/.name) names the
    folder its generator writes; genren's images (not one folder per object) give None (no manifest)."""
    from modules.engine.generation import object_keys
    from modules.families.neural_parts.data import NeuralPartsDataset
    from modules.families.neural_parts.generation import NeuralPartsGenerator
    from modules.families.occupancy.generation import InputClouds
    from test_neural_parts_family import TINY as NP_TINY, write_sphere_frames
    root = write_sphere_frames(str(tmp_path / "np"), [0.2, 0.3], lambda i: ["train", "test"][i])
    ds = NeuralPartsDataset(root, "humans", "test", image_size=64, n_surface=100, n_volume=100)
    NeuralPartsGenerator({"config": {}}).run(MODELS.build({**NP_TINY, "n_primitives": 2}).eval(), ds,
                                             str(tmp_path / "out"), {"pictures": False, "sphere_level": 1}, "cpu")
    written = sorted(f"{g}/{n}" for g in os.listdir(tmp_path / "out" / "generation")
                     for n in os.listdir(tmp_path / "out" / "generation" / g))
    assert object_keys(ds) == written and len(written) == 1
    clouds = InputClouds("onet", str(setup / "data" / "onet"), "train")
    assert object_keys(clouds) == [f"{SYNSET}/shape_00", f"{SYNSET}/shape_01"]

    class Images:                        # genren's dataset: image files, no per-object folders
        images = [("a.png", 0)]

        def __len__(self):
            return 1
    assert object_keys(Images()) is None


def test_another_data_root_is_taken_whole_not_filtered_by_the_training_categories(setup, tmp_path, capsys):
    """A checkpoint trained on named categories (data.categories) generates every category of a user's own
    -data_root; its own root keeps the training categories (and -categories picks)."""
    ckpt = setup / "experiments" / "tiny" / "checkpoints" / "latest.pt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    other = "02691156" if SYNSET != "02691156" else "03001627"
    state["config"]["data"]["categories"] = [other]          # trained on a class the user's folder lacks
    save_checkpoint(str(ckpt), state)
    make_tiny_data(str(tmp_path / "user"), n_shapes=4, n_points=600)
    gen = _generate(setup, "-data_root", str(tmp_path / "user" / "onet"))
    assert "every category in it" in capsys.readouterr().out
    manifest = yaml.safe_load((gen / MANIFEST_NAME).read_text())
    assert manifest["objects"] == [f"{SYNSET}/shape_03"]
    with pytest.raises(SystemExit) as exit_:                  # its own root: only the training categories
        _generate(setup, "--overwrite")
    assert exit_.value.code == 2 and "is empty" in capsys.readouterr().err
