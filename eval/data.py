"""Where the evaluation data lives: the WikiText-2 raw test split and the GLUE TSVs, outside the repository.

A folder laid out as `wikitext-2-raw/wiki.test.raw` and `glue/{SST-2,CoLA,RTE}/{train,dev}.tsv` is found
through, in order: `--eval-data DIR`, the `EVAL_DATA` environment variable, `../shared/data` relative to
the current directory (when present). With none of them, online, the Hugging Face datasets of the same
name (`wikitext`, `glue`) are fetched once and written in that layout under `~/.cache/gpt2-compress/`;
offline, one line says what to pass.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV = "EVAL_DATA"
WIKITEXT = Path("wikitext-2-raw") / "wiki.test.raw"
GLUE = Path("glue")
BLIMP = Path("blimp")
HUB_CACHE = Path.home() / ".cache" / "gpt2-compress" / "eval-data"
HINT = f"pass --eval-data DIR or set {ENV}=DIR (a folder with {WIKITEXT} and glue/SST-2, CoLA, RTE TSVs), or run online"


def candidates() -> list[Path]:
    """Folders searched, in order (the option sets the environment variable, so subprocesses see it too)."""
    found = []
    if os.environ.get(ENV):
        found.append(Path(os.environ[ENV]))
    found += [Path.cwd().parent / "shared" / "data", HUB_CACHE]
    return found


def use(option: str | None) -> None:
    """--eval-data: make it the first place searched, here and in every subprocess."""
    if option:
        if not Path(option).is_dir():
            from eval import EvalError

            raise EvalError(f"--eval-data {option}: not a folder")
        os.environ[ENV] = str(Path(option).resolve())


def wikitext_test() -> Path:
    for root in candidates():
        if (root / WIKITEXT).is_file():
            return root / WIKITEXT
    if os.environ.get(ENV):  # the user named a folder: say it lacks the file rather than fetching elsewhere
        _missing(f"{Path(os.environ[ENV]) / WIKITEXT} not found")
    _from_hub()
    return HUB_CACHE / WIKITEXT


def glue_dir() -> Path:
    for root in candidates():
        if (root / GLUE / "SST-2" / "dev.tsv").is_file():
            return root / GLUE
    if os.environ.get(ENV):
        _missing(f"{Path(os.environ[ENV]) / GLUE}/SST-2/dev.tsv not found")
    _from_hub()
    return HUB_CACHE / GLUE


def blimp_dir() -> Path:
    """The folder of BLiMP's 67 `<paradigm>.jsonl` files."""
    for root in candidates():
        if any((root / BLIMP).glob("*.jsonl")):
            return root / BLIMP
    if os.environ.get(ENV):
        _missing(f"{Path(os.environ[ENV]) / BLIMP}/*.jsonl not found")
    try:
        from datasets import get_dataset_config_names, load_dataset

        names = get_dataset_config_names("nyu-mll/blimp")
        paradigms = {name: load_dataset("nyu-mll/blimp", name, split="train") for name in names}
    except Exception as e:  # offline, or the hub refused
        _missing(f"no local BLiMP found ({', '.join(map(str, candidates()[:-1]))}) and the Hugging Face hub is "
                 f"unreachable ({type(e).__name__})")
    import json

    (HUB_CACHE / BLIMP).mkdir(parents=True, exist_ok=True)
    for name, rows in paradigms.items():
        tmp = HUB_CACHE / BLIMP / f"{name}.jsonl.tmp"
        tmp.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        os.replace(tmp, HUB_CACHE / BLIMP / f"{name}.jsonl")
    return HUB_CACHE / BLIMP


def _missing(what: str):
    from eval import EvalError

    raise EvalError(f"evaluation data: {what}: {HINT}")


def _from_hub() -> None:
    """Write WikiText-2 raw test and SST-2 / CoLA / RTE train+dev from the Hugging Face hub in the local layout."""
    try:
        from datasets import load_dataset

        wiki = load_dataset("wikitext", "wikitext-2-raw-v1", split="test")
        glue = {task: load_dataset("glue", task) for task in ("sst2", "cola", "rte")}
    except Exception as e:  # offline, or the hub refused: one line, what to pass instead
        _missing(f"no local copy found ({', '.join(map(str, candidates()[:-1]))}) and the Hugging Face hub is unreachable "
                 f"({type(e).__name__})")
    (HUB_CACHE / WIKITEXT).parent.mkdir(parents=True, exist_ok=True)
    tmp = HUB_CACHE / (str(WIKITEXT) + ".tmp")
    tmp.write_text("".join(wiki["text"]), encoding="utf-8")
    os.replace(tmp, HUB_CACHE / WIKITEXT)
    clean = lambda s: s.replace("\t", " ").replace("\n", " ")  # noqa: E731  (the TSVs are read unquoted)
    layouts = {  # the TSV layouts of the original GLUE release, which eval.glue reads
        "sst2": ("SST-2", ["sentence", "label"], lambda r: [clean(r["sentence"]), r["label"]]),
        "cola": ("CoLA", None, lambda r: ["hub", r["label"], "", clean(r["sentence"])]),
        "rte": ("RTE", ["index", "sentence1", "sentence2", "label"],
                lambda r: [r["idx"], clean(r["sentence1"]), clean(r["sentence2"]), ["entailment", "not_entailment"][r["label"]]]),
    }
    for task, (folder, header, row) in layouts.items():
        directory = HUB_CACHE / GLUE / folder
        directory.mkdir(parents=True, exist_ok=True)
        for split, name in (("train", "train.tsv"), ("validation", "dev.tsv")):
            tmp = directory / (name + ".tmp")
            lines = ([header] if header else []) + [row(r) for r in glue[task][split]]
            tmp.write_text("".join("\t".join(map(str, fields)) + "\n" for fields in lines), encoding="utf-8")
            os.replace(tmp, directory / name)
