"""Training speed of the occupancy networks, and MISE versus dense marching cubes per object.

    python benchmarks/occupancy_speed.py                      # every config at its default batch
    python benchmarks/occupancy_speed.py --batch 8 --steps 2  # smaller batch (say so when quoting)
    python benchmarks/occupancy_speed.py --generation pretrained_models/airnet300_synth.pt

Training: random clouds / queries of the config's sizes, Adam steps (forward, BCE, backward, step);
one warm-up step, then the mean of --steps timed steps. Generation: one test object of the
checkpoint's data, MISE (64x2) versus dense grids (128^3 and 257^3, the same final resolution as
MISE 64x2), with the face count of each mesh.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

CONFIGS = ["airnet300", "airnet3000", "airnet300_lessMemory", "onet", "convonet", "convonet_grid", "ifnet",
           "quickstart_airnet300"]


def training_speed(name, batch, steps, device):
    from modules.config import load_config
    from modules.losses.occupancy import occupancy_bce
    from modules.models.occupancy import count_parameters
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
    return count_parameters(model), batch, float(np.mean(times))


def generation_speed(ckpt, device, dense_res=(128, 257), split="test"):
    from modules.data.occupancy_datasets import OccupancyDataset
    from modules.generation import load_occupancy_model, reconstruct
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
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--generation", default=None, help="a checkpoint for the MISE vs dense timing")
    p.add_argument("--dense_res", default="128,257", help="dense grid resolutions to time against MISE")
    p.add_argument("--skip_training", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    if not args.skip_training:
        print(f"{'config':24s} {'params':>10s} {'batch':>6s} {'s/step':>8s} {'steps/s':>8s} {'shapes/s':>9s}")
        for name in args.configs.split(","):
            params, batch, sec = training_speed(name, args.batch, args.steps, device)
            print(f"{name:24s} {params:10d} {batch:6d} {sec:8.2f} {1 / sec:8.3f} {batch / sec:9.2f}", flush=True)
    if args.generation:
        print(f"\ngeneration, one object, {args.generation}")
        print(f"{'method':26s} {'seconds':>8s} {'faces':>8s}")
        for label, seconds, faces in generation_speed(args.generation, device,
                                                          [int(r) for r in args.dense_res.split(",") if r]):
            print(f"{label:26s} {seconds:8.2f} {faces:8d}", flush=True)


if __name__ == "__main__":
    main()
