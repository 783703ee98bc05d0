"""Experiments: a design of plant-model parameters x replications, run on Dask distributed
(``mestwin twin experiment``); results with Student-t confidence intervals as JSON, CSV and
an HTML page. ``design`` reads and validates the design, ``run`` runs it (or one cell
alone, in process, bit for bit the same), ``report`` writes the results."""
