"""The C path (rows straight from raw BSON) writes exactly what the Python normalizer writes.

Every document goes both ways: the C row must equal the Python row value for value
(same type family, same text: a Decimal's scale, a double's repr, an instant), and
where the C path declines (``None``) the Python path decides, so ``prepare_batch``
gives the same rows, rejections and reports on a raw batch as on a decoded one.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import bson
import pytest
from bson import Decimal128, Int64, ObjectId
from bson.datetime_ms import DatetimeMS

from migrationkit._mapping import fast_rows
from migrationkit._mapping.infer import infer_mapping
from migrationkit._mapping.normalize import Normalizer, transform_for
from migrationkit._mapping.spec import BSON_TYPES, ChildTable, Column, TableMapping
from migrationkit._normalize.rows import BSON_OPTIONS, PreparedBatch, prepare_batch, raw_path
from migrationkit._target.fidelity import SAMPLES
from migrationkit.workshop.samples import CustomerFactory

pytestmark = pytest.mark.skipif(
    not fast_rows.AVAILABLE and shutil.which("cc") is None,
    reason="no C compiler here: the C path is not built, every document takes Python's",
)


def test_the_c_path_is_built_where_a_compiler_is() -> None:
    assert fast_rows.AVAILABLE, "setup.py found a C compiler but _fastrows did not build"


def _form(value: Any) -> Any:
    """A value as PostgreSQL would get it, strictly: a Decimal's scale, a double's bits."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return ("int", int(value))
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, Decimal):
        return ("decimal", str(value))
    if isinstance(value, datetime):
        return ("instant", value.astimezone(UTC).isoformat())
    return (type(value).__name__, value)


def _compared(
    documents: Sequence[Mapping[str, Any]],
    from_raw: Callable[[Sequence[bytes]], list[Any]],
    python_row: Callable[[Mapping[str, Any]], Any],
) -> tuple[int, int]:
    """Each document both ways: the C row must be Python's; (written by C, declined)."""
    raws = [_encoded(document) for document in documents]
    written = declined = 0
    for raw, row in zip(raws, from_raw(raws), strict=True):
        if row is None:
            declined += 1
            continue
        written += 1
        expected = python_row(bson.decode(raw, BSON_OPTIONS))
        assert [_form(v) for v in row] == [_form(v) for v in expected], bson.decode(raw)
    return written, declined


def _both(mapping: TableMapping, documents: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """Compare the two paths of a mapping on each document (child rows too)."""
    normalizer = Normalizer(mapping)
    assert normalizer.from_raw is not None
    if not mapping.children:
        return _compared(documents, normalizer.from_raw, lambda document: normalizer(document).row)

    def flat(made: Any) -> list[Any]:  # the row, then each child table's rows
        return [*made.row, *(tuple(row) for rows in made.children.values() for row in rows)]

    def fast(raws: Sequence[bytes]) -> list[Any]:
        assert normalizer.from_raw is not None
        return [None if made is None else flat(made) for made in normalizer.from_raw(raws)]

    return _compared(documents, fast, lambda document: flat(normalizer(document)))


def _same_batches(fast: PreparedBatch, slow: PreparedBatch) -> None:
    """Two prepared batches hold the same rows, rejections and counts."""
    assert [[_form(v) for v in row] for row in fast.rows] == [
        [_form(v) for v in row] for row in slow.rows
    ]
    assert [(r.mongo_id, r.reason) for r in fast.rejections] == [
        (r.mongo_id, r.reason) for r in slow.rejections
    ]
    assert (fast.dropped, fast.kept_aside) == (slow.dropped, slow.kept_aside)
    assert _children(fast.children) == _children(slow.children)


def _children(children: Mapping[str, Sequence[Sequence[Any]]]) -> dict[str, list[list[Any]]]:
    return {table: [[_form(v) for v in row] for row in rows] for table, rows in children.items()}


def _encoded(document: Mapping[str, Any]) -> bytes:
    """BSON of a document; text with lone surrogates as the invalid UTF-8 they came from."""
    try:
        return bson.encode(document, codec_options=BSON_OPTIONS)
    except UnicodeEncodeError:
        pass
    body = b""
    for key, value in document.items():
        if isinstance(value, str) and not value.isascii():
            text = value.encode("utf-8", "surrogateescape") + b"\x00"
            body += b"\x02" + key.encode() + b"\x00" + len(text).to_bytes(4, "little") + text
        else:
            body += bson.encode({key: value})[4:-1]
    return (len(body) + 5).to_bytes(4, "little") + body + b"\x00"


def _mapping_of(
    documents: Sequence[Mapping[str, Any]], nested: Literal["jsonb", "child"] = "jsonb"
) -> TableMapping:
    """The inferred mapping; ``nested="child"``: objects flattened, arrays as child tables."""
    decoded = [bson.decode(bson.encode(d), BSON_OPTIONS) for d in documents]
    return infer_mapping(
        decoded, collection="c", table="t", sampled=None, total=len(decoded), nested=nested
    ).mapping


def _customers(count: int, *, seed: int) -> list[dict[str, Any]]:
    """Generated customers with ObjectId keys in their order."""
    customers = list(CustomerFactory(seed).customers(count))
    for number, customer in enumerate(customers):
        customer["_id"] = ObjectId(f"{number:024x}")
    return customers


def test_generated_customers_all_take_the_c_path_and_match() -> None:
    customers = _customers(2_000, seed=7)
    written, declined = _both(_mapping_of(customers), customers)
    assert (written, declined) == (2_000, 0)


def test_every_bson_sample_in_a_jsonb_column_matches_or_is_left_to_python() -> None:
    documents = [{"_id": number, "value": value} for number, (_, value) in enumerate(SAMPLES)]
    # What C writes: numbers, text, dates (any range), ids, bools, null, objects, arrays.
    # It leaves NaN, NUL or lone surrogates in text, and the types it does not know.
    assert _both(_jsonb_for_everything(), documents) == (42, 16)


def _jsonb_for_everything() -> TableMapping:
    column = Column("value", "value", "jsonb", bson_types=BSON_TYPES)
    return TableMapping(collection="c", table="t", columns=(column,))


def test_each_sample_in_the_catch_all_matches_or_is_left_to_python() -> None:
    documents = [{"_id": f"id {n}", "other": value} for n, (_, value) in enumerate(SAMPLES)]
    mapping = TableMapping(collection="c", table="t", columns=())
    assert _both(mapping, documents) == (42, 16)


AWKWARD: list[dict[str, Any]] = [
    {"_id": 1, "b": 1, "a": 2},  # out of jsonb's order: $keys
    {"_id": 2, "nested": {"zz": 1, "a": {"é": "ü", "ab": None}, "": [], "Z": {}}},
    {"_id": 3, "text": 'quote " back \\ tab \t nl \n cr \r bell \x07 del \x7f'},
    {"_id": 4, "when": datetime(1, 1, 1, tzinfo=UTC), "early": datetime(1500, 6, 1, tzinfo=UTC)},
    {"_id": 5, "when": DatetimeMS(-(10**15)), "late": DatetimeMS(253402300800000)},
    {"_id": 6, "n": [Int64(-(2**63)), -(2**31), 2**31 - 1, -0.0, float("inf"), 1e16, 5e-324]},
    {"_id": 7, "d": [Decimal128(text) for text in ("-0", "1E+5", "-1.5E-10", "0.000001")]},
    {"_id": 8, "dollar": {"$x": 1}},  # escaped keys: Python's
    {"_id": 9, "bad": "nul \x00 inside"},  # $escaped: Python's
    {"_id": "text id", "x": 1},
    {"_id": ObjectId("65a1b2c3d4e5f60718293a4b"), "x": {"deep": [[[{"a": [1]}]]]}},
    {"_id": 10.5, "x": 1},  # a double _id: Python's key
]


def test_awkward_documents_match_in_the_catch_all() -> None:
    mapping = TableMapping(collection="c", table="t", columns=())
    assert _both(mapping, AWKWARD) == (9, 3)


_SURROGATES = [{"_id": 11, "name": "bad \udcff byte"}, {"_id": 12, "more": "bad \udcff"}]


def test_invalid_utf8_is_left_to_python() -> None:
    mapping = TableMapping(collection="c", table="t", columns=())
    assert _both(mapping, _SURROGATES) == (0, 2)


def _typed() -> TableMapping:
    return TableMapping(
        collection="c",
        table="t",
        columns=(
            Column("name", "name", "text", bson_types=("string", "null")),
            Column("owner", "owner", "text", bson_types=("objectId",)),
            Column("n", "n", "bigint", bson_types=("int", "long")),
            Column("x", "x", "double precision", bson_types=("double",)),
            Column("ok", "ok", "boolean", bson_types=("bool", "null")),
            Column("price", "price", "numeric", bson_types=("int", "long", "decimal")),
            Column("at", "at", "timestamptz", bson_types=("date", "null"), nullable=True),
            Column("doc", "doc", "jsonb", bson_types=("object", "array", "null")),
        ),
    )


TYPED: list[dict[str, Any]] = [
    {
        "_id": 1,
        "name": "é",
        "n": 5,
        "x": 1.5,
        "ok": True,
        "price": Decimal128("1.50"),
        "at": datetime(1969, 7, 20, 20, 17, 40, 123000, tzinfo=UTC),
        "doc": {"a": 1},
    },
    {
        "_id": 2,
        "owner": ObjectId("65a1b2c3d4e5f60718293a4b"),
        "n": Int64(2**40),
        "x": -0.0,
        "ok": None,
        "price": Int64(7),
        "at": None,
        "doc": None,
        "more": 1,
    },  # nulls recorded
    {"_id": 3, "more": "first", "name": None, "n": 1, "price": 3},  # null, then unnamed
    {"_id": 4, "name": 5},  # mismatch: rejected by Python
    {"_id": 5, "price": Decimal128("NaN")},  # left to Python
    {"_id": 6, "price": Decimal128("-0")},  # rejected by Python
    {"_id": 7, "at": datetime(1, 1, 1, tzinfo=UTC)},  # rejected by Python (-infinity)
    {"_id": 8, "at": DatetimeMS(-(10**15))},  # rejected by Python (outside datetime)
    {"_id": 9, "name": "nul \x00"},  # rejected by Python
    {"_id": 10, "n": 1, "n ": 2},
    {"n": 1},  # no _id
]


def test_flattened_objects_and_child_tables_take_the_c_path_and_match() -> None:
    customers = _customers(1_000, seed=7)
    mapping = _mapping_of(customers, nested="child")
    assert {child.path for child in mapping.children} == {"accounts", "orders", "tags"}
    assert any("." in column.path for column in mapping.columns)  # the address, flattened
    assert _both(mapping, customers) == (1_000, 0)


def _orders_mapping(*, catch_all: str | None) -> TableMapping:
    order = (
        Column("sku", "sku", "text", bson_types=("string",)),
        Column("total", "total", "numeric", bson_types=("decimal", "null"), nullable=True),
    )
    return TableMapping(
        collection="c",
        table="t",
        columns=(
            Column("v", "v", "integer", bson_types=("int",)),
            Column("address.city", "address__city", "text", bson_types=("string", "null")),
            Column(
                "address.geo.lat",
                "address__geo__lat",
                "double precision",
                bson_types=("double",),
                nullable=True,
            ),
        ),
        children=(
            ChildTable("orders", "t__orders", order, catch_all=catch_all),
            ChildTable(
                "codes",
                "t__codes",
                (Column("", "value", "bigint", bson_types=("int", "null")),),
                catch_all=catch_all,
            ),
        ),
        catch_all=catch_all,
    )


#: Every case of the nested rules: empty, null and missing objects and arrays, unnamed
#: fields at each level, nulls a column takes, scalars, mismatches Python rejects.
NESTED: list[dict[str, Any]] = [
    {"_id": 1, "v": 1, "address": {"city": "a", "geo": {"lat": 1.5}},
     "orders": [{"sku": "x", "total": Decimal128("1.50")}], "codes": [1, 2]},
    {"_id": 2, "v": 2, "orders": [], "codes": [], "address": {}},
    {"_id": 3, "v": 3, "address": None, "orders": [{}], "codes": [None]},
    {"_id": 4, "v": 4, "address": {"city": None, "zip": "z", "geo": {}},
     "orders": [{"sku": "y", "total": None, "note": [1, {"b": 2}]}]},
    {"_id": 5, "v": 5, "address": {"geo": {"lat": 2.5, "lon": 3.5}, "city": "c"}},
    {"_id": 6, "v": 6, "orders": [{"sku": "z", "_id": 9, "total": Decimal128("2")}], "x": {"q": 1}},
    {"_id": 7, "zzz": 1, "v": 7, "a": 2, "orders": [{"total": Decimal128("3"), "sku": "w"}]},
    {"_id": 8, "v": 8, "orders": None},  # Python's: null where an array is a child table
    {"_id": 9, "v": 9, "address": "text"},  # Python's: not an object
    {"_id": 10, "v": 10, "orders": [{"total": Decimal128("1")}]},  # rejected: no sku
    {"_id": 11, "v": 11, "codes": ["one"]},  # rejected: a mismatch in a child
    {"_id": 12, "v": 12, "orders": [1]},  # a scalar where the elements are documents
    {"_id": 13, "v": 13, "orders": {"sku": "x"}},  # not an array
    {"_id": 14, "v": 14, "address": {"geo": None}, "codes": [Int64(5)]},
]  # fmt: skip


# The last six are Python's (see NESTED); with no catch-all, so is every unnamed field.
@pytest.mark.parametrize(("catch_all", "counts"), [("_extra", (8, 6)), (None, (4, 10))])
def test_nested_rules_match_in_c_or_are_left_to_python(
    catch_all: str | None, counts: tuple[int, int]
) -> None:
    transform = transform_for(_orders_mapping(catch_all=catch_all))
    assert raw_path(transform) is not None
    raws = [_encoded(document) for document in NESTED]
    decoded = [bson.decode(raw, BSON_OPTIONS) for raw in raws]
    fast, slow = prepare_batch(raws, transform), prepare_batch(decoded, transform)
    _same_batches(fast, slow)
    assert slow.rejections, "the batch holds documents that must be rejected"
    assert slow.children["t__orders"], "and rows of both child tables"
    assert slow.children["t__codes"]
    assert _both(_orders_mapping(catch_all=catch_all), NESTED) == counts


def test_typed_columns_match_and_what_c_declines_python_decides() -> None:
    assert _both(_typed(), TYPED) == (4, 7)


@pytest.mark.parametrize("catch_all", ["_extra", None])
def test_prepare_batch_on_a_raw_batch_equals_it_on_a_decoded_one(catch_all: str | None) -> None:
    mapping = TableMapping(collection="c", table="t", columns=_typed().columns, catch_all=catch_all)
    transform = transform_for(mapping)
    assert raw_path(transform) is not None
    raws = [_encoded(document) for document in TYPED + AWKWARD + _SURROGATES]
    decoded = [bson.decode(raw, BSON_OPTIONS) for raw in raws]
    fast, slow = prepare_batch(raws, transform), prepare_batch(decoded, transform)
    _same_batches(fast, slow)
    assert list(fast.documents) == list(slow.documents)
    assert slow.rejections, "the batch holds documents that must be rejected"


def test_a_malformed_document_is_left_to_python() -> None:
    transform = transform_for(TableMapping(collection="c", table="t", columns=()))
    raw = bson.encode({"_id": 1, "a": "x"})
    fast = transform.from_raw  # type: ignore[attr-defined]
    assert fast([raw[:-1] + b"\x01", raw[:10], b""]) == [None, None, None]
    assert fast([raw]) == [("1", '{"a":"x"}')]


# -- the users table -----------------------------------------------------------------------


def _users_both(users: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """Each user both ways: the C row must be users_rows' row; (written by C, declined)."""
    from migrationkit._mapping.fast_rows import users_from_raw
    from migrationkit._normalize.rows import users_rows

    def plain_row(user: Mapping[str, Any]) -> Any:
        made = users_rows(user)
        assert type(made) is tuple, "C wrote a row for a user with dropped fields"
        return made

    return _compared(users, users_from_raw, plain_row)


def _seeded_users(count: int) -> list[dict[str, Any]]:
    from migrationkit.workshop.seeding import UserFactory

    users = list(UserFactory(3).users(count))
    for number, user in enumerate(users):
        user["_id"] = ObjectId(f"{number:024x}")
    return users


def test_seeded_users_all_take_the_c_path_and_match() -> None:
    assert _users_both(_seeded_users(2_000)) == (2_000, 0)


ODD_USERS: list[dict[str, Any]] = [
    {"age": 42.0},  # a whole double: written as 42
    {"age": -0.0},
    {"age": 0},
    {"age": 150},
    {"registered_at": None},
    {"registered_at": datetime(1, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)},
    {"username": "é" * 254},  # 254 characters, 508 bytes
    {"email": "a@b.c"},
    {"_id": 7},
    {"_id": "text id"},
    # the C path declines these; users_rows decides (a rejection, a coercion, dropped)
    {"age": 42.5},
    {"age": 151},
    {"age": True},
    {"age": Int64(30)},
    {"username": ""},
    {"username": "é" * 255},
    {"username": "a\x00b"},
    {"username": "bad \udcff"},
    {"email": "nope"},
    {"email": "a b@c.d"},
    {"email": "@b.c"},
    {"registered_at": "2020-01-02T03:04:05Z"},
    {"registered_at": DatetimeMS(-(10**15))},
    {"registered_at": datetime(1, 1, 1, tzinfo=UTC)},
    {"password": "secret"},
    {"_id": 1.5},
]


def test_odd_users_match_or_are_left_to_the_users_rules() -> None:
    user = _seeded_users(1)[0]
    users = [user | change for change in ODD_USERS]
    users += [
        {key: v for key, v in user.items() if key != gone} for gone in ("registered_at", "age")
    ]
    assert _users_both(users) == (11, 17)


def test_prepare_batch_on_raw_users_equals_it_on_decoded_ones() -> None:
    from migrationkit._mapping.spec import USERS

    transform = transform_for(USERS)
    assert raw_path(transform) is not None
    users = [_seeded_users(1)[0] | change for change in ODD_USERS] + _seeded_users(50)[1:]
    raws = [_encoded(user) for user in users]
    decoded = [bson.decode(raw, BSON_OPTIONS) for raw in raws]
    fast, slow = prepare_batch(raws, transform), prepare_batch(decoded, transform)
    _same_batches(fast, slow)
    assert fast.dropped == slow.dropped == {"password": 1}


def test_decoded_documents_encoded_again_take_the_c_path_with_the_same_rows() -> None:
    """The follower's documents are decoded (events, restored rows): as_bson hands them
    to the C path; what cannot be encoded (text from invalid UTF-8) stays a dict."""
    from migrationkit._normalize.rows import as_bson

    mapping = TableMapping(collection="c", table="t", columns=_typed().columns)
    transform = transform_for(mapping)
    raws = [_encoded(document) for document in TYPED + AWKWARD + _SURROGATES]
    decoded = [bson.decode(raw, BSON_OPTIONS) for raw in raws]
    mixed = [as_bson(document) for document in decoded]
    assert sum(type(item) is bytes for item in mixed) == len(mixed) - len(_SURROGATES)
    fast, slow = prepare_batch(mixed, transform), prepare_batch(decoded, transform)
    _same_batches(fast, slow)
    assert list(fast.documents) == list(slow.documents)


@pytest.mark.parametrize("nested", ["jsonb", "child"])
def test_damaged_bson_never_crashes_and_never_gets_a_row_python_would_not_write(
    nested: Literal["jsonb", "child"],
) -> None:
    """Bytes changed at random: the C path declines, or writes exactly Python's rows."""
    import random

    from migrationkit._mapping.fast_rows import users_from_raw

    customers = _customers(100, seed=2)
    normalizer = Normalizer(_mapping_of(customers, nested))
    fast = normalizer.from_raw
    assert fast is not None
    raws = [bson.encode(customer) for customer in customers]
    rng = random.Random(11)
    written = 0
    for _ in range(3_000):
        damaged = bytearray(rng.choice(raws))
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        raw = bytes(damaged)
        users_from_raw([raw, raw[: rng.randrange(len(raw))]])  # must not crash either
        made: Any = fast([raw, raw[: rng.randrange(len(raw))]])[0]
        if made is None:
            continue
        written += 1
        expected = normalizer(bson.decode(raw, BSON_OPTIONS))  # decodes, and is taken
        row = made if nested == "jsonb" else made.row
        assert [_form(v) for v in row] == [_form(v) for v in expected.row]
        if nested == "child":
            assert _children(made.children) == _children(expected.children)
    assert written > 300  # most damage hits values the C path still writes exactly
