"""Lessons 06 and 07 on the real servers: dealing, the pagers, one query's cost, the grid."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from migrationkit import Endpoints, Settings
from migrationkit.workshop import lessons as L
from migrationkit.workshop.exercises import keyset_pager
from migrationkit.workshop.lessons import dealing as D
from migrationkit.workshop.lessons import overlap as O
from migrationkit.workshop.lessons import paging as P
from migrationkit.workshop.lessons import showdown as S

pytestmark = pytest.mark.integration

USERS, PAGE = 300, 40  # not a multiple: the last page is a short one


@pytest.fixture
def lab(make_settings: Callable[..., Settings], servers: Endpoints) -> L.Lab:
    return L.Lab(make_settings(), servers)


@pytest.fixture
def small(make_settings: Callable[..., Settings], servers: Endpoints) -> L.Lab:
    settings = make_settings()
    quarter = f"{settings.mongo_collection}_quarter"  # a collection of its own
    return L.Lab(settings.model_copy(update={"mongo_collection": quarter}), servers)


@pytest.fixture
def servers_in_environment(servers: Endpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where exercise checks find the servers, as on a learner's machine."""
    monkeypatch.setenv("MIGRATIONKIT_MONGO_URI", servers.mongo_uri)
    monkeypatch.setenv("MIGRATIONKIT_PG_DSN", servers.pg_dsn)


async def test_round_robin_code_deals_every_worker_its_turn_and_copies_every_user(
    lab: L.Lab,
) -> None:
    await lab.seed(USERS)
    table = f"{lab.settings.pg_table}_dealt"
    await O.empty_users_table(lab.endpoints.pg_dsn, table)
    dealt = await D.copy_round_robin(
        lab.endpoints.mongo_uri,
        lab.endpoints.pg_dsn,
        database=lab.settings.mongo_database,
        collection=lab.settings.mongo_collection,
        table=table,
        workers=3,
        batch_size=50,
    )
    assert dealt == [2, 2, 2]  # 6 batches of 50, dealt 0, 1, 2, 0, 1, 2
    assert await O.count_rows(lab.endpoints.pg_dsn, table) == USERS


@pytest.mark.parametrize("name", list(P.PAGERS))
async def test_every_pager_reads_every_user_once_in_id_order(lab: L.Lab, name: str) -> None:
    await lab.seed(USERS)
    async with P.lab_collection(lab) as collection:
        ids = [user["_id"] async for page in P.PAGERS[name](collection, PAGE) for user in page]
        stored = [user["_id"] for user in await collection.find({}, ["_id"]).to_list(None)]
    assert ids == sorted(stored)


@pytest.mark.usefixtures("servers_in_environment")
async def test_the_lesson_keyset_pager_passes_exercise_2_check() -> None:
    feedback = await keyset_pager.check(P)  # the module has keyset_pages, as a learner's file
    assert feedback.ok, str(feedback)


async def test_paged_reads_time_every_page_of_every_pager_in_rounds(lab: L.Lab) -> None:
    await lab.seed(USERS)
    reads = await P.paged_reads(lab, page_size=PAGE, repeats=2)
    assert [spread.label for spread in reads] == list(P.PAGERS)
    for spread in reads:
        assert len(spread.runs) == 2
        assert all(run.rows == USERS for run in spread.runs)
        pages = spread.runs[0].extra["page_s"]
        assert len(pages) == -(-USERS // PAGE)  # 8 pages, the last one short
        assert spread.runs[0].seconds == pytest.approx(sum(pages))


async def test_query_costs_ask_for_what_each_label_says_and_keep_the_plan(
    lab: L.Lab, small: L.Lab
) -> None:
    await lab.seed(USERS)
    await small.seed(USERS // 4)
    costs = P.by_key(await P.query_costs(lab, small, page_size=PAGE, repeats=1))
    returned = {key: int(spread.params["returned"]) for key, spread in costs.items()}
    assert returned == {
        "one": 1,
        "one_small": 1,
        "page": PAGE,
        "skip_last": PAGE,
        "keyset_first": PAGE,
        "keyset_last": PAGE,
        "keyset_last_hinted": PAGE,
        "all": USERS,
    }
    assert costs["one_small"].params["rows"] == USERS // 4
    assert all(spread.params["plan"] != "unknown" for spread in costs.values())
    assert f"In a collection of {USERS // 4:,} users, 1 user took" in P.query_note(
        list(costs.values())
    )


async def test_dispatch_runs_keep_a_report_for_every_setting_and_round() -> None:
    base = L.Choice(workers=2, rows=400, batch_size=50)
    spreads = await D.dispatch_runs(
        base, scenarios=("uniform", "slow worker"), dispatchers=("round-robin", "least-loaded"),
        repeats=2,
    )  # fmt: skip
    assert [(s.params["scenario"], s.params["dispatch"]) for s in spreads] == [
        ("uniform", "round-robin"),
        ("uniform", "least-loaded"),
        ("slow worker", "round-robin"),
        ("slow worker", "least-loaded"),
    ]
    assert all(len(s.runs) == 2 and s.median_run.report is not None for s in spreads)
    robin = next(s for s in spreads if s.label == "round-robin, slow worker")
    assert D.rows_per_worker(robin) == [200, 200]


async def test_the_grid_migrates_every_setting_in_rounds_and_times_it_by_its_report(
    lab: L.Lab,
) -> None:
    await lab.seed(USERS)
    spreads = await S.grid(
        lab, backends=("asyncio", "threading"), writers=("copy", "insert"), batch_size=50,
        repeats=2,
    )  # fmt: skip
    assert [s.label for s in spreads] == [
        "asyncio/copy",
        "asyncio/insert",
        "threading/copy",
        "threading/insert",
    ]
    for spread in spreads:
        assert all(run.rows == USERS for run in spread.runs)
        for run in spread.runs:
            assert run.report is not None
            assert run.seconds == run.report.elapsed_s
            assert 0 <= run.extra["overhead_s"] <= run.seconds
    read = await O.read_alone(lab, repeats=1)
    assert S.limit_of(spreads[0], read=read) in S.SHORT
