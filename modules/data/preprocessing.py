"""The `preprocess.py` subcommands: argument handling and summaries (the work is in synth / mesh_dataset).

Every batch (synth, mesh, xyz) ends with a ShapeLabError -- one line on stderr, exit code 2 -- when any
item failed, after printing its summary; an output root that is a file or cannot be written is refused
before anything is written.
"""
import os

from modules.data import categories
from modules.data.mesh_dataset import run_mesh, run_xyz
from modules.data.synth import SynthConfig, generate, shape_formats, variant_counts
from modules.data.writers import FORMATS, parse_shard
from modules.utils import ShapeLabError


def _formats(text):
    if not text:
        return FORMATS
    fmts = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in fmts if f not in FORMATS]
    if bad:
        raise ShapeLabError(f"--formats: unknown format(s) {', '.join(bad)}; valid: {', '.join(FORMATS)}")
    return fmts


def _category_list(text):
    if text in (None, "", "all"):
        return list(categories.ALL_CATEGORIES)
    return [categories.category_name(c) for c in text.split(",") if c.strip()]


def run(args):
    if args.command == "synth":
        return run_synth(args)
    if args.command == "mesh":
        if args.jobs < 1:
            raise ShapeLabError(f"-j must be >= 1, got {args.jobs}")
        check_output_dir(args.out)
        return run_mesh(args)
    if args.command == "xyz":
        return run_xyz(args)
    return run_parts(args)


def run_synth(args):
    if args.jobs < 1:
        raise ShapeLabError(f"-j must be >= 1, got {args.jobs}")
    if args.resolution < 16:
        raise ShapeLabError(f"--resolution must be >= 16, got {args.resolution}")
    check_output_dir(args.out)
    cfg = SynthConfig(out=args.out, seed=args.seed, formats=_formats(args.formats), views=args.views,
                      resolution=args.resolution)
    names = _category_list(args.categories)
    if args.categories in (None, "", "all"):   # the default set: keep the categories the formats apply to
        names = [c for c in names if shape_formats(c, cfg.formats)]
    summary = generate(cfg, names, args.per_category, jobs=args.jobs, shard=parse_shard(args.shard),
                       progress=not args.no_progress)
    print_summary(summary, cfg.out, names)
    if summary["failed"]:
        raise ShapeLabError(f"synth: {len(summary['failed'])} of {summary['requested']} shapes failed "
                            f"(listed above as FAILED)")
    return summary


def check_output_dir(path, flag="--out"):
    """Refuse an output root that is a file, lies under a file, or is in a folder this user cannot write."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ShapeLabError(f"{flag} {path}: exists and is not a folder")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ShapeLabError(f"{flag} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ShapeLabError(f"{flag} {path}: {parent} is not writable")


def print_summary(summary, out, names=()):
    n = summary["written"]
    rate = n / summary["seconds"] if summary["seconds"] > 0 and n else 0.0
    print(f"synth: {summary['requested']} shapes requested, {n} written, {summary['skipped']} already done, "
          f"{len(summary['failed'])} failed in {summary['seconds']:.1f} s ({rate:.2f} shapes/s) -> {out}")
    for name in names:
        counts = variant_counts(out, name)
        if counts:
            print(f"  {name:<11} {sum(counts.values()):4d} shapes, {len(counts)} variants")
    for (cat, idx), msg in summary["failed"]:
        print(f"  FAILED {cat} #{idx}: {msg}")


def run_parts(args):
    names = [categories.category_name(args.category)] if args.category else categories.ALL_CATEGORIES
    for name in names:
        table = categories.part_table(name)
        print(f"{name} ({categories.SYNSETS[name]}): " + ", ".join(f"{i} {n}" for i, n in table.items()))
    return 0
