"""The cleaning pipeline: presets as plain lists of datatrove steps, run stage by stage.

A preset is a list of *stages*; a stage is a list of datatrove steps run as `tasks` parallel tasks.
Filtering needs one pass, deduplication several (signatures, then buckets, clusters, filter), so
`full` has seven stages and `none` two:

    none   read -> shards
    paper  read -> paper line cleaner (one task, over all of the input in order) -> shards
    full   read -> language ID -> Gopher repetition -> Gopher quality -> C4 -> FineWeb
                -> [decontaminate] -> exact dedup -> MinHash (4 stages) -> shards

Every stage runs on a datatrove executor (local by default, Ray or Slurm on request) with its own
logging dir under `<out>/.work/logs/`, and `skip_completed=True`: a killed run, started again with
the same command, redoes only the unfinished tasks. Each task's output is a pure function of its
input files, so the result is identical to an uninterrupted run. The last stage (`Finalize`)
renames task outputs to `shards/shard-NNNNN.arrow` and writes `manifest.json`, `stats.json`,
`report.md` (see `corpus.report`) and `report.html` (see `corpus.report_html`).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import importlib.abc
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from loguru import logger

from cli_config import RECORD, at_least, non_empty, opt, positive
from corpus import CorpusError
from corpus.arrow_writer import (
    SCHEMA,
    ArrowShardReader,
    ArrowShardWriter,
    group_shards,
    join_shards,
    table_rows_bytes,
)
from corpus.dedup import MinHashSettings, exact_dedup_stages, exact_signature, minhash_signature, minhash_stages
from corpus.filters import FilterConfig, full_filter_steps
from corpus.incremental import reference_index
from corpus.paper_cleaner import PaperCleaner, PaperConfig
from corpus.readers import HTML_TIMEOUT_S, RawDocumentReader
from corpus.stage import Stage, measured, utf8_bytes
from safe_output import StageFailed, atomic_json, atomic_write, reuse_or_replace, use_output

PRESETS = ("full", "paper", "none")
COMMAND = "corpus-clean"
# tasks per worker by default: the input is cut in equal bytes, not equal work (English prose costs more than
# code or another language), and a worker that finishes early takes the next task instead of waiting; but no
# more tasks than 2 MiB of input each (each task of each stage costs a tenth of a second or so to set up)
TASKS_PER_WORKER = 4
TASK_MIN_BYTES = 2 * 2**20


@dataclass
class CleanConfig:
    """The settings of a cleaning run; its recipes (corpus/recipes/*.toml) are files of these."""

    preset: str = opt(
        "full",
        "the recipe: full: language ID + quality filters + dedup; paper: Li et al. 2021's line "
        "cleaner; none: read and shard (loads corpus/recipes/NAME.toml)",
        choices=PRESETS,
    )
    workers: int = opt(2, "parallel worker processes", check=positive())
    tasks: int = opt(
        0,
        "tasks per stage (0: four per worker, so a worker done early takes another and none waits on one "
        "slow part, at least 2 MiB of input each; 1 with --workers 1); keep it fixed to resume",
        check=at_least(0),
    )
    max_shard_mb: float = opt(128.0, "shard size bound in MB; a shard may exceed it by one document", check=positive())
    text_key: str = opt("text", "text field of JSONL/Parquet/Arrow records", check=non_empty())
    id_key: str = opt("id", "id field (missing ids become file#index)", check=non_empty())
    executor: str = opt(
        "local",
        "local: worker processes on this machine; ray: a Ray cluster; slurm: one job array per stage",
        choices=("local", "ray", "slurm"),
    )
    ray_address: str | None = opt(None, "Ray cluster address (default: start Ray locally)")
    slurm_partition: str | None = opt(None, "Slurm partition (needed by --executor slurm)")
    slurm_time: str = opt("04:00:00", "Slurm time limit per job", check=non_empty())
    slurm_env: str | None = opt(
        None,
        "shell command a Slurm job runs first to get this Python environment, e.g. "
        "'source ~/venvs/corpus/bin/activate' (default: activate the one running corpus-clean)",
        metavar="COMMAND",
    )
    decontaminate: list[str] = opt([], "evaluation files whose text must not be in the corpus", metavar="PATH")
    html_timeout_s: float = opt(
        HTML_TIMEOUT_S,
        "seconds an HTML page's text extraction may take; a page that takes "
        "longer is skipped and counted (html_timeout)",
        check=positive(),
    )
    dedup_against: list[str] | None = opt(
        None,
        "also drop near-duplicates of these already-cleaned corpora (and of "
        "those they were deduplicated against); local paths or URLs",
        metavar="CLEAN_DIR",
    )
    filters: FilterConfig = opt(
        help="the filters of the full recipe (each one: --set filters.NAME.ARG=VALUE, or "
        "filters.NAME=null to switch it off)",
        default_factory=FilterConfig,
    )
    paper: PaperConfig = opt(help="the paper recipe's line cleaner", default_factory=PaperConfig, flags=False)
    minhash: MinHashSettings = opt(help="MinHash near-duplicate removal", default_factory=MinHashSettings, flags=False)
    exact_dedup: bool = opt(
        True,
        "full recipe: drop identical copies (--no-exact-dedup keeps them; the per-step "
        "ablation switches each step off)",
    )
    near_dedup: bool = opt(True, "full recipe: MinHash near-duplicate removal (--no-near-dedup keeps near-duplicates)")

    def validate(self):
        if self.executor == "slurm" and not self.slurm_partition:
            raise ValueError("--executor slurm needs --slurm-partition")

    def tasks_for(self, input_bytes: int) -> int:
        """Tasks per stage for an input of `input_bytes` (see --tasks)."""
        if self.tasks:
            return self.tasks
        if self.workers <= 1:
            return 1
        return max(self.workers, min(TASKS_PER_WORKER * self.workers, -(-input_bytes // TASK_MIN_BYTES)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Layout:
    """Where everything of one run lives."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.shards = self.out / "shards"
        self.removed = self.out / "removed"
        self.work = self.out / ".work"
        self.logs = self.work / "logs"
        self.config = self.work / "config.json"

    def removed_dir(self, step: str) -> Path:
        return self.removed / step

    def data(self, name: str) -> Path:
        return self.work / "data" / name


class Progress(PipelineStep):
    """Log docs/s, MB/s and an ETA (from the fraction of input bytes read) every few seconds."""

    name = "input"  # also the first measurement of stats.json
    type = "📊 - STATS"

    def __init__(self, reader: RawDocumentReader, every_s: float = 10.0):
        super().__init__()
        self.reader = reader
        self.every_s = every_s

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        total = self.reader.input_bytes(rank, world_size)
        whole = self.reader.unsplit_compressed(rank, world_size) if world_size > 1 else []
        # gzip cannot be entered in the middle: such a file is one task's work whatever --tasks says
        note = (
            f", {len(whole)} compressed file(s) read whole (gzip cannot be split: {', '.join(whole[:3])})"
            if whole
            else ""
        )
        if note:
            logger.info(f"task {rank}: {note[2:]}")
        start = last = time.time()
        docs = text_bytes = 0
        for doc in data:
            docs += 1
            size = utf8_bytes(doc.text)
            text_bytes += size
            self.stat_update("documents")
            self.stat_update("text_bytes", value=size)
            now = time.time()
            if now - last >= self.every_s:
                last = now
                elapsed = now - start
                done = self.reader.bytes_consumed
                eta = f"{(total - done) * elapsed / done:,.0f}s" if done and total else "unknown"
                logger.info(
                    f"task {rank}: {docs:,} docs, {docs / elapsed:,.0f} docs/s, "
                    f"{text_bytes / elapsed / 1e6:.2f} MB/s text, "
                    f"input {done / 1e6:,.1f}/{total / 1e6:,.1f} MB, ETA {eta}{note}"
                )
            yield doc
        elapsed = max(time.time() - start, 1e-9)
        logger.info(f"task {rank}: done, {docs:,} docs in {elapsed:,.0f}s ({docs / elapsed:,.0f} docs/s)")


def build_stages(inputs: list[str], out: Path, cfg: CleanConfig) -> list[Stage]:
    """The preset as a list of stages (each a plain list of datatrove steps)."""
    if cfg.preset not in PRESETS:
        raise CorpusError(f"unknown preset {cfg.preset!r}; choose one of {', '.join(PRESETS)}")
    lay = Layout(out)
    shard_bytes = int(cfg.max_shard_mb * 2**20)

    def removed_writer(step: str) -> ArrowShardWriter:
        return ArrowShardWriter(lay.removed_dir(step), max_shard_bytes=shard_bytes)

    reader = RawDocumentReader(
        inputs,
        text_key=cfg.text_key,
        id_key=cfg.id_key,
        skip_log_dir=lay.work / "skipped",
        html_timeout_s=cfg.html_timeout_s,
    )
    tasks = cfg.tasks_for(reader.total_bytes())
    reader.plan(tasks)  # once, here: the tasks get it with the pipeline
    read = [reader, Progress(reader)]
    final_writer = ArrowShardWriter(lay.data("final"), max_shard_bytes=shard_bytes)

    decontaminate = []
    if cfg.decontaminate:
        from corpus.decontam import Decontaminate

        decontaminate = [Decontaminate(cfg.decontaminate, exclusion_writer=removed_writer("decontaminate"))]
    if cfg.preset == "none":
        return with_finalize([Stage("read", read + measured(decontaminate) + [final_writer], tasks)], inputs, out, cfg)
    if cfg.preset == "paper":
        # reading (HTML extraction) runs in parallel; the cleaner then runs in one task over every task's
        # output in input order (tasks read contiguous parts), so its seen-line set spans the whole corpus
        # and the result does not depend on --workers/--tasks
        read_dir = lay.data("read")
        paper = PaperCleaner(cfg.paper, exclusion_writer=removed_writer(PaperCleaner.name))
        stages = [
            Stage("read", read + [ArrowShardWriter(read_dir, max_shard_bytes=shard_bytes)], tasks),
            Stage(
                "clean",
                [ArrowShardReader(read_dir, all_ranks=True)] + measured([paper] + decontaminate) + [final_writer],
                1,
            ),
        ]
        return with_finalize(stages, inputs, out, cfg)

    filter_steps = full_filter_steps(cfg.filters, removed_writer) + decontaminate
    filtered, unique = lay.data("filtered"), lay.data("unique")
    exact_work, minhash_work = lay.work / "exact", lay.work / "minhash"
    # each pass ends with the signatures of the documents it wrote: no pass of its own just to hash them
    # each dedup step can be switched off (exact_dedup, near_dedup): the pass before a step writes its signatures
    if not (cfg.exact_dedup or cfg.near_dedup):
        return with_finalize([Stage("filter", read + measured(filter_steps) + [final_writer], tasks)], inputs, out, cfg)
    first_signature = exact_signature(exact_work) if cfg.exact_dedup else minhash_signature(minhash_work, cfg.minhash)
    stages = [
        Stage(
            "filter",
            read + measured(filter_steps) + [ArrowShardWriter(filtered, max_shard_bytes=shard_bytes), first_signature],
            tasks,
        )
    ]
    if cfg.exact_dedup:
        stages += exact_dedup_stages(
            source=filtered,
            work=exact_work,
            tasks=tasks,
            removed=removed_writer("exact_dedup"),
            sink=ArrowShardWriter(unique, max_shard_bytes=shard_bytes) if cfg.near_dedup else final_writer,
            then=[minhash_signature(minhash_work, cfg.minhash)] if cfg.near_dedup else [],
        )
    if not cfg.near_dedup:
        return with_finalize(stages, inputs, out, cfg)
    stages += minhash_stages(
        source=unique if cfg.exact_dedup else filtered,
        work=minhash_work,
        tasks=tasks,
        settings=cfg.minhash,
        removed=removed_writer("minhash"),
        sink=final_writer,
        index_dir=out / "minhash_index",
        dedup_against=reference_index(cfg.dedup_against, out),
    )
    return with_finalize(stages, inputs, out, cfg)


def with_finalize(stages: list[Stage], inputs: list[str], out: Path, cfg: CleanConfig) -> list[Stage]:
    return stages + [Stage("finalize", [Finalize(inputs, out, cfg, [s.name for s in stages])], 1)]


class Finalize(PipelineStep):
    """Last stage (1 task): shards/shard-NNNNN.arrow, manifest.json, stats.json, report.md, report.html.

    Idempotent: the shard plan (which task files make which shard) is written first, so a kill in the middle is
    finished by the re-run."""

    name = "📦 finalize"
    type = "💽 - WRITER"

    def __init__(self, inputs: list[str], out: Path, cfg: CleanConfig, stages: list[str]):
        super().__init__()
        self.inputs = [str(p) for p in inputs]
        self.out = Path(out)
        self.cfg = cfg
        self.stages = stages

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from corpus import report
        from corpus.report_html import render_html

        lay = Layout(self.out)
        plan_path = lay.work / "shard_plan.json"
        if plan_path.exists():
            plan = json.loads(plan_path.read_text())
        else:
            # the tasks' files in input order; small ones (a task's last file) are joined up to the shard bound
            finished = sorted(lay.data("final").glob("rank-*.arrow"))
            groups = group_shards(finished, int(self.cfg.max_shard_mb * 2**20))
            plan = [[[str(p) for p in g], str(lay.shards / f"shard-{i:05d}.arrow")] for i, g in enumerate(groups)]
            atomic_write(plan_path, json.dumps(plan, indent=1))
        lay.shards.mkdir(parents=True, exist_ok=True)
        for sources, dest in plan:
            join_shards([Path(p) for p in sources], Path(dest))
        if not plan:  # an empty corpus still gets one valid (empty) shard, so readers need no special case
            import pyarrow as pa

            with pa.OSFile(str(lay.shards / "shard-00000.arrow"), "wb") as sink:
                pa.ipc.new_stream(sink, SCHEMA).close()
        manifest = build_manifest(self.inputs, lay, self.cfg)
        atomic_write(self.out / "manifest.json", json.dumps(manifest, indent=2))
        stats = report.collect_stats(lay, self.cfg.preset, self.stages)
        atomic_write(self.out / "stats.json", json.dumps(stats, indent=2))
        atomic_write(self.out / "report.md", report.render_markdown(stats, manifest, lay))
        atomic_write(self.out / "report.html", render_html(stats, manifest, self.out))
        # intermediate copies of the corpus are no longer needed; logs, signatures and the index stay
        shutil.rmtree(lay.work / "data", ignore_errors=True)
        return
        yield  # a generator, as datatrove expects of a step


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(inputs: list[str], lay: Layout, cfg: CleanConfig) -> dict:
    import datatrove
    import pyarrow

    shards = []
    for path in sorted(lay.shards.glob("shard-*.arrow")):
        rows, text_bytes = table_rows_bytes(path)
        shards.append(
            {
                "path": f"shards/{path.name}",
                "rows": rows,
                "text_bytes": text_bytes,
                "file_bytes": path.stat().st_size,
                "sha256": _sha256(path),
            }
        )
    return {
        "format": "arrow-ipc-stream",
        "schema": [f"{f.name}: {f.type}" for f in SCHEMA],
        "inputs": inputs,
        "shards": shards,
        "rows": sum(s["rows"] for s in shards),
        "text_bytes": sum(s["text_bytes"] for s in shards),
        "config": cfg.to_dict(),
        "versions": {
            "datatrove": datatrove.__version__ if hasattr(datatrove, "__version__") else _dist_version("datatrove"),
            "pyarrow": pyarrow.__version__,
        },
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


# ------------------------------------------------------------------------------------------- running
class RefusePandas(importlib.abc.MetaPathFinder):
    """While on `sys.meta_path`: `import pandas` raises ImportError."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "pandas":
            raise ImportError("pandas is not imported while pyarrow's first conversion runs")
        return None


def warm_up_for_fork() -> None:
    """Do once in the main process what every forked worker of every stage would otherwise redo: pyarrow's
    first conversion of Python objects, and loguru re-reading Python's install paths (sysconfig) for each log
    handler, of which datatrove adds three per task. Seconds of CPU per run.

    pyarrow's first conversion imports pandas (when installed) only to ask whether the objects are pandas
    objects; the cleaner hands it none. Made while pandas cannot be imported, it settles that question without
    the import (0.25 CPU s a run); pyarrow still imports pandas if later asked for pandas output."""
    import functools

    import pyarrow as pa
    from loguru import _better_exceptions

    refuse_pandas = None if "pandas" in sys.modules else RefusePandas()
    if refuse_pandas:
        sys.meta_path.insert(0, refuse_pandas)
    try:
        pa.RecordBatch.from_pylist([{"id": "", "text": ""}])
    finally:
        if refuse_pandas:
            sys.meta_path.remove(refuse_pandas)
    formatter = _better_exceptions.ExceptionFormatter
    if not hasattr(formatter._get_lib_dirs, "cache_info"):  # the paths do not change while we run
        formatter._get_lib_dirs = staticmethod(functools.lru_cache(maxsize=1)(formatter._get_lib_dirs))


def make_executor(stage: Stage, cfg: CleanConfig, lay: Layout, depends=None):
    logging_dir = str(lay.logs / stage.name)
    workers = max(1, min(cfg.workers, stage.tasks))
    if cfg.executor == "local":
        from corpus.local_executor import LocalExecutor

        # fork, not datatrove's default forkserver: a worker starts with every module already imported, instead
        # of importing datatrove, pyarrow, fastText... again in each worker of each stage (seconds of CPU per run)
        return LocalExecutor(
            stage.steps,
            tasks=stage.tasks,
            workers=1 if stage.runs_in_process() else workers,
            logging_dir=logging_dir,
            skip_completed=True,
            start_method="fork",
        )
    if cfg.executor == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        return RayPipelineExecutor(
            stage.steps, tasks=stage.tasks, workers=workers, logging_dir=logging_dir, skip_completed=True
        )
    if cfg.executor == "slurm":
        from corpus.slurm import make_slurm_executor

        return make_slurm_executor(stage, logging_dir, cfg, depends=depends)
    raise CorpusError(f"unknown executor {cfg.executor!r}; choose local, ray or slurm")


def disk_full(logs: Path) -> bool:
    """Did tasks of a stage fail for want of disk space (their logs say so, or there is none left to say it)?"""
    try:
        if shutil.disk_usage(logs).free < 2**20:
            return True
    except OSError:
        return False
    return any("[Errno 28]" in log.read_text(errors="replace") for log in logs.glob("logs/*.log"))


def run_identity(inputs: list[str], cfg: CleanConfig) -> dict:
    """What makes two runs the same run (kept in .work/config.json, the mark of our output folders)."""
    return {"inputs": [str(p) for p in inputs], "config": cfg.to_dict()}


def prepare_output(out: Path, cfg: CleanConfig, inputs: list[str], overwrite: bool) -> None:
    """Refuse to mix two different runs in one output directory; a same-config run resumes."""
    lay = Layout(out)
    wanted = run_identity(inputs, cfg)
    if lay.config.exists():
        previous = json.loads(lay.config.read_text())
        changes = ", ".join(k for k in wanted if previous.get(k) != wanted[k])  # inputs, config
        reuse_or_replace(out, COMMAND, previous == wanted, overwrite, changes=changes, option="--output")
    lay.work.mkdir(parents=True, exist_ok=True)
    if not lay.config.exists():
        atomic_json(lay.config, wanted)


def run_clean(
    inputs: list[str],
    out: str | Path,
    cfg: CleanConfig,
    overwrite: bool = False,
    wait: bool = True,
    wait_for_output: bool = False,
    record: str = "",
) -> dict:
    """Clean `inputs` into `out` (resuming a killed run of the same command). Returns manifest.json, or with
    Slurm and `wait=False` {"submitted": True, "jobs": [...], "check": a command to check on them}.

    `out` must be new, empty or an earlier output of corpus-clean; it is locked while the run lasts (another
    run on it: stop, or with `wait_for_output` wait for it to end). `record`: the command's resolved settings,
    written as `out/config.toml`."""
    out = Path(out)
    inputs_of = {"--input": inputs, "--decontaminate": cfg.decontaminate, "--dedup-against": cfg.dedup_against}
    with use_output(out, COMMAND, wait=wait_for_output, option="--output", inputs=inputs_of):
        prepare_output(out, cfg, inputs, overwrite)
        if record:
            atomic_write(out / RECORD, record)
        return run_stages(inputs, out, cfg, wait)


def run_stages(inputs: list[str], out: Path, cfg: CleanConfig, wait: bool = True) -> dict:
    lay = Layout(out)
    stages = build_stages(inputs, out, cfg)
    if cfg.executor == "slurm":
        from corpus.slurm import submit

        return submit(stages, cfg, lay, wait=wait)
    if cfg.executor == "ray":
        import ray

        if not ray.is_initialized():
            ray.init(
                address=cfg.ray_address,
                num_cpus=None if cfg.ray_address else cfg.workers,
                include_dashboard=False,
                log_to_driver=False,
            )
    if cfg.executor == "local":
        warm_up_for_fork()
    for i, stage in enumerate(stages):
        logger.info(f"stage {i + 1}/{len(stages)}: {stage.name} ({stage.tasks} tasks)")
        executor = make_executor(stage, cfg, lay)
        executor.run()
        incomplete = executor.get_incomplete_ranks(range(stage.tasks))
        if incomplete and disk_full(lay.logs / stage.name):
            raise OSError(
                errno.ENOSPC, f"no space left on device (stage {stage.name})"
            )  # said in one line by use_output
        if incomplete:
            raise StageFailed(f"stage {stage.name}: tasks {incomplete} failed; see the logs in {lay.logs / stage.name}")
    return json.loads((out / "manifest.json").read_text())
