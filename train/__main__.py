"""python -m train <command>: [partition ->] tokenizer -> tokenize -> pretrain (-> sample).

    python -m train partition --input data/demo/jsonl --output data/partition   (a teacher part and a study part)
    python -m train tokenizer --data data/clean/full --vocab-size 8192 --output runs/tok   (or --gpt2)
    python -m train tokenize  --data data/clean/full --tokenizer runs/tok --output runs/tokens
    python -m train pretrain  --tokens runs/tokens --teacher DIR --keep-layers alt --output runs/student
    python -m train sample    runs/student --prompt "The kernel" --max-new-tokens 100       (a run or an export)
    torchrun --nproc_per_node 2 -m train pretrain ...                                    (data parallel)

Every command also reads its settings from `--config FILE` (flags override it) and writes the resolved
settings into its output folder as config.toml, which `--config` reads back to run it again.
"""

from __future__ import annotations

import sys

import cli_config
from safe_output import run_cli
from train import TrainError
from train.config import COMMANDS

HELP = {
    "partition": "raw JSON Lines -> a teacher part and a study part, split by near-duplicate cluster",
    "tokenizer": "GPT-2's BPE, or a BPE trained on a clean corpus",
    "tokenize": "clean-corpus directory -> token shards",
    "pretrain": "pre-train a (truncated) GPT-2 on token shards",
    "sample": "text from a run folder or an export",
}


def build_parser() -> cli_config.OneLineParser:
    parser = cli_config.new_parser("python -m train", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, cls in COMMANDS.items():
        p = sub.add_parser(name, help=HELP[name], description=HELP[name], formatter_class=cli_config.HelpFormatter)
        cli_config.add_arguments(p, cls)
        if name == "sample":  # writes nothing: no output folder to guard
            continue
        run = p.add_argument_group("running")
        if name != "pretrain":
            run.add_argument(
                "--overwrite",
                action="store_true",
                help="replace this command's own earlier output made with other settings (default: stop and say so)",
            )
        run.add_argument(
            "--wait",
            action="store_true",
            help="if another run is using --output, wait for it to end (default: stop at once)",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli("train", lambda: run(args))


def run(args) -> int:
    cfg = cli_config.resolve(COMMANDS[args.command], args, TrainError)  # every option checked before any work
    record = cli_config.record_text(cfg, f"python -m train {args.command}")
    if args.command == "partition":
        from train.split import partition_raw

        partition_raw(
            cfg.input, cfg.output, cfg.teacher_fraction, overwrite=args.overwrite, wait=args.wait, record=record
        )
    elif args.command == "tokenizer":
        from train.tokenizer import main_tokenizer

        main_tokenizer(
            cfg.data, cfg.output, cfg.gpt2, cfg.vocab_size, overwrite=args.overwrite, wait=args.wait, record=record
        )
    elif args.command == "tokenize":
        from train.tokenize_shards import tokenize_corpus

        tokenize_corpus(
            cfg.data,
            cfg.tokenizer,
            cfg.output,
            cfg.block_size,
            cfg.val_fraction,
            split=cfg.split,
            overwrite=args.overwrite,
            wait=args.wait,
            record=record,
            workers=cfg.workers,
            exclude=cfg.exclude,
        )
    elif args.command == "sample":
        from train.sample import sample

        sample(
            cfg.model, cfg.prompt, cfg.max_new_tokens, cfg.temperature, cfg.top_k, cfg.seed, cfg.num_samples, cfg.device
        )
    else:
        from train.loop import train

        result = train(cfg, wait=args.wait, settings=record)
        if result.get("interrupted"):
            return result.get("exit_code", 130)
    return 0


if __name__ == "__main__":
    sys.exit(main())
