"""The analysis stages, one module each: profile in, tidy tables and figures out.

The only place that joins data, models, saliency, metrics and stats; notebooks call
one function here per figure or table.

* `selection`: which holdout images each analysis explains and scores.
* `models`: the model set and its variants (trained runs, randomized layers, cascades),
  `predict_fn` for perturbation metrics.
* `maps`: the cached saliency maps of a variant, and the resources of methods.
* `training`: the accuracy table and learning curves (notebook 02).
* `localization`: ground-truth scores, baselines, statistics (notebook 04).
* `fidelity`: perturbation metrics, their reliability and validity (notebook 05).
* `trust`: cascading randomization, repeatability and reproducibility (notebook 06).
* `results`: the cache of a notebook's scores and statistics (a rerun recomputes nothing).

Nothing here switches TensorFlow's execution mode: the analysis notebooks call
`salbench.saliency.use_graph_mode()` first.
"""

from salbench.pipeline import (  # noqa: F401
    fidelity,
    localization,
    maps,
    models,
    results,
    selection,
    training,
    trust,
)
