"""``python -m migrationkit`` is the ``migrationkit`` command."""

import sys

from migrationkit._cli.main import main

sys.exit(main())
