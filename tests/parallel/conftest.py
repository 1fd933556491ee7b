"""Make the helper module of the multi-rank tests (hvdjob.py, beside this file) importable.

The suite runs with ``--import-mode=importlib``, which does not put test folders on
``sys.path``; the tests here share launch helpers, so this folder is added once.
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
