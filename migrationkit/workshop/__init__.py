"""The workshop: lessons, exercises, widgets, plots, the benchmark and fake users.

It uses the engine as any user would; the engine (the private ``migrationkit._*``
packages) never imports it. ``lessons``, ``exercises``, ``plots``, ``widgets`` and
``bench`` are its subpackages and modules; the names below are the ones the notebooks
and the command line use most.
"""

from migrationkit.workshop.reset import reset_workshop, reset_workshop_async
from migrationkit.workshop.seeding import UserFactory, seed_users

__all__ = ["UserFactory", "reset_workshop", "reset_workshop_async", "seed_users"]
