"""python -m eval <command>: perplexity, GLUE fine-tuning, and the studies built on them.

    python -m eval perplexity MODEL_DIR [--data FILE ...] [--tokens TOKENS_DIR]
    python -m eval glue MODEL_DIR --task sst2|cola|rte [--teacher DIR --kd vanilla|annealing|rail]
    python -m eval ablation  [--scale default|smoke|large]     (make ablation)
    python -m eval compare   [--scale ...] [--keep alt,distil]  (make compare)
    python -m eval kd-study  [--scale ...]                      (make kd-finetune)
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys

COMMANDS = {  # command: (module, one-line help); each module has add_arguments(parser) and run(args)
    "perplexity": ("eval.perplexity", "sliding-window perplexity on text files or token shards"),
    "glue": ("eval.glue", "fine-tune on a GLUE task (optionally with knowledge distillation)"),
    "ablation": ("eval.ablation", "does cleaning help? none vs paper vs full, same budget and seeds"),
    "compare": ("eval.compare", "truncation vs distillation vs scratch, at equal token budget"),
    "kd-study": ("eval.kd_study", "KD techniques during fine-tuning, on SST-2, CoLA and RTE"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        importlib.import_module(module).add_arguments(p)
    args = parser.parse_args(argv)
    # the reports name the exact command behind their numbers
    args.command_line = "python -m eval " + shlex.join(sys.argv[1:] if argv is None else argv)
    from eval.perplexity import EvalError
    from train.model import CheckpointError

    try:
        importlib.import_module(COMMANDS[args.command][0]).run(args)
    except (EvalError, CheckpointError, ValueError) as e:
        print(f"eval {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
