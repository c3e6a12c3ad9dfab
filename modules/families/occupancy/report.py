"""Markdown reports that gather a training run (TensorBoard scalars, loss curve) and an evaluation
(the table evaluate.py wrote, the pictures generate.py drew) into one page."""
import csv
import glob
import os
import platform
import time

import torch

from modules.engine.checkpoint import load_checkpoint
from modules.utils import ShapeLabError, atomic_write
from modules.vis import save_loss_curve_png


def read_scalars(summary_dir):
    """{tag: (steps list, values list)} from the TensorBoard event files in summary_dir."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    if not os.path.isdir(summary_dir):
        raise ShapeLabError(f"no TensorBoard summary folder: {summary_dir}")
    acc = EventAccumulator(summary_dir, size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags().get("scalars", []):
        events = acc.Scalars(tag)
        out[tag] = ([e.step for e in events], [e.value for e in events])
    return out


def _last(scalars, tag):
    return scalars[tag][1][-1] if tag in scalars and scalars[tag][1] else None


def short_run_note(step, iou=None, budget_s=None, losses=()):
    """What a short training run can and cannot show (the quickstart trains for minutes, not days).
    `losses`: the logged training losses, first to last (what the note says about them is what they did)."""
    run = f"{step} optimiser steps" + (f" in {budget_s:g} s" if budget_s else "")
    if len(losses) >= 2:
        trend = "fell" if losses[-1] < losses[0] else "did not fall"
        loss_text = (f"; the logged training loss {trend} from {losses[0]:.4f} to {losses[-1]:.4f} over its {run} "
                     f"({len(losses)} logged values)")
    else:
        loss_text = f" over its {run} (too few logged losses to show a trend)"
    lines = [f"What this run shows: the pipeline works end to end (data -> training -> checkpoint){loss_text}."]
    lines.append("What it cannot show: reconstruction quality. AIR-Net needs tens of thousands of steps; after a "
                 "few hundred it predicts roughly the average occupancy, so its validation IoU is low"
                 + (f" ({iou:.3f} here)" if iou is not None else "")
                 + " and may be 0 when no point crosses the threshold yet. The reconstruction quality of the "
                   "architecture is shown by the shipped pretrained weights in the next section.")
    return lines


def training_section(exp_dir, title, budget_s=None):
    """Markdown for one training run (+ its loss curve PNG written into exp_dir); `budget_s`: the time budget
    of a short run, which adds a note on what such a run can and cannot show."""
    scalars = read_scalars(os.path.join(exp_dir, "summary"))
    ckpt = os.path.join(exp_dir, "checkpoints", "latest.pt")
    state = load_checkpoint(ckpt) if os.path.exists(ckpt) else {}
    curves = {name: scalars[tag] for name, tag in (("train", "train/loss"), ("validation", "val/loss")) if tag in scalars}
    lines = [f"## {title}", ""]
    if curves:
        save_loss_curve_png(os.path.join(exp_dir, "loss_curve.png"), {k: v[0] for k, v in curves.items()},
                            {k: v[1] for k, v in curves.items()}, title="BCE loss", ylabel="loss")
    rows = [("optimiser steps", state.get("step")), ("epochs", state.get("epoch")),
            ("last training loss", _last(scalars, "train/loss")),
            ("last validation loss", _last(scalars, "val/loss")),
            ("best validation loss", state.get("best_metric")),
            ("last validation IoU (held-out shapes)", _last(scalars, "val/iou"))]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {name} | {value:.4g} |" if isinstance(value, float) else f"| {name} | {value} |"
              for name, value in rows if value is not None]
    if curves:
        lines += ["", f"![loss curve]({os.path.abspath(os.path.join(exp_dir, 'loss_curve.png'))})"]
    if budget_s:
        lines += [""] + short_run_note(state.get("step") or 0, _last(scalars, "val/iou"), budget_s,
                                     scalars.get("train/loss", ((), ()))[1])
    return lines


def _iou_per_object(csv_path):
    """{(class, id): IoU text} from evaluate.py's per-object CSV ({} when it is missing)."""
    if not os.path.isfile(csv_path):
        return {}
    with open(csv_path) as f:
        return {(r["class"], r["id"]): (f"{float(r['iou']):.3f}" if r.get("iou") else "") for r in csv.DictReader(f)}


def caption_picture(src, dst, caption):
    """A copy of the PNG `src` with `caption` (object id and its IoU, known only after evaluation) in a strip
    above it, so the picture says what it shows on its own."""
    from PIL import Image, ImageDraw, ImageFont
    image = Image.open(src).convert("RGB")
    font = ImageFont.load_default(size=max(12, image.width // 45))
    strip = font.getbbox(caption)[3] + 18
    out = Image.new("RGB", (image.width, image.height + strip), "white")
    out.paste(image, (0, strip))
    ImageDraw.Draw(out).text((8, 6), caption, fill="black", font=font)
    with atomic_write(dst) as tmp:
        out.save(tmp, format="PNG")


def evaluation_section(eval_dir, title, max_pictures=6):
    """Markdown for one evaluate.py output folder: its summary table and a few pictures."""
    table = os.path.join(eval_dir, "evaluation_results.md")
    if not os.path.isfile(table):
        raise ShapeLabError(f"no evaluation table in {eval_dir} (run evaluate.py on its generation/ folder)")
    with open(table) as f:
        body = f.read().strip().splitlines()
    pictures = sorted(glob.glob(os.path.join(eval_dir, "generation", "*", "*", "reconstruction.png")))
    lines = [f"## {title}", ""] + body
    if pictures:
        iou = _iou_per_object(os.path.join(eval_dir, "evaluation_results.csv"))
        lines += ["", "Input points | reconstruction | ground truth, each with its object and IoU:", ""]
        step = max(1, len(pictures) // max_pictures)
        for path in pictures[::step][:max_pictures]:
            obj_dir = os.path.dirname(path)
            key = (os.path.basename(os.path.dirname(obj_dir)), os.path.basename(obj_dir))
            caption = f"{key[0]}/{key[1]}, IoU {iou[key]}" if iou.get(key) else f"{key[0]}/{key[1]}"
            captioned = os.path.join(eval_dir, "report_pictures", f"{key[0]}_{key[1]}.png")
            caption_picture(path, captioned, caption)
            lines += [f"{caption}:", "", f"![{caption}]({os.path.abspath(captioned)})", ""]
    return lines


def write_report(path, title, sections, commands=()):
    """Write a Markdown page; picture links are made relative to its folder."""
    out_dir = os.path.dirname(os.path.abspath(path))
    lines = [f"# {title}", "",
             f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
             f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}", ""]
    if commands:
        lines += ["Commands:", "", "```bash", *commands, "```", ""]
    for section in sections:
        fixed = []
        for line in section:
            if line.startswith("![") and "](" in line:
                label, target = line[2:-1].split("](", 1)
                if os.path.isabs(target):
                    target = os.path.relpath(target, out_dir)
                line = f"![{label}]({target})"
            fixed.append(line)
        lines += fixed + [""]
    with atomic_write(path) as tmp:
        with open(tmp, "w") as f:
            f.write("\n".join(lines))
    return path
