"""Inference on a generated customers collection, stored in and read back from the real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from migrationkit import Endpoints, MongoConnectionHandler
from migrationkit._mapping.infer import Inference, infer_mapping
from migrationkit._mapping.normalize import normalize
from migrationkit._mapping.spec import Column
from migrationkit._mapping.toml import mappings_from_toml
from migrationkit._mapping.types import MAPPING_BSON_OPTIONS
from migrationkit.workshop.samples import CustomerFactory

pytestmark = pytest.mark.integration

CUSTOMERS = 600


@pytest.fixture(scope="module")
async def customers(servers: Endpoints) -> AsyncIterator[list[dict[str, Any]]]:
    """The generated customers as the server gives them back (every document)."""
    async with MongoConnectionHandler(servers.mongo_uri) as client:
        collection = client["migrationkit_infer"].get_collection(
            "customers", codec_options=MAPPING_BSON_OPTIONS
        )
        await collection.drop()
        await collection.insert_many(list(CustomerFactory(seed=13).customers(CUSTOMERS)))
        yield [document async for document in collection.find()]
        await collection.drop()


def infer(documents: list[dict[str, Any]], **options: Any) -> Inference:
    return infer_mapping(
        documents,
        collection="customers",
        table="customers",
        sampled=options.pop("sampled", None),
        total=options.pop("total", CUSTOMERS),
        **options,
    )


def columns(inference: Inference) -> dict[str, Column]:
    return {c.path: c for c in inference.mapping.columns}


def warnings_of(inference: Inference, path: str) -> tuple[str, ...]:
    (line,) = [f for f in inference.report.fields if f.path == path]
    return line.warnings


async def test_scalars_read_back_from_the_server_become_typed_columns(
    customers: list[dict[str, Any]],
) -> None:
    found = {path: (c.pg_type, c.nullable) for path, c in columns(infer(customers)).items()}
    assert found["name"] == ("text", False)
    assert found["birthdate"] == ("timestamptz", False)
    assert found["balance"] == ("numeric", False)
    assert found["active"] == ("boolean", False)
    assert found["referrer"] == ("text", True)


async def test_birthdates_before_1970_come_back_as_dates(customers: list[dict[str, Any]]) -> None:
    assert any(c["birthdate"].year < 1970 for c in customers)
    assert columns(infer(customers))["birthdate"].bson_types == ("date",)


async def test_the_id_keyed_tier_map_is_one_jsonb_column_with_a_warning(
    customers: list[dict[str, Any]],
) -> None:
    inference = infer(customers, nested="child")
    assert columns(inference)["tier_and_details"].pg_type == "jsonb"
    assert not [c for c in inference.mapping.columns if c.path.startswith("tier_and_details.")]
    (warning,) = warnings_of(inference, "tier_and_details")
    assert "keys look like values" in warning


async def test_mixed_number_fields_widen_with_a_warning(customers: list[dict[str, Any]]) -> None:
    inference = infer(customers)
    assert columns(inference)["loyalty_points"].pg_type == "bigint"
    assert columns(inference)["credit_limit"].pg_type == "numeric"
    assert warnings_of(inference, "loyalty_points")[0].startswith("mixed types (int ")


async def test_a_zip_code_stored_as_text_or_number_becomes_jsonb_with_a_warning(
    customers: list[dict[str, Any]],
) -> None:
    inference = infer(customers, nested="flatten")
    assert columns(inference)["address.zip"].pg_type == "jsonb"
    assert warnings_of(inference, "address.zip")[0].startswith("mixed types (string ")


async def test_objects_and_arrays_are_jsonb_by_default(customers: list[dict[str, Any]]) -> None:
    inference = infer(customers)
    assert {columns(inference)[p].pg_type for p in ("address", "accounts", "orders")} == {"jsonb"}
    assert inference.mapping.children == ()


async def test_child_mode_gives_a_table_of_account_numbers_and_one_of_orders(
    customers: list[dict[str, Any]],
) -> None:
    children = {c.path: c for c in infer(customers, nested="child").mapping.children}
    assert [(c.name, c.pg_type) for c in children["accounts"].columns] == [("value", "integer")]
    assert [(c.name, c.pg_type) for c in children["orders"].columns] == [
        ("ordered_at", "timestamptz"),
        ("items", "jsonb"),
    ]


@pytest.mark.parametrize("nested", ["jsonb", "flatten", "child"])
async def test_the_inferred_mapping_takes_every_document_read(
    customers: list[dict[str, Any]], nested: str
) -> None:
    mapping = infer(customers, nested=nested).mapping
    rows = [normalize(mapping, document) for document in customers]  # raises on a rejection
    assert len(rows) == CUSTOMERS


async def test_the_mapping_written_for_review_reads_back_the_same(
    customers: list[dict[str, Any]],
) -> None:
    inference = infer(customers, nested="child")
    assert mappings_from_toml(inference.to_toml()) == {"customers": inference.mapping}


async def test_a_sample_reports_the_documents_read_of_the_total(
    customers: list[dict[str, Any]],
) -> None:
    report = infer(customers[:150], sampled=150).report
    assert f"Read: 150 of {CUSTOMERS} documents (25.0%), a sample of up to 150" in report.format()
    assert any("come from the 150 documents read" in note for note in report.notes)
