"""CLI sub-commands, one module each (see :mod:`bcpd_sim.cli`)."""
