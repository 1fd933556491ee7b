"""Run AegeanTools' ``aegean`` with the ``numpy.linalg.linalg`` alias that NumPy 2 removed.

Run as a script, never imported by caesar-mrcnn: ``python aegean_compat.py AEGEAN-ARGS...``.
It stands alone (no caesar-mrcnn import) so that any interpreter with AegeanTools can run it.

Why: AegeanTools 2.3.5 computes each fit's parameter errors by inverting its covariance matrix
(``fitting.covar_errors``) and, when the matrix is singular, means to fall back to cruder
errors in ``except (np.linalg.linalg.LinAlgError, ValueError)``. NumPy 2 dropped the
``numpy.linalg.linalg`` module, so evaluating that ``except`` clause raises ``AttributeError``
and aegean dies on the first island whose fit has a singular covariance matrix (e.g. on the
LoTSS-DR1 P205+55 cutout).
The fits themselves are unaffected; only the error bars of those components fall back.

The alias is restored in this process only, as a module whose attribute access is counted;
at exit the script prints ``caesar-mrcnn-compat: N`` on stderr, N being how many times aegean
reached that error path (once or twice per fit whose covariance matrix is singular).
"""

import atexit
import sys
import types

import numpy

_uses = [0]


def _alias_getattr(name):
    # Only the except clause asks for LinAlgError; other lookups (module introspection by
    # warnings, astropy ...) are not aegean's error path and are not counted.
    if name == "LinAlgError":
        _uses[0] += 1
    return getattr(numpy.linalg, name)


def _report():
    print(f"caesar-mrcnn-compat: {_uses[0]}", file=sys.stderr)


def main():
    """Install the alias when NumPy lacks it, then run aegean's own entry point."""
    if not hasattr(numpy.linalg, "linalg"):
        alias = types.ModuleType("numpy.linalg.linalg")
        alias.__getattr__ = _alias_getattr  # PEP 562: module-level __getattr__
        numpy.linalg.linalg = alias
        atexit.register(_report)
    from AegeanTools.CLI.aegean import main as aegean_main

    sys.argv = ["aegean", *sys.argv[1:]]
    return aegean_main()


if __name__ == "__main__":
    sys.exit(main())
