"""When does an MSE teacher help? A regime map with exact p*.

``bcpd-sim regimes`` trains CE, MSE and other teachers over two chosen axes (each loss at its
validation-tuned lr and at a shared lr), distils students on the teachers' own training inputs and
on fresh inputs, and maps the paired student gain of MSE over CE teachers with intervals across
seeds and across draws of the data. Modules: :mod:`.config` (presets, validation), :mod:`.world`
(mixture and splits), :mod:`.teachers`, :mod:`.students`, :mod:`.study` (cells, resume),
:mod:`.summary` (across-draw estimates from :mod:`bcpd_sim.figure1.stats`), :mod:`.plot`, :mod:`.report`.
"""

from .config import RegimesConfig, load_config
from .report import render
from .study import load_run, run_regimes

__all__ = ["RegimesConfig", "load_config", "load_run", "render", "run_regimes"]
