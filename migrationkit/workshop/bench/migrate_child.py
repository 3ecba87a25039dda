"""``python -m migrationkit.workshop.bench.migrate_child MAPPING.toml``: one ``migrate()``.

The nested benchmark's memory check runs this in a fresh process so that nothing
else the benchmark holds inflates the figure. Settings come from the
``MIGRATIONKIT_*`` environment; the mapping is the one ``[mappings.*]`` table of
the TOML file. Prints the migration report as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from migrationkit._mapping.toml import mappings_from_toml
from migrationkit._run.migration import migrate
from migrationkit._settings.settings import Settings


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m migrationkit.workshop.bench.migrate_child MAPPING.toml")
        return 2
    (mapping,) = mappings_from_toml(Path(argv[0]).read_text()).values()
    report = asyncio.run(migrate(Settings(), mapping=mapping))
    print(json.dumps(report.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
