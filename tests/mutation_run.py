"""Mutation testing of the core logic with mutmut, one module at a time (`make mutation`).

For each module below, mutmut plants small changes (an operator, a constant, a dropped argument) in it, one at a
time, and runs the fast tests listed for it; only the tests that reach the mutated function run for each mutant.
A mutant that no test notices "survived". Each module runs in its own copy of the project under
`.mutation/<module>/` (mutmut reads its settings from that copy's pyproject.toml), niced, and the score, time and
survivors of every module are printed as a Markdown table (and written to `.mutation/summary.md`).

    python tests/mutation_run.py                    # every module
    python tests/mutation_run.py train/split.py     # one module
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"
PACKAGES = ("safe_output", "corpus", "train", "eval")
CORE = "tests/test_core_logic.py"
PROPS = "tests/test_properties.py"
APPLIED = "tests/test_applied.py"

# module -> (mutant-name globs (None: every function in it), the fast tests that cover it)
MODULES: dict[str, tuple[list[str] | None, list[str]]] = {
    "eval/kd.py": (
        None,
        [
            CORE,
            "tests/test_eval.py::test_vanilla_kd_loss_against_a_direct_computation",
            "tests/test_eval.py::test_annealing_loss_and_temperature_schedule",
            "tests/test_eval.py::test_rail_layer_draws",
            "tests/test_eval.py::test_rail_term_against_a_direct_computation",
        ],
    ),
    "train/distill.py": (
        None,
        [
            CORE,
            "tests/test_model.py::test_kl_and_cosine_terms_by_hand",
            "tests/test_model.py::test_distillation_gradients_reach_only_the_student",
            "tests/test_model.py::test_distilgpt2_loss_against_a_direct_computation",
        ],
    ),
    "train/split.py": (
        [
            "train.split.x_is_validation*",
            "train.split.x_shingle_hashes*",
            "train.split.x_jaccard*",
            "train.split.x_find_near_duplicates*",
            "train.split.x_clusters*",
            "train.split.x_cluster_split*",
            "train.split.x_id_hash_split*",
            "train.split.x_leakage*",
        ],
        [CORE, f"{PROPS}::test_split_keeps_every_near_duplicate_chain_together"],
    ),
    "train/fingerprint.py": (None, [CORE]),
    "safe_output/folder.py": (None, [CORE]),
    "train/checkpoint.py": (None, [CORE, f"{APPLIED}::test_resume_takes_the_newest_checkpoint"]),
    "train/loop.py": (["train.loop.x_lr_at*", "train.loop.x_total_steps*"], [CORE]),
    "corpus/quality.py": (
        None,
        [
            f"{PROPS}::test_fast_gopher_quality_decides_as_datatrove",
            f"{PROPS}::test_fast_gopher_quality_at_each_threshold",
        ],
    ),
    "corpus/repetition.py": (
        None,
        [
            f"{PROPS}::test_fast_gopher_repetition_decides_as_datatrove",
            f"{PROPS}::test_fast_gopher_repetition_decides_as_datatrove_at_the_documents_own_fractions",
            f"{PROPS}::test_repetition_helpers_equal_their_definitions",
            f"{PROPS}::test_fast_gopher_repetition_threshold_cases",
        ],
    ),
    "corpus/paper_cleaner.py": (
        None,
        [f"{PROPS}::test_paper_cleaner_equals_its_rules_restated", f"{PROPS}::test_paper_line_rules_at_their_edges"],
    ),
    "corpus/dedup.py": (["corpus.dedup.x_minhash_config*"], [CORE]),
    "eval/studies/stats.py": (
        None,
        [CORE, "tests/test_eval.py::test_welch_interval_matches_scipy", "tests/test_study_stats.py"],
    ),
    "eval/studies/units.py": (None, [CORE]),
    "eval/studies/pretraining.py": (["eval.studies.pretraining.x_result_key*"], [CORE]),
}


def settings(module: str, tests: list[str]) -> str:
    lists = {
        "source_paths": list(PACKAGES),
        "only_mutate": [module],
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-q", "-p", "no:cacheprovider", "-W", "ignore", "--hypothesis-profile=mutation"],
    }
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in lists.items()]
    # workers are forked from the process that ran the tests once: one torch thread each (OMP_NUM_THREADS=1, below),
    # so no thread pool has to survive the fork
    return "\n".join(lines + ['process_isolation = "fork"', "timeout_multiplier = 10.0", "timeout_constant = 30.0", ""])


def run_module(module: str) -> dict:
    globs, tests = MODULES[module]
    work = WORK / module.replace("/", ".")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in (*PACKAGES, "tests"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (work / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + settings(module, tests))
    # the tests find the reference data beside the project root; mutmut runs them from <work>/mutants
    (work / "shared").symlink_to((ROOT.parent / "shared").resolve())
    mutmut = [sys.executable, "-c", "from mutmut.__main__ import cli; cli()"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # one thread per worker: two workers on two cores
    start = time.time()
    run = subprocess.run(
        ["nice", "-n", "10", *mutmut, "run", "--max-children", "2", *(globs or [])],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    elapsed = time.time() - start
    if run.returncode != 0:  # the tests failed before any mutant ran, or none were found: there is no score
        sys.stdout.write(run.stdout[-3000:])
        raise SystemExit(f"mutmut could not run the tests of {module} (exit {run.returncode}), in {work}")
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=work, env=env, capture_output=True, check=True)
    stats = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text())
    listed = subprocess.run([*mutmut, "results"], cwd=work, env=env, capture_output=True, text=True, check=True).stdout
    survivors = re.findall(r"^\s+(\S+): (survived|no tests|suspicious)", listed, flags=re.M)
    if globs:  # mutants of other functions of the module were not run: they are not counted
        survivors = [(name, s) for name, s in survivors if any(re.fullmatch(g.replace("*", ".*"), name) for g in globs)]
    return {
        "module": module,
        "killed": stats["killed"],
        "survived": stats["survived"],
        "no_tests": stats.get("no_tests", 0),
        "timeout": stats.get("timeout", 0),
        "seconds": round(elapsed),
        "survivors": [name for name, _ in survivors],
    }


def main(argv: list[str]) -> int:
    modules = argv or list(MODULES)
    results = [run_module(m) for m in modules]
    rows = ["| module | mutants | killed | survived | score | time |", "|---|---|---|---|---|---|"]
    for r in results:
        total = r["killed"] + r["survived"] + r["no_tests"] + r["timeout"]
        rows.append(
            f"| {r['module']} | {total} | {r['killed'] + r['timeout']} | {r['survived'] + r['no_tests']} | "
            f"{100 * (r['killed'] + r['timeout']) / max(total, 1):.1f}% | {r['seconds']} s |"
        )
    killed = sum(r["killed"] + r["timeout"] for r in results)
    total = sum(r["killed"] + r["survived"] + r["no_tests"] + r["timeout"] for r in results)
    rows.append(
        f"| all | {total} | {killed} | {total - killed} | {100 * killed / max(total, 1):.1f}% | "
        f"{sum(r['seconds'] for r in results)} s |"
    )
    survivors = [f"- {name}" for r in results for name in r["survivors"]]
    text = "\n".join(rows + ["", "Survivors:", *survivors, ""])
    WORK.mkdir(exist_ok=True)
    name = "summary.md" if not argv else "summary-" + "-".join(m.replace("/", ".") for m in argv) + ".md"
    (WORK / name).write_text(text)
    (WORK / "results.json").write_text(json.dumps(results, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
