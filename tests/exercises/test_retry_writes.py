"""Exercise 5 (retry writes): the solution passes, the stub and common mistakes get their hints.

Every check here meets real faults on the session's real PostgreSQL (see the check
module); the last tests run the exercise's notebook end to end in a real kernel.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from migrationkit.workshop.exercises import retry_writes
from migrationkit.workshop.exercises.feedback import Feedback, Hint
from migrationkit.workshop.exercises.learner import load
from tests.exercises.conftest import EXERCISES, SOLUTIONS

pytestmark = pytest.mark.integration

NOTEBOOK = EXERCISES / "ex5_retry_writes.ipynb"

LEARNER = """
import asyncio

import asyncpg

TRANSIENT = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    OSError,
)


async def write_with_retry(connect, write, *, attempts=5, first_delay_s=0.05, sleep=asyncio.sleep):
{body}
"""

#: The solution's loop, with ``{catch}``, ``{close}``, ``{last}`` and ``{wait}`` to vary.
LOOP = """
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            connection = await connect()
            try:
                return await write(connection)
            finally:
{close}
        except {catch}:
{last}
{wait}
"""
RIGHT = {
    "catch": "TRANSIENT",
    "close": "await connection.close()",
    "last": "if attempt == attempts:\n    raise",
    "wait": "await sleep(delay)\ndelay *= 2",
}
INDENT = {"catch": 0, "close": 16, "last": 12, "wait": 12}


def loop(**changes: str) -> str:
    """The solution's loop with some parts changed (written without their indent)."""
    parts = RIGHT | changes
    return LOOP.format(**{k: textwrap.indent(v, " " * INDENT[k]) for k, v in parts.items()})


async def check_in(folder: Path) -> Feedback:
    """What ``exercises.check("retry_writes", directory=folder)`` answers, once registered."""
    try:
        return await retry_writes.check(load("retry_writes", folder))
    except Hint as problem:
        return Feedback(retry_writes.TITLE, failed=("find your code", problem))


async def test_the_solution_passes_every_step() -> None:
    feedback = await check_in(SOLUTIONS)
    assert feedback.ok, str(feedback)
    seen = dict(feedback.passed)
    assert (
        "landed all 100 rows exactly once"
        in seen["rides out a connection killed in the middle of a write"]
    )
    assert "0.20 s, 0.40 s, 0.80 s, 1.60 s" in seen["waits longer after each failure"]
    assert "NumericValueOutOfRangeError" in seen["raises a data error at once, without retrying"]
    assert (
        "2,000 users copied into PostgreSQL" in seen["keeps a real migration going through a fault"]
    )


async def test_the_untouched_stub_fails_with_the_stub_hint() -> None:
    feedback = await check_in(EXERCISES)
    assert not feedback.ok
    assert feedback.hint == retry_writes.STUB_HINT
    assert "write_with_retry() is not written yet" in str(feedback)


NO_RETRY = """
    connection = await connect()
    try:
        return await write(connection)
    finally:
        await connection.close()
"""
NO_RECONNECT = """
    connection = await connect()
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            return await write(connection)
        except TRANSIENT:
            if attempt == attempts:
                raise
            await sleep(delay)
            delay *= 2
"""
NEVER_GIVES_UP = """
    delay = first_delay_s
    while True:
        try:
            connection = await connect()
            try:
                return await write(connection)
            finally:
                await connection.close()
        except TRANSIENT:
            await sleep(delay)
            delay *= 2
"""
DOUBLES = """
    result = None
    for attempt in range(attempts):
        try:
            connection = await connect()
            try:
                result = await write(connection)
            finally:
                await connection.close()
        except TRANSIENT:
            await sleep(first_delay_s * 2**attempt)
    return result
"""
CONNECT_OUTSIDE_TRY = """
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        connection = await connect()
        try:
            return await write(connection)
        except TRANSIENT:
            if attempt == attempts:
                raise
            await sleep(delay)
            delay *= 2
        finally:
            await connection.close()
"""


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (NO_RETRY, retry_writes.NO_RETRY),
        (NO_RECONNECT, retry_writes.NO_RECONNECT),
        (loop(close="pass"), retry_writes.LEAKED),
        (DOUBLES, retry_writes.DOUBLED),
        (NEVER_GIVES_UP, retry_writes.NEVER_GIVES_UP),
        (loop(last="pass") + "    return None\n", retry_writes.SWALLOWED_LAST),
        (
            loop(last="if attempt == attempts:\n    raise RuntimeError('gave up')"),
            retry_writes.RERAISE,
        ),
        (CONNECT_OUTSIDE_TRY, retry_writes.CONNECT_OUTSIDE_TRY),
        (loop(wait="pass"), retry_writes.NO_WAITS),
        (loop(wait="await sleep(first_delay_s)"), "waited 0.2 s every time"),
        (loop(wait="await sleep(delay)\ndelay += 0.01"), retry_writes.GROWING),
        (loop(catch="Exception"), retry_writes.RETRIED_DATA),
        (loop().replace("await write(", "write("), "`return await write(connection)`"),
        (loop().replace("await connect()", "connect()"), "`connection = await connect()`"),
    ],
    ids=[
        "no-retry",
        "no-reconnect",
        "leaks-connections",
        "doubles-rows",
        "never-gives-up",
        "swallows-the-last-error",
        "hides-the-last-error",
        "connect-outside-try",
        "no-waits",
        "constant-delay",
        "barely-growing-delay",
        "retries-everything",
        "write-not-awaited",
        "connect-not-awaited",
    ],
)
async def test_a_common_mistake_gets_its_own_hint(
    body: str, hint: str, variant: Callable[[str, str], Path]
) -> None:
    feedback = await check_in(variant("retry_writes", LEARNER.format(body=body)))
    assert not feedback.ok
    assert hint in feedback.hint, str(feedback)


async def test_waiting_after_the_last_attempt_is_named(variant: Callable[[str, str], Path]) -> None:
    last = "await sleep(delay)\nif attempt == attempts:\n    raise"
    body = loop(last=last, wait="delay *= 2")
    feedback = await check_in(variant("retry_writes", LEARNER.format(body=body)))
    assert "No need to wait after the last attempt" in feedback.hint, str(feedback)


async def test_jitter_passes(variant: Callable[[str, str], Path]) -> None:
    wait = "await sleep(random.uniform(delay / 2, delay))\ndelay *= 2"
    source = "import random\n" + LEARNER.format(body=loop(wait=wait))
    feedback = await check_in(variant("retry_writes", source))
    assert feedback.ok, str(feedback)


async def test_a_missing_function_is_named(variant: Callable[[str, str], Path]) -> None:
    feedback = await check_in(variant("retry_writes", "x = 1\n"))
    assert "has no function write_with_retry" in str(feedback)


# -- the notebook, end to end -----------------------------------------------------------
