"""What every command of this toolkit does the same way with its output folder and its errors.

- `use_output` (every command, around its whole run): it writes only into a folder it created (marked
  as its own) or an empty one (`claim_output`), and holds the folder's lock: one run per output at a
  time (`output_lock`);
- `reuse_or_replace`, `replace_own`: it replaces only its own earlier output, and only when the user asks
  (--overwrite);
- `atomic_write`, `atomic_json`, `atomic_file`, `atomic_folder`, `atomic_contents`: a file another step
  reads as "finished" appears whole or not at all (written beside, fsynced, renamed);
- `UserError`, `StageFailed`, `run_cli`: a user mistake is one line and exit 2, a failed stage one line
  naming its log and exit 1, a bug a traceback.

No dependencies beyond the standard library: `corpus` (no torch), `train` and `eval` all import it.
"""

from safe_output.atomic import atomic_contents, atomic_file, atomic_folder, atomic_json, atomic_write
from safe_output.errors import StageFailed, UserError, run_cli
from safe_output.folder import MARKER, claim_output, owner_of, replace_own, reuse_or_replace, use_output
from safe_output.lock import output_lock

__all__ = [
    "atomic_contents",
    "atomic_file",
    "atomic_folder",
    "atomic_json",
    "atomic_write",
    "StageFailed",
    "UserError",
    "run_cli",
    "MARKER",
    "claim_output",
    "owner_of",
    "replace_own",
    "reuse_or_replace",
    "use_output",
    "output_lock",
]
