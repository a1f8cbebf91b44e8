"""MkDocs hooks: add the repository's notebooks and figures to the site, and expand
``<!-- cli: cifar100 eval -->`` markers into that command's ``--help`` text.

The notebooks keep their committed outputs; mkdocs-jupyter renders them without executing.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
_CLI = re.compile(r"<!-- cli: ([a-z0-9_ -]*?) -->")


@event_priority(100)  # before mkdocs-jupyter picks up the notebooks
def on_files(files: Files, config) -> Files:
    for folder, pattern in (("notebooks", "*.ipynb"), ("figures", "*.png")):
        for path in sorted((ROOT / folder).glob(pattern)):
            # a plain File rooted at the repository (its src_uri is also its place on the site),
            # so mkdocs-jupyter's wrapper finds the source path
            files.append(
                File(
                    f"{folder}/{path.name}",
                    src_dir=str(ROOT),
                    dest_dir=config.site_dir,
                    use_directory_urls=config.use_directory_urls,
                )
            )
    return files


def help_text(words: list[str]) -> str:
    """The ``--help`` text of ``bcpd-sim WORDS...`` at a fixed width."""
    import os

    from bcpd_sim.cli import build_parser

    os.environ["COLUMNS"] = "100"
    parser = build_parser()
    for word in words:
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = sub.choices[word]
    return parser.format_help()


def on_page_markdown(markdown: str, page, config, files) -> str:
    def expand(match: re.Match) -> str:
        words = match.group(1).split()
        return f"```text\n$ bcpd-sim {' '.join(words)} --help\n{help_text(words).rstrip()}\n```"

    return _CLI.sub(expand, markdown)
