"""eval: the metrics (perplexity, GLUE fine-tuning, knowledge distillation, evaluation data) as a library, and
the studies built on them in `eval.studies`."""

from safe_output import UserError


class EvalError(UserError):
    """The one user-facing error of `python -m eval`: a missing model or data file, a bad option.
    One line saying what to fix; exit code 2."""
