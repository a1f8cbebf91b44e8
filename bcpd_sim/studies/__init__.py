"""Studies of the paper's remaining claims: the student bound, binary super-classes, semi-supervised KD.

Each study has a flat config with presets (:mod:`.config`), a run function writing
``results.parquet`` and ``summary.json``, a summary recomputable from the parquet alone, and a plot.
"""
