"""Language ID: the cleaner's filter against datatrove's `LanguageFilter` on the same pages, in one process.

Ours (`corpus.filters.BundledLanguageFilter`) computes fastText's predictions from lid.176's own numbers
(`corpus/language_id.py`), reading a sample of a long page first (the default) or every page whole;
datatrove's `LanguageFilter` runs fastText's own `predict` on every whole page. Both run as datatrove steps
(`step.run(documents)`) with the same model file and threshold. CPU seconds of the step alone, a warm-up round
then `repeats` rounds (the sides alternate), median and range; the kept documents compared with datatrove's.
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import time
from pathlib import Path

NEEDS = ("fasttext",)  # datatrove's LanguageFilter, the baseline, calls fastText itself
ROOT = Path(__file__).resolve().parents[1]
INPUT = Path(os.environ.get("BENCH_LID_INPUT", ROOT / "data" / "demo" / "jsonl"))


def read_pages(path: Path) -> list:
    from datatrove.data import Document

    files = sorted(path.glob("*.jsonl*")) if path.is_dir() else [path]
    texts = []
    for file in files:
        with (gzip.open if file.suffix == ".gz" else open)(file, "rt", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]
    return [Document(text=text, id=str(number)) for number, text in enumerate(texts)]


def sides() -> dict:
    from datatrove.pipeline.filters import LanguageFilter

    from corpus.filters import BundledLanguageFilter, bundled_lid_model_path

    def datatrove_filter():
        step = LanguageFilter(languages=["en"], language_threshold=0.65, backend="ft176")
        step.model.MODEL_URL = bundled_lid_model_path()  # the same model file, not a download
        return step

    return {
        "ours, samples first (the default)": lambda: BundledLanguageFilter(["en"], language_threshold=0.65),
        "ours, every page whole": lambda: BundledLanguageFilter(["en"], language_threshold=0.65, sample_chars=None),
        "datatrove LanguageFilter (fastText), whole": datatrove_filter,
    }


def kept_ids(step, pages: list) -> tuple[float, set]:
    start = time.process_time()
    kept = {doc.id for doc in step.run(iter(pages))}
    return time.process_time() - start, kept


def main(out_dir: Path, repeats: int = 3) -> dict:
    from datatrove.data import Document

    if not INPUT.exists():
        raise SystemExit(f"bench_language_id: no input at {INPUT} (make demo-corpus, or set BENCH_LID_INPUT)")
    pages = read_pages(INPUT)
    chars = sum(len(doc.text) for doc in pages)
    print(f"input: {INPUT} ({len(pages):,} pages, {chars / 1e6:.1f}M characters); 1 warm-up + {repeats} rounds")
    steps = {name: make() for name, make in sides().items()}
    for step in steps.values():  # load the model before timing
        list(step.run(iter([Document(text="a few words to load the model", id="warm")])))
    times: dict[str, list[float]] = {name: [] for name in steps}
    kept: dict[str, set] = {}
    for round_ in range(repeats + 1):
        for name, step in steps.items():
            cpu, kept[name] = kept_ids(step, [Document(text=doc.text, id=doc.id) for doc in pages])
            if round_:
                times[name].append(cpu)
            print(f"  round {round_}{' (warm-up)' if not round_ else ''}, {name}: {cpu:.1f} CPU s")
    baseline = "datatrove LanguageFilter (fastText), whole"
    print(f"\n{'language ID':<44}{'CPU s (median)':>15}{'range':>14}{'vs datatrove':>14}{'kept':>8}{'unlike dt':>11}")
    result = {"pages": len(pages), "characters": chars, "sides": {}}
    for name, runs in times.items():
        median = statistics.median(runs)
        speedup = statistics.median(times[baseline]) / median
        unlike = len(kept[name] ^ kept[baseline])
        print(
            f"{name:<44}{median:>15.1f}{f'{min(runs):.1f}-{max(runs):.1f}':>14}{speedup:>13.1f}x"
            f"{len(kept[name]):>8,}{unlike:>11,}"
        )
        result["sides"][name] = {"cpu_s": runs, "median_cpu_s": median, "kept": len(kept[name]), "unlike": unlike}
    print("(unlike dt: documents kept by one side and not by datatrove's filter)")
    return result
