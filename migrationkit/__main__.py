"""``python -m migrationkit`` is the ``migrationkit`` command."""

import sys

from migrationkit.cli import main

sys.exit(main())
