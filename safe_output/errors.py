"""Three kinds of failure, three ways to end:

- `UserError` (a bad path, option or input file): one line saying what to fix, exit 2;
- `StageFailed` (a pipeline stage or sub-command failed): one line naming the log to read, exit 1;
- anything else is a bug: Python's traceback, exit 1 (never disguised as a usage error);
- Ctrl-C, SIGTERM, SIGHUP (`safe_output.signals`): one line saying the same command resumes, exit 130, 143, 129.

Each package has one subclass of `UserError` (`CorpusError`, `TrainError`, `EvalError`).
"""
from __future__ import annotations

import sys
from typing import Callable


class UserError(Exception):
    """A mistake the user can fix: the message names the file or option and the fix."""


class StageFailed(Exception):
    """A stage or sub-command failed: the message names its log."""


def run_cli(prog: str, command: Callable[[], int | None]) -> int:
    """Run a command-line entry point; returns its exit code."""
    from safe_output.signals import Terminated, stop_on_signals

    stop_on_signals(prog)
    try:
        return command() or 0
    except UserError as e:
        print(f"{prog}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except StageFailed as e:
        print(f"{prog}: failed: {one_line(e)}", file=sys.stderr)
        return 1
    except Terminated as e:
        print(f"{prog}: stopped by {e}; run the same command again to resume", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def one_line(e: Exception) -> str:
    return " ".join(str(e).split())
