"""Set-up for the whole test run: ``tests/`` and the notebooks (which nbval runs).

The notebooks find the embedded servers through ``MIGRATIONKIT_HOME``. Unless the
caller chose one (CI does), a run gets a fresh home and stops its servers at the
end, so running the tests never touches a learner's ``~/.migrationkit``. Notebooks
run at a small size here (``MIGRATIONKIT_NOTEBOOK_ROWS``); their stored outputs come
from a full-size run, and every cell whose output depends on the size is ignored.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_OWN_HOME = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("MIGRATIONKIT_NOTEBOOK_ROWS", "5000")
    if "MIGRATIONKIT_HOME" not in os.environ:
        home = Path(tempfile.mkdtemp(prefix="mk-pytest-", dir="/tmp"))
        os.environ["MIGRATIONKIT_HOME"] = str(home)
        config.stash[_OWN_HOME] = home


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_OWN_HOME, None)
    if home is None:
        return
    from migrationkit._servers.embedded import EmbeddedServers

    EmbeddedServers(home).stop()
    shutil.rmtree(home, ignore_errors=True)
