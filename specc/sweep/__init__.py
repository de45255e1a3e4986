"""`specc sweep`: a sweep block of a spec run as a hyperparameter search on Ray Tune.

Why Ray Tune rather than a loop of our own: it already runs trials in
parallel on one machine or a cluster, stops poor trials early (ASHA), plugs
in search algorithms (Optuna), and saves the search so it can be resumed.
specc supplies what is specific to it: the search space from the sweep
block (`space`), a trial that is an ordinary training run reporting each
epoch's held-out metrics (`trial`), the tables and the summary
(`report`), and starting or joining Ray (`runner`).

Ray and Optuna are the optional extra `specc[sweep]`; nothing here imports
them until a sweep runs, so `specc check` validates sweep blocks without them.
"""

from __future__ import annotations

import importlib

#: What `specc sweep` says, in one line, when the extra is not installed.
INSTALL_HINT = "specc sweep needs Ray Tune; install it with: pip install 'specc[sweep]'"


def missing_extra(search: str = "random") -> str | None:
    """The line to print when what this sweep needs is not installed, else None.

    Imports rather than looks up, so a broken or partial install counts as missing."""
    try:
        importlib.import_module("ray.tune")
    except ImportError:
        return INSTALL_HINT
    if search == "optuna":
        try:
            importlib.import_module("optuna")
        except ImportError:
            return "search = optuna needs Optuna; install it with: pip install 'specc[sweep]'"
    return None
