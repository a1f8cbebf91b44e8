"""The ``bcpd-sim`` command line.

Each sub-command is a module in :mod:`bcpd_sim.commands` that defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; they are discovered, not listed here.
Bad input (``ValueError``, a missing file) becomes one line on stderr and exit code 2; an
operating-system error (permission denied, read-only or full disk) one line naming the path and the
cause, exit code 1; a run directory locked by another process, exit code 75.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import pkgutil
import sys
from types import ModuleType

from . import __version__
from .rundir import RunDirBusy


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def discover(package: str) -> list[ModuleType]:
    """Import every command module in ``package``, sorted by command name."""
    pkg = importlib.import_module(package)
    modules = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            modules.append(module)
    return sorted(modules, key=lambda m: m.NAME)


def add_commands(subparsers, package: str) -> None:
    """Register every command module of ``package`` on an argparse sub-parser set."""
    for module in discover(package):
        parser = subparsers.add_parser(
            module.NAME,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        module.add_arguments(parser)
        parser.set_defaults(_run=module.run)


def add_command_group(parser: argparse.ArgumentParser, package: str, title: str) -> None:
    """Make ``parser`` a group command whose sub-commands are the command modules of ``package``
    (the group's ``run`` is :func:`run_group`)."""
    parser.set_defaults(_group_parser=parser)
    sub = parser.add_subparsers(title=title, metavar="COMMAND", parser_class=OneLineArgumentParser)
    add_commands(sub, package)


def run_group(args: argparse.Namespace) -> int:
    """A group command's ``run``, reached only when no sub-command was given: its help, exit 2."""
    args._group_parser.print_help()
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="bcpd-sim",
        description="Knowledge distillation and the Bayes conditional probability density (BCPD).",
    )
    parser.add_argument("--version", action="version", version=f"bcpd-sim {__version__}")
    subparsers = parser.add_subparsers(
        title="commands", metavar="COMMAND", parser_class=OneLineArgumentParser
    )
    add_commands(subparsers, "bcpd_sim.commands")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("bcpd-sim: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except ValueError as exc:
        print(f"bcpd-sim: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except RunDirBusy as exc:
        print(f"bcpd-sim: error: {exc}", file=sys.stderr)
        return 75  # EX_TEMPFAIL: try again later
    except MemoryError:
        print(
            "bcpd-sim: error: out of memory; reduce the sizes (samples, members, widths, batch) "
            "and rerun the same command to resume",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        bad_input = isinstance(exc, (FileNotFoundError, FileExistsError, NotADirectoryError))
        text = describe_os_error(exc) if exc.errno is not None else _one_line(exc)
        print(f"bcpd-sim: error: {text}", file=sys.stderr)
        return 2 if bad_input else 1


#: What to do about an operating-system error, by errno.
_ADVICE = {
    errno.ENOSPC: "free some space and rerun the same command to resume",
    errno.EDQUOT: "free some space and rerun the same command to resume",
    errno.EACCES: "fix the permissions or choose another path",
    errno.EPERM: "fix the permissions or choose another path",
    errno.EROFS: "the file system is read-only; choose another --out",
}


def describe_os_error(exc: OSError) -> str:
    """One line naming the path, the cause and what to do (no traceback)."""
    where = exc.filename if exc.filename is not None else "(no path)"
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    cause = exc.strerror or str(exc)
    advice = _ADVICE.get(exc.errno)
    return f"{where}: {cause}" + (f"; {advice}" if advice else "")


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    return " ".join(text.split()) if "\n" in text else text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
