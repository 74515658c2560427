"""`--executor slurm` on a real one-node Slurm cluster started by the test (munged, slurmctld, slurmd).

Skipped, with the reason, where Slurm is not installed (`make test-debs`) or the tests do not run as root.
"""

from __future__ import annotations

import subprocess

import pytest

from slurm_cluster import PARTITION, SlurmCluster, unavailable
from corpus_helpers import clean_cmd, snapshot
from test_resume import reference  # noqa: F401  (the local run, a fixture)

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as c:
        yield c


def slurm_cmd(inputs, out, *extra: str) -> list[str]:
    return clean_cmd(inputs, out, "--executor", "slurm", "--slurm-partition", PARTITION, *extra)


@pytest.mark.slow
def test_slurm_run_matches_local(shared_data, tmp_path, cluster, reference):  # noqa: F811
    out = tmp_path / "clean"
    cmd = slurm_cmd(shared_data / "html-sample", out)
    submitted = subprocess.run(cmd + ["--no-wait"], capture_output=True, text=True, env=cluster.env, timeout=120)
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert "check on the jobs: squeue --jobs " in submitted.stdout
    assert not (out / "manifest.json").exists()  # returned before the jobs ran
    jobs = (out / ".work" / "slurm_jobs.json").read_text()
    # the same command again, while the chain's last stage is still queued, waits for those jobs (it does not
    # submit them twice) and prints the result
    waited = subprocess.run(cmd, capture_output=True, text=True, env=cluster.env, timeout=900)
    assert waited.returncode == 0, waited.stderr[-3000:]
    assert "the jobs submitted before are still queued; waiting for them" in waited.stderr, waited.stderr[-3000:]
    assert "submitted to Slurm" not in waited.stderr and (out / ".work" / "slurm_jobs.json").read_text() == jobs
    assert "documents: 130 in" in waited.stdout
    assert snapshot(out) == reference


def test_failed_job_is_reported_with_its_log(shared_data, tmp_path, cluster):
    out = tmp_path / "clean"
    # a job whose environment command fails: every job of the first stage fails on the compute node
    cmd = slurm_cmd(shared_data / "html-sample", out, "--slurm-env", "echo no such environment >&2; exit 3")
    result = subprocess.run(cmd, capture_output=True, text=True, env=cluster.env, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("corpus-clean: failed: Slurm stage filter") and "read " in message
    log = message.split("read ", 1)[1].split(" ")[0]
    assert "no such environment" in open(log).read()
    queued = subprocess.run(["squeue", "-h"], capture_output=True, text=True, env=cluster.env).stdout
    assert queued.strip() == ""  # the stages after the failed one were cancelled, not left pending forever
