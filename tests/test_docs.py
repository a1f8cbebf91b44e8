"""The documentation site builds with ``mkdocs build --strict`` (no warnings) and documents every
command and notebook."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bcpd_sim.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _markers() -> set[str]:
    text = "".join(p.read_text() for p in DOCS.rglob("*.md"))
    return set(re.findall(r"<!-- cli: ([a-z0-9_ -]*?) -->", text))


def _command_paths(parser, prefix=()):
    """Every command path of the CLI (``("cifar100", "eval")``, ...), walking the sub-parsers."""
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _command_paths(sub, (*prefix, name))


def test_every_command_and_notebook_is_documented():
    markers = _markers()
    paths = [" ".join(p) for p in _command_paths(build_parser())]
    assert "cifar100 eval" in paths and "figure1" in paths
    missing = [p for p in paths if p not in markers]
    assert not missing, f"commands without a docs section (<!-- cli: ... -->): {missing}"
    nav = (ROOT / "mkdocs.yml").read_text()
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        assert f"notebooks/{notebook.name}" in nav


def test_site_builds_strict_without_warnings(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_jupyter"):
        pytest.importorskip(module, reason="the docs extra (pip install -e '.[docs]') is missing")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env["NO_MKDOCS_2_WARNING"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stdout + proc.stderr
    site = tmp_path / "site"
    assert (site / "notebooks" / "02_figure1" / "index.html").is_file()
    assert "--teacher" in (site / "cifar100" / "index.html").read_text()
    assert "load_state_dict" in (site / "interop" / "index.html").read_text()
    api = (site / "api" / "vision_io" / "index.html").read_text()
    assert "convert_state_dict" in api and "save_checkpoint" in api
