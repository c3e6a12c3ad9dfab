"""Neural Parts on the embedded human sequences: 2 / 5 / 8 / 10 primitives and the loss ablation at one
fixed training budget, evaluated on held-out frames, beside the paper's and the re-implementation's
DFAUST rows; plus the training speed at the default batch.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/neural_parts_table.py --budget_s 240 \
        [--root data/synth_np/humans] [--out experiments/np_table] [key=value model/data/training overrides]

Every row trains `configs/neural_parts/humans.yaml` for --budget_s seconds of training time
(training.time_budget_s), then evaluates the test split with the original's metrics
(modules/families/neural_parts/evaluation.py) and writes one picture (union coloured by primitive) per row.
Rows already trained (their checkpoint exists) are evaluated again, not retrained; a row's figures are kept in
<out>/<row>/results.json, so parallel processes can each train a few rows (--rows) into one --out and a last
`--only_table` run prints the whole table (benchmarks/gpu_session.sh does this on a GPU).
"""
import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import modules.startup  # noqa: E402,F401,I001  (first project import: Ctrl-C while the imports load exits quietly)

import torch  # noqa: E402

import modules.families  # noqa: E402,F401
from modules.config import load_config  # noqa: E402
from modules.engine.generation import build_dataset, load_trained_model  # noqa: E402
from modules.engine.trainer import train  # noqa: E402
from modules.families.neural_parts.evaluation import PAPER_DFAUST, REIMPL_DFAUST, evaluate_model  # noqa: E402
from modules.families.neural_parts.generation import generate_object  # noqa: E402
from modules.utils import atomic_write, cli_main  # noqa: E402

CFG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", "neural_parts", "humans.yaml")
TERMS = ("reconstruction", "normal_consistency", "occupancy", "coverage", "overlap")


def rows_to_run(primitives, ablation):
    rows = [(f"M={m}", [f"model.n_primitives={m}"]) for m in primitives]
    if ablation:
        rows += [(f"M=5 without {t}", ["model.n_primitives=5", f"task.weights.{t}=0.0"]) for t in TERMS]
    return rows


def speed(overrides, steps, warmup=2):
    """Optimiser steps per second of the default config (batch 1, accumulation 2) on this machine."""
    from modules.engine.trainer import Trainer
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        cfg = load_config(CFG, overrides + [f"training.max_steps={steps + warmup}", "training.val_every=100000",
                                            "training.progress=false", "training.max_epochs=1000"])
        trainer = Trainer(cfg, d)
        it = iter(trainer.loader)
        model, task = trainer.model, trainer.task
        opt = torch.optim.RAdam(model.parameters(), lr=5e-5)
        for i in range(warmup + steps):
            if i == warmup:
                t0 = time.perf_counter()
            for _ in range(cfg["training"]["accumulate"]):
                loss, _ = task.loss(model, next(it))
                (loss / cfg["training"]["accumulate"]).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
        return steps / (time.perf_counter() - t0)


def row_result(a, name, row, common, pics):
    """Train (unless its checkpoint exists) and evaluate one row; its figures are kept in <exp>/results.json."""
    exp = os.path.join(a.out, name.replace(" ", "_").replace("=", ""))
    path = os.path.join(exp, "results.json")
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    if a.only_table:
        return None
    ckpt = os.path.join(exp, "checkpoints", "latest.pt")
    if not os.path.exists(ckpt):
        t0 = time.time()
        train(load_config(CFG, common + row), exp)
        print(f"{name}: trained in {time.time() - t0:.0f} s", flush=True)
    model, cfg = load_trained_model(ckpt)
    ds, _ = build_dataset(cfg["data"], "test", max_items=a.eval_objects or None)
    _, means = evaluate_model(model, ds, progress=False)
    steps = int(torch.load(ckpt, map_location="cpu", weights_only=True)["step"])
    obj = os.path.join(exp, "picture")
    generate_object(model, ds[0], obj, level=3)
    pic = os.path.join(pics, exp.split(os.sep)[-1] + ".png")
    shutil.copyfile(os.path.join(obj, "union.png"), pic)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    res = {"name": name, "steps": steps, "means": {k: float(v) for k, v in means.items()}, "picture": pic,
           "test_frames": len(ds), "budget_s": a.budget_s, "device": device}
    with atomic_write(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(res, f, indent=1)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget_s", type=float, default=240.0, help="training seconds per row")
    p.add_argument("--root", default="data/synth_np/humans")
    p.add_argument("--out", default="experiments/np_table")
    p.add_argument("--primitives", default="2,5,8,10")
    p.add_argument("--no_ablation", action="store_true")
    p.add_argument("--eval_objects", type=int, default=0, help="first N test frames (0: all)")
    p.add_argument("--speed_steps", type=int, default=5, help="timed optimiser steps (0: skip)")
    p.add_argument("--rows", default="", help="comma-separated row names to run (e.g. 'M=5,M=5 without overlap'); "
                   "default: all")
    p.add_argument("--only_table", action="store_true", help="print the table of rows already finished")
    p.add_argument("overrides", nargs="*", help="key=value config overrides for every row")
    a = p.parse_args(argv)
    common = [f"data.root={a.root}", f"training.time_budget_s={a.budget_s}", "training.progress=false",
              "training.val_every=100000", "training.save_epoch_every=0"] + list(a.overrides)
    results = []
    pics = os.path.join(a.out, "pictures")
    os.makedirs(pics, exist_ok=True)
    rows = rows_to_run([int(m) for m in a.primitives.split(",")], not a.no_ablation)
    if a.rows:
        wanted = set(a.rows.split(","))
        unknown = wanted - {name for name, _ in rows}
        if unknown:
            p.error(f"--rows: unknown row(s) {', '.join(sorted(unknown))}; rows are: {', '.join(n for n, _ in rows)}")
        rows = [(name, row) for name, row in rows if name in wanted]
    for name, row in rows:
        res = row_result(a, name, row, common, pics)
        if res is None:
            print(f"{name}: not run (no {a.out}/.../results.json; --only_table)")
            continue
        results.append(res)
        print(f"{name}: steps {res['steps']}, IoU {res['means']['iou']:.3f}, "
              f"Chamfer-L1 {res['means']['chamfer-L1']:.4f}", flush=True)
    frames = {r["test_frames"] for r in results}
    devices = sorted({r["device"] for r in results})
    print(f"\nbudget {a.budget_s:.0f} s of training per row; overrides: {' '.join(a.overrides) or 'none'}; "
          f"test frames {', '.join(map(str, sorted(frames))) or '-'}; trained on {', '.join(devices) or '-'}\n")
    print("| row | steps | IoU | Chamfer-L1 (paper def.) | re-impl. \"Chamfer-L1\" | paper IoU / Ch-L1 | re-impl. IoU / Ch-L1 | picture |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        name, steps, m, pic = r["name"], r["steps"], r["means"], r["picture"]
        k = int(name.split("=")[1].split()[0])
        ref = PAPER_DFAUST.get(k) if "without" not in name else None
        rei = REIMPL_DFAUST.get(k) if "without" not in name else None
        print(f"| {name} | {steps} | {m['iou']:.3f} | {m['chamfer-L1']:.4f} | {m['chamfer-L1-reimpl']:.4f} | "
              f"{'%.3f / %.3f' % ref if ref else '-'} | {'%.3f / %.3f' % rei if rei else '-'} | {pic} |")
    counts = [r["means"]["iou"] for r in results if "without" not in r["name"]]
    if len(counts) > 1:
        print(f"\nIoU spread across primitive counts: {max(counts) - min(counts):.3f} (goal <= 0.03); "
              f"M=5 IoU >= 0.70 (goal): {any(r['name'] == 'M=5' and r['means']['iou'] >= 0.70 for r in results)}")
    if a.speed_steps and not a.only_table:
        sps = speed([f"data.root={a.root}"], a.speed_steps)
        print(f"\ntraining speed, full-size default config (batch 1, accumulation 2, 224^2), "
              f"{torch.get_num_threads()} threads: {sps:.3f} optimiser steps/s")


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
