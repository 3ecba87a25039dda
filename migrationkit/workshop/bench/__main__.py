"""``python -m migrationkit.workshop.bench``: the ``bench`` command on its own."""

from migrationkit.workshop.bench.cli import main

main()
