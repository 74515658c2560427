"""`corpus-clean`: raw documents in, clean deduplicated Arrow shards out.

    corpus-clean --input PATH [PATH ...] --output DIR [--preset full|paper|none] [--config my-recipe.toml]
                 [--languages en] [--workers N] [--executor local|ray|slurm]
                 [--set filters.gopher_quality.min_doc_words=30]

The settings are layered: the recipe (--preset NAME loads corpus/recipes/NAME.toml, default full) <- your
--config file <- the flags <- each --set KEY=VALUE. The resolved settings are written to DIR/config.toml;
`corpus-clean --config DIR/config.toml` runs the same cleaning again.

Run the same command again after a crash or a kill: finished work is kept, the rest is redone, and the
result is the same as an uninterrupted run's.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cli_config
from cli_config import opt
from corpus import CorpusError, remote, storage
from corpus.filters import full_filter_steps
from corpus.incremental import check_against
from corpus.pipeline import PRESETS, CleanConfig, run_clean, run_identity
from corpus.readers import check_inputs
from safe_output import run_cli


@dataclass
class CleanCommand(CleanConfig):
    """A corpus-clean run: its inputs and output, and the cleaning settings."""

    input: list[str] = opt([], "files or folders: .jsonl(.gz), .parquet, .arrow, .warc(.gz), .html, .txt; local paths "
                           "or fsspec URLs (s3://, gs://, hf://, file://, memory://). Large files are split over the "
                           "tasks (gzip files cannot be: each is read by one task)", required=True, metavar="PATH")
    output: str = opt("", "clean-corpus directory to write: a local path, or a URL (s3://...: built in a local staging "
                      "folder under ~/.cache/corpus-clean/staging/, uploaded when the run has finished)",
                      required=True, metavar="DIR")

    def cleaning(self) -> CleanConfig:
        """The settings that make the corpus (its identity when resumed), without where it comes from and goes."""
        return CleanConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(CleanConfig)})


def recipe(name: str) -> dict:
    """A cleaning recipe shipped with the package (corpus/recipes/NAME.toml) as settings tables."""
    import tomllib

    return tomllib.loads(resources.files("corpus").joinpath("recipes", f"{name}.toml").read_text(encoding="utf-8"))


def check_type(key: str, current, value):
    """A --set value must have the type of the setting it replaces (ints may stand for floats)."""
    if current is None or value is None:
        return value  # None switches a filter off; a setting that defaults to None takes any value
    if dataclasses.is_dataclass(current) or isinstance(current, dict):
        raise CorpusError(f"--set {key}: is a group of settings; give one of its keys, or null to switch it off")
    if isinstance(current, bool) or isinstance(value, bool):
        ok = isinstance(current, bool) and isinstance(value, bool)
    elif isinstance(current, float) and isinstance(value, int):
        return float(value)
    elif isinstance(current, (list, tuple)):
        ok = isinstance(value, list)  # JSON has lists only; datatrove just iterates them
    else:
        ok = isinstance(value, type(current))
    if not ok:
        raise CorpusError(f"--set {key}={json.dumps(value)}: expected {type(current).__name__}, like {json.dumps(current)}")
    return value


PASSED_BY_US = ("self", "exclusion_writer", "language")  # filter arguments the pipeline sets itself


def filter_defaults(cfg: CleanConfig) -> dict[str, dict]:
    """Each enabled filter's keyword arguments and their defaults, to check `filters.<name>.<key>=...`."""
    import inspect

    try:
        steps = full_filter_steps(cfg.filters, lambda name: None)
    except TypeError as e:  # an unknown keyword argument of a datatrove filter
        raise CorpusError(f"filters...: {e}") from None
    return {s.name: {k: None if v.default is v.empty else v.default
                     for k, v in inspect.signature(type(s).__init__).parameters.items() if k not in PASSED_BY_US} for s in steps}


def apply_override(cfg: CleanConfig, assignment: str) -> None:
    """`filters.gopher_quality.min_doc_words=30`: a dotted path into the settings, value parsed as JSON
    (the last layer of the settings, over the recipe, the --config file and the flags)."""
    if "=" not in assignment:
        raise CorpusError(f"--set {assignment!r}: expected KEY=VALUE, e.g. filters.gopher_quality.min_doc_words=30")
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
            raise CorpusError(f"--set {key}: no setting {part!r} (or that filter is switched off)")
    if isinstance(target, dict):
        known = filter_defaults(cfg).get(parents[-1], {}) if parents[:1] == ["filters"] else {}
        if known and last not in known:
            raise CorpusError(f"--set {key}: unknown setting {last!r} (one of: {', '.join(known)})")
        target[last] = check_type(key, known.get(last), value)
    elif dataclasses.is_dataclass(target) and last in {f.name for f in dataclasses.fields(target)}:
        field = next(f for f in dataclasses.fields(target) if f.name == last)
        _, optional = cli_config.unwrap_optional(cli_config.hints(type(target))[last])
        if value is None and not optional:
            raise CorpusError(f"--set {key}=null: {key} cannot be switched off"
                              + ("; switch off its filters one by one (e.g. filters.c4_quality=null)"
                                 if key == "filters" else "; give a value"))
        if field.metadata.get("parse") and value is not None:
            try:
                value = field.metadata["parse"](value)
            except ValueError as e:
                raise CorpusError(f"--set {key}: {e}") from None
        setattr(target, last, check_type(key, getattr(target, last), value))
    else:
        raise CorpusError(f"--set {key}: unknown setting {last!r}")


def build_parser() -> cli_config.OneLineParser:
    p = cli_config.new_parser("corpus-clean", __doc__)
    cli_config.add_arguments(p, CleanCommand)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, over the recipe, --config and the flags; the value is JSON: "
                        "filters.gopher_quality.min_doc_words=30, minhash.num_buckets=20, filters.c4_quality=null "
                        "(switch a filter off) (default: none)")
    run = p.add_argument_group("running")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an earlier corpus-clean output made with other inputs or settings (default: stop "
                          "and say so; a folder corpus-clean did not make is never replaced)")
    run.add_argument("--wait", action="store_true",
                     help="if another run is using --output, wait for it to end (default: stop at once)")
    run.add_argument("--no-wait", action="store_true",
                     help="Slurm: return once the jobs are submitted and print a command to check on them "
                          "(default: wait for the jobs, showing their progress)")
    return p


def resolve(args) -> CleanCommand:
    """The run's settings, every layer applied and checked (before any input is read)."""
    named = getattr(args, "preset", None)
    if named is None and getattr(args, "config", None):
        named = cli_config.load_file(args.config, CorpusError).get("preset")
    base = recipe(named if named in PRESETS else "full")

    def overrides(cfg: CleanCommand) -> None:
        for assignment in args.set:
            apply_override(cfg, assignment)

    return cli_config.resolve(CleanCommand, args, CorpusError, base=base, overrides=overrides)


def config_from_args(args) -> CleanCommand:
    cfg = resolve(args)
    cfg.decontaminate = [str(Path(p)) for p in cfg.decontaminate]
    if cfg.executor == "slurm" and not shutil.which("sbatch"):
        raise CorpusError("--executor slurm: sbatch not found; run corpus-clean on a Slurm login node")
    if args.no_wait and cfg.executor != "slurm":
        raise CorpusError("--no-wait is for --executor slurm (local and Ray runs always finish before returning)")
    if cfg.preset == "full":
        filter_defaults(cfg)  # unknown filter arguments: fail here, not in a worker
    for p in cfg.decontaminate:
        if not Path(p).is_file():
            raise CorpusError(f"--decontaminate: file not found: {p}")
    if cfg.dedup_against:
        if cfg.preset != "full":
            raise CorpusError(f"--dedup-against needs --preset full (MinHash runs only there), not {cfg.preset}")
        if any(same_place(d, cfg.output) for d in cfg.dedup_against):
            raise CorpusError(f"--dedup-against {cfg.output}: that is the --output itself")
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
                raise CorpusError(f"--output {given} is inside --input {i}: the cleaner would read its own output; "
                                 "write it somewhere else")
        given = str(remote.staging_dir(given))
    out = Path(storage.local_path(given))
    for given in inputs:
        p = Path(given).resolve()
        if p.is_dir() and (out.resolve() == p or p in out.resolve().parents):
            raise CorpusError(f"--output {out} is inside --input {given}: the cleaner would read its own output; "
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
    cmd = config_from_args(args)  # every setting checked before any input is read
    check_inputs(cmd.input)
    cfg = cmd.cleaning()
    out = check_output(cmd.output, cmd.input)
    if storage.is_remote(cmd.output):
        remote.claim_output(cmd.output, run_identity(cmd.input, cfg), args.overwrite)
    manifest = run_clean(cmd.input, out, cfg, overwrite=args.overwrite, wait=not args.no_wait,
                         wait_for_output=args.wait, record=cli_config.record_text(cmd, "corpus-clean"))
    if storage.is_remote(cmd.output) and not manifest.get("submitted"):
        remote.upload(out, cmd.output)
    if manifest.get("submitted"):
        print(f"submitted to Slurm; logs in {manifest['logs']}\n  check on the jobs: {manifest['check']}\n"
              "  wait for them and see the result: run the same command again without --no-wait "
              "(it waits for these jobs, it does not submit them twice)")
    else:
        print(headline(manifest, out, cmd.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
