"""Running the stages on Slurm: one job array per stage, chained with `afterok` dependencies.

The jobs run in this Python environment: each job script first activates it (the venv's `activate`
through datatrove's `venv_path`, or else puts this interpreter's `bin/` first on PATH), unless
`--slurm-env` gives the command for the compute nodes. The ids of the submitted jobs are kept in
`<out>/.work/slurm_jobs.json`, so the same command run again waits for jobs still queued instead of
submitting them twice. Waiting reads what the jobs leave behind: datatrove's completion markers per
task, our progress lines in the task logs, and `squeue` for what is still queued. A stage whose jobs
have left the queue with tasks unfinished failed: its Slurm log is named and the jobs after it cancelled.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from datatrove.executor.slurm import SlurmPipelineExecutor
from loguru import logger

from corpus import CorpusError
from safe_output import StageFailed, atomic_json


def this_environment() -> dict:
    """How a job gets the environment running this code: datatrove's `venv_path` for a venv, else PATH."""
    activate = Path(sys.prefix) / "bin" / "activate"
    if sys.prefix != sys.base_prefix and activate.is_file():
        return {"venv_path": str(activate)}
    return {"env_command": f"export PATH={Path(sys.executable).parent}:$PATH"}


class StageExecutor(SlurmPipelineExecutor):
    """datatrove's Slurm executor without its per-stage `merge_stats` job: the last stage (`Finalize`)
    sums the per-task stats itself, and a merge job would wait forever behind a failed stage."""

    def launch_merge_stats(self):
        pass


def make_slurm_executor(stage, logging_dir: str, cfg, depends=None) -> StageExecutor:
    if not cfg.slurm_partition:
        raise CorpusError("--executor slurm needs --slurm-partition")
    env = {"env_command": cfg.slurm_env} if cfg.slurm_env else this_environment()
    return StageExecutor(
        stage.steps, tasks=stage.tasks, workers=-1, logging_dir=logging_dir, skip_completed=True, time=cfg.slurm_time,
        partition=cfg.slurm_partition, job_name=f"clean-{stage.name}", depends=depends, **env,
    )


# ------------------------------------------------------------------------------------------- jobs
def jobs_file(lay) -> Path:
    return lay.work / "slurm_jobs.json"


def record_jobs(lay, stages, executors) -> list[dict]:
    jobs = [{"stage": s.name, "tasks": s.tasks, "job_id": str(e.job_id), "logs": str(lay.logs / s.name)}
            for s, e in zip(stages, executors)]
    atomic_json(jobs_file(lay), jobs)
    return jobs


def queued(job_ids: list[str]) -> dict[str, str]:
    """Job id -> state (PENDING, RUNNING, ...) of those jobs still known to `squeue`."""
    ids = [j for j in job_ids if j not in ("-1", "None")]
    if not ids:
        return {}
    result = subprocess.run(["squeue", "-h", "-o", "%F %T", "--jobs", ",".join(ids)], capture_output=True, text=True)
    states: dict[str, str] = {}
    for line in result.stdout.splitlines():
        job, _, state = line.partition(" ")
        if state and (states.get(job) != "RUNNING"):
            states[job] = state
    return states


def still_queued(lay) -> list[dict] | None:
    """The recorded jobs of an earlier submission, if any of them is still queued."""
    if not jobs_file(lay).exists():
        return None
    jobs = json.loads(jobs_file(lay).read_text())
    return jobs if queued([j["job_id"] for j in jobs]) else None


def done_tasks(job: dict) -> int:
    folder = Path(job["logs"]) / "completions"
    return sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0


def failed_task_logs(job: dict) -> list[str]:
    """The Slurm log of each unfinished task (array index i ran the i-th of `ranks_to_run.json`)."""
    logs = Path(job["logs"])
    completed = {p.name for p in (logs / "completions").iterdir()} if (logs / "completions").is_dir() else set()
    ranks = json.loads((logs / "ranks_to_run.json").read_text()) if (logs / "ranks_to_run.json").exists() else []
    return [str(logs / "slurm_logs" / f"{job['job_id']}_{i}.out") for i, rank in enumerate(ranks) if f"{rank:05d}" not in completed]


def last_progress(job: dict) -> str:
    """The latest progress line (docs/s, MB, ETA) in the running stage's task logs."""
    lines = []
    for log in sorted((Path(job["logs"]) / "logs").glob("task_*.log")):
        lines += [line for line in log.read_text(errors="replace").splitlines() if " docs/s" in line][-1:]
    return lines[-1].split(" - ", 1)[-1] if lines else ""


def cancel(jobs: list[dict]) -> None:
    ids = [j["job_id"] for j in jobs if j["job_id"] not in ("-1", "None")]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True)


def wait_for(jobs: list[dict], poll_s: float = 3.0) -> None:
    """Block until every stage has finished all its tasks; raise StageFailed naming the log of a failed task."""
    shown = ""
    while True:
        states = queued([j["job_id"] for j in jobs])
        for i, job in enumerate(jobs):
            done = done_tasks(job)
            if done >= job["tasks"]:
                continue
            if job["job_id"] not in states:
                time.sleep(poll_s)  # left the queue unfinished: give a shared file system time to show the markers
                if done_tasks(job) < job["tasks"]:
                    cancel(jobs[i + 1:])
                    logs = failed_task_logs(job) or [job["logs"]]
                    raise StageFailed(f"Slurm stage {job['stage']} (job {job['job_id']}) failed: "
                                      f"{job['tasks'] - done_tasks(job)} of {job['tasks']} tasks unfinished; read {logs[0]}"
                                      + (f" (and {len(logs) - 1} more logs there)" if len(logs) > 1 else ""))
                continue
            line = f"slurm: stage {i + 1}/{len(jobs)} {job['stage']}: {done}/{job['tasks']} tasks done, job {job['job_id']} {states[job['job_id']].lower()}"
            progress = last_progress(job)
            line += f"; {progress}" if progress else ""
            if line != shown:
                logger.info(line)
                shown = line
            break
        else:
            return
        time.sleep(poll_s)


def check_command(jobs: list[dict]) -> str:
    ids = ",".join(j["job_id"] for j in jobs if j["job_id"] not in ("-1", "None"))
    return f"squeue --jobs {ids}"


def submit(stages: list, cfg, lay, wait: bool = True) -> dict:
    """Submit the chain of stages (or find the one submitted before still queued); wait for it unless told not to."""
    jobs = still_queued(lay)
    if jobs is None:
        executors = []
        for stage in stages:
            executors.append(make_slurm_executor(stage, str(lay.logs / stage.name), cfg,
                                                 depends=executors[-1] if executors else None))
        executors[-1].run()  # submits the whole chain, each stage after the one it depends on
        jobs = record_jobs(lay, stages, executors)
        logger.info(f"submitted to Slurm: {sum(j['job_id'] != '-1' for j in jobs)} job arrays; check on them: {check_command(jobs)}")
    else:
        logger.info(f"the jobs submitted before are still queued; waiting for them ({check_command(jobs)})")
    if not wait:
        return {"submitted": True, "jobs": jobs, "check": check_command(jobs), "logs": str(lay.logs)}
    wait_for(jobs)
    return json.loads((lay.out / "manifest.json").read_text())
