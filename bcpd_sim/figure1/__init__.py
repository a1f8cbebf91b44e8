"""Figure 1 done properly: student accuracy against the teacher's distance to the BCPD.

``load_config(preset, file=..., overrides=[...])`` -> ``run_figure1(cfg, out)`` -> ``render(out)``.
"""

from .config import TEACHER_LOSSES, Figure1Config, list_presets, load_config
from .report import render
from .study import load_run, run_figure1
from .summary import summarise

__all__ = [
    "Figure1Config",
    "TEACHER_LOSSES",
    "list_presets",
    "load_config",
    "load_run",
    "render",
    "run_figure1",
    "summarise",
]
