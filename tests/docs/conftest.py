import json
import subprocess
import sys

import pytest

from tests.docs.doc_names import ROOT


@pytest.fixture(scope="session")
def register() -> dict:
    """config.env's register as `make docs` sees it: read in a process of its own, with an empty environment."""
    out = subprocess.run(
        [sys.executable, "scripts/docs_generate.py", "--settings-json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)
