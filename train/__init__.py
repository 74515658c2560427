"""train: tokenizer, token shards, GPT-2 with layer truncation, distillation, the training loop."""

from safe_output import UserError


class TrainError(UserError):
    """The one user-facing error of `python -m train`: bad data, a wrong teacher or tokenizer, a run that
    cannot continue. One line saying what to fix; exit code 2."""
