"""SIGTERM and SIGHUP end a command the way Ctrl-C does.

A batch system (Slurm, systemd, a container runtime) ends a job with SIGTERM to its main process only, and
a closed terminal sends SIGHUP. `stop_on_signals` (installed by `run_cli`) makes either one stop the whole
command: every process below the main one (worker processes, sub-commands and theirs) gets SIGTERM and is
waited for (a training sub-command saves its checkpoint first), then the main process ends: a single process
by `Terminated` (a `KeyboardInterrupt`: the same clean-up as for Ctrl-C runs), one with worker processes at
once, as after SIGKILL (which every command resumes from exactly). The output folder's lock is released.
The command prints one line and exits with 128 + the signal's number (143 for SIGTERM, 129 for SIGHUP, as a shell reports a
process killed by it; Ctrl-C stays 130).

Forked worker processes get the default action back (they die at once, even inside C code); a sub-command
started with exec installs its own handlers through its own `run_cli`.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
GRACE_S = 60.0  # how long sub-processes may take to stop (a training sub-command finishes its step first)


class Terminated(KeyboardInterrupt):
    """The command was asked to stop by a signal (`signum`)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (from /proc; empty where there is none)."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (command name)"
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_descendants(grace_s: float = GRACE_S) -> None:
    """SIGTERM to every process below this one; wait for them to end (SIGKILL after `grace_s`)."""
    me = os.getpid()
    deadline = time.monotonic() + grace_s
    signalled: set[int] = set()
    while True:
        alive = descendants(me)
        if not alive:
            return
        for pid in alive:
            if pid not in signalled or time.monotonic() > deadline:
                try:
                    os.kill(pid, signal.SIGTERM if time.monotonic() <= deadline else signal.SIGKILL)
                except OSError:
                    pass
                signalled.add(pid)
        time.sleep(0.05)  # zombies are not listed: their parents reap them once we raise


_stopping: list[int] = []  # the signal being handled (inherited by a process forked meanwhile)
_prog = ["command"]


def _handler(signum, frame):
    if _stopping:  # a second signal while the first is handled
        return
    _stopping.append(signum)
    if not descendants(os.getpid()):
        raise Terminated(signum)  # a single process: the usual clean-up, as for Ctrl-C
    # Worker pools cannot be shut down cleanly once their workers are gone (a dead worker may hold the pool's
    # queue lock), so with sub-processes the command ends here, as after SIGKILL, once they have all ended:
    # the output folder's lock is released by the kernel and the same command resumes.
    stop_descendants()
    print(f"{_prog[0]}: stopped by {signal.Signals(signum).name}; run the same command again to resume",
          file=sys.stderr, flush=True)
    os._exit(128 + signum)


def _default_in_child() -> None:
    if _stopping:  # forked while stopping (a pool replacing a worker): end at once
        os._exit(128 + _stopping[0])
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


def stop_on_signals(prog: str) -> None:
    """In the main thread of a command's main process: SIGTERM and SIGHUP stop the command (see above).
    A signal already ignored (`nohup`) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        return
    _prog[0] = prog
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) in (signal.SIG_DFL, _handler):
            signal.signal(signum, _handler)
    if not _at_fork:
        os.register_at_fork(after_in_child=_default_in_child)
        _at_fork.append(True)


_at_fork: list = []
