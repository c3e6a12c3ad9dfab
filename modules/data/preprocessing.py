"""The `preprocess.py` subcommands: argument handling and summaries (the work is in synth / mesh_dataset).

Every batch (synth, mesh, xyz) ends with a ShapeLabError -- one line on stderr, exit code 2 -- when any
item failed, after printing its summary; an output root that is a file or cannot be written is refused
before anything is written. Exception: `mesh --formats humans` (real, unlabelled bodies -> the human-sequence
layout, modules.data.human_meshes) names and skips unreadable or flagged frames and exits with EXIT_PARTIAL (1).
"""
import argparse
import os

from modules.data import categories
from modules.data.human_meshes import run_human_meshes
from modules.data.mesh_dataset import MESH_FORMATS, run_mesh, run_xyz
from modules.data.synth import SynthConfig, generate, shape_formats, variant_counts
from modules.data.writers import FORMATS, parse_shard
from modules.utils import PartialFailure, ShapeLabError, check_output_dir


def _formats(text):
    if not text:
        return FORMATS
    fmts = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in fmts if f not in FORMATS]
    if bad:
        raise ShapeLabError(f"--formats: unknown format(s) {', '.join(bad)}; valid: {', '.join(FORMATS)}")
    return fmts


def _category_list(text):
    return categories.category_list(text)   # names, synsets or a named set ('all', 'onet13', 'all+onet', ...)


def run(args):
    if args.command == "synth":
        return run_synth(args)
    if args.command == "mesh":
        if args.jobs < 1:
            raise ShapeLabError(f"-j must be >= 1, got {args.jobs}")
        check_output_dir(args.out, "--out")
        return run_mesh_formats(args)
    if args.command == "xyz":
        return run_xyz(args)
    return run_parts(args)


def run_mesh_formats(args):
    """`preprocess.py mesh`: --formats humans goes to modules.data.human_meshes (its own frame and layout, no
    part labels), the other formats to mesh_dataset.run_mesh. Frames of humans not written: the run ends
    with one line on stderr and exit code EXIT_PARTIAL, after the other formats ran."""
    fmts = _formats(args.formats) if args.formats else MESH_FORMATS
    bad = [f for f in fmts if f not in MESH_FORMATS + ("humans",)]
    if bad:
        raise ShapeLabError(f"--formats {','.join(bad)}: real meshes carry no part labels; "
                            f"use {', '.join(MESH_FORMATS + ('humans',))}")
    if "humans" not in fmts:
        return run_mesh(args)
    summary = run_human_meshes(args)
    others = [f for f in fmts if f != "humans"]
    if others:
        run_mesh(argparse.Namespace(**{**vars(args), "formats": ",".join(others)}))
    if summary["failed"]:
        n_flag = len(summary["flagged"])
        raise PartialFailure(f"mesh --formats humans: {len(summary['failed'])} of {summary['requested']} frames not written "
              f"({n_flag} flagged, {len(summary['failed']) - n_flag} unreadable: "
              f"{', '.join(os.path.basename(p) for p, _ in summary['failed'])}); see {summary['report']}")
    return summary


def run_synth(args):
    if args.jobs < 1:
        raise ShapeLabError(f"-j must be >= 1, got {args.jobs}")
    if args.resolution < 16:
        raise ShapeLabError(f"--resolution must be >= 16, got {args.resolution}")
    check_output_dir(args.out, "--out")
    cfg = SynthConfig(out=args.out, seed=args.seed, formats=_formats(args.formats), views=args.views,
                      resolution=args.resolution, variety=getattr(args, "variety", "basic"))
    names = _category_list(args.categories)
    if str(args.categories or "all").lower() in categories.NAMED_SETS:   # a named set: keep the categories the formats apply to
        names = [c for c in names if shape_formats(c, cfg.formats)]
    summary = generate(cfg, names, args.per_category, jobs=args.jobs, shard=parse_shard(args.shard),
                       progress=not args.no_progress)
    print_summary(summary, cfg.out, names)
    if summary["failed"]:
        raise PartialFailure(f"synth: {len(summary['failed'])} of {summary['requested']} shapes failed "
                            f"(listed above as FAILED)")
    return summary


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
