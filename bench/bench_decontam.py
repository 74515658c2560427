"""What decontamination costs: the `full` preset on the demo corpus with and without `--decontaminate`
against the WikiText-103 test split (= WikiText-2's) and the GLUE dev sets the studies evaluate on."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
EVAL_SETS = [SHARED / "wikitext-2-raw" / "wiki.test.raw"] + [
    SHARED / "glue" / t / "dev.tsv" for t in ("SST-2", "CoLA", "RTE")
]


def clean(inputs: Path, out: Path, extra: list[str]) -> float:
    start = time.time()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "corpus.cli",
            "--input",
            str(inputs),
            "--output",
            str(out),
            "--preset",
            "full",
            "--workers",
            "2",
            *extra,
        ],
        check=True,
        capture_output=True,
    )
    return time.time() - start


def main(out_dir: Path) -> dict:
    inputs = ROOT / "data" / "demo" / "jsonl"
    if not inputs.is_dir():
        inputs = SHARED / "html-sample"
    with tempfile.TemporaryDirectory() as tmp:
        plain = clean(inputs, Path(tmp) / "plain", [])
        decon = clean(inputs, Path(tmp) / "decon", ["--decontaminate", *map(str, EVAL_SETS)])
        stats = json.loads((Path(tmp) / "decon" / "stats.json").read_text())
    step = next(s for s in stats["steps"] if s["step"] == "decontaminate")
    steps_total = sum(s["time_s"] for s in stats["steps"])
    print(f"input: {inputs}; evaluation sets: {', '.join(p.parent.name + '/' + p.name for p in EVAL_SETS)}")
    print(f"{'run':<34}{'wall (s)':>10}")
    print(f"{'full':<34}{plain:>10.1f}")
    print(f"{'full + decontaminate':<34}{decon:>10.1f}")
    print(
        f"decontamination adds {100 * (decon - plain) / plain:.1f}% to the full preset's wall time "
        f"(noisy on a busy machine); its own step time, {step['time_s']:.1f} s summed over tasks, is "
        f"{100 * step['time_s'] / steps_total:.1f}% of all steps' time; it removed {step['docs_removed']} documents"
    )
    return {
        "full_s": plain,
        "full_decontaminate_s": decon,
        "overhead": (decon - plain) / plain,
        "step_time_s": step["time_s"],
        "step_share": step["time_s"] / steps_total,
        "docs_removed": step["docs_removed"],
    }
