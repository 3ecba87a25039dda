"""``reset_workshop``'s defaults and which names it treats as the workshop's."""

from __future__ import annotations

import inspect

import pytest

from migrationkit.workshop.reset import is_workshop_name, reset_workshop


def test_reset_seeds_a_hundred_thousand_users_with_seed_0_by_default() -> None:
    parameters = inspect.signature(reset_workshop).parameters
    assert (parameters["count"].default, parameters["seed"].default) == (100_000, 0)


@pytest.mark.parametrize(
    ("name", "dropped"),
    [
        ("users", True),
        ("bench_users", True),
        ("users_rejected", True),
        ("nb2_users_rejected", True),
        ("superusers", False),
        ("users2", False),
        ("bench_original", False),
        ("nb09_customers", True),
        ("nb08_jsonb_orders__items", True),
        ("nb_notes", False),
    ],
)
def test_workshop_names_are_those_with_users_as_a_whole_word(name: str, dropped: bool) -> None:
    assert is_workshop_name(name, "users") is dropped
