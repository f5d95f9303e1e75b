"""One progress bar for every long step: widgets in JupyterLab, text elsewhere.

`tqdm.auto` draws a widget inside a Jupyter kernel. `salbench reproduce` runs its
kernels with ``SALBENCH_TEXT_PROGRESS=1`` so that the bars are text its status line
can show in the terminal (widgets would never reach it)."""

from __future__ import annotations

import os

TEXT_ENV = "SALBENCH_TEXT_PROGRESS"


def tqdm(*args, **kwargs):
    if os.environ.get(TEXT_ENV) == "1":
        from tqdm.std import tqdm as bar
    else:
        from tqdm.auto import tqdm as bar
    return bar(*args, **kwargs)
