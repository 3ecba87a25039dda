"""``python -m migrationkit.workshop.bench``: the same as ``migrationkit bench``."""

import sys

from migrationkit._cli.main import main

sys.exit(main(["bench", *sys.argv[1:]]))
