"""Outputs of a trained model on held-out shapes, through the generator its family registers (occupancy
networks: meshes by MISE or marching cubes; AIR-Net, ONet, ConvONet, IF-Net).

    python generate.py -exp_name airnet300 -method mise -mise_res 64 -mise_steps 2 -batch_points 400000
    python generate.py -exp_name airnet300 -checkpoint 12 -method mcubes -mcubes_res 128
    python generate.py -ckpt_name pretrained_models/airnet300_synth.pt -method mise      # no experiment folder

Writes <exp>/evaluation_<ckpt>_@<spec>/generation/<synset>/<id>/surface_reconstruction.off (+ input
points and a picture), <spec> = <mise_res>x<mise_steps> or <mcubes_res>; then run
`python evaluate.py -generation_path <that folder>/generation`. generation/manifest.yaml lists this run's
objects (and what made them): evaluate.py scores those, not other meshes left in the folder by earlier runs;
meshes already there are reused only when the manifest shows the same checkpoint, data and settings. Only the
input clouds are read (an ONet folder needs pointcloud.npz, not points.npz; without split files every shape
folder is taken).
Exit codes: 0 done, 1 some objects failed (listed), 2 bad input (one line on stderr, nothing written).
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os
import sys

import modules.families  # noqa: F401  (registers every family and its generator)
from modules.config import flag_type, read_yaml
from modules.engine.generation import (build_dataset, checkpoint_config, generator_for, load_trained_model,
                                       mesh_inputs, object_keys, resolve_checkpoint)
from modules.evaluation import MANIFEST_NAME, read_manifest, write_manifest
from modules.utils import (EXIT_PARTIAL, ArgumentParser, ShapeLabError, check_output_dir, cli_main, get_device,
                           plain_name, save_yaml)


def parse_args(argv=None):
    p = ArgumentParser(prog="generate.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-exp_name", "--exp_name", default=None, help="experiment folder under --exp_root")
    p.add_argument("--exp_root", "-exp_root", default="experiments")
    p.add_argument("-checkpoint", "--checkpoint", type=flag_type("int >= 0"), default=None,
                   help="epoch N: checkpoints/epoch_N.pt (default: best.pt, else latest.pt)")
    p.add_argument("-ckpt_name", "--ckpt_name", default=None,
                   help="a checkpoint file (path, or name inside the experiment's checkpoints/)")
    p.add_argument("-method", "--method", choices=["mise", "mcubes"], default="mise")
    p.add_argument("-mise_res", "--mise_res", type=flag_type("int >= 2"), default=64, help="MISE initial resolution")
    p.add_argument("-mise_steps", "--mise_steps", type=flag_type("int in [0, 6]"), default=2,
                   help="MISE upsampling steps")
    p.add_argument("-mcubes_res", "--mcubes_res", type=flag_type("int in [2, 1024]"), default=128,
                   help="dense marching-cubes resolution")
    p.add_argument("-threshold", "--threshold", type=flag_type("float in (0, 1)"), default=None,
                   help="occupancy probability threshold (default: the model's, 0.5 AIR-Net/IF-Net, 0.2 ONet/ConvONet)")
    p.add_argument("-batch_points", "--batch_points", type=flag_type("int >= 1"), default=400000,
                   help="query points per forward pass")
    p.add_argument("-split", "--split", choices=["train", "val", "test"], default="test")
    p.add_argument("-data_root", "--data_root", default=None, help="override data.root of the checkpoint's config")
    p.add_argument("-data_type", "--data_type", choices=["ifnet", "onet"], default=None,
                   help="override data.format (the layout of -data_root)")
    p.add_argument("-max_objects", "--max_objects", type=flag_type("int >= 0"), default=0,
                   help="only the first N objects (0: all)")
    p.add_argument("-max_per_class", "--max_per_class", type=flag_type("int >= 0"), default=0,
                   help="only the first N objects of each class (0: all)")
    p.add_argument("-categories", "--categories", default=None, help="comma-separated names or synsets (default: the checkpoint's training "
                   "categories on its own data root; every category of another -data_root)")
    p.add_argument("--no_pictures", action="store_true")
    p.add_argument("--overwrite", action="store_true", help="regenerate existing meshes (default: skip them)")
    p.add_argument("-device", "--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--seed", type=flag_type("int >= 0"), default=0,
                   help="input subsampling seed (object i uses seed + i)")
    return p.parse_args(argv)


@cli_main(on_interrupt="rerun the same command to go on (meshes already written are kept and skipped)")
def main(argv=None):
    args = parse_args(argv)
    if args.exp_name is not None:
        plain_name(args.exp_name, "-exp_name")
    if args.checkpoint is not None and args.ckpt_name is not None:
        raise ShapeLabError("give -checkpoint N or -ckpt_name FILE, not both")
    exp_dir = os.path.join(args.exp_root, args.exp_name) if args.exp_name else None
    if exp_dir and args.ckpt_name is None and not os.path.isdir(exp_dir):
        raise ShapeLabError(f"-exp_name {args.exp_name}: experiment folder {exp_dir} not found")
    ckpt_path, label = resolve_checkpoint(exp_dir, args.checkpoint, args.ckpt_name)
    device = get_device(args.device)
    expect = None
    if exp_dir and os.path.isfile(os.path.join(exp_dir, "config.yaml")):
        expect = (read_yaml(os.path.join(exp_dir, "config.yaml")).get("model") or {}).get("name")
    state, cfg = checkpoint_config(ckpt_path, expect)
    generator = generator_for(cfg, ckpt_path)          # before building the model: a clear error for other tasks
    if exp_dir is None:
        exp_dir = os.path.join(args.exp_root, plain_name(label, "-ckpt_name"))
    model, cfg = load_trained_model(ckpt_path, device, expect)
    categories = [c for c in args.categories.split(",") if c] if args.categories else None
    if categories is None and args.data_root and cfg["data"].get("categories") and \
            os.path.abspath(args.data_root) != os.path.abspath(str(cfg["data"].get("root"))):
        # the checkpoint's data.categories name its training data; another folder is taken whole
        categories = []
        print(f"-data_root {args.data_root}: every category in it (the checkpoint was trained on "
              f"{', '.join(map(str, cfg['data']['categories']))}; -categories picks some)")
    dataset, data = build_dataset(cfg["data"], args.split, generator, root=args.data_root, format=args.data_type,
                                  categories=categories, max_items=args.max_objects,
                                  max_per_class=args.max_per_class, cache=False)
    unseen = []
    if state.get("train_categories") is not None and hasattr(dataset, "categories_present"):
        unseen = sorted(set(dataset.categories_present()) - set(state["train_categories"]))
        if unseen:
            print(f"warning: the model was not trained on categories {', '.join(unseen)} (it saw "
                  f"{', '.join(state['train_categories'])}): their results measure generalisation", file=sys.stderr)
    if len(dataset) == 0:
        raise ShapeLabError(f"no objects to generate: the '{args.split}' split of {data.get('root')} is empty"
                            + (f" for -categories {args.categories}" if categories else ""))
    if getattr(dataset, "note", None):
        print(dataset.note)
    opts = {"method": args.method, "mise_res": args.mise_res, "mise_steps": args.mise_steps,
            "mcubes_res": args.mcubes_res, "threshold": args.threshold, "batch_points": args.batch_points,
            "seed": args.seed, "pictures": not args.no_pictures, "overwrite": args.overwrite}
    spec = generator.spec(opts)
    out_dir = os.path.join(exp_dir, f"evaluation_{label}_@{spec}")
    check_output_dir(os.path.join(out_dir, "generation"), "output folder")
    config_path = os.path.join(out_dir, "generation_config.yaml")
    if os.path.isdir(config_path):
        raise ShapeLabError(f"{config_path}: is a folder, expected a file (move it away)")
    # generation/manifest.yaml names this run's objects, so evaluate.py scores them and not an earlier run's meshes
    gen_dir = os.path.join(out_dir, "generation")
    keys = object_keys(dataset)          # None: outputs that are not one folder per object (genren images)
    inputs = mesh_inputs(ckpt_path, data, opts)
    previous = read_manifest(gen_dir) if keys is not None else None
    if previous is not None and previous.get("inputs") != inputs and not opts["overwrite"]:
        print(f"note: the meshes in {gen_dir} came from another checkpoint, data root or settings (its "
              f"{MANIFEST_NAME} says so): regenerating every object instead of reusing them")
        opts["overwrite"] = True
    manifest = {"complete": False, "checkpoint": os.path.abspath(ckpt_path),
                "data": {"root": os.path.abspath(str(data.get("root"))), "split": args.split}, "inputs": inputs,
                "failed": {}, "objects": keys}
    if keys is not None:
        write_manifest(gen_dir, manifest)
    print(f"generating {len(dataset)} objects of {data.get('root')} ({args.split}) with {ckpt_path} -> {out_dir}")
    summary = generator.run(model, dataset, out_dir, opts, device)
    empty = summary.get("empty", [])
    save_yaml({
        "checkpoint": os.path.abspath(ckpt_path), "model": cfg["model"]["name"], "task": cfg["task"]["name"],
        "spec": spec, **summary["info"],
        "data": {k: data[k] for k in ("name", "format", "root", "pc_samples", "noise") if k in data} | {"split": args.split},
        "seed": args.seed, "objects": len(dataset), "generated": summary["done"], "skipped": summary["skipped"],
        "empty": empty, "failed": [f"{k}: {v}" for k, v in summary["failed"]],
        "categories_not_in_training": unseen,
        "seconds_per_object": (sum(summary["seconds"]) / len(summary["seconds"])) if summary["seconds"] else None,
    }, config_path)
    if keys is not None:
        write_manifest(gen_dir, {**manifest, "complete": True, "failed": {k: str(v) for k, v in summary["failed"]}})
        if previous is None and summary["skipped"]:
            print(f"note: {summary['skipped']} meshes were already in {gen_dir} from a run that recorded no "
                  f"{MANIFEST_NAME}: kept as they are (--overwrite regenerates them)")
    print(f"{summary['done']} generated ({len(empty)} empty), {summary['skipped']} already there, "
          f"{len(summary['failed'])} failed -> {os.path.join(out_dir, 'generation')} "
          f"({', '.join(f'{k} {v}' for k, v in summary['info'].items())})")
    if empty:
        print(f"warning: {len(empty)} of {summary['done']} meshes are empty (the predicted occupancy never crosses "
              f"the threshold: an untrained or diverged model?): {', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''}")
    if summary["failed"]:
        print(f"error: {len(summary['failed'])} of {len(dataset)} objects failed: "
              + "; ".join(f"{k} ({v})" for k, v in summary["failed"][:3]) + (" ..." if len(summary["failed"]) > 3 else ""),
              file=sys.stderr)
        sys.exit(EXIT_PARTIAL)


if __name__ == "__main__":
    main()
