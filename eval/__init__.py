"""eval: perplexity, GLUE fine-tuning, the cleaning ablation and the compression comparison."""
from safe_output import UserError


class EvalError(UserError):
    """The one user-facing error of `python -m eval`: a missing model or data file, a bad option.
    One line saying what to fix; exit code 2."""
