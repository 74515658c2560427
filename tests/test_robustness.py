"""Off the happy path, on real processes: SIGTERM and SIGHUP stop a run and the same command resumes it;
--overwrite removes only what the command wrote; reading stays within a memory bound whatever the input;
bad files and full disks end in one line; no document can break the reports."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpus_helpers import clean_cmd, shard_rows, snapshot, write_jsonl
from safe_output import output_lock
from safe_output.signals import descendants
from run_helpers import interruptible
from test_faults import one_line_error, run, run_snapshot

PY = sys.executable


def wikitext_paragraphs(shared_data: Path, n: int) -> list[str]:
    lines = (shared_data / "wikitext-2-raw" / "wiki.test.raw").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if len(line.split()) > 30][:n]


def processes_naming(text: str) -> list[int]:
    """Live processes whose command line holds `text` (a run's unique output path)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(pid))
    return found


def signal_when(cmd: list[str], ready, signum: int, timeout: float = 180, target=None) -> subprocess.CompletedProcess:
    """Run `cmd`, send `signum` to its main process only (as a batch system does) once `ready()`, or to the
    process `target(main_pid)` returns."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before the signal: {proc.communicate()[1][-2000:]}"
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(target(proc.pid) if target else proc.pid, signum)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:  # a process that did not stop: fail without leaving it behind
        for pid in [proc.pid, *descendants(proc.pid)]:
            os.kill(pid, signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture(scope="module")
def paragraphs_jsonl(shared_data, tmp_path_factory) -> Path:
    texts = wikitext_paragraphs(shared_data, 3000)
    return write_jsonl(
        tmp_path_factory.mktemp("in") / "docs.jsonl", [{"id": f"p{i}", "text": t} for i, t in enumerate(texts)]
    )


@pytest.fixture(scope="module")
def clean_reference(paragraphs_jsonl, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ref") / "clean"
    subprocess.run(clean_cmd(paragraphs_jsonl, out), check=True, capture_output=True)
    return snapshot(out)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_corpus_clean_stops_on_sigterm_and_sighup_and_resumes(paragraphs_jsonl, clean_reference, tmp_path, signum):
    out = tmp_path / "clean"
    cmd = clean_cmd(paragraphs_jsonl, out)
    completions = out / ".work" / "logs" / "filter" / "completions"
    # the signal arrives while worker processes are busy with the other filter tasks
    result = signal_when(cmd, lambda: completions.is_dir() and any(completions.iterdir()), signum)
    assert result.returncode == 128 + signum
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"corpus-clean: stopped by {signal.Signals(signum).name}; run the same command again to resume"
    assert "Traceback" not in result.stderr
    time.sleep(0.3)
    assert processes_naming(str(out)) == []  # no worker left behind
    with output_lock(out):  # nobody holds the output's lock
        pass
    assert not (out / "manifest.json").exists()
    if signum == signal.SIGTERM:  # (the state is the same after either signal: resume once)
        subprocess.run(cmd, check=True, capture_output=True)
        assert snapshot(out) == clean_reference


# ------------------------------------------------------------------------------------ --overwrite
def contents(path: Path) -> dict:
    return {
        str(p.relative_to(path)): p.read_bytes() if p.is_file() else None
        for p in sorted(path.rglob("*"))
        if p.name != ".lock"
    }


def none_cmd(inputs, out: Path, *extra: str) -> list[str]:
    return [
        PY,
        "-m",
        "corpus.cli",
        "--input",
        *map(str, inputs),
        "--output",
        str(out),
        "--preset",
        "none",
        "--workers",
        "1",
        *extra,
    ]


@pytest.fixture(scope="module")
def small_jsonl(shared_data, tmp_path_factory) -> Path:
    texts = wikitext_paragraphs(shared_data, 40)
    return write_jsonl(
        tmp_path_factory.mktemp("small") / "docs.jsonl", [{"id": f"s{i}", "text": t} for i, t in enumerate(texts)]
    )


def test_overwrite_removes_only_what_the_command_wrote(small_jsonl, tmp_path):
    out = tmp_path / "clean"
    assert run(none_cmd([small_jsonl], out)).returncode == 0
    (out / "notes.txt").write_text("mine")
    (out / "shards" / "keep.arrow").write_text("mine too")
    before = contents(out)
    line = one_line_error(
        run(none_cmd([small_jsonl], out, "--max-shard-mb", "1", "--overwrite")),
        "notes.txt",
        "shards/keep.arrow",
        "did not write",
        "nothing was removed",
    )
    assert contents(out) == before, line
    for name in ("notes.txt", "shards/keep.arrow"):
        (out / name).unlink()
    result = run(none_cmd([small_jsonl], out, "--max-shard-mb", "1", "--overwrite"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(shard_rows(out)) == 40


@pytest.mark.parametrize("option", ["--input", "--decontaminate"])
def test_an_input_inside_the_output_folder_is_refused_before_anything_is_removed(small_jsonl, tmp_path, option):
    out = tmp_path / "clean"
    assert run(none_cmd([small_jsonl], out)).returncode == 0
    before = contents(out)
    inside = out / "shards" if option == "--input" else out / "report.md"
    cmd = none_cmd([inside if option == "--input" else small_jsonl], out, "--overwrite")
    if option == "--decontaminate":
        cmd += ["--decontaminate", str(inside)]
    one_line_error(run(cmd), str(inside), "inside --output")
    assert contents(out) == before


def test_tokenize_refuses_a_tokenizer_inside_its_output(shared_data, tmp_path):
    from run_helpers import write_clean_corpus
    from train.tokenizer import save_tokenizer, train_tokenizer

    clean = write_clean_corpus(tmp_path / "clean", wikitext_paragraphs(shared_data, 40))
    save_tokenizer(train_tokenizer([clean], vocab_size=300), tmp_path / "tok")
    out = tmp_path / "tokens"
    tokenize = [PY, "-m", "train", "tokenize", "--data", str(clean), "--out", str(out), "--val-fraction", "0.1"]
    assert run(tokenize + ["--tokenizer", str(tmp_path / "tok"), "--block-size", "32"]).returncode == 0
    before = contents(out)
    one_line_error(
        run(tokenize + ["--tokenizer", str(out / "tokenizer"), "--block-size", "16", "--overwrite"]),
        "--tokenizer",
        "inside --out",
    )
    assert contents(out) == before


# ------------------------------------------------------------------------------------ memory
def test_reading_a_300mb_line_stays_within_the_memory_bound(tmp_path):
    """A 300 MB JSON line in a 300 KB gzip file: skipped as too large, the documents around it kept, and the
    run's peak RSS (measured by the kernel) stays within 8 x the 64 MiB document limit above a small file's."""
    from bench.bench_read_memory import MIB, clean_cmd, peak_rss_mb, write_long_line_jsonl
    from corpus.readers import MAX_DOC_BYTES

    small = write_long_line_jsonl(tmp_path / "small.jsonl.gz", MIB)
    baseline, run_small = peak_rss_mb(clean_cmd(small, tmp_path / "out-small"))
    assert run_small.returncode == 0, run_small.stderr
    long = write_long_line_jsonl(tmp_path / "long.jsonl.gz", 300 * MIB)
    assert long.stat().st_size < 2 * MIB
    peak, run_long = peak_rss_mb(clean_cmd(long, tmp_path / "out-long"))
    assert run_long.returncode == 0, run_long.stderr
    assert sorted(r["id"] for r in shard_rows(tmp_path / "out-long")) == ["first", "last"]
    skipped = json.loads((tmp_path / "out-long" / "stats.json").read_text())["input"]["skipped"]
    assert skipped == {"too_large": 1}
    assert peak - baseline < 8 * MAX_DOC_BYTES / MIB, (peak, baseline)


# ------------------------------------------------------------------------------------ reports
HOSTILE = [
    "<!--<script>",
    "</script><script>window.pwned = 1</script>",
    '<img src=x onerror="window.pwned = 2">',
    "]]></script><!--",
    "\u2028\u2029",
]


def test_no_document_text_id_file_name_or_metadata_changes_how_the_reports_run(shared_data, tmp_path):
    from browser import Browser
    from markdown_it import MarkdownIt

    inputs = tmp_path / "in"
    inputs.mkdir()
    english = [{"id": f"en-{i}", "text": t} for i, t in enumerate(wikitext_paragraphs(shared_data, 5))]
    french = "Le chat est assis sur le tapis et regarde la pluie tomber sur la ville endormie. " * 12
    hostile = [{"id": f"{h} id-{i}", "text": f"{french}\n{h}\n{french}", "note": h} for i, h in enumerate(HOSTILE)]
    write_jsonl(inputs / "plain.jsonl", english)
    write_jsonl(inputs / "x<\u2028script><!--<script>'\".jsonl", hostile)
    out = tmp_path / "clean"
    result = run(
        [
            PY,
            "-m",
            "corpus.cli",
            "--input",
            str(inputs),
            "--output",
            str(out),
            "--workers",
            "1",
            "--set",
            "filters.gopher_repetition=null",
            "--set",
            "filters.gopher_quality=null",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    removed = {r["id"] for r in shard_rows(out, "removed/language")}
    assert {d["id"] for d in hostile} <= removed
    with Browser(tmp_path / "profile") as b:
        b.open(out / "report.html")
        assert b.errors == []
        assert b.eval("window.pwned === undefined")
        browser = "[data-browser=removed-language]"
        assert int(b.eval(f"document.querySelector('{browser}').dataset.matches")) == len(removed)
        shown = b.eval(f"[...document.querySelectorAll('{browser} article')].map(a => a.textContent)")
        assert len(shown) == len(removed)
        for h in HOSTILE[:4]:  # shown as text, as written
            assert any(h in t for t in shown), h
    rendered = MarkdownIt("commonmark").render((out / "report.md").read_text())
    assert "<script" not in rendered and "<img" not in rendered and "<!--" not in rendered
    assert "&lt;!--&lt;script&gt;" in rendered  # the text is there, shown literally


# ------------------------------------------------------------------------------------ names
def test_same_file_names_in_two_inputs_and_a_name_that_is_not_utf8(tmp_path):
    """Documents without ids get unique ids and sources; a file name that is not UTF-8 is read, its name
    shown with \\x escapes."""
    for folder in ("a", "b"):
        (tmp_path / "in" / folder).mkdir(parents=True)
        write_jsonl(
            tmp_path / "in" / folder / "x.jsonl",
            [
                {"text": f"Document in folder {folder}, the first one."},
                {"text": f"Document in folder {folder}, the second one."},
            ],
        )
    latin1 = os.fsencode(tmp_path / "in" / "a") + b"/caf\xe9.jsonl"
    write_jsonl(Path(os.fsdecode(latin1)), [{"text": "A document in a file whose name is Latin-1."}])
    out = tmp_path / "clean"
    result = run(none_cmd([tmp_path / "in" / "a", tmp_path / "in" / "b"], out))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = shard_rows(out)
    assert sorted((r["id"], r["source"]) for r in rows) == [
        ("a/caf\\xe9.jsonl#0", "a/caf\\xe9.jsonl"),
        ("a/x.jsonl#0", "a/x.jsonl"),
        ("a/x.jsonl#1", "a/x.jsonl"),
        ("b/x.jsonl#0", "b/x.jsonl"),
        ("b/x.jsonl#1", "b/x.jsonl"),
    ]


# ------------------------------------------------------------------------------------ HTML time bound
def test_a_page_that_stalls_the_extraction_is_skipped_and_named(tmp_path):
    """A real slow path of trafilatura (a long page of many paragraphs takes it seconds): with the bound
    lowered below that, the page is skipped, counted and named; the quick page beside it is kept."""
    pages = tmp_path / "pages"
    pages.mkdir()
    body = "".join(
        f"<div><p>Paragraph {i} of a long page about nothing in particular, said again and again.</p></div>"
        for i in range(8000)
    )
    (pages / "slow.html").write_text(f"<html><body><article>{body}</article></body></html>")
    quick = "<p>" + "A short page with one paragraph of plain English text for the reader to keep. " * 5 + "</p>"
    (pages / "quick.html").write_text(f"<html><body><article>{quick}</article></body></html>")
    out = tmp_path / "clean"
    start = time.time()
    result = run(none_cmd([pages], out, "--set", "html_timeout_s=1"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["id"] for r in shard_rows(out)] == ["quick.html"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["input"]["skipped"] == {"html_timeout": 1}
    skips = [
        json.loads(line) for f in (out / ".work" / "skipped").glob("*.jsonl") for line in f.read_text().splitlines()
    ]
    assert [(s["file"].rsplit("/", 1)[-1], s["reason"]) for s in skips] == [("slow.html", "html_timeout")]
    assert time.time() - start < 60


# ------------------------------------------------------------------------------------ one line, exit 2
@pytest.fixture(scope="module")
def train_env(shared_data, tmp_path_factory) -> dict:
    """A clean corpus, its tokenizer, token shards, a tiny teacher, and teachers with broken config.json files."""
    from run_helpers import write_clean_corpus
    from train.model import GPT, GPTConfig
    from train.tokenize_shards import tokenize_corpus
    from train.tokenizer import save_tokenizer, train_tokenizer

    root = tmp_path_factory.mktemp("train-env")
    clean = write_clean_corpus(root / "clean", wikitext_paragraphs(shared_data, 300))
    tok = train_tokenizer([clean], vocab_size=300)
    save_tokenizer(tok, root / "tok")
    tokenize_corpus(clean, root / "tok", root / "tokens", block_size=32, val_fraction=0.1)
    GPT(GPTConfig(vocab_size=300, block_size=64, n_layer=2, n_head=2, n_embd=32)).save_pretrained(root / "teacher")
    save_tokenizer(tok, root / "teacher")
    env = {"clean": clean, "tok": root / "tok", "tokens": root / "tokens", "teacher": root / "teacher"}
    for name, change in {
        "n_head 0": {"n_head": 0},
        "n_head 3": {"n_head": 3},
        "n_embd string": {"n_embd": "32"},
    }.items():
        broken = root / name.replace(" ", "-")
        broken.mkdir()
        for f in (root / "teacher").iterdir():
            (broken / f.name).write_bytes(f.read_bytes())
        config = json.loads((broken / "config.json").read_text())
        (broken / "config.json").write_text(json.dumps({**config, **change}))
        env[name] = broken
    return env


@pytest.fixture
def run_here(capsys):
    """A `python -m train|eval ...` command's real `main`, in this process (no new interpreter importing torch)."""
    import importlib

    def run_main(args: list[str]) -> subprocess.CompletedProcess:
        module = importlib.import_module(f"{args[0]}.__main__")
        capsys.readouterr()
        code = module.main(args[1:])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run_main


def pretrain_args(tokens, out, *extra) -> list[str]:
    return [
        "train",
        "pretrain",
        "--tokens",
        str(tokens),
        "--out",
        str(out),
        "--n-layer",
        "1",
        "--n-embd",
        "32",
        "--n-head",
        "2",
        "--batch-size",
        "4",
        "--max-steps",
        "2",
        "--eval-every",
        "2",
        "--eval-blocks",
        "4",
        "--threads",
        "1",
        *extra,
    ]


@pytest.mark.parametrize("broken", ["n_head 0", "n_head 3", "n_embd string"])
def test_a_teacher_with_an_inconsistent_config_is_one_line(train_env, tmp_path, run_here, broken):
    config = str(train_env[broken] / "config.json")
    one_line_error(
        run_here(pretrain_args(train_env["tokens"], tmp_path / "run", "--teacher", str(train_env[broken]))),
        config,
        broken.split()[0],
    )
    one_line_error(
        run_here(["eval", "perplexity", str(train_env[broken]), "--tokens", str(train_env["tokens"])]),
        config,
        broken.split()[0],
    )


def test_a_folder_of_the_wrong_kind_is_one_line(train_env, tmp_path, run_here):
    one_line_error(
        run_here(pretrain_args(train_env["clean"], tmp_path / "run", "--init", "scratch")),
        str(train_env["clean"]),
        "a clean corpus, not token shards",
    )
    one_line_error(
        run_here(
            [
                "train",
                "tokenize",
                "--data",
                str(train_env["tokens"]),
                "--tokenizer",
                str(train_env["tok"]),
                "--out",
                str(tmp_path / "tokens"),
            ]
        ),
        str(train_env["tokens"]),
        "token shards, not a clean corpus",
    )


def test_binary_or_non_utf8_text_for_perplexity_is_one_line(train_env, tmp_path, run_here):
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "latin1.txt").write_bytes("Un caf\xe9 au lait, s'il vous pla\xeet.\n".encode("latin-1"))
    for name in ("binary.bin", "latin1.txt"):
        one_line_error(
            run_here(["eval", "perplexity", str(train_env["teacher"]), "--data", str(tmp_path / name)]),
            name,
            "not UTF-8",
        )


@pytest.mark.parametrize(
    "content", [b"", "index\tsentence1\tsentence2\tlabel\n0\tCaf\xe9\tA\tentailment\n".encode("latin-1")]
)
def test_an_empty_or_non_utf8_glue_tsv_is_one_line(train_env, tmp_path, run_here, content):
    rte = tmp_path / "glue" / "RTE"
    rte.mkdir(parents=True)
    (rte / "train.tsv").write_bytes(content)
    (rte / "dev.tsv").write_bytes(content)
    one_line_error(
        run_here(
            [
                "eval",
                "glue",
                str(train_env["teacher"]),
                "--task",
                "rte",
                "--data",
                str(tmp_path / "glue"),
                "--epochs",
                "1",
            ]
        ),
        "train.tsv",
        "empty" if not content else "not UTF-8",
    )


def test_after_a_bad_teacher_the_corrected_command_is_accepted_for_the_same_run_folder(train_env, tmp_path):
    out = tmp_path / "run"
    one_line_error(run([PY, "-m", *pretrain_args(train_env["tokens"], out, "--teacher", str(train_env["n_head 0"]))]))
    result = run([PY, "-m", *pretrain_args(train_env["tokens"], out, "--teacher", str(train_env["teacher"]))])
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["steps"] == 2


# ------------------------------------------------------------------------------------ pretrain signals
def metric_count(out: Path) -> int:
    path = out / "metrics.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_pretrain_stops_on_sigterm_and_sighup_with_a_checkpoint_and_resumes_exactly(train_env, tmp_path, signum):
    # (enough steps that the signal surely comes before the end, even on a fast machine)
    steps = (
        "--max-steps",
        "200",
        "--eval-every",
        "100",
        "--ckpt-every",
        "1000",
        "--dropout",
        "0.1",
        "--log-every",
        "1",
    )
    reference, out = tmp_path / "reference", tmp_path / "run"
    cmd = [PY, "-m", *pretrain_args(train_env["tokens"], out, "--init", "scratch", *steps)]
    result = signal_when(cmd, lambda: metric_count(out) >= 5, signum)
    assert result.returncode == 128 + signum, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    said = [line for line in result.stdout.splitlines() if "interrupted" in line]
    assert len(said) == 1 and signal.Signals(signum).name in said[0] and "checkpoint saved" in said[0], result.stdout
    assert list((out / "checkpoints").glob("step-*.pt"))
    with output_lock(out):
        pass
    if signum == signal.SIGTERM:  # (the same state after either signal: resume once)
        assert run([PY, "-m", *pretrain_args(train_env["tokens"], out, "--init", "scratch", *steps)]).returncode == 0
        assert (
            run([PY, "-m", *pretrain_args(train_env["tokens"], reference, "--init", "scratch", *steps)]).returncode == 0
        )
        assert run_snapshot(out) == run_snapshot(reference)


def rank_process(launcher: int, rank: int) -> int:
    """The pid of torchrun's worker with RANK=`rank`, below the launcher process."""
    for pid in descendants(launcher):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return pid
    raise AssertionError(f"no process with RANK={rank} below {launcher}")


TORCHRUN_STEPS = ("--max-steps", "60", "--eval-every", "30", "--ckpt-every", "1000", "--log-every", "1")


def torchrun_pretrain(tokens: Path, folder: Path) -> list[str]:
    """`train pretrain` on two CPU ranks (gloo) under torchrun."""
    args = pretrain_args(tokens, folder, "--init", "scratch", *TORCHRUN_STEPS)
    return [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", *args]


@pytest.fixture(scope="module")
def torchrun_reference(train_env, tmp_path_factory) -> dict:
    """The uninterrupted two-rank run the interrupted ones must end equal to."""
    folder = tmp_path_factory.mktemp("torchrun") / "reference"
    assert run(torchrun_pretrain(train_env["tokens"], folder)).returncode == 0
    return run_snapshot(folder)


@pytest.mark.slow
@pytest.mark.parametrize("to", ["torchrun", "rank 1"])
def test_pretrain_under_torchrun_stops_on_sigterm_and_resumes(train_env, torchrun_reference, tmp_path, to):
    """SIGTERM to torchrun (as a batch system sends it) reaches both ranks; SIGTERM to one rank alone reaches the
    other through the step's all-reduce. Either way both ranks stop after the same step with a checkpoint, the
    run folder is released, and the same command resumes from the checkpoint to the uninterrupted run's result."""
    out = tmp_path / "run"
    target = None if to == "torchrun" else lambda launcher: rank_process(launcher, 1)
    result = signal_when(
        torchrun_pretrain(train_env["tokens"], out), lambda: metric_count(out) >= 5, signal.SIGTERM, target=target
    )
    assert result.returncode != 0
    said = [line for line in result.stdout.splitlines() if "interrupted" in line]
    assert len(said) == 1 and "SIGTERM" in said[0] and "checkpoint saved" in said[0], result.stdout  # rank 0 says
    assert "train/" not in result.stderr and "safe_output/" not in result.stderr  # (torchrun's own traceback aside)
    time.sleep(0.5)
    assert processes_naming(str(out)) == []  # no rank left behind
    with output_lock(out):
        pass
    checkpoints = list((out / "checkpoints").glob("step-*.pt"))
    assert len(checkpoints) == 1 and not (out / "summary.json").exists()  # (--ckpt-every 1000: the stop saved it)
    again = run(torchrun_pretrain(train_env["tokens"], out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert run_snapshot(out) == torchrun_reference


# ------------------------------------------------------------------------------------ full disk
@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB tmpfs (needs root), most of it taken by a filler file the test can delete."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int) -> Path:
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.parametrize("workers", ["1", "2"])
def test_corpus_clean_on_a_full_disk_says_so_and_resumes(small_jsonl, shared_data, small_disk, tmp_path, workers):
    docs = write_jsonl(
        tmp_path / "docs.jsonl",
        [{"id": f"d{i}", "text": t} for i, t in enumerate(wikitext_paragraphs(shared_data, 1200))],
    )
    cmd = none_cmd([docs], small_disk / "clean", "--workers", workers)
    filler = fill(small_disk, 400_000)
    result = run(cmd)
    line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2, result.stderr[-3000:]
    assert (
        line.startswith(f"corpus-clean: error: --output {small_disk / 'clean'}: no space left")
        and "same command" in line
    )
    # the tasks' tracebacks and their loggers' failures to write their log files are left out
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr, result.stderr[-3000:]
    filler.unlink()
    assert run(cmd).returncode == 0
    reference = tmp_path / "reference"
    assert run(none_cmd([docs], reference, "--workers", workers)).returncode == 0
    assert shard_rows(small_disk / "clean") == shard_rows(reference)


def test_the_full_disk_filter_drops_only_what_a_full_disk_causes():
    from corpus.local_executor import BLOCK_END, BLOCK_START, FullDiskFilter

    seen = io.StringIO()
    stream = FullDiskFilter(seen)
    full = "OSError: [Errno 28] No space left on device\n"
    stream.write("task 0: 10 docs\n")
    stream.write(f"ERROR | task failed\nTraceback (most recent call last):\n{full}")
    for part in (f"{BLOCK_START} #3 ---\n", "Record was: {...}\n", full, f"{BLOCK_END}\n"):
        stream.write(part)
    other = [f"{BLOCK_START} #2 ---\n", "Record was: {...}\n", "ValueError: bad format\n", f"{BLOCK_END}\n"]
    for part in other:
        stream.write(part)
    stream.write("EDQUOT: OSError: [Errno 122] Disk quota exceeded\n")
    stream.write("stage 2/2\n")
    assert seen.getvalue() == "task 0: 10 docs\n" + "".join(other) + "stage 2/2\n"


def test_tokenize_on_a_full_disk_says_so_and_resumes(train_env, small_disk, tmp_path):
    def tokenize(out: Path) -> list[str]:
        return [
            PY,
            "-m",
            "train",
            "tokenize",
            "--data",
            str(train_env["clean"]),
            "--tokenizer",
            str(train_env["tok"]),
            "--out",
            str(out),
            "--block-size",
            "32",
            "--val-fraction",
            "0.1",
        ]

    filler = fill(small_disk, 100_000)
    line = one_line_error(
        run(tokenize(small_disk / "tokens")), str(small_disk / "tokens"), "no space left", "same command"
    )
    filler.unlink()
    assert run(tokenize(small_disk / "tokens")).returncode == 0, line
    assert run(tokenize(tmp_path / "reference")).returncode == 0
    for name in ("train-00000.bin", "val-00000.bin"):
        assert (small_disk / "tokens" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()


# ------------------------------------------------------------------------------------ studies
@pytest.mark.slow
def test_a_study_stops_on_sigterm_with_its_sub_commands_and_resumes(shared_data, teacher, tmp_path):
    """SIGTERM to the study's main process only, while its cleaning sub-command runs: the sub-command and its
    workers end, the study says so in one line (exit 143), nothing is left running or locked, and the same
    command then finishes (the SIGKILL test of the studies shows a resumed study's numbers are exact)."""

    def args(out: Path) -> list[str]:
        return [
            PY,
            "-m",
            "eval",
            "ablation",
            "--scale",
            "smoke",
            "--input",
            str(shared_data / "html-sample" / "linux-doc"),
            "--teacher",
            str(teacher),
            "--out",
            str(out),
            "--workers",
            "2",
            "--presets",
            "none",
            "--seeds",
            "0",
            "--budget-tokens",
            "2048",
        ]

    out = tmp_path / "stopped"
    cleaning = lambda: any(out.rglob(".work"))  # noqa: E731
    result = signal_when(args(out), cleaning, signal.SIGTERM)
    assert result.returncode == 143, result.stderr[-3000:]
    assert (
        result.stderr.strip().splitlines()[-1]
        == "eval ablation: stopped by SIGTERM; run the same command again to resume"
    )
    time.sleep(0.3)
    assert processes_naming(str(out)) == []
    with output_lock(out):
        pass
    again = run(args(out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((out / "results.json").read_text())["runs"]
