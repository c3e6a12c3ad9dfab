"""Write experiments/quickstart/report.md from the quickstart's training run and evaluation."""
import argparse
import os

from modules.families.occupancy.report import evaluation_section, training_section, write_report
from modules.utils import cli_main


@cli_main
def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--train_exp", required=True, help="experiment folder of the short training run")
    p.add_argument("--train_budget_s", type=int, required=True)
    p.add_argument("--eval_dir", required=True, help="evaluation_<ckpt>_@<spec> folder of the pretrained model")
    p.add_argument("--out", required=True)
    p.add_argument("--commands", nargs="*", default=[])
    args = p.parse_args()
    sections = [
        training_section(args.train_exp, f"1. AIR-Net (quickstart width) trained here for {args.train_budget_s} s",
                         budget_s=args.train_budget_s),
        evaluation_section(args.eval_dir, "2. Held-out reconstruction with the shipped pretrained AIR-Net "
                                          "(pretrained_models/airnet300_synth.pt)"),
    ]
    print(write_report(args.out, "ShapeLab quickstart: occupancy reconstruction from 300 points", sections, args.commands))


if __name__ == "__main__":
    main()
