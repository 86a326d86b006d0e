"""The application: the ``nnunet-pruning`` commands and what they write.

``cli`` (argument parsing, one-line errors), ``count``, ``compare`` and ``report`` (side-by-side tables,
CSV, JSON, plots), ``timing`` (nnU-Net's predictor, timed), ``demo`` and ``workspace`` (the stock commands
in subprocesses), ``synthetic`` (generated datasets), ``plots`` and ``machine`` (other processes' CPU load).
"""

__all__: list[str] = []
