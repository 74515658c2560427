"""User mistakes and faults, for every command: a folder of the user's as the output, a temporary-looking
folder beside it, two runs on one output, SIGKILL at points of a run's own progress (and at one seeded random step),
Ctrl-C on the last step, broken checkpoints and data. Nothing of the user's is lost, every message is one line
naming the file and the fix, and the same command run again completes."""

from __future__ import annotations

import importlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpus_helpers import shard_rows, wikitext_articles, write_jsonl
from run_helpers import interruptible, metric_lines, train_cmd, write_clean_corpus
from safe_output import MARKER, claim_output, output_lock
from train.model import GPT, GPTConfig
from train.tokenize_shards import tokenize_corpus
from train.tokenizer import save_tokenizer, train_tokenizer

PY = sys.executable


@pytest.fixture(scope="module")
def env(shared_data, tmp_path_factory) -> dict:
    """Inputs for every command: raw JSONL, a clean corpus, a tokenizer, token shards, a tiny teacher."""
    root = tmp_path_factory.mktemp("inputs")
    texts = wikitext_articles(shared_data, 40, min_words=100)
    raw = write_jsonl(root / "raw.jsonl", [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)])
    clean = write_clean_corpus(root / "clean", texts)
    save_tokenizer(train_tokenizer([clean], vocab_size=512), root / "tok")
    tokenize_corpus(clean, root / "tok", root / "tokens", block_size=32, val_fraction=0.1)
    teacher = root / "teacher"
    GPT(GPTConfig(vocab_size=512, block_size=64, n_layer=2, n_head=2, n_embd=32)).save_pretrained(teacher)
    save_tokenizer(train_tokenizer([clean], vocab_size=512), teacher)
    glue = root / "glue" / "RTE"
    glue.mkdir(parents=True)
    rows = "index\tsentence1\tsentence2\tlabel\n" + "".join(
        f"{i}\tThe cat sat on mat {i}.\tA cat sat.\t{'entailment' if i % 2 else 'not_entailment'}\n" for i in range(16)
    )
    (glue / "train.tsv").write_text(rows)
    (glue / "dev.tsv").write_text(rows)
    return {
        "raw": raw,
        "clean": clean,
        "tok": root / "tok",
        "tokens": root / "tokens",
        "teacher": teacher,
        "glue": root / "glue",
    }


# every command that writes a folder: (the command line for output folder OUT, the name it marks its folders with)
COMMANDS = {
    "corpus-clean": (
        lambda e, out: [
            PY,
            "-m",
            "corpus.cli",
            "--input",
            str(e["raw"]),
            "--output",
            str(out),
            "--preset",
            "none",
            "--workers",
            "1",
        ],
        "corpus-clean",
    ),
    "demo-corpus": (
        lambda e, out: [
            PY,
            "-m",
            "corpus.demo_corpus",
            "--output",
            str(out),
            "--packages",
            "maint-guide",
            "--max-pages",
            "2",
        ],
        "corpus demo-corpus",
    ),
    "tokenizer": (lambda e, out: [PY, "-m", "train", "tokenizer", "--gpt2", "--output", str(out)], "train tokenizer"),
    "tokenize": (
        lambda e, out: [
            PY,
            "-m",
            "train",
            "tokenize",
            "--data",
            str(e["clean"]),
            "--tokenizer",
            str(e["tok"]),
            "--output",
            str(out),
            "--block-size",
            "32",
            "--val-fraction",
            "0.1",
        ],
        "train tokenize",
    ),
    "pretrain": (lambda e, out: train_cmd(e["tokens"], out, "--max-steps", "2"), "train pretrain"),
    "ablation": (
        lambda e, out: [
            PY,
            "-m",
            "eval",
            "ablation",
            "--scale",
            "smoke",
            "--output",
            str(out),
            "--teacher",
            str(e["teacher"]),
            "--input",
            str(e["raw"]),
        ],
        "eval ablation",
    ),
    "compare": (
        lambda e, out: [
            PY,
            "-m",
            "eval",
            "compare",
            "--scale",
            "smoke",
            "--output",
            str(out),
            "--teacher",
            str(e["teacher"]),
            "--clean",
            str(e["clean"]),
            "--distill-keep",
            "alt",
        ],
        "eval compare",
    ),  # (a 2-layer teacher)
    "kd-study": (
        lambda e, out: [
            PY,
            "-m",
            "eval",
            "kd-study",
            "--scale",
            "smoke",
            "--output",
            str(out),
            "--teacher",
            str(e["teacher"]),
            "--student",
            str(e["teacher"]),
            "--tasks",
            "rte",
        ],
        "eval kd-study",
    ),
    "glue --save": (
        lambda e, out: [
            PY,
            "-m",
            "eval",
            "glue",
            str(e["teacher"]),
            "--task",
            "rte",
            "--data",
            str(e["glue"]),
            "--output",
            str(out),
            "--max-train",
            "8",
            "--epochs",
            "1",
            "--batch-size",
            "8",
        ],
        "eval glue --save",
    ),
}


def users_folder(path: Path) -> Path:
    (path / "notes").mkdir(parents=True)
    (path / "thesis.tex").write_text("years of work")
    (path / "notes" / "todo.txt").write_text("keep me")
    return path


def contents(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else None for p in sorted(path.rglob("*"))}


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture
def run_here(capsys):
    """Run a `python -m MODULE ...` command line in this process: its real `main`, without paying the
    seconds of a new interpreter importing torch."""

    def run_main(cmd: list[str]) -> subprocess.CompletedProcess:
        assert cmd[:2] == [PY, "-m"]
        module = importlib.import_module(cmd[2] + (".__main__" if cmd[2] in ("train", "eval") else ""))
        capsys.readouterr()
        code = module.main(cmd[3:])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(cmd, code, out, err)

    return run_main


def one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_folder_of_the_users_is_never_written(env, tmp_path, run_here, name):
    cmd, _ = COMMANDS[name]
    home = users_folder(tmp_path / "home")
    before = contents(home)
    one_line_error(run_here(cmd(env, home)), str(home), "not empty", "choose a new or empty folder")
    assert contents(home) == before


@pytest.mark.parametrize("name", [c for c in COMMANDS if c != "demo-corpus"])  # (that one downloads packages)
def test_a_temporary_looking_folder_beside_the_output_is_left_alone(env, tmp_path, run_here, name):
    cmd, _ = COMMANDS[name]
    out = tmp_path / "out"
    sibling = users_folder(tmp_path / "out.tmp")
    before = contents(sibling)
    if name in ("ablation", "compare", "kd-study"):  # a whole study is too slow here: killed once it has written a unit
        proc = subprocess.Popen(
            cmd(env, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        kill_when(proc, lambda: any(not p.name.startswith(".") for p in out.glob("*")))  # its first own entry
        assert json.loads((out / MARKER).read_text())["command"] == COMMANDS[name][1]
    else:
        result = run_here(cmd(env, out))
        assert result.returncode == 0, result.stderr[-3000:]
        assert json.loads((out / MARKER).read_text())["command"] == COMMANDS[name][1]
    assert contents(sibling) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.tmp"]  # nothing else left beside


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_second_run_on_the_same_output_stops_at_once_naming_the_first(env, tmp_path, run_here, name):
    cmd, command = COMMANDS[name]
    out = tmp_path / "out"
    claim_output(out, command)
    with output_lock(out, command="the first run"):  # a lock of its own (flock: per open file), as a running command's
        start = time.time()
        result = run_here(cmd(env, out))
    one_line_error(result, str(out), f"pid {os.getpid()}", "the first run", "--wait")
    assert time.time() - start < 60


def test_two_runs_of_one_training_the_first_completes_untouched(env, tmp_path, run_here):
    out = tmp_path / "run"
    steps = 400
    cmd = train_cmd(
        env["tokens"], out, "--max-steps", str(steps), "--eval-every", str(steps), "--ckpt-every", str(steps)
    )
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (out / "metrics.jsonl").exists():
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    one_line_error(run_here(cmd), "is in use by pid", str(first.pid))
    assert first.poll() is None, "the first run ended before the second started: make it longer"
    stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-3000:]
    assert [line["step"] for line in metric_lines(out)] == list(range(1, steps + 1))


def test_wait_starts_when_the_first_run_ends(env, tmp_path):
    out = tmp_path / "run"
    claim_output(out, "train pretrain")
    with output_lock(out, command="the first run"):
        waiting = subprocess.Popen(
            train_cmd(env["tokens"], out, "--max-steps", "2", "--wait"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert "waiting for" in waiting.stderr.readline()
        assert waiting.poll() is None
    stdout, stderr = waiting.communicate(timeout=600)
    assert waiting.returncode == 0 and (out / "summary.json").exists(), stderr[-3000:]


def test_overwrite_replaces_only_the_commands_own_output(env, tmp_path, run_here):
    run = run_here
    tokenize = COMMANDS["tokenize"][0]
    out = tmp_path / "tokens"
    assert run(tokenize(env, out)).returncode == 0
    other_settings = [a if a != "32" else "16" for a in tokenize(env, out)]
    one_line_error(run(other_settings), str(out), "--overwrite")
    assert json.loads((out / "manifest.json").read_text())["block_size"] == 32
    assert run(other_settings + ["--overwrite"]).returncode == 0
    assert json.loads((out / "manifest.json").read_text())["block_size"] == 16
    # another command's folder is not this command's to replace, --overwrite or not
    tok = tmp_path / "tok"
    assert run(COMMANDS["tokenizer"][0](env, tok)).returncode == 0
    before = contents(tok)
    one_line_error(run(tokenize(env, tok) + ["--overwrite"]), str(tok), "`train tokenizer`")
    assert contents(tok) == before


# ---------------------------------------------------------------------------------------- kills
def kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    """SIGKILL `proc` (started with start_new_session=True) and its children as soon as `ready()` holds; fails if
    the process ended first, so every kill interrupts something."""
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, "the run ended before the kill point: nothing was interrupted"
        assert time.time() < deadline, "the kill point was never reached"
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def killed_then_rerun(cmd: list[str], out: Path, ready, snapshot, finished: str) -> dict:
    """Kill `cmd` at `ready()`, check the kill left it unfinished, run it again to the end: the output's snapshot."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    kill_when(proc, ready)
    assert not (out / finished).exists(), "the kill landed after the run had finished"
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(out.rglob("*.partial-*"))
    return snapshot(out)


def token_snapshot(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "manifest": {k: v for k, v in manifest.items() if k != "tokenizer"},
        "bins": {p.name: p.read_bytes() for p in sorted(out.glob("*.bin"))},
    }


def run_snapshot(out: Path) -> dict:
    weights = GPT.from_pretrained(out / "export").state_dict()
    return {
        "metrics": metric_lines(out),
        "weights": {k: v.tolist() for k, v in weights.items()},
        "summary": {
            k: v
            for k, v in json.loads((out / "summary.json").read_text()).items()
            if k not in ("train_time_s", "tokens_per_s", "export")
        },
    }


def in_progress(out: Path, name: str) -> list[Path]:
    """Files called `name` in the temporary folders a command fills before moving them into `out`."""
    return list(out.glob(f".*.partial-*/{name}"))


@pytest.fixture(scope="module")
def tokenized(env, tmp_path_factory) -> tuple[list[str], dict]:
    template = COMMANDS["tokenize"][0](env, "OUT")
    reference = tmp_path_factory.mktemp("tokens") / "reference"
    subprocess.run(cmd_for(template, reference), check=True, capture_output=True)
    return template, token_snapshot(reference)


@pytest.mark.parametrize("kill_point", ["output claimed", "first shard being written"])
def test_tokenize_killed_at_a_point_of_its_progress_then_rerun_is_exact(env, tmp_path, tokenized, kill_point):
    template, expected = tokenized
    out = tmp_path / "tokens"
    ready = {
        "output claimed": lambda: (out / MARKER).exists(),
        "first shard being written": lambda: bool(in_progress(out, "train-00000.bin")),
    }[kill_point]
    assert killed_then_rerun(cmd_for(template, out), out, ready, token_snapshot, "manifest.json") == expected


PRETRAIN_STEPS = 20


@pytest.fixture(scope="module")
def pretrained(env, tmp_path_factory) -> tuple[list[str], dict]:
    template = train_cmd(
        env["tokens"], Path("OUT"), "--max-steps", str(PRETRAIN_STEPS), "--ckpt-every", "3", "--dropout", "0.1"
    )
    reference = tmp_path_factory.mktemp("pretrain") / "reference"
    subprocess.run(cmd_for(template, reference), check=True, capture_output=True)
    return template, run_snapshot(reference)


def logged_steps(out: Path) -> int:
    path = out / "metrics.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


# a seeded random step: a different kill point than the fixed ones, the same one on every run of the suite
RANDOM_STEP = random.Random(2110_08460).randint(4, PRETRAIN_STEPS - 2)


@pytest.mark.parametrize(
    "kill_point", ["after the first checkpoint", "during the last step", f"after step {RANDOM_STEP}"]
)
def test_pretrain_killed_at_a_point_of_its_progress_then_rerun_is_exact(tmp_path, pretrained, kill_point):
    template, expected = pretrained
    out = tmp_path / "run"
    ready = {
        "after the first checkpoint": lambda: (out / "checkpoints" / "step-00000003.pt").exists(),
        "during the last step": lambda: logged_steps(out) >= PRETRAIN_STEPS - 1,
        f"after step {RANDOM_STEP}": lambda: logged_steps(out) >= RANDOM_STEP,
    }[kill_point]
    assert killed_then_rerun(cmd_for(template, out), out, ready, run_snapshot, "summary.json") == expected


def cmd_for(template: list[str], out: Path) -> list[str]:
    return [str(out) if a == "OUT" else a for a in template]


def test_ctrl_c_on_the_last_step_tells_the_truth_and_the_rerun_redoes_no_step(env, tmp_path):
    ref, out = tmp_path / "reference", tmp_path / "run"
    steps = 30
    args = ("--max-steps", str(steps), "--ckpt-every", "100", "--dropout", "0.1")
    subprocess.run(train_cmd(env["tokens"], ref, *args), check=True, capture_output=True)
    proc = subprocess.Popen(
        train_cmd(env["tokens"], out, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    while not ((out / "metrics.jsonl").exists() and (out / "metrics.jsonl").read_text().count("\n") >= steps - 1):
        assert proc.poll() is None, "finished before the interruption"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:  # the signal came after the run's last write (a race on a quiet machine): a finished
        assert "interrupted" not in stdout + stderr  # run, and it says nothing else
        assert run_snapshot(out) == run_snapshot(ref)
        return
    assert proc.returncode == 130, stderr[-3000:]
    said = [line for line in (stdout + stderr).splitlines() if "interrupted" in line]
    assert len(said) == 1, stdout + stderr
    if "checkpoint saved at step" in said[0]:  # it says which step: that checkpoint exists
        saved = int(said[0].split("checkpoint saved at step ")[1].split(";")[0])
        assert (out / "checkpoints" / f"step-{saved:08d}.pt").exists()
    again = subprocess.run(train_cmd(env["tokens"], out, *args), check=True, capture_output=True, text=True)
    redone = [line for line in again.stdout.splitlines() if line.startswith("step ")]
    assert redone == [], redone  # the interrupted run had done every step
    assert run_snapshot(out) == run_snapshot(ref)


# ---------------------------------------------------------------------------------- broken inputs
def test_broken_teacher_checkpoints_are_one_line_naming_the_file(env, tmp_path):
    truncated = Path(shutil.copytree(env["teacher"], tmp_path / "truncated"))
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    mismatched = Path(shutil.copytree(env["teacher"], tmp_path / "mismatched"))
    config = json.loads((mismatched / "config.json").read_text())
    (mismatched / "config.json").write_text(json.dumps({**config, "n_embd": 64}))
    for teacher, needles in (
        (truncated, (str(weights), "corrupt or truncated", "again")),
        (mismatched, (str(mismatched), "config.json", "does not belong to these weights")),
    ):
        cmd = train_cmd(env["tokens"], tmp_path / f"run-{teacher.name}", "--max-steps", "2")
        one_line_error(run(cmd[: cmd.index("--init")] + ["--teacher", str(teacher)]), *needles)


def test_corrupt_token_ids_are_one_line_naming_the_shard(env, tmp_path):
    broken = Path(shutil.copytree(env["tokens"], tmp_path / "tokens"))
    shard = broken / "train-00000.bin"
    shard.write_bytes(b"\xff" * shard.stat().st_size)  # the right size, but token ids 65535: beyond the vocabulary
    result = run(train_cmd(broken, tmp_path / "run", "--max-steps", "2"))
    one_line_error(result, str(broken), "corrupt token shard")


def test_glue_rows_that_cannot_be_read_are_skipped_counted_and_named(env, tmp_path):
    data = Path(shutil.copytree(env["glue"], tmp_path / "glue"))
    train = data / "RTE" / "train.tsv"
    lines = train.read_text().splitlines()
    lines[3] = "3\tonly one column"
    lines[5] = "5\tA sentence.\tAnother.\tnot-a-label"
    train.write_text("\n".join(lines) + "\n")
    cmd = COMMANDS["glue --save"][0](env, tmp_path / "saved")
    cmd[cmd.index("--data") + 1] = str(data)
    result = run(cmd)
    assert result.returncode == 0, result.stderr[-3000:]
    skipped = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert [line.split(" (")[0] for line in skipped] == [f"  {train}:4: skipped", f"  {train}:6: skipped"], (
        result.stderr[-3000:]
    )
    assert all("needs sentence1, sentence2 and label = not_entailment or entailment" in line for line in skipped)
    assert (tmp_path / "saved" / "classifier.json").exists()


def test_a_book_sized_document_is_kept_whole(tmp_path, run_here):
    """8 MB of text is a valid document (a long book): kept, in a shard that exceeds --max-shard-mb by it."""
    paragraph = "The old mill stood by the river, and every morning the miller walked down to the water. "
    book = (paragraph * (8 * 2**20 // len(paragraph) + 1))[: 8 * 2**20]
    raw = write_jsonl(tmp_path / "books.jsonl", [{"id": "short", "text": paragraph}, {"id": "book", "text": book}])
    out = tmp_path / "clean"
    result = run_here(
        [
            PY,
            "-m",
            "corpus.cli",
            "--input",
            str(raw),
            "--output",
            str(out),
            "--preset",
            "none",
            "--workers",
            "1",
            "--max-shard-mb",
            "1",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {r["id"]: r["text"] for r in shard_rows(out)}
    assert rows == {"short": paragraph, "book": book}
    stats = json.loads((out / "stats.json").read_text())
    assert not stats["input"].get("skipped")
