"""The documentation site builds with ``mkdocs build --strict`` (no warnings) and documents every
command and notebook."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bcpd_sim.cli import discover

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _markers() -> set[str]:
    text = "".join(p.read_text() for p in DOCS.rglob("*.md"))
    return set(re.findall(r"<!-- cli: ([a-z0-9_ -]*?) -->", text))


def test_every_command_and_notebook_is_documented():
    markers = _markers()
    for module in discover("bcpd_sim.commands"):
        assert module.NAME in markers, f"bcpd-sim {module.NAME} has no docs page section"
    for module in discover("bcpd_sim.vision.commands"):
        assert f"cifar100 {module.NAME}" in markers, f"cifar100 {module.NAME} is undocumented"
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
