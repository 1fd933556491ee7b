"""The ``caesar-mrcnn`` command: parse arguments, call library functions, report errors.

No logic lives here. Each subcommand has an ``_add_<name>`` function that declares its
arguments and a ``_run_<name>`` function that imports the library lazily (TensorFlow takes
seconds to import; ``caesar-mrcnn --help`` should not) and calls it. A :class:`CaesarError`
becomes one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from caesar_mrcnn import __version__
from caesar_mrcnn.errors import CaesarError
from ssl_backbones.errors import BackboneError

PROG = "caesar-mrcnn"


def _add_common_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="YAML", help="configuration file (YAML)")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override a configuration option, e.g. --set train.lr=0.01 (repeatable)")


# ---------------------------------------------------------------------------------------------
# Subcommands. Each: _add_<name>(subparsers) and _run_<name>(args) -> int.
# ---------------------------------------------------------------------------------------------

# -- end of subcommands --




def _register() -> list:
    """All (name, add_function) pairs, in the order shown by --help."""
    table = []
    for name in ("simulate", "inspect", "make_cutouts", "pretrain", "backbones", "ssl_eval",
                 "train", "infer", "evaluate", "compare"):
        add = globals().get(f"_add_{name}")
        if add is not None:
            table.append((name.replace("_", "-"), add))
    return table


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``caesar-mrcnn`` with all subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Detect and segment radio sources in continuum FITS images with a "
                    "self-supervised Mask R-CNN.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, add in _register():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (CaesarError, BackboneError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no partial output was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
