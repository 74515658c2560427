"""A real one-node Slurm cluster on this machine, for the tests: munged + slurmctld + slurmd, one partition.

Everything (munge key and socket, slurm.conf, state, spool, logs) lives in a folder the caller gives
(a temp folder of the test); nothing under /etc is changed. Commands reach this cluster through the
`SLURM_CONF` environment variable (`cluster.env`). The daemons run in the foreground as our child
processes and are stopped by their pids on exit.

Needs Debian's `slurm-wlm` and `munge` (`make test-debs` installs them) and root (slurmd launches jobs
as the submitting user). `unavailable()` says why a cluster cannot be started here, or None.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue")
PARTITION = "debug"


def _which(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )


def unavailable() -> str | None:
    missing = [d for d in DAEMONS if not _which(d)]
    if missing:
        return (
            f"Slurm is not installed ({', '.join(missing)} missing): "
            "run `make test-debs` (Debian's slurm-wlm and munge)"
        )
    if os.geteuid() != 0:
        return "a local Slurm cluster needs root (slurmd starts jobs as the submitting user)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_resources() -> tuple[int, int]:
    """CPUs and memory (MB) as slurmd sees them, so the node registers without a mismatch."""
    out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True).stdout
    fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
    return int(fields.get("CPUs", os.cpu_count() or 1)), int(fields.get("RealMemory", 1024))


class SlurmCluster:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.conf = self.root / "slurm.conf"
        self.procs: list[subprocess.Popen] = []
        self.node = socket.gethostname().split(".")[0]
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def write_config(self) -> None:
        r = self.root
        for d in ("state", "spool", "munge"):
            (r / d).mkdir(parents=True, exist_ok=True)
        (r / "munge").chmod(0o700)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        (r / "plugstack.conf").write_text("")
        cpus, memory = _node_resources()
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=corpustest",
                    f"SlurmctldHost={self.node}(127.0.0.1)",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={r / 'munge' / 'munge.socket'}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    f"StateSaveLocation={r / 'state'}",
                    f"SlurmdSpoolDir={r / 'spool'}",
                    f"SlurmctldPidFile={r / 'slurmctld.pid'}",
                    f"SlurmdPidFile={r / 'slurmd.pid'}",
                    f"SlurmctldLogFile={r / 'slurmctld.log'}",
                    f"SlurmdLogFile={r / 'slurmd.log'}",
                    f"PlugStackConfig={r / 'plugstack.conf'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    "SchedulerType=sched/backfill",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_CPU",
                    "AccountingStorageType=accounting_storage/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "JobCompType=jobcomp/none",
                    "MinJobAge=600",  # finished jobs stay visible to scontrol for a while
                    f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN",
                    f"PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def _start(self, *cmd: str, log: str) -> None:
        with open(self.root / log, "ab") as out:
            self.procs.append(
                subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
            )

    def start(self, timeout_s: float = 60.0) -> "SlurmCluster":
        self.write_config()
        m = self.root / "munge"
        self._start(
            _which("munged"),
            "-F",
            "--force",
            f"--key-file={m / 'munge.key'}",
            f"--socket={m / 'munge.socket'}",
            f"--pid-file={m / 'munged.pid'}",
            f"--seed-file={m / 'munged.seed'}",
            f"--log-file={m / 'munged.log'}",
            log="munged.out",
        )
        self._wait(lambda: (m / "munge.socket").exists(), timeout_s, "munged did not start")
        self._start(_which("slurmctld"), "-D", "-i", "-f", str(self.conf), log="slurmctld.out")
        self._start(_which("slurmd"), "-D", "-N", self.node, "-f", str(self.conf), log="slurmd.out")
        self._wait(self.node_ready, timeout_s, "the Slurm node did not become idle")
        return self

    def node_ready(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=self.env).stdout
        return out.strip() in ("idle", "mixed", "allocated")

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{what}: {dead[0].args[0]} exited with {dead[0].returncode}; logs in {self.root}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"{what} within {timeout_s:.0f}s; logs in {self.root}")

    def stop(self) -> None:
        for p in reversed(self.procs):  # slurmd, slurmctld, then munged
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
