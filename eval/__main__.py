"""python -m eval <command>: perplexity, GLUE fine-tuning, and the studies built on them.

    python -m eval perplexity MODEL_DIR [--data FILE ...] [--tokens TOKENS_DIR]
    python -m eval glue MODEL_DIR --task sst2|cola|rte [--teacher DIR --kd vanilla|annealing|rail]
    python -m eval ablation  [--scale default|smoke|large] [--study presets|steps]   (make ablation [STUDY=steps])
    python -m eval compare   [--scale ...] [--keep alt,distil]  (make compare)
    python -m eval kd-study  [--scale ...]                      (make kd-finetune)
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from safe_output import run_cli, use_output

COMMANDS = {  # command: (module, one-line help); each module has add_arguments(parser) and run(args)
    "perplexity": ("eval.perplexity", "sliding-window perplexity on text files or token shards"),
    "glue": ("eval.glue", "fine-tune on a GLUE task (optionally with knowledge distillation)"),
    "ablation": ("eval.studies.ablation", "does cleaning help? none vs paper vs full, or each step of full (--study steps)"),
    "compare": ("eval.studies.compare", "truncation vs distillation vs scratch, at equal token budget"),
    "kd-study": ("eval.studies.kd_study", "KD techniques during fine-tuning, on SST-2, CoLA and RTE"),
}


STUDIES = ("ablation", "compare", "kd-study")  # commands with an --out folder of their own


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        importlib.import_module(module).add_arguments(p)
        if name in STUDIES:
            p.add_argument("--wait", action="store_true", help="if another study is using --out, wait for it to end (default: stop at once)")
        p.add_argument("--eval-data", metavar="DIR", help="folder with wikitext-2-raw/ and glue/ (default: $EVAL_DATA, else "
                       "../shared/data from the current directory when present, else the Hugging Face hub when online)")
    args = parser.parse_args(argv)
    # the reports name the exact command behind their numbers
    args.command_line = "python -m eval " + shlex.join(sys.argv[1:] if argv is None else argv)
    return run_cli(f"eval {args.command}", lambda: run(args))


def run(args) -> None:
    from eval.data import use

    use(args.eval_data)
    command = importlib.import_module(COMMANDS[args.command][0])
    if args.command not in STUDIES:
        command.run(args)
        return
    # a study writes only into a folder it made, one run at a time; finished studies made before folders
    # were marked are recognised by their report
    with use_output(args.out, f"eval {args.command}", wait=args.wait, legacy=("report.md", "results.json")):
        command.run(args)


if __name__ == "__main__":
    sys.exit(main())
