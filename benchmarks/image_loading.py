"""Is image loading the bottleneck? FieldsDataset throughput vs the training step of a ResNet-18 encoder.

    .venv/bin/python benchmarks/image_loading.py                  # generates a small ONet-layout set first
    .venv/bin/python benchmarks/image_loading.py --root data/synth/onet --sizes 64 137 --threads 2

Loading: samples/s of FieldsDataset(onet: img_choy2016 JPEG decode + camera, model.binvox placed by header,
points.npz 2048 of 100k points) through a DataLoader (batch 32, collate_fields) with num_workers 0 and 2.
Training: wall time of one step (forward, backward, SGD) of torchvision's resnet18 (fc -> 256, random
init) at batch 32 on S x S images with --threads torch threads. Goal: loading >= 5x the step's sample rate.
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import modules.startup  # noqa: E402,F401,I001  (first project import: Ctrl-C while the imports load exits quietly)

import torch  # noqa: E402
import torchvision  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from modules.data.fields import FieldsDataset, ImagesField, PointsField, VoxelsField, collate_fields  # noqa: E402
from modules.utils import cli_main  # noqa: E402


def make_data(out, per_category):
    from modules.data.synth import SynthConfig, generate
    cfg = SynthConfig(out=out, views=24, formats=("onet",), resolution=96)   # 100k points, 24 views: real sizes
    generate(cfg, ["chair", "airplane", "table", "car"], per_category, jobs=1, progress=False)
    return os.path.join(out, "onet")


def loading_rate(root, size, workers, n_batches, batch):
    ds = None
    for split in ("train", "val", "test"):
        try:
            ds = FieldsDataset(root, "onet", split, [ImagesField(size=size), VoxelsField(), PointsField(n=2048)],
                               train=True, seed=0)
            if len(ds):
                break
        except Exception:
            continue
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=n_batches * batch,
                                             generator=torch.Generator().manual_seed(0))
    loader = DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers, collate_fn=collate_fields,
                        persistent_workers=False)
    it = iter(loader)
    next(it)                                   # worker start-up and first batch not timed
    t = time.perf_counter()
    n = 0
    for b in it:
        n += len(b["idx"])
    return n / (time.perf_counter() - t)


def step_rate(size, batch, steps):
    model = torchvision.models.resnet18(num_classes=256)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 3, size, size)
    y = torch.randn(batch, 256)
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if i:                                   # first step (allocation) not timed
            times.append(time.perf_counter() - t)
    return batch / (sum(times) / len(times))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=None, help="an ONet-layout folder with img_choy2016 (default: generate one)")
    p.add_argument("--per-category", type=int, default=3)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 137])
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)),
                   help="torch threads (default: OMP_NUM_THREADS, else 2)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=8, help="timed batches per loading measurement")
    p.add_argument("--steps", type=int, default=3, help="timed training steps")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = args.root or make_data(tempfile.mkdtemp(prefix="image_loading_"), args.per_category)
    print(f"data: {root}; torch {torch.__version__}, torchvision {torchvision.__version__}, {args.threads} threads")
    print(f"{'size':>5} {'load w=0':>10} {'load w=2':>10} {'step':>10} {'w0/step':>8} {'w2/step':>8}   (samples/s)")
    for size in args.sizes:
        l0 = loading_rate(root, size, 0, args.batches, args.batch)
        l2 = loading_rate(root, size, 2, args.batches, args.batch)
        st = step_rate(size, args.batch, args.steps)
        print(f"{size:>5} {l0:>10.0f} {l2:>10.0f} {st:>10.1f} {l0 / st:>8.1f} {l2 / st:>8.1f}")


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
