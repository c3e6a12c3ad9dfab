"""Training speed of the occupancy networks, and MISE versus dense marching cubes per object.

    python benchmarks/occupancy_speed.py                      # every config at its default batch
    python benchmarks/occupancy_speed.py --batch 8 --steps 2  # smaller batch (say so when quoting)
    python benchmarks/occupancy_speed.py --generation pretrained_models/airnet300_synth.pt

Training: random clouds / queries of the config's sizes, Adam steps (forward, BCE, backward, step);
one warm-up step, then the mean of --steps timed steps. Each config runs in its own process, so the
peak memory column is that config's (CPU: peak resident set; GPU: peak allocated) and a config that
runs out of memory is reported without ending the others (--mem_limit_gib caps each process's
address space, so the allocation fails cleanly instead of waking the kernel's OOM killer).
Generation: one test object of the checkpoint's data, MISE (64x2) versus dense grids (128^3 and
257^3, the same final resolution as MISE 64x2), with the face count of each mesh.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time


import numpy as np
import torch
import modules.families  # noqa: F401  (registers every family)
from modules.utils import cli_main

CONFIGS = ["airnet300", "airnet3000", "airnet300_lessMemory", "onet", "convonet", "convonet_grid", "ifnet",
           "quickstart_airnet300"]


def training_speed(name, batch, steps, device):
    from modules.config import load_config
    from modules.losses.occupancy import occupancy_bce
    from modules.models.layers import count_parameters
    from modules.registry import MODELS
    cfg = load_config(os.path.join("configs", "occupancy", f"{name}.yaml"))
    batch = batch or cfg["training"]["batch_size"]
    model = MODELS.build(cfg["model"]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, cfg["data"]["pc_samples"], 3, generator=g) - 0.5).to(device)
    q = (torch.rand(batch, cfg["data"]["npoints_decoder"], 3, generator=g) - 0.5).to(device)
    occ = (q.norm(dim=-1) < 0.3).float()
    times = []
    for i in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = occupancy_bce(model(x, q), occ)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # KiB on Linux
    return count_parameters(model), batch, float(np.mean(times)), peak / 2 ** 30


def training_speed_in_child(name, args):
    """Run training_speed for one config in a fresh process: (params, batch, s/step, peak GiB) or an error."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--batch", str(args.batch),
           "--steps", str(args.steps), "--threads", str(args.threads), "--device", args.device]
    limit = int(args.mem_limit_gib * 2 ** 30) if args.mem_limit_gib else None
    set_limit = (lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))) if limit else None
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=set_limit)
    if proc.returncode != 0:
        asked = re.search(r"allocate (\d+) bytes", proc.stderr)
        if asked:
            return (f"out of memory: needs more than {f'the {args.mem_limit_gib:g} GiB cap' if limit else 'is free'} "
                    f"(failed asking for a further {int(asked.group(1)) / 2 ** 30:.2f} GiB)")
        tail = (proc.stderr.strip().splitlines() or [""])[-1][:120]
        return f"failed: {'killed (out of memory?)' if proc.returncode < 0 else f'exit {proc.returncode}'} {tail}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def generation_speed(ckpt, device, dense_res=(128, 257), split="test"):
    from modules.data.occupancy_datasets import OccupancyDataset
    from modules.engine.generation import load_trained_model as load_occupancy_model
    from modules.families.occupancy.generation import reconstruct
    model, cfg = load_occupancy_model(ckpt, device)
    d = cfg["data"]
    ds = OccupancyDataset(d["format"], d["root"], split, d.get("categories", []), d["pc_samples"], 1000,
                          0.0, 0, 1, cache=False)
    points = ds.input_points(0, np.random.RandomState(0))
    rows = []
    runs = [("MISE 64x2 (257^3 final)", dict(method="mise", mise_res=64, mise_steps=2))]
    runs += [(f"dense {r}^3", dict(method="mcubes", mcubes_res=r)) for r in dense_res]
    for label, kw in runs:
        v, f, seconds = reconstruct(model, points, device=device, **kw)
        rows.append((label, seconds, len(f)))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--batch", type=int, default=0, help="batch size (0: each config's default)")
    p.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)),
                   help="torch threads (default: OMP_NUM_THREADS, else 2)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--generation", default=None, help="a checkpoint for the MISE vs dense timing")
    p.add_argument("--dense_res", default="128,257", help="dense grid resolutions to time against MISE")
    p.add_argument("--skip_training", action="store_true")
    p.add_argument("--mem_limit_gib", type=float, default=0, help="address-space cap per config process (0: none)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.child:
        print(json.dumps(training_speed(args.child, args.batch, args.steps, device)))
        return
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    if not args.skip_training:
        print(f"{'config':24s} {'params':>10s} {'batch':>6s} {'s/step':>8s} {'steps/s':>8s} {'shapes/s':>9s} "
              f"{'peak GiB':>9s}")
        for name in args.configs.split(","):
            result = training_speed_in_child(name, args)
            if isinstance(result, str):
                print(f"{name:24s} {result}", flush=True)
                continue
            params, batch, sec, peak = result
            print(f"{name:24s} {params:10d} {batch:6d} {sec:8.2f} {1 / sec:8.3f} {batch / sec:9.2f} {peak:9.2f}",
                  flush=True)
    if args.generation:
        print(f"\ngeneration, one object, {args.generation}")
        print(f"{'method':26s} {'seconds':>8s} {'faces':>8s}")
        for label, seconds, faces in generation_speed(args.generation, device,
                                                          [int(r) for r in args.dense_res.split(",") if r]):
            print(f"{label:26s} {seconds:8.2f} {faces:8d}", flush=True)


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
