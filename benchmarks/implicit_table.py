"""The AIR-Nets comparison table on the synthetic data: train each model for a fixed budget, generate
the held-out shapes, evaluate, print IoU / Chamfer-L1 / normal consistency / F-score@1% next to the
paper's rows (IF-Net data D_A, noise-free; sparse = 300 input points, dense = 3000).

    python benchmarks/implicit_table.py --budget_s 600                         # full-size models
    python benchmarks/implicit_table.py --budget_s 300 --size small --per_class 4
    python benchmarks/implicit_table.py --only_table                           # re-print from finished runs

Each run is an ordinary experiment (experiments/table_<model>_<density>/): rerunning resumes
training up to the budget and skips meshes that exist. The budget, data, hardware and the number of
optimiser steps reached are printed with the table; nothing is filled in from elsewhere.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import csv
import os
import time
import modules.families  # noqa: F401  (registers every family)
from modules.utils import cli_main


PAPER_DA = {  # AIR-Nets Table 1, IF-Net data: IoU / Chamfer-L1 / NC / F-score
    ("onet", 300): (.724, .0094, .878, .808), ("convonet", 300): (.723, .0084, .876, .841),
    ("ifnet", 300): (.772, .0060, .885, .885), ("airnet", 300): (.913, .0032, .95, .964),
    ("onet", 3000): (.704, .0100, .874, .786), ("convonet", 3000): (.752, .0074, .894, .881),
    ("ifnet", 3000): (.883, .0034, .948, .983), ("airnet", 3000): (.958, .0024, .972, .991),
}
CONFIGS = {("airnet", 300): "airnet300", ("airnet", 3000): "airnet3000", ("onet", 300): "onet",
           ("onet", 3000): "onet", ("convonet", 300): "convonet", ("convonet", 3000): "convonet",
           ("ifnet", 300): "ifnet", ("ifnet", 3000): "ifnet"}
SMALL = {  # --size small: narrower versions for CPU budgets (documented as such in the output)
    "airnet": ["model.encoder_attn_dim=64", "model.encoder_attn_dim_reduced=64", "model.decoder_attn_dim=64",
               "model.decoder_hidden_dim=64", "model.nfinal_trans=2"],
    "onet": ["model.c_dim=128", "model.encoder_hidden_dim=128", "model.decoder_hidden_dim=128"],
    "convonet": ["model.plane_resolution=32", "model.unet_depth=3"],
    "ifnet": ["model.resolution=64"],
}


def run_one(model, density, args):
    from modules.config import load_config
    from modules.engine.trainer import train
    name = f"table_{model}_{density}_{args.size}"
    exp = os.path.join(args.exp_root, name)
    overrides = [f"data.root={args.data_root}", "data.format=ifnet", f"data.pc_samples={density}",
                 "data.noise=0.0", f"training.time_budget_s={args.budget_s}", "training.progress=false",
                 "training.save_epoch_every=0", f"experiment.device={args.device}"]
    if args.batch:
        overrides.append(f"training.batch_size={args.batch}")
    if model == "airnet" and args.size == "small" and density == 3000:
        overrides.append("model.encoder_attn_dim_reduced=64")
    overrides += SMALL[model] if args.size == "small" else []
    cfg = load_config(os.path.join("configs", "occupancy", f"{CONFIGS[(model, density)]}.yaml"), overrides)
    start = time.time()
    from modules.engine.trainer import REQUEUE_MARKER
    interrupted = os.path.exists(os.path.join(exp, REQUEUE_MARKER))   # stopped by a signal: not finished
    if not os.path.exists(os.path.join(exp, "checkpoints", "latest.pt")) or interrupted or args.resume:
        if interrupted:
            print(f"{name}: the last training run was interrupted; resuming it for another {args.budget_s} s")
        train(cfg, exp)
    train_s = time.time() - start
    import generate
    gen_args = ["-exp_name", name, "--exp_root", args.exp_root, "-method", "mise", "-mise_res", str(args.mise_res),
                "-mise_steps", "2", "-max_per_class", str(args.per_class), "-device", args.device]
    generate.main(gen_args)
    return exp, train_s


def collect(exp):
    """(mean metrics, steps) of the newest evaluation under an experiment folder."""
    import torch
    evals = sorted(d for d in os.listdir(exp) if d.startswith("evaluation_")) if os.path.isdir(exp) else []
    if not evals:
        return None, (None, 0)
    path = os.path.join(exp, evals[-1], "evaluation_results.csv")
    if not os.path.isfile(path):
        return None, (None, 0)
    rows = list(csv.DictReader(open(path)))
    def mean(key):
        vals = [float(r[key]) for r in rows if r.get(key) not in (None, "", "nan")]
        return sum(vals) / len(vals) if vals else float("nan")
    ckpt = os.path.join(exp, "checkpoints", "latest.pt")
    steps = torch.load(ckpt, map_location="cpu", weights_only=True).get("step") if os.path.isfile(ckpt) else None
    return (mean("iou"), mean("chamfer-L1"), mean("normals"), mean("f-score")), (steps, len(rows))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_root", default="data/synth/ifnet")
    p.add_argument("--exp_root", default="experiments")
    p.add_argument("--models", default="airnet,ifnet,onet,convonet")
    p.add_argument("--densities", default="300,3000")
    p.add_argument("--budget_s", type=int, default=600, help="training time per model and density (seconds)")
    p.add_argument("--size", choices=["full", "small"], default="full")
    p.add_argument("--batch", type=int, default=0, help="override every config's batch size (0: keep)")
    p.add_argument("--per_class", type=int, default=0, help="evaluate only the first N test objects of each class")
    p.add_argument("--mise_res", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--resume", action="store_true", help="continue training runs that already have checkpoints")
    p.add_argument("--only_table", action="store_true")
    args = p.parse_args(argv)
    import evaluate
    results = {}
    for density in [int(d) for d in args.densities.split(",")]:
        for model in args.models.split(","):
            exp = os.path.join(args.exp_root, f"table_{model}_{density}_{args.size}")
            if not args.only_table:
                exp, _ = run_one(model, density, args)
                evals = sorted(d for d in os.listdir(exp) if d.startswith("evaluation_"))
                evaluate.main(["-generation_path", os.path.join(exp, evals[-1], "generation"), "-no_progress"])
            results[(model, density)] = collect(exp)
    import platform
    import torch
    from modules.utils import get_device
    device = get_device(args.device)
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}), {torch.get_num_threads()} thread(s)"
    if args.only_table:
        hardware = "the machine that trained them (--only_table re-prints finished runs)"
    print(f"\nSynthetic IF-Net-layout data ({args.data_root}), {args.size} models, batch "
          f"{args.batch or 'of each config'}, training budget {args.budget_s} s each on {hardware}; "
          f"MISE {args.mise_res}x2; IoU / Chamfer-L1 / NC / F-score@1%")
    print(f"{'model':10s} {'points':>6s} {'steps':>6s} {'objs':>5s} | {'ours':^31s} | {'paper (ShapeNet, D_A)':^31s}")
    for (model, density), (metrics, (steps, objects)) in results.items():
        ours = " / ".join(f"{v:.3f}" if i != 1 else f"{v:.4f}" for i, v in enumerate(metrics)) if metrics else "not run"
        paper = " / ".join(str(v) for v in PAPER_DA[(model, density)])
        print(f"{model:10s} {density:6d} {str(steps):>6s} {objects:5d} | {ours:31s} | {paper:31s}")


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
