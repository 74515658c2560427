"""`corpus-clean`: raw documents in, clean deduplicated Arrow shards out (DESIGN.md contract 1).

    corpus-clean --input PATH [PATH ...] --output DIR [--preset full|paper|none] [--languages en]
                 [--workers N] [--executor local|ray|slurm] [--set filters.gopher_quality.min_doc_words=30]

Run the same command again after a crash or a kill: finished work is kept, the rest is redone, and the
result is the same as an uninterrupted run's.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

from corpus import remote, storage
from corpus.filters import full_filter_steps
from corpus.incremental import check_against
from corpus.pipeline import PRESETS, CleanConfig, run_clean, run_identity
from corpus.readers import check_inputs
from safe_output import run_cli


from corpus import CorpusError as UsageError  # the package's one user-facing error


def check_type(key: str, current, value):
    """A --set value must have the type of the setting it replaces (ints may stand for floats)."""
    if current is None or value is None:
        return value  # None switches a filter off; a setting that defaults to None takes any value
    if dataclasses.is_dataclass(current) or isinstance(current, dict):
        raise UsageError(f"--set {key}: is a group of settings; give one of its keys, or null to switch it off")
    if isinstance(current, bool) or isinstance(value, bool):
        ok = isinstance(current, bool) and isinstance(value, bool)
    elif isinstance(current, float) and isinstance(value, int):
        return float(value)
    elif isinstance(current, (list, tuple)):
        ok = isinstance(value, list)  # JSON has lists only; datatrove just iterates them
    else:
        ok = isinstance(value, type(current))
    if not ok:
        raise UsageError(f"--set {key}={json.dumps(value)}: expected {type(current).__name__}, like {json.dumps(current)}")
    return value


PASSED_BY_US = ("self", "exclusion_writer", "language")  # filter arguments the pipeline sets itself


def filter_defaults(cfg: CleanConfig) -> dict[str, dict]:
    """Each enabled filter's keyword arguments and their defaults, to check `filters.<name>.<key>=...`."""
    import inspect

    try:
        steps = full_filter_steps(cfg.filters, lambda name: None)
    except TypeError as e:  # an unknown keyword argument of a datatrove filter
        raise UsageError(f"--set filters...: {e}") from None
    return {s.name: {k: None if v.default is v.empty else v.default
                     for k, v in inspect.signature(type(s).__init__).parameters.items() if k not in PASSED_BY_US} for s in steps}


def apply_override(cfg: CleanConfig, assignment: str) -> None:
    """`filters.gopher_quality.min_doc_words=30`: a dotted path into the config, value parsed as JSON."""
    if "=" not in assignment:
        raise UsageError(f"--set {assignment!r}: expected KEY=VALUE, e.g. filters.gopher_quality.min_doc_words=30")
    key, raw = assignment.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare string
    *parents, last = key.split(".")
    target = cfg
    for part in parents:
        target = target.get(part) if isinstance(target, dict) else getattr(target, part, None)
        if target is None:
            raise UsageError(f"--set {key}: no setting {part!r} (or that filter is switched off)")
    if isinstance(target, dict):
        known = filter_defaults(cfg).get(parents[-1], {}) if parents[:1] == ["filters"] else {}
        if known and last not in known:
            raise UsageError(f"--set {key}: unknown setting {last!r} (one of: {', '.join(known)})")
        target[last] = check_type(key, known.get(last), value)
    elif dataclasses.is_dataclass(target) and last in {f.name for f in dataclasses.fields(target)}:
        setattr(target, last, check_type(key, getattr(target, last), value))
    else:
        raise UsageError(f"--set {key}: unknown setting {last!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="corpus-clean", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    io = p.add_argument_group("input and output")
    io.add_argument("--input", nargs="+", required=True, metavar="PATH",
                    help="files or folders: .jsonl(.gz), .parquet, .arrow, .warc(.gz), .html, .txt; local paths or "
                         "fsspec URLs (s3://, gs://, hf://, file://, memory://). Large files are split over the tasks "
                         "(gzip files cannot be: each is read by one task)")
    io.add_argument("--output", required=True, metavar="DIR",
                    help="clean-corpus directory to write: a local path, or a URL (s3://...: built in a local staging "
                         "folder under ~/.cache/corpus-clean/staging/, uploaded when the run has finished)")
    io.add_argument("--text-key", default="text", help="text field of JSONL/Parquet/Arrow records (default: text)")
    io.add_argument("--id-key", default="id", help="id field (default: id; missing ids become file#index)")
    io.add_argument("--max-shard-mb", type=float, default=128.0, help="shard size bound in MB; a shard may exceed it by one document (default: 128)")
    io.add_argument("--overwrite", action="store_true",
                    help="replace an earlier corpus-clean output made with other inputs or settings (default: stop and say so; "
                         "a folder corpus-clean did not make is never replaced)")
    io.add_argument("--wait", action="store_true", help="if another run is using --output, wait for it to end (default: stop at once)")
    cl = p.add_argument_group("cleaning")
    cl.add_argument("--preset", choices=PRESETS, default="full", help="full: LID + quality + dedup; paper: Li et al. 2021; none: read and shard")
    cl.add_argument("--languages", nargs="*", default=["en"], help="fastText codes to keep (default: en); none given: keep all")
    cl.add_argument("--decontaminate", nargs="+", default=[], metavar="PATH", help="evaluation files whose text must not be in the corpus")
    cl.add_argument("--dedup-against", nargs="+", metavar="CLEAN_DIR",
                    help="also drop near-duplicates of these already-cleaned corpora (and of those they were deduplicated "
                         "against); local paths or URLs (default: none)")
    cl.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting, e.g. filters.gopher_quality.min_doc_words=30, minhash.num_buckets=20, "
                         "filters.c4_quality=null (switch a filter off)")
    ex = p.add_argument_group("execution")
    ex.add_argument("--workers", type=int, default=2, help="parallel worker processes (default: 2)")
    ex.add_argument("--tasks", type=int, default=0, help="tasks per stage (default: = workers); keep it fixed to resume")
    ex.add_argument("--executor", choices=("local", "ray", "slurm"), default="local",
                    help="local: worker processes on this machine; ray: a Ray cluster; slurm: one job array per stage "
                         "(default: local)")
    ex.add_argument("--ray-address", help="Ray cluster address (default: start Ray locally)")
    ex.add_argument("--slurm-partition", help="Slurm partition (with --executor slurm; no default)")
    ex.add_argument("--slurm-time", default="04:00:00", help="Slurm time limit per job (default: 04:00:00)")
    ex.add_argument("--slurm-env", metavar="COMMAND",
                    help="shell command a Slurm job runs first to get this Python environment, e.g. "
                         "'source ~/venvs/corpus/bin/activate' (default: activate the environment running corpus-clean)")
    ex.add_argument("--no-wait", action="store_true",
                    help="Slurm: return once the jobs are submitted and print a command to check on them "
                         "(default: wait for the jobs, showing their progress)")
    return p


def config_from_args(args) -> CleanConfig:
    cfg = CleanConfig(
        preset=args.preset, workers=args.workers, tasks=args.tasks, max_shard_mb=args.max_shard_mb,
        text_key=args.text_key, id_key=args.id_key, executor=args.executor, ray_address=args.ray_address,
        slurm_partition=args.slurm_partition, slurm_time=args.slurm_time, slurm_env=args.slurm_env,
        decontaminate=[str(Path(p)) for p in args.decontaminate],
        dedup_against=args.dedup_against,
    )
    cfg.filters.languages = args.languages or None
    for assignment in args.set:
        apply_override(cfg, assignment)
    if cfg.workers < 1 or cfg.tasks < 0:
        raise UsageError("--workers must be >= 1 and --tasks >= 0")
    if not cfg.max_shard_mb > 0:
        raise UsageError(f"--max-shard-mb must be > 0 (got {cfg.max_shard_mb})")
    if cfg.executor == "slurm" and not cfg.slurm_partition:
        raise UsageError("--executor slurm needs --slurm-partition")
    if cfg.executor == "slurm" and not shutil.which("sbatch"):
        raise UsageError("--executor slurm: sbatch not found; run corpus-clean on a Slurm login node")
    if args.no_wait and cfg.executor != "slurm":
        raise UsageError("--no-wait is for --executor slurm (local and Ray runs always finish before returning)")
    if cfg.preset == "full":
        filter_defaults(cfg)  # unknown filter arguments: fail here, not in a worker
    for p in cfg.decontaminate:
        if not Path(p).is_file():
            raise UsageError(f"--decontaminate: file not found: {p}")
    if cfg.dedup_against:
        if cfg.preset != "full":
            raise UsageError(f"--dedup-against needs --preset full (MinHash runs only there), not {cfg.preset}")
        if any(same_place(d, args.output) for d in cfg.dedup_against):
            raise UsageError(f"--dedup-against {args.output}: that is the --output itself")
        check_against(cfg.dedup_against, cfg.minhash)
    return cfg


def same_place(a: str, b: str) -> bool:
    if storage.is_remote(a) or storage.is_remote(b):
        return a.rstrip("/") == b.rstrip("/")
    return Path(storage.local_path(a)).resolve() == Path(storage.local_path(b)).resolve()


def check_output(given: str, inputs: list[str]) -> Path:
    """The output must be outside every input folder (the reader lists its files while other tasks write:
    it would read part of its own output); what it may hold is `safe_output.claim_output`'s rule.
    Returns the local directory the run writes (for a remote --output: its staging folder)."""
    if storage.is_remote(given):
        for i in inputs:
            if (given.rstrip("/") + "/").startswith(i.rstrip("/") + "/"):
                raise UsageError(f"--output {given} is inside --input {i}: the cleaner would read its own output; "
                                 "write it somewhere else")
        given = str(remote.staging_dir(given))
    out = Path(storage.local_path(given))
    for given in inputs:
        p = Path(given).resolve()
        if p.is_dir() and (out.resolve() == p or p in out.resolve().parents):
            raise UsageError(f"--output {out} is inside --input {given}: the cleaner would read its own output; "
                             "write it somewhere else")
    return out


def headline(manifest: dict, local: Path, out: str | Path) -> str:
    stats = json.loads((local / "stats.json").read_text())
    docs_in, bytes_in = stats["input"]["documents"], stats["input"]["text_bytes"]
    kept, kept_bytes = manifest["rows"], manifest["text_bytes"]
    pct = lambda a, b: f"{100 * a / b:.1f}%" if b else "n/a"  # noqa: E731
    lines = [
        f"\nclean corpus: {out}/shards ({len(manifest['shards'])} shards)",
        f"  documents: {docs_in:,} in -> {kept:,} kept ({pct(kept, docs_in)})",
        f"  text:      {bytes_in / 1e6:,.1f} MB in -> {kept_bytes / 1e6:,.1f} MB kept ({pct(kept_bytes, bytes_in)})",
        f"  report:    {out}/report.html   (also report.md; stats: {out}/stats.json)",
    ]
    skipped = stats["input"].get("skipped") or {}
    if skipped:  # unreadable input records: say so, they are not in "documents in"
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(skipped.items()))
        lines.append(f"  skipped:   {sum(skipped.values()):,} input records ({reasons}; see report.md)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli("corpus-clean", lambda: clean(args))


def clean(args) -> int:
    check_inputs(args.input)
    cfg = config_from_args(args)
    out = check_output(args.output, args.input)
    if storage.is_remote(args.output):
        remote.claim_output(args.output, run_identity(args.input, cfg), args.overwrite)
    manifest = run_clean(args.input, out, cfg, overwrite=args.overwrite, wait=not args.no_wait, wait_for_output=args.wait)
    if storage.is_remote(args.output) and not manifest.get("submitted"):
        remote.upload(out, args.output)
    if manifest.get("submitted"):
        print(f"submitted to Slurm; logs in {manifest['logs']}\n  check on the jobs: {manifest['check']}\n"
              "  wait for them and see the result: run the same command again without --no-wait "
              "(it waits for these jobs, it does not submit them twice)")
    else:
        print(headline(manifest, out, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
