import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the build engine and the runtime package, straight from the checkout, for the unit tests
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
