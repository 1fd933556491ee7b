import sys
from pathlib import Path

# The numpy references (modeling_reference.py) live beside the tests; this makes them
# importable under any pytest import mode.
sys.path.insert(0, str(Path(__file__).parent))
