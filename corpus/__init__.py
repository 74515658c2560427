"""corpus: raw documents -> clean, deduplicated, sharded Arrow (no torch, no train/eval imports)."""

from safe_output import UserError


class CorpusError(UserError):
    """The one user-facing error of `corpus-clean` and the demo-corpus builder: a missing input, a bad
    setting, an unusable folder. One line saying what to fix; exit code 2."""
