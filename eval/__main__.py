"""python -m eval <command>: perplexity, GLUE fine-tuning, and the studies built on them.

    python -m eval perplexity MODEL_DIR [--data FILE ...] [--tokens TOKENS_DIR]
    python -m eval blimp MODEL_DIR [--paradigms NAME ...] [--max-pairs N]
    python -m eval glue MODEL_DIR --task sst2|cola|rte [--teacher DIR --kd vanilla|annealing|rail]
    python -m eval ablation  [--scale default|smoke|large] [--study presets|steps]   (make ablation [STUDY=steps])
    python -m eval compare   [--scale ...] [--keep-layers alt distil]  (make compare)
    python -m eval kd-study  [--scale ...]                      (make kd-finetune)

Every command also reads its settings from `--config FILE` (flags override it); a study writes the resolved
settings into its folder as config.toml, which `--config` reads back to run it again.
"""
from __future__ import annotations

import importlib
import shlex
import sys

import cli_config
from eval import EvalError
from safe_output import run_cli, use_output

COMMANDS = {  # command: (module, one-line help); each module has `Settings` (a dataclass) and run(settings, args)
    "perplexity": ("eval.perplexity", "sliding-window perplexity on text files or token shards"),
    "blimp": ("eval.blimp", "BLiMP zero-shot: accuracy on 67 paradigms of grammatical/ungrammatical minimal pairs"),
    "glue": ("eval.glue", "fine-tune on a GLUE task (optionally with knowledge distillation)"),
    "ablation": ("eval.studies.ablation", "does cleaning help? none vs paper vs full, or each step of full "
                 "(--study steps)"),
    "compare": ("eval.studies.compare", "truncation vs distillation vs scratch, at equal token budget"),
    "kd-study": ("eval.studies.kd_study", "KD techniques during fine-tuning, on SST-2, CoLA and RTE"),
}


STUDIES = ("ablation", "compare", "kd-study")  # commands with an --output folder of their own


def build_parser() -> cli_config.OneLineParser:
    parser = cli_config.new_parser("python -m eval", __doc__)  # a mistake is one line, as everywhere
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=cli_config.HelpFormatter)
        cli_config.add_arguments(p, importlib.import_module(module).Settings)
        running = p.add_argument_group("running")
        if name in STUDIES or name == "glue":
            running.add_argument("--wait", action="store_true", help="if another run is using --output, wait for it to "
                                 "end (default: stop at once)")
        running.add_argument("--eval-data", metavar="DIR", help="folder with wikitext-2-raw/ and glue/ (default: "
                             "$EVAL_DATA, else ../shared/data from the current directory when present, else the "
                             "Hugging Face hub when online)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # the reports name the exact command behind their numbers
    args.command_line = "python -m eval " + shlex.join(sys.argv[1:] if argv is None else argv)
    return run_cli(f"eval {args.command}", lambda: run(args))


def run(args) -> None:
    from eval.data import use

    command = importlib.import_module(COMMANDS[args.command][0])
    settings = cli_config.resolve(command.Settings, args, EvalError)  # every option checked before any work
    use(args.eval_data)
    if args.command not in STUDIES:
        command.run(settings, args)
        return
    # a study writes only into a folder it made, one run at a time
    inputs = {f"--{name.replace('_', '-')}": [v] if isinstance(v, str) else v
              for name in ("input", "clean", "clean_root", "teacher", "teacher_data", "student")
              if (v := getattr(settings, name, None))}
    if args.eval_data:
        inputs["--eval-data"] = [args.eval_data]
    with use_output(settings.output, f"eval {args.command}", wait=args.wait,
                    inputs=inputs):
        cli_config.write_record(settings, settings.output, f"python -m eval {args.command}")
        command.run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
