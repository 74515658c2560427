"""Killed with SIGKILL mid-run, the same command completes with exactly the uninterrupted output;
and the Ray executor produces the same output as the local one."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from corpus_helpers import clean_cmd, snapshot


@pytest.fixture(scope="module")
def reference(shared_data, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ref") / "clean"
    subprocess.run(clean_cmd(shared_data / "html-sample", out), check=True, capture_output=True)
    return snapshot(out)


def run_and_kill(cmd: list[str], ready, timeout: float = 120) -> None:
    """Start `cmd` in its own process group and SIGKILL the whole group once `ready()` is true."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, "the run finished before the kill point: nothing was interrupted"
        assert time.time() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("kill_point", ["first filter task done", "minhash stage started"])
def test_sigkill_then_rerun_gives_identical_output(shared_data, tmp_path, reference, kill_point):
    out = tmp_path / "clean"
    logs = out / ".work" / "logs"
    if kill_point == "first filter task done":  # other filter tasks are mid-document
        ready = lambda: any((logs / "filter" / "completions").glob("*"))  # noqa: E731
    else:
        ready = lambda: (logs / "minhash-buckets").exists()  # noqa: E731
    cmd = clean_cmd(shared_data / "html-sample", out)
    run_and_kill(cmd, ready)
    assert not (out / "manifest.json").exists()
    subprocess.run(cmd, check=True, capture_output=True)
    assert snapshot(out) == reference


def test_rerun_of_a_finished_run_changes_nothing(shared_data, tmp_path, reference):
    out = tmp_path / "clean"
    cmd = clean_cmd(shared_data / "html-sample", out)
    subprocess.run(cmd, check=True, capture_output=True)
    again = subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert snapshot(out) == reference
    assert "documents: 130 in" in again.stdout


@pytest.mark.slow
def test_ray_executor_matches_local(shared_data, tmp_path, reference):
    pytest.importorskip("ray", reason="ray is not installed (pip install '.[ray]')")
    out = tmp_path / "clean"
    result = subprocess.run(
        clean_cmd(shared_data / "html-sample", out, "--executor", "ray"), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert snapshot(out) == reference
