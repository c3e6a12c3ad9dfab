"""Outputs of a trained model on held-out shapes, through the generator its family registers (occupancy
networks: meshes by MISE or marching cubes; AIR-Net, ONet, ConvONet, IF-Net).

    python generate.py -exp_name airnet300 -method mise -mise_res 64 -mise_steps 2 -batch_points 400000
    python generate.py -exp_name airnet300 -checkpoint 12 -method mcubes -mcubes_res 128
    python generate.py -ckpt_name pretrained_models/airnet300_synth.pt -method mise      # no experiment folder

Writes <exp>/evaluation_<ckpt>_@<spec>/generation/<synset>/<id>/surface_reconstruction.off (+ input
points and a picture), <spec> = <mise_res>x<mise_steps> or <mcubes_res>; then run
`python evaluate.py -generation_path <that folder>/generation`.
"""
import argparse
import os

import modules.families  # noqa: F401  (registers every family and its generator)
from modules.config import read_yaml
from modules.engine.generation import (build_dataset, checkpoint_config, generator_for, load_trained_model,
                                       resolve_checkpoint)
from modules.utils import ShapeLabError, cli_main, get_device, save_yaml


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-exp_name", "--exp_name", default=None, help="experiment folder under --exp_root")
    p.add_argument("--exp_root", default="experiments")
    p.add_argument("-checkpoint", "--checkpoint", type=int, default=None,
                   help="epoch N: checkpoints/epoch_N.pt (default: best.pt, else latest.pt)")
    p.add_argument("-ckpt_name", "--ckpt_name", default=None,
                   help="a checkpoint file (path, or name inside the experiment's checkpoints/)")
    p.add_argument("-method", "--method", choices=["mise", "mcubes"], default="mise")
    p.add_argument("-mise_res", "--mise_res", type=int, default=64, help="MISE initial resolution")
    p.add_argument("-mise_steps", "--mise_steps", type=int, default=2, help="MISE upsampling steps")
    p.add_argument("-mcubes_res", "--mcubes_res", type=int, default=128, help="dense marching-cubes resolution")
    p.add_argument("-threshold", "--threshold", type=float, default=None,
                   help="occupancy probability threshold (default: the model's, 0.5 AIR-Net/IF-Net, 0.2 ONet/ConvONet)")
    p.add_argument("-batch_points", "--batch_points", type=int, default=400000, help="query points per forward pass")
    p.add_argument("-split", "--split", default="test")
    p.add_argument("-data_root", "--data_root", default=None, help="override data.root of the checkpoint's config")
    p.add_argument("-data_type", "--data_type", choices=["ifnet", "onet"], default=None,
                   help="override data.format (the layout of -data_root)")
    p.add_argument("-max_objects", "--max_objects", type=int, default=0, help="only the first N objects (0: all)")
    p.add_argument("-max_per_class", "--max_per_class", type=int, default=0,
                   help="only the first N objects of each class (0: all)")
    p.add_argument("-categories", "--categories", default=None, help="comma-separated names or synsets")
    p.add_argument("--no_pictures", action="store_true")
    p.add_argument("--overwrite", action="store_true", help="regenerate existing meshes (default: skip them)")
    p.add_argument("-device", "--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--seed", type=int, default=0, help="input subsampling seed (object i uses seed + i)")
    return p.parse_args(argv)


@cli_main
def main(argv=None):
    args = parse_args(argv)
    exp_dir = os.path.join(args.exp_root, args.exp_name) if args.exp_name else None
    if exp_dir and args.ckpt_name is None and not os.path.isdir(exp_dir):
        raise ShapeLabError(f"-exp_name {args.exp_name}: experiment folder {exp_dir} not found")
    ckpt_path, label = resolve_checkpoint(exp_dir, args.checkpoint, args.ckpt_name)
    device = get_device(args.device)
    expect = None
    if exp_dir and os.path.isfile(os.path.join(exp_dir, "config.yaml")):
        expect = (read_yaml(os.path.join(exp_dir, "config.yaml")).get("model") or {}).get("name")
    _, cfg = checkpoint_config(ckpt_path, expect)
    generator = generator_for(cfg, ckpt_path)          # before building the model: a clear error for other tasks
    model, cfg = load_trained_model(ckpt_path, device, expect)
    if exp_dir is None:
        exp_dir = os.path.join(args.exp_root, label)
    categories = [c for c in args.categories.split(",") if c] if args.categories else None
    dataset, data = build_dataset(cfg["data"], args.split, root=args.data_root, format=args.data_type,
                                  categories=categories, max_items=args.max_objects,
                                  max_per_class=args.max_per_class, cache=False)
    opts = {"method": args.method, "mise_res": args.mise_res, "mise_steps": args.mise_steps,
            "mcubes_res": args.mcubes_res, "threshold": args.threshold, "batch_points": args.batch_points,
            "seed": args.seed, "pictures": not args.no_pictures, "overwrite": args.overwrite}
    spec = generator.spec(opts)
    out_dir = os.path.join(exp_dir, f"evaluation_{label}_@{spec}")
    summary = generator.run(model, dataset, out_dir, opts, device)
    save_yaml({
        "checkpoint": os.path.abspath(ckpt_path), "model": cfg["model"]["name"], "spec": spec, **summary["info"],
        "data": {k: data[k] for k in ("name", "format", "root", "pc_samples", "noise") if k in data} | {"split": args.split},
        "seed": args.seed, "objects": len(dataset), "generated": summary["done"], "skipped": summary["skipped"],
        "failed": [f"{k}: {v}" for k, v in summary["failed"]],
        "seconds_per_object": (sum(summary["seconds"]) / len(summary["seconds"])) if summary["seconds"] else None,
    }, os.path.join(out_dir, "generation_config.yaml"))
    print(f"{summary['done']} generated, {summary['skipped']} already there, {len(summary['failed'])} failed "
          f"-> {os.path.join(out_dir, 'generation')} ({', '.join(f'{k} {v}' for k, v in summary['info'].items())})")
    if summary["failed"]:
        raise ShapeLabError(f"{len(summary['failed'])} objects failed: " + "; ".join(k for k, _ in summary["failed"][:5]))


if __name__ == "__main__":
    main()
