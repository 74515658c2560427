"""The three studies end to end at smoke scale, on real text: reports, JSON and plots hold this run's numbers."""

from __future__ import annotations

import json
import math
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from browser import Browser
from safe_output.atomic import is_leftover
from train.model import GPT
from train.tokenizer import save_tokenizer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_html_report(out: Path, tmp_path: Path, metric: str, with_plots: bool = True) -> None:
    """report.html in headless Chromium (network off): no console errors, every plot drawn from inline data (none
    when `with_plots` is False), and each run's `metric` in the runs table equal to results.json's. Saves a
    screenshot in tmp_path."""
    results = json.loads((out / "results.json").read_text())
    with Browser(tmp_path / "profile") as b:
        b.open(out / "report.html")
        b.screenshot(tmp_path / f"{out.name}-report.png")
        assert b.errors == []
        plots = b.eval("[...document.images].map(i => [i.src.slice(0, 22), i.complete && i.naturalWidth > 0])")
        assert bool(plots) == with_plots and all(p == ["data:image/png;base64,", True] for p in plots)
        assert len(plots) == (out / "report.md").read_text().count("![")
        shown = b.eval(
            f"Object.fromEntries([...document.querySelectorAll('#runs + p + .scroll tbody tr')].map(tr => "
            "[tr.querySelector('[data-run]').dataset.run, "
            f"JSON.parse(tr.querySelector('[data-key=\"{metric}\"] [data-value]')"
            ".dataset.value)]))"
        )
        assert shown == {name: run[metric] for name, run in results["runs"].items()}
        assert results["command"] and results["command"] in b.eval(
            "document.querySelector('#provenance + p + .scroll').textContent"
        )


def run_eval(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "eval", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_ablation_smoke(shared_data, teacher, tmp_path):
    out = tmp_path / "ablation"
    args = [
        "ablation",
        "--scale",
        "smoke",
        "--input",
        str(shared_data / "html-sample"),
        "--clean-root",
        str(tmp_path / "clean"),
        "--teacher",
        str(teacher),
        "--output",
        str(out),
        "--workers",
        "1",
        "--presets",
        "paper",
        "full",
    ]
    run_eval(*args)
    results = json.loads((out / "results.json").read_text())
    assert set(results["variants"]) == {"none", "paper", "full"}
    assert sorted(results["runs"]) == sorted(f"{p}-seed{s}" for p in ("paper", "full") for s in (0, 1))
    for run in results["runs"].values():
        assert math.isfinite(run["wikitext_ppl"]) and math.isfinite(run["heldout_ppl"]) and 0 <= run["sst2_acc"] <= 1
        assert (
            math.isfinite(run["wikitext_blocks_ppl"]) and run["wikitext_blocks_tokens"] < run["wikitext_tokens"]
        )  # both protocols
        assert 0 < run["wikitext_bpb"] < 20 and run["blimp_pairs"] == 67 * 4 and 0 <= run["blimp_acc"] <= 1
    for name, unit in results["units"].items():  # each BLiMP pair's outcome is kept for McNemar between arms
        if name.startswith("result/"):
            outcomes = json.loads(Path(unit["path"]).read_text())["items"]["blimp_acc"]
            run = results["runs"][name.removeprefix("result/")]
            assert len(outcomes) == 67 * 4 and run["blimp_acc"] == sum(outcomes) / len(outcomes)
    for run in results["runs"].values():
        assert run["curve"] and run["summary"]["tokens"] >= 6144
    # cleaning really differs between variants, and every variant was decontaminated against the eval sets
    kept = {p: v["docs_kept"] for p, v in results["variants"].items()}
    assert kept["full"] < kept["paper"] <= kept["none"]
    assert all(any(s["step"] == "decontaminate" for s in v["stats"]["steps"]) for v in results["variants"].values())
    report = (out / "report.md").read_text()
    full_wiki = [r["wikitext_ppl"] for r in results["runs"].values() if r["preset"] == "full"]
    mean = sum(full_wiki) / 2
    assert f"{mean:.1f} ± " in report  # the table shows this run's mean and spread
    assert "## Is the difference real?" in report
    assert f"Produced by `python -m eval {shlex.join(args)}`" in report  # the exact command behind the numbers
    for png in ("val_ppl.png", "cleaning_steps.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    check_html_report(out, tmp_path, "wikitext_ppl")
    # signal at this scale: at smoke scale no model learns SST-2, so its column is left out (results.json keeps it)
    from eval.studies.signal import baselines
    from eval.studies.stats import learns, rises

    signal, start = results["signal"], results["start"]
    majority = baselines(4, 64, {})["sst2_acc"]["value"]  # the majority class of smoke's 64 SST-2 dev examples
    assert not learns([r["sst2_acc"] for r in results["runs"].values()], majority)
    header = next(line for line in report.splitlines() if line.startswith("| data |"))
    assert "SST-2 acc" not in header and "BLiMP acc" in header and not signal["sst2_acc"]["shown"]
    assert "**SST-2 acc left out**" in report and f"majority class of the SST-2 dev set {majority:.3f}" in report
    # each metric's verdict, from the student before training (evaluated once, a unit of its own)
    assert {"initial/student", "initial result/student"} <= set(results["units"]) and start["wikitext_ppl"] > 0
    for key, s in signal.items():
        by_arm = [[r[key] for r in results["runs"].values() if r["arm"] == a] for a in ("paper", "full")]
        assert s["rises"] == all(rises(start[key], v, s["lower_is_better"]) for v in by_arm), key
        verdict = "carries signal" if s["carries_signal"] else "no signal at this scale: " + "; ".join(s["reasons"])
        assert next(line for line in report.splitlines() if line.startswith(f"| {s['title']} | ")).endswith(
            f"| {verdict} |"
        )
    # resumable: a second run reuses every finished unit (the model before training too) and gives the same report
    before = (out / "report.md").read_text()
    assert "the model before training" not in run_eval(*args).stdout
    assert (out / "report.md").read_text() == before


def small_study_args(shared_data: Path, teacher: Path, out: Path, budget: int = 2048) -> list[str]:
    """One arm (no cleaning), one seed: the smallest whole ablation study."""
    return [
        "ablation",
        "--scale",
        "smoke",
        "--input",
        str(shared_data / "html-sample"),
        "--teacher",
        str(teacher),
        "--output",
        str(out),
        "--workers",
        "1",
        "--presets",
        "none",
        "--seeds",
        "0",
        "--budget-tokens",
        str(budget),
    ]


@pytest.fixture(scope="module")
def small_study(shared_data, teacher, tmp_path_factory) -> dict:
    """The small study run once, uninterrupted: its folder, results and wall time (the tests below share it;
    a test that runs it again in its folder must leave its results.json as it found it)."""
    out = tmp_path_factory.mktemp("small-study") / "ablation"
    start = time.time()
    run_eval(*small_study_args(shared_data, teacher, out))
    return {"out": out, "results": json.loads((out / "results.json").read_text()), "seconds": time.time() - start}


@pytest.mark.slow
def test_a_study_rerun_with_another_budget_reports_only_its_own_units(shared_data, teacher, small_study):
    out, first = small_study["out"], small_study["results"]

    def study(budget: int) -> tuple[dict, str]:
        stdout = run_eval(*small_study_args(shared_data, teacher, out, budget)).stdout
        return json.loads((out / "results.json").read_text()), stdout

    second, stdout = study(4096)
    run = second["runs"]["none-seed0"]
    assert run["summary"]["tokens"] == 4096 and second["scale"]["budget_tokens"] == 4096  # trained on the second budget
    assert "train pretrain" in stdout  # a new run, not the first budget's reused
    assert run["fingerprints"]["run"] != first["runs"]["none-seed0"]["fingerprints"]["run"]
    assert run["wikitext_ppl"] != first["runs"]["none-seed0"]["wikitext_ppl"]
    # the report's numbers are the second run's, under its own fingerprints; both runs live side by side in --output
    report = (out / "report.md").read_text()
    assert "4,096 tokens per run" in report and f"{run['wikitext_ppl']:.1f}" in report
    assert run["fingerprints"]["run"] in report and first["runs"]["none-seed0"]["fingerprints"]["run"] not in report
    assert Path(first["runs"]["none-seed0"]["summary"]["run_dir"]).is_dir() and Path(run["summary"]["run_dir"]).is_dir()
    # the shared units (clean corpus, token shards) were reused, not remade
    assert first["units"]["tokens/none"] == second["units"]["tokens/none"] and "corpus.cli" not in stdout
    # back to the first budget: every unit is reused, nothing is trained or evaluated again
    again, stdout = study(2048)
    assert "$ " not in stdout
    assert again["runs"]["none-seed0"]["wikitext_ppl"] == first["runs"]["none-seed0"]["wikitext_ppl"]
    # more than one pass over the smallest variant needs --allow-repeats
    refused = subprocess.run(
        [sys.executable, "-m", "eval", *small_study_args(shared_data, teacher, out, 10000000)],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "--allow-repeats" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.slow
def test_a_study_killed_at_a_random_moment_reruns_to_the_uninterrupted_numbers(
    shared_data, teacher, small_study, tmp_path
):
    """SIGKILL to the study and all its sub-commands at a random moment, then the same command again: it
    finishes, leaves no temporary files, and reports the numbers of a study that was never interrupted."""
    delay = random.uniform(0.1, 0.9) * small_study["seconds"]
    killed = tmp_path / "killed"
    args = small_study_args(shared_data, teacher, killed)
    study = subprocess.Popen(
        [sys.executable, "-m", "eval", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(delay)
    os.killpg(study.pid, signal.SIGKILL)  # the study's own process group: its pipeline workers and training runs too
    study.wait()
    run_eval(*args)

    assert not [p for p in killed.rglob("*") if is_leftover(p.name)], f"killed after {delay:.1f}s"
    reference = small_study["results"]["runs"]
    rerun = json.loads((killed / "results.json").read_text())["runs"]
    assert rerun.keys() == reference.keys()
    for name, run in reference.items():
        for metric in ("wikitext_ppl", "wikitext_blocks_ppl", "heldout_ppl", "sst2_acc"):
            assert rerun[name][metric] == run[metric], (name, metric, f"killed after {delay:.1f}s")
        assert rerun[name]["summary"]["tokens"] == run["summary"]["tokens"] == 2048
        steps = [
            json.loads(line)["step"]
            for line in (Path(rerun[name]["summary"]["run_dir"]) / "metrics.jsonl").read_text().splitlines()
        ]
        assert steps == sorted(set(steps)), f"metrics lost or repeated (killed after {delay:.1f}s)"


@pytest.mark.slow
def test_compare_smoke(shared_data, teacher, tmp_path):
    clean = tmp_path / "clean"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "corpus.cli",
            "--input",
            str(shared_data / "html-sample"),
            "--output",
            str(clean),
            "--preset",
            "paper",
            "--workers",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    # the teacher's data holds a copy of one training document: found, reported, and left out of the token shards
    from run_helpers import write_clean_corpus
    from train.clean_corpus import iter_documents

    ids, texts = next(iter_documents(clean))
    teacher_data = write_clean_corpus(tmp_path / "teacher-data", [texts[0], "Unrelated words about boats. " * 30])
    out = tmp_path / "compare"
    run_eval(
        "compare",
        "--teacher-data",
        str(teacher_data),
        "--scale",
        "smoke",
        "--teacher",
        str(teacher),
        "--clean",
        str(clean),
        "--seeds",
        "0",
        "--output",
        str(out),
        "--distill-keep-layers",
        "alt",
        "0,3",
        "--freeze-pos-embeddings",
    )
    results = json.loads((out / "results.json").read_text())
    assert results["methods"] == ["truncate-alt", "distill-alt", "distill-0,3", "scratch"]
    runs = results["runs"]
    assert (
        runs["distill-alt-seed0"]["summary"]["distill"] is True
        and runs["distill-0,3-seed0"]["summary"]["distill"] is True
    )
    assert runs["scratch-seed0"]["summary"]["init"] == "scratch"
    assert runs["truncate-alt-seed0"]["summary"]["n_params"] == runs["scratch-seed0"]["summary"]["n_params"]
    # equal arms: every arm trains with the teacher's dropout (scratch too); only distillation froze position embeddings
    assert {r["summary"]["dropout"] for r in runs.values()} == {0.1}
    assert {m: r["summary"]["freeze_pos_embeddings"] for m, r in runs.items()} == {
        "truncate-alt-seed0": False,
        "distill-alt-seed0": True,
        "distill-0,3-seed0": True,
        "scratch-seed0": False,
    }
    report = (out / "report.md").read_text()
    assert "teacher (reference)" in report and "fewer than 2 seeds on a side, so no confidence interval" in report
    overlap = results["teacher_overlap"]["training corpus"]
    assert overlap["docs_with_reference_duplicate"] >= 1 and ids[0] in overlap["ids"]
    assert results["left_out_for_teacher_overlap"] == overlap["docs_with_reference_duplicate"]
    tokens = json.loads((Path(results["units"]["tokens"]["path"]) / "manifest.json").read_text())
    assert tokens["excluded"]["docs_left_out"] == overlap["docs_with_reference_duplicate"]
    assert "**0 overlap in what the students read and are scored on**" in report
    # every method against the paper's, with the paired statistic on the items both were scored on
    assert [(c["a"], c["b"]) for c in results["comparisons"]] == [
        ("truncate-alt", m) for m in ("distill-alt", "distill-0,3", "scratch")
    ]
    assert "Paired over" in report.split("## Is the difference real?")[1]
    assert "## Provenance" in report and all(u["fingerprint"] in report for u in results["units"].values())
    # the code behind the numbers: this checkout's sources (the test runs from the project's own tree)
    from eval.studies.provenance import code_version

    assert results["code"]["source_fingerprint"] == code_version()["source_fingerprint"]
    assert f"source fingerprint `{results['code']['source_fingerprint']}`" in report
    # the report names each arm's starting point
    assert "| `truncate-alt` | teacher blocks [0, 2] (every other block) | CLM | 0.1 | no |" in report
    assert "| `distill-0,3` | teacher blocks [0, 3] | DistilGPT-2 (5 KL + 2 CLM + 1 cos) | 0.1 | yes |" in report
    assert "| `scratch` | random initialisation, 2 layers | CLM | 0.1 | no |" in report
    assert "WikiText ppl (blocks)" in report and all(math.isfinite(r["wikitext_blocks_ppl"]) for r in runs.values())
    assert (
        "BLiMP acc" in report
        and "WikiText bits/byte" in report
        and all(0 <= r["blimp_acc"] <= 1 for r in runs.values())
    )
    for png in ("val_loss.png", "val_loss_time.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    # at smoke scale SST-2 does not learn: no column, no comparison, no plot; one line says so
    assert "**SST-2 acc left out**" in report and "SST-2" not in report.split("## Is the difference real?")[1]
    assert not (out / "sst2.png").exists() and all("sst2_acc" in r for r in runs.values())
    # each arm's model before training, evaluated once per starting point: truncate-alt and distill-alt share one
    assert sorted(n for n in results["units"] if n.startswith("initial/")) == [
        "initial/scratch",
        "initial/student-0,3",
        "initial/student-alt",
    ]
    assert results["start"]["truncate-alt"] == results["start"]["distill-alt"] != results["start"]["scratch"]
    assert "## Signal at this scale" in report and "seed spread not weighed (fewer than 2 seeds)" in report
    check_html_report(out, tmp_path, "heldout_ppl")
    for r in runs.values():  # the time axis: the same validation points, at increasing training time within the run's
        times = [t for t, _ in r["curve_time"]]
        assert (
            len(times) == len(r["curve"]) and times == sorted(times) and 0 < times[-1] <= r["summary"]["train_time_s"]
        )


@pytest.mark.slow
def test_kd_study_smoke(shared_data, teacher, tmp_path):
    out = tmp_path / "kd"
    from train.truncate import truncate

    student = tmp_path / "student"
    truncate(GPT.from_pretrained(teacher), [0, 2]).save_pretrained(student)
    save_tokenizer(__import__("train.tokenizer", fromlist=["load_tokenizer"]).load_tokenizer(teacher), student)
    run_eval(
        "kd-study",
        "--scale",
        "smoke",
        "--teacher",
        str(teacher),
        "--student",
        str(student),
        "--tasks",
        "rte",
        "--output",
        str(out),
    )
    results = json.loads((out / "results.json").read_text())
    assert sorted({r["technique"] for r in results["runs"].values()}) == ["annealing", "plain", "rail", "vanilla"]
    assert len(results["runs"]) == 8  # 4 techniques x 2 seeds
    report = (out / "report.md").read_text()
    assert "teacher (4-layer, fine-tuned, seed 0)" in report and "python -m eval kd-study --scale smoke" in report
    # how Annealing-KD fitted its 7 temperatures into 2 phase-1 epochs of 4 steps, said in the report
    assert "2 phase-1 epoch(s) for 7 temperatures: each temperature gets an equal slice of 1.1 steps" in report
    assert "layer-wise projections" in report
    # a 2-layer student on 32 RTE pairs learns nothing: the column, its comparisons and its plot are left out
    assert results["learned"] == {"rte": False} and "**rte dev acc left out** of this report" in report
    assert "| technique | fine-tuning time per run (s) |" in report and "rte acc:" not in report
    assert "No task is shown at this scale, so nothing is compared" in report
    assert "- RAIL term, mean over 2 runs:" in report
    assert not (out / "kd.png").exists()
    check_html_report(out, tmp_path, "value", with_plots=False)


def test_kd_differences_state_the_interval_the_mdd_and_mcnemar_and_rail_collapse():
    from eval.studies.kd_study import difference_lines, rail_lines
    from eval.studies.stats import summarize

    # plain and vanilla on 4 dev examples, 2 seeds: vanilla alone right on 3 examples, plain alone on 1
    correct = {
        ("plain", 0): [1, 0, 0, 1],
        ("plain", 1): [1, 1, 1, 0],
        ("vanilla", 0): [1, 1, 1, 1],
        ("vanilla", 1): [1, 1, 0, 1],
    }
    values = {("plain", 0): 0.60, ("plain", 1): 0.62, ("vanilla", 0): 0.70, ("vanilla", 1): 0.66}
    rail = {"start": {"term": 2.0}, "end": {"term": 0.02, "student_similarity": 0.99}, "collapsed": True}
    runs = {
        f"{k}{s}": {"task": "sst2", "technique": k, "seed": s, "value": values[k, s], "dev_correct": correct[k, s]}
        | ({"rail": rail} if k == "vanilla" else {})
        for k, s in correct
    }
    results = {"runs": runs}
    stat = {"sst2": {k: summarize([values[k, s] for s in (0, 1)]) for k in ("plain", "vanilla")}}
    [line] = difference_lines(results, ["sst2"], ["plain", "vanilla"], stat, {"sst2": "acc"})
    assert "vanilla 0.680 ± 0.028 vs plain 0.610 ± 0.014: difference +0.070" in line
    assert "Minimum detectable difference (alpha 0.05, power 0.8):" in line
    assert (
        "Paired (McNemar on correctness, 8 dev examples over 2 seed pairs): 3 right only with vanilla, 1 only with "
        "plain" in line
    )
    assert difference_lines(results, [], ["plain", "vanilla"], stat, {}) == []
    [rail_line] = rail_lines(results)
    assert (
        "mean over 2 runs: 2.000 at the start, 0.020 at the end; the projections collapsed in 2 of 2 runs" in rail_line
    )
    rail["collapsed"] = False
    assert "did not collapse" in rail_lines(results)[0]


def test_a_kd_task_is_shown_only_when_every_student_learns_it(shared_data, monkeypatch):
    from eval.studies.kd_study import learned

    monkeypatch.setenv("EVAL_DATA", str(shared_data))
    majority = 444 / 872  # SST-2 dev: 444 of 872 sentences are positive

    def results(sst2: list[float], cola: list[float]) -> dict:
        runs = [("sst2", v) for v in sst2] + [("cola", v) for v in cola]
        return {"scale": {"max_dev": 0}, "runs": {str(i): {"task": t, "value": v} for i, (t, v) in enumerate(runs)}}

    verdicts = learned(results([majority + 0.10, 0.7], [0.10, 0.3]), ["sst2", "cola"])
    assert {t: v["shown"] for t, v in verdicts.items()} == {"sst2": True, "cola": True}
    assert verdicts["sst2"]["baseline"] == {"margin": 0.10, "task": "SST-2", "value": majority, "items": 872}
    assert verdicts["cola"]["baseline"]["value"] == 0.0  # a constant answer's MCC
    verdicts = learned(results([majority + 0.099, 0.9], [0.099, 0.5]), ["sst2", "cola"])
    assert {t: v["shown"] for t, v in verdicts.items()} == {"sst2": False, "cola": False}
    assert verdicts["sst2"]["best"] == 0.9
