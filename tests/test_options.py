"""Every option of every command, read from the parsers themselves: each has help that shows its default,
and each numeric or choice option refuses invalid values before any work (exit 2, one line naming the
option, no traceback, nothing written). Run in-process: validation comes before torch or datatrove work."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import cli_config
from corpus_helpers import write_jsonl


def commands():
    """(name, parser, main, required arguments given a tmp folder) for every command and sub-command."""
    import bench.__main__ as bench_main
    import corpus.cli as clean
    import corpus.demo_corpus as demo
    import train.__main__ as train_main

    out = []
    out.append(
        (
            "corpus-clean",
            clean.build_parser(),
            clean.main,
            lambda t: ["--input", str(t / "docs.jsonl"), "--output", str(t / "out")],
        )
    )
    out.append(("demo-corpus", demo.build_parser(), demo.main, lambda t: ["--output", str(t / "out")]))
    out.append(("bench", bench_main.build_parser(), bench_main.main, lambda t: ["--output", str(t / "out")]))
    train_required = {
        "partition": lambda t: ["partition", "--output", str(t / "out"), "--input", str(t / "raw")],
        "tokenizer": lambda t: ["tokenizer", "--output", str(t / "out"), "--gpt2"],
        "tokenize": lambda t: [
            "tokenize",
            "--output",
            str(t / "out"),
            "--data",
            str(t / "clean"),
            "--tokenizer",
            str(t / "tok"),
        ],
        "pretrain": lambda t: [
            "pretrain",
            "--output",
            str(t / "out"),
            "--tokens",
            str(t / "tokens"),
            "--init",
            "scratch",
        ],
        "sample": lambda t: ["sample", str(t / "model")],
    }
    for name, sub in subparsers(train_main.build_parser()).items():
        out.append((f"train {name}", sub, train_main.main, train_required[name]))
    import eval.__main__ as eval_main

    eval_required = {
        "perplexity": lambda t: ["perplexity", str(t / "model")],
        "blimp": lambda t: ["blimp", str(t / "model")],
        "glue": lambda t: ["glue", str(t / "model"), "--task", "rte", "--output", str(t / "out")],
        "ablation": lambda t: ["ablation", "--output", str(t / "out"), "--teacher", str(t / "teacher")],
        "compare": lambda t: ["compare", "--output", str(t / "out"), "--teacher", str(t / "teacher")],
        "kd-study": lambda t: ["kd-study", "--output", str(t / "out"), "--teacher", str(t / "teacher")],
    }
    for name, sub in subparsers(eval_main.build_parser()).items():
        out.append((f"eval {name}", sub, eval_main.main, eval_required[name]))
    return out


def subparsers(parser: argparse.ArgumentParser) -> dict:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options(parser: argparse.ArgumentParser):
    return [
        a
        for a in parser._actions
        if a.option_strings and not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
    ]


COMMANDS = commands()


@pytest.mark.parametrize("name, parser", [(c[0], c[1]) for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_every_option_says_what_it_does_and_its_default(name, parser):
    for action in options(parser):
        text = " ".join((action.help or "").split())
        flag = action.option_strings[-1]
        assert len(text) > 15, f"{name} {flag}: no help"
        assert "(default:" in text or "(required:" in text, f"{name} {flag}: the help shows no default: {text}"
    assert options(parser), name


def invalid_values(action) -> list[str]:
    """Values the option must refuse, from its type, its choices and its declared check."""
    values = []
    if action.type in (int, float):
        values += ["abc", "1e400" if action.type is float else "1.5"]
        if action.type is float:
            values += ["nan", "inf"]
    if action.choices:
        values.append("no-such-choice")
    check = getattr(action, "field_check", None)
    if isinstance(check, cli_config.Check):
        values += [str(v) for v in check.refused]
    return values


def walked():
    cases = []
    for name, parser, main, required in COMMANDS:
        for action in options(parser):
            if action.type in (int, float):  # every number is checked: a value that makes a step a no-op is refused
                assert isinstance(getattr(action, "field_check", None), cli_config.Check) or action.choices, (
                    f"{name} {action.option_strings[-1]}: a number without a check"
                )
            for value in invalid_values(action):
                cases.append(
                    pytest.param(
                        name,
                        main,
                        required,
                        action.option_strings[-1],
                        value,
                        id=f"{name} {action.option_strings[-1]}={value}",
                    )
                )
    return cases


@pytest.mark.parametrize("name, main, required, flag, value", walked())
def test_invalid_value_is_one_line_and_nothing_is_written(tmp_path, capsys, name, main, required, flag, value):
    write_jsonl(tmp_path / "docs.jsonl", [{"id": "a", "text": "one document"}])
    code = run_in_process(main, required(tmp_path) + [flag, value])
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert flag in lines[0] or flag.lstrip("-").replace("-", "_") in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def run_in_process(main, argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


SHARED = [
    ("corpus-clean", ["--set", "filters=null"], "filters cannot be switched off"),
    ("corpus-clean", ["--set", "minhash=null"], "minhash cannot be switched off"),
    ("corpus-clean", ["--set", "minhash.num_buckets=0"], "minhash.num_buckets: must be > 0"),
    ("corpus-clean", ["--set", "minhash.num_buckets=-2"], "minhash.num_buckets: must be > 0"),
    ("corpus-clean", ["--set", "minhash.hashes_per_bucket=0"], "minhash.hashes_per_bucket: must be > 0"),
    ("corpus-clean", ["--set", "minhash.n_grams=0"], "minhash.n_grams: must be > 0"),
    ("corpus-clean", ["--set", "minhash.hash_precision=16"], "choose one of 32, 64"),
    ("corpus-clean", ["--set", "paper.max_non_alpha_fraction=2"], "paper.max_non_alpha_fraction: must be"),
    ("corpus-clean", ["--set", 'filters.languages=["xx"]'], "unknown language code 'xx'"),
    ("corpus-clean", ["--languages", "xx"], "--languages: unknown language code 'xx'"),
    ("corpus-clean", ["--languages", ""], "--languages: unknown language code ''"),
    ("corpus-clean", ["--executor", "slurm"], "--executor slurm needs --slurm-partition"),
    ("corpus-clean", ["--set", "filters.lid_model=/no/such/lid.bin"], "/no/such/lid.bin: No such file"),
    ("corpus-clean", ["--set", "filters.lid_model=pyproject.toml"], "not a fastText model file"),
    ("train pretrain", ["--batch-size", "0"], "--batch-size: must be > 0"),
    ("train pretrain", ["--grad-accum", "0"], "--grad-accum: must be > 0"),
    ("train pretrain", ["--lr", "-1"], "--lr: must be > 0"),
    ("train pretrain", ["--eval-every", "0"], "--eval-every: must be > 0"),
    ("train pretrain", ["--dropout", "1.5"], "--dropout: must be >= 0.0 and < 1.0"),
    ("train tokenize", ["--block-size", "0"], "--block-size: must be >= 2"),
    ("train pretrain", ["--n-head", "3"], "--n-head 3 must divide --n-embd 256"),
    ("train pretrain", ["--init", "truncate"], "--init truncate needs --teacher"),
    (
        "train pretrain",
        ["--distill", "--teacher", "t", "--alpha-kl", "0", "--alpha-clm", "0", "--alpha-cos", "0"],
        "nothing to learn from",
    ),
    ("train tokenizer", ["--data", "x"], "pass --gpt2, or --data"),
    ("eval ablation", ["--presets", "paper,full"], "--presets: must be each one of none, paper, full"),
    ("eval ablation", ["--seeds", "-1"], "--seeds: must be seeds >= 0"),
    ("eval compare", ["--keep-layers", "alt", "0;2;4"], "--keep-layers: must be each one of alt"),
    ("eval kd-study", ["--tasks", "mnli"], "--tasks: must be each one of sst2, cola, rte"),
    ("eval glue", ["--kd", "rail"], "--kd rail needs --teacher"),
]


@pytest.mark.parametrize("name, argv, message", SHARED, ids=[f"{c[0]} {' '.join(c[1])}" for c in SHARED])
def test_settings_that_would_do_nothing_or_everything_are_refused(tmp_path, capsys, name, argv, message):
    _, _, main, required = next(c for c in COMMANDS if c[0] == name)
    write_jsonl(tmp_path / "docs.jsonl", [{"id": "a", "text": "one document"}])
    code = run_in_process(main, required(tmp_path) + argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_language_codes_are_normalised(tmp_path):
    from corpus.cli import build_parser, resolve

    args = build_parser().parse_args(["--input", "x", "--output", "y", "--languages", "EN", " De "])
    assert resolve(args).filters.languages == ["en", "de"]
    args = build_parser().parse_args(["--input", "x", "--output", "y", "--languages"])
    assert resolve(args).filters.languages is None  # none given: every language


def test_one_subprocess_shows_the_same_line_without_torch(tmp_path):
    """The real entry point: the mistake is refused before torch is imported (so it is quick)."""
    code = (
        "import sys, train.__main__ as m\n"
        "rc = m.main(['pretrain', '--tokens', 'x', '--output', sys.argv[1], '--batch-size', '0'])\n"
        "assert 'torch' not in sys.modules\nsys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr == "train: error: --batch-size: must be > 0 (got 0)\n"
    assert not Path(tmp_path / "out").exists()


# ------------------------------------------------------------------ the record reproduces the run
def test_corpus_clean_record_runs_the_same_cleaning_again(tmp_path):
    from corpus.cli import main as corpus_clean

    src = write_jsonl(
        tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": f"Line {i} of a short text.\nAnd more."} for i in range(20)]
    )
    first, second = tmp_path / "first", tmp_path / "second"
    assert (
        corpus_clean(
            [
                "--input",
                str(src),
                "--output",
                str(first),
                "--preset",
                "paper",
                "--workers",
                "1",
                "--max-shard-mb",
                "64",
                "--set",
                "paper.min_chars=12",
            ]
        )
        == 0
    )
    record = first / cli_config.RECORD
    text = record.read_text()
    assert 'preset = "paper"' in text and "min_chars = 12" in text and "max_shard_mb = 64.0" in text
    assert corpus_clean(["--config", str(record), "--output", str(second)]) == 0
    assert (second / cli_config.RECORD).read_text() == text.replace(str(first), str(second))
    digests = [[s["sha256"] for s in json.loads((p / "manifest.json").read_text())["shards"]] for p in (first, second)]
    assert digests[0] and digests[0] == digests[1]


def test_recipes_are_the_shipped_files_and_a_users_recipe_layers_on_them(tmp_path):
    from corpus.cli import CleanCommand, build_parser, recipe, resolve

    def settings(*argv):
        return resolve(build_parser().parse_args(["--input", "x", "--output", "y", *argv]))

    assert settings() == CleanCommand(input=["x"], output="y")  # full.toml holds the defaults
    assert settings("--preset", "full") == settings()
    assert settings("--preset", "paper").preset == "paper" and recipe("none") == {"preset": "none"}
    mine = tmp_path / "mine.toml"
    mine.write_text(
        'preset = "full"\n[filters]\nc4_quality = false\n[filters.gopher_quality]\nmin_doc_words = 30\n'
        "[minhash]\nnum_buckets = 20\n"
    )
    cfg = settings("--config", str(mine), "--set", "minhash.seed=3")
    assert cfg.filters.c4_quality is None and cfg.filters.gopher_quality == {"min_doc_words": 30}
    assert (cfg.minhash.num_buckets, cfg.minhash.seed, cfg.minhash.n_grams) == (20, 3, 5)
    assert cfg.filters.fineweb_quality == {} and cfg.filters.languages == ["en"]


@pytest.mark.parametrize(
    "argv",
    [
        ["partition", "--output", "p", "--input", "a", "b", "--teacher-fraction", "0.3"],
        ["tokenizer", "--output", "t", "--data", "a", "b", "--vocab-size", "300"],
        ["tokenize", "--output", "t", "--data", "c", "--tokenizer", "k", "--block-size", "64", "--split", "id-hash"],
        [
            "pretrain",
            "--output",
            "r",
            "--tokens",
            "k",
            "--init",
            "scratch",
            "--n-layer",
            "2",
            "--lr",
            "3e-4",
            "--distill",
            "--teacher",
            "gpt2",
            "--keep-layers",
            "0,2,4",
            "--dropout",
            "0.1",
        ],
    ],
)
def test_train_records_read_back_to_the_same_settings(tmp_path, argv):
    from train import TrainError
    from train.__main__ import build_parser
    from train.config import COMMANDS

    cls = COMMANDS[argv[0]]
    cfg = cli_config.resolve(cls, build_parser().parse_args(argv), TrainError)
    cli_config.write_record(cfg, tmp_path, f"python -m train {argv[0]}")
    again = cli_config.resolve(
        cls, build_parser().parse_args([argv[0], "--config", str(tmp_path / "config.toml")]), TrainError
    )
    assert again == cfg and again != cls(output=cfg.output)


def test_the_documented_config_files_are_valid(tmp_path):
    """Each TOML example of docs/configuration.md resolves with its command's settings."""
    import re

    from corpus import CorpusError
    from corpus.cli import build_parser as clean_parser, resolve as clean_resolve
    from corpus.demo_corpus import DemoConfig
    from bench.__main__ import BenchConfig
    from eval import EvalError
    from eval.__main__ import COMMANDS as COMMANDS_OF_EVAL
    from train import TrainError
    from train.config import COMMANDS

    text = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    sections = re.split(r"\n## ", text)
    checked = 0
    for section in sections:
        title = section.splitlines()[0]
        for i, block in enumerate(re.findall(r"```toml\n(.*?)```", section, re.S)):
            path = tmp_path / f"{checked}.toml"
            path.write_text(block)
            args = argparse.Namespace(config=str(path))
            if title.startswith("corpus-clean"):
                cfg = clean_resolve(clean_parser().parse_args(["--config", str(path), "--input", "x", "--output", "y"]))
            elif "demo_corpus" in title:
                cfg = cli_config.resolve(DemoConfig, args, CorpusError)
            elif "bench" in title:
                cfg = cli_config.resolve(BenchConfig, args, CorpusError)
            elif title.startswith("python -m eval"):
                cls = importlib.import_module(COMMANDS_OF_EVAL[title.split()[-1]][0]).Settings
                cfg = cli_config.resolve(cls, args, EvalError)
            else:
                command = title.split()[-1]
                cfg = cli_config.resolve(COMMANDS[command], args, TrainError)
            assert cfg is not None
            checked += 1
    assert checked >= 12


def test_glue_record_reads_back_to_the_same_settings(tmp_path):
    from eval import EvalError
    from eval.__main__ import build_parser
    from eval.glue import GlueCommand

    parser = subparsers(build_parser())["glue"]
    argv = ["student", "--task", "cola", "--teacher", "t", "--kd", "rail", "--rail-dim", "64", "--epochs", "2"]
    cfg = cli_config.resolve(GlueCommand, parser.parse_args(argv), EvalError)
    cli_config.write_record(cfg, tmp_path, "python -m eval glue")
    again = cli_config.resolve(GlueCommand, parser.parse_args(["--config", str(tmp_path / "config.toml")]), EvalError)
    assert again == cfg and again.finetuning().rail_dim == 64
