"""``python -m migrationkit.bench``: the ``bench`` command on its own."""

from migrationkit.bench.cli import main

main()
