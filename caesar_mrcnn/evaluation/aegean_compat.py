"""Run AegeanTools' ``aegean`` with the ``numpy.linalg.linalg`` alias that NumPy 2 removed.

caesar-mrcnn runs it as a script, ``python aegean_compat.py AEGEAN-ARGS...``, with the
interpreter of the aegean console script; it stands alone (no caesar-mrcnn import) so that any
interpreter with AegeanTools can run it. Its tests import :func:`linalg_alias`.

Why: AegeanTools 2.3.5 computes each fit's parameter errors by inverting its covariance matrix
(``fitting.covar_errors``) and, when the matrix is singular, means to fall back to cruder
errors in ``except (np.linalg.linalg.LinAlgError, ValueError)``. NumPy 2 dropped the
``numpy.linalg.linalg`` module, so evaluating that ``except`` clause raises ``AttributeError``
and aegean dies on the first island whose fit has a singular covariance matrix. Whether a
given fit's matrix comes out singular depends on floating-point details (the BLAS kernels of
the processor, the SciPy and lmfit versions), so one image may take that path on one machine
and not on the next.
The fits themselves are unaffected; only the error bars of those components fall back.

The alias is restored in this process only, as a module whose attribute access is counted;
when aegean returns the script prints ``caesar-mrcnn-compat: N`` on stderr, N being how many
times aegean reached that error path (once or twice per fit whose covariance matrix is singular).
"""

import contextlib
import sys
import types

import numpy


class _CountingAlias(types.ModuleType):
    """Stands in for ``numpy.linalg.linalg``; counts the lookups of ``LinAlgError``."""

    def __init__(self):
        super().__init__("numpy.linalg.linalg")
        self.uses = 0

    def __getattr__(self, name):
        # Only the except clause asks for LinAlgError; other lookups (module introspection by
        # warnings, astropy ...) are not aegean's error path and are not counted.
        if name == "LinAlgError":
            self.uses += 1
        return getattr(numpy.linalg, name)


@contextlib.contextmanager
def linalg_alias():
    """Restore ``numpy.linalg.linalg`` for the duration of the block when NumPy lacks it.

    Yields
    ------
    _CountingAlias or None
        The alias (its ``uses`` counts aegean's visits to the error path), or None when this
        NumPy still has the module and nothing was changed.
    """
    if hasattr(numpy.linalg, "linalg"):
        yield None
        return
    alias = _CountingAlias()
    numpy.linalg.linalg = alias
    try:
        yield alias
    finally:
        del numpy.linalg.linalg


def main():
    """Run aegean's own entry point with the alias in place; report its use on stderr."""
    from AegeanTools.CLI.aegean import main as aegean_main

    sys.argv = ["aegean", *sys.argv[1:]]
    with linalg_alias() as alias:
        try:
            return aegean_main()
        finally:
            if alias is not None:
                print(f"caesar-mrcnn-compat: {alias.uses}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
