"""The BSON type map: what each BSON type becomes in PostgreSQL, exactly, and back.

For every BSON type: its name (:func:`bson_type`), the PostgreSQL column type it gets by
default (:data:`TYPE_MAP`, printed by :func:`format_type_map`), the conversion from the
decoded Python value to what asyncpg writes (:func:`column_converter`), the way back
(:func:`from_column`), and one comparable form of a written and a read-back value
(:func:`comparable`). A value a column type cannot hold exactly raises
:class:`UnfitValue` with the reason; the normalizer then rejects the document or keeps
the value in the catch-all, as the column says.

Lossless jsonb (:func:`to_jsonb`, :func:`from_jsonb`). PostgreSQL's ``jsonb`` sorts
object keys (shorter first, then bytewise), keeps no duplicate keys, stores numbers as
``numeric`` (no ``-0``, no ``NaN``) and holds no ``U+0000``. So the encoding is plain JSON
wherever plain JSON is exact, and an Extended-JSON-like wrapper (a single ``$`` key)
only where it is not:

- strings, booleans, null, int32 and doubles whose ``repr`` is a plain decimal (``0.1``,
  ``5.0``: ``numeric`` keeps the ``.0``) are plain JSON, so ``doc->>'city'`` just works;
- int64 ``{"$numberLong": "5"}``; other doubles ``{"$numberDouble": "-0.0" | "NaN" |
  "Infinity" | "1e+300"}``; Decimal128 ``{"$numberDecimal": "1.50"}`` (never a float);
  ``{"$oid"}``, ``{"$date": "…Z"}`` (``{"$date": {"$numberLong": ms}}`` outside
  Python's datetime range), ``{"$binary": {"base64", "subType"}}``, ``{"$uuid"}``,
  ``{"$regularExpression": {"pattern", "options"}}``, ``{"$code"[, "$scope"]}``,
  ``{"$timestamp": {"t", "i"}}``, ``{"$minKey": 1}``, ``{"$maxKey": 1}``;
- a string jsonb cannot hold (a NUL, a lone surrogate) is ``{"$escaped": "a\\\\x00b"}``
  (Python's ``unicode_escape``);
- a document key starting with ``$`` gets one more (``$x`` → ``$$x``), so a single-``$`` key
  is always ours; a key jsonb cannot hold is ``"$~"`` + its escape; and an object whose keys
  are not already in jsonb's order carries ``"$keys": [its keys in their order]``.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import struct
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bson import Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.binary import UuidRepresentation
from bson.datetime_ms import DatetimeMS
from bson.tz_util import utc as _BSON_UTC

from migrationkit._mapping.spec import PG_TYPE_HOLDS
from migrationkit._normalize.rows import BSON_OPTIONS

#: How a mapping reads documents: dates outside Python's range arrive as ``DatetimeMS``
#: (instead of failing the whole batch), subtype-4 binaries as ``uuid.UUID``, and invalid
#: UTF-8 as lone surrogates (set aside with a reason, instead of failing the batch).
#: How documents are decoded (the kit's one set of options).
MAPPING_BSON_OPTIONS = BSON_OPTIONS

_INT32 = (-(2**31), 2**31)
_INT64 = (-(2**63), 2**63)


class UnfitValue(ValueError):
    """A value this column (or BSON itself) cannot hold exactly; the message says why."""


@dataclass(frozen=True, slots=True)
class BsonTypeInfo:
    """One row of the type map."""

    bson_type: str
    python: str
    pg_type: str
    note: str


TYPE_MAP: tuple[BsonTypeInfo, ...] = (
    BsonTypeInfo("int", "int", "integer", "32-bit, exact"),
    BsonTypeInfo("long", "bson.Int64", "bigint", "64-bit, exact"),
    BsonTypeInfo(
        "double", "float", "double precision", "bit for bit: -0.0, NaN and ±Infinity kept"
    ),
    BsonTypeInfo(
        "decimal",
        "bson.Decimal128",
        "numeric",
        "exact, never through a float; NaN, ±Infinity kept; -0, -NaN, sNaN have no numeric "
        "form (set aside); 1E+5 reads back as 100000, the same number",
    ),
    BsonTypeInfo(
        "string",
        "str",
        "text",
        "UTF-8; a NUL or a lone surrogate (invalid UTF-8 in the source) cannot be text: "
        "set aside with the reason (jsonb keeps it escaped)",
    ),
    BsonTypeInfo("bool", "bool", "boolean", "exact"),
    BsonTypeInfo(
        "date",
        "datetime (aware, UTC)",
        "timestamptz",
        "to the millisecond, before 1970 too; outside years 1-9999 it arrives as "
        "DatetimeMS, and asyncpg writes 0001-01-01T00:00:00Z as -infinity: both set aside "
        "with the reason (jsonb keeps them exactly)",
    ),
    BsonTypeInfo(
        "null",
        "None",
        "any (NULL)",
        "NULL in a column; the catch-all records an explicit null, so null and a "
        "missing field stay distinct",
    ),
    BsonTypeInfo("objectId", "bson.ObjectId", "text", "24 hex digits"),
    BsonTypeInfo(
        "binData",
        "bytes / bson.Binary",
        "bytea",
        "subtype 0; any other subtype (3 = legacy UUID, 5 = MD5, 0x80 = user, …) is not "
        "kept by bytea: set aside (jsonb keeps it)",
    ),
    BsonTypeInfo(
        "uuid",
        "uuid.UUID / Binary subtype 4",
        "uuid",
        "binary subtype 4; legacy subtype 3 stays binData (its byte order depends on "
        "the driver that wrote it)",
    ),
    BsonTypeInfo("regex", "bson.Regex", "jsonb", '{"$regularExpression": {"pattern", "options"}}'),
    BsonTypeInfo("javascript", "bson.Code", "text", "the code as text"),
    BsonTypeInfo("javascriptWithScope", "bson.Code (scope)", "jsonb", '{"$code", "$scope"}'),
    BsonTypeInfo(
        "timestamp",
        "bson.Timestamp",
        "jsonb",
        '{"$timestamp": {"t", "i"}}: no PostgreSQL type holds both parts',
    ),
    BsonTypeInfo("minKey", "bson.MinKey", "jsonb", '{"$minKey": 1}'),
    BsonTypeInfo("maxKey", "bson.MaxKey", "jsonb", '{"$maxKey": 1}'),
    BsonTypeInfo(
        "object",
        "dict",
        "jsonb",
        "lossless jsonb: key order, $-keys, every BSON type kept; or flatten it (a__b "
        "columns), or drop it",
    ),
    BsonTypeInfo("array", "list", "jsonb", "lossless jsonb, mixed types too; or a child table"),
)

DEFAULT_PG_TYPE: dict[str, str] = {
    info.bson_type: info.pg_type for info in TYPE_MAP if info.bson_type != "null"
}
DEFAULT_PG_TYPE["null"] = "jsonb"


def format_type_map() -> str:
    """The type map as a Markdown table (the README's, and a command's output)."""
    lines = ["| BSON type | Python value | PostgreSQL | what is kept |", "|---|---|---|---|"]
    lines += [
        f"| {i.bson_type} | {i.python} | {i.pg_type} | {i.note.replace('|', '/')} |"
        for i in TYPE_MAP
    ]
    return "\n".join(lines)


# -- bson_type ---------------------------------------------------------------------------

_TYPE_NAMES: dict[type, str] = {
    float: "double",
    str: "string",
    dict: "object",
    list: "array",
    bytes: "binData",
    uuid.UUID: "uuid",
    ObjectId: "objectId",
    bool: "bool",
    datetime: "date",
    DatetimeMS: "date",
    type(None): "null",
    Regex: "regex",
    re.Pattern: "regex",
    Timestamp: "timestamp",
    Int64: "long",
    Decimal128: "decimal",
    MinKey: "minKey",
    MaxKey: "maxKey",
    DBRef: "object",
    tuple: "array",
}


def bson_type(value: Any) -> str:
    """The BSON type name of a decoded value (``$type`` aliases, ``uuid`` for subtype 4)."""
    name = _TYPE_NAMES.get(type(value))
    if name is not None:
        return name
    kind = type(value)
    if kind is int:
        if _INT32[0] <= value < _INT32[1]:
            return "int"
        if _INT64[0] <= value < _INT64[1]:
            return "long"
        raise UnfitValue(f"integer {value} does not fit in 64 bits, so not in BSON")
    if kind is Binary:
        return "uuid" if value.subtype == 4 else "binData"
    if kind is Code:
        return "javascript" if value.scope is None else "javascriptWithScope"
    for base, base_name in _SUBCLASS_NAMES:
        if isinstance(value, base):
            return base_name
    raise UnfitValue(f"a Python {kind.__name__} is not a BSON value")


_SUBCLASS_NAMES: tuple[tuple[type, str], ...] = (
    (Mapping, "object"),
    (str, "string"),
    (datetime, "date"),
    (uuid.UUID, "uuid"),
    (list, "array"),
)


# -- lossless jsonb ----------------------------------------------------------------------

_DOUBLE_NAMES = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_REGEX_FLAGS = (
    (re.IGNORECASE, "i"),
    (re.LOCALE, "l"),
    (re.MULTILINE, "m"),
    (re.DOTALL, "s"),
    (re.UNICODE, "u"),
    (re.VERBOSE, "x"),
)


def storable_text_problem(text: str) -> str | None:
    """Why PostgreSQL text (and jsonb) cannot hold ``text``, or ``None`` when it can."""
    if "\x00" in text:
        return "contains a NUL character, which PostgreSQL text cannot store"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (invalid UTF-8 in the source)"
    return None


def _escape(text: str) -> str:
    return text.encode("unicode_escape").decode("ascii")


def _unescape(text: str) -> str:
    return text.encode("ascii").decode("unicode_escape")


def _enc_str(value: str) -> Any:
    if storable_text_problem(value) is None:
        return value if type(value) is str else str(value)
    return {"$escaped": _escape(value)}


def _enc_int(value: int) -> Any:
    if _INT32[0] <= value < _INT32[1]:
        return int(value)
    if _INT64[0] <= value < _INT64[1]:
        return {"$numberLong": str(value)}
    raise UnfitValue(f"integer {value} does not fit in 64 bits, so not in BSON")


def _enc_float(value: float) -> Any:
    text = repr(value)
    if "e" in text or "n" in text or text == "-0.0":  # exponent, inf, nan, or -0.0
        return {"$numberDouble": _DOUBLE_NAMES.get(text, text)}
    return value


def _plain_key(key: str) -> bool:
    """Whether an ASCII key goes to jsonb as it is (no ``$`` to double, no NUL to escape)."""
    return key[:1] != "$" and "\x00" not in key


def _enc_key(raw: Any) -> str:
    if not isinstance(raw, str):
        raise UnfitValue(f"a document key must be a string, not {type(raw).__name__}")
    key = str(raw)
    if key[:1] == "$":
        return "$" + key if storable_text_problem(key) is None else "$~" + _escape(key)
    if storable_text_problem(key) is not None:
        return "$~" + _escape(key)
    return key


def _enc_object(value: Mapping[str, Any]) -> dict[str, Any]:
    # The general path (the text path, :func:`_object_text`, writes the same as JSON).
    # Documents of a collection share their key sets, so what the keys become (escaped
    # or not, in jsonb's order or not) is worked out once per key set.
    keys = tuple(value)
    plan = _KEY_PLANS.get(keys)
    if plan is None:
        plan = _key_plan(keys)
    emitted, in_order = plan[0], plan[1]
    out: dict[str, Any] = {}
    for key, item in zip(emitted, value.values(), strict=True):
        kind = type(item)
        if kind is str:
            out[key] = item if item.isascii() and "\x00" not in item else _enc_str(item)
        elif kind is int:
            out[key] = item if _INT32[0] <= item < _INT32[1] else _enc_int(item)
        elif kind is bool or item is None:
            out[key] = item
        else:
            out[key] = _encode(item)
    if not in_order:
        out["$keys"] = list(emitted)
    return out


#: A key set's plan: the keys as jsonb gets them, whether jsonb keeps them in this
#: order, and the JSON text around its values: ``{"k1":``, ``,"k2":``, … and the close
#: (``}``, or the ``$keys`` list then ``}``).
_KeyPlan = tuple[tuple[str, ...], bool, tuple[str, ...], str]

_KEY_PLANS: dict[tuple[Any, ...], _KeyPlan] = {}
_MAX_KEY_PLANS = 4096  # maps keyed by ids have a key set per document: bound the cache

#: How ``json`` writes a string (``ensure_ascii=False``): quoted, with its escapes.
_quote: Callable[[str], str] = json.encoder.encode_basestring


def _key_plan(keys: tuple[Any, ...]) -> _KeyPlan:
    """The plan of a key set (see :data:`_KeyPlan`), kept for the next object of that shape.

    jsonb orders keys by UTF-8 length, then bytewise (code point order is UTF-8 order).
    """
    if all(type(key) is str and key.isascii() and _plain_key(key) for key in keys):
        emitted = keys  # the common case, quick: maps keyed by ids miss the cache
        in_order = all((len(a), a) < (len(b), b) for a, b in itertools.pairwise(keys))
    else:
        emitted = tuple(_enc_key(key) for key in keys)
        sizes = [len(key.encode("utf-8")) for key in emitted]
        in_order = all(
            (sizes[i], emitted[i]) < (sizes[i + 1], emitted[i + 1]) for i in range(len(keys) - 1)
        )
    quoted = list(map(_quote, emitted))
    prefixes = tuple(f"{',' if i else '{'}{key}:" for i, key in enumerate(quoted))
    close = "}" if in_order else f',"$keys":[{",".join(quoted)}]}}'
    plan = (emitted, in_order, prefixes, close)
    if len(_KEY_PLANS) < _MAX_KEY_PLANS:  # full: the shapes seen first stay, the rest is computed
        _KEY_PLANS[keys] = plan
    return plan


def _enc_array(value: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    append = out.append
    for item in value:
        kind = type(item)
        if kind is str:
            append(item if item.isascii() and "\x00" not in item else _enc_str(item))
        elif kind is int:
            append(item if _INT32[0] <= item < _INT32[1] else _enc_int(item))
        elif kind is bool or item is None:
            append(item)
        else:
            append(_encode(item))
    return out


def _enc_datetime(value: datetime) -> dict[str, Any]:
    return {"$date": _iso_date(value)}


def _iso_date(value: datetime) -> str:
    """ISO 8601 to the millisecond (microsecond if it has them); ``Z`` when aware."""
    spec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
    zone = value.tzinfo
    if zone is None:
        return value.isoformat(timespec=spec)
    if zone is not _BSON_UTC and zone is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _enc_binary(value: bytes) -> dict[str, Any]:
    subtype = value.subtype if isinstance(value, Binary) else 0
    payload = base64.b64encode(value).decode("ascii")
    return {"$binary": {"base64": payload, "subType": f"{subtype:02x}"}}


def _enc_regex(value: Any) -> dict[str, Any]:
    if not isinstance(value.pattern, str):
        raise UnfitValue("a regex pattern must be text")
    options = "".join(letter for flag, letter in _REGEX_FLAGS if value.flags & flag)
    return {"$regularExpression": {"pattern": _enc_str(value.pattern), "options": options}}


def _enc_code(value: Code) -> dict[str, Any]:
    out: dict[str, Any] = {"$code": _enc_str(str(value))}
    if value.scope is not None:
        out["$scope"] = _enc_object(value.scope)
    return out


def _enc_decimal(value: Decimal128) -> dict[str, Any]:
    return {"$numberDecimal": decimal_text(value)}


def decimal_text(value: Decimal128) -> str:
    """The exact text of a Decimal128, as ``str(value.to_decimal())`` but several times faster.

    (``str(Decimal128)`` itself drops the sign of NaN and sNaN.)
    """
    high, low = value.__getstate__()  # the two 64-bit halves of the BID encoding
    sign = "-" if high >> 63 else ""
    if (high & _NAN_MASK) == _NAN_MASK:
        return sign + ("sNaN" if (high & _SNAN_MASK) == _SNAN_MASK else "NaN")
    if (high & _INF_MASK) == _INF_MASK:
        return sign + "Infinity"
    if (high & _FORM_2_MASK) == _FORM_2_MASK:  # a coefficient above 10**34: zero
        return str(value.to_decimal())
    exponent = ((high >> 49) & 0x3FFF) - 6176
    digits = str(((high & 0x1FFFFFFFFFFFF) << 64) | low)
    adjusted = exponent + len(digits) - 1
    if exponent <= 0 and adjusted >= -6:
        if exponent == 0:
            return sign + digits
        if len(digits) > -exponent:
            return f"{sign}{digits[:exponent]}.{digits[exponent:]}"
        return f"{sign}0.{'0' * (-exponent - len(digits))}{digits}"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}E{'+' if adjusted >= 0 else ''}{adjusted}"


_NAN_MASK = 0x7C << 56
_SNAN_MASK = 0x7E << 56
_INF_MASK = 0x78 << 56
_FORM_2_MASK = 0x60 << 56


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    str: _enc_str,
    int: _enc_int,
    bool: bool,
    type(None): lambda value: None,
    float: _enc_float,
    Int64: lambda value: {"$numberLong": str(int(value))},
    dict: _enc_object,
    list: _enc_array,
    tuple: _enc_array,
    ObjectId: lambda value: {"$oid": str(value)},
    Decimal128: _enc_decimal,
    datetime: _enc_datetime,
    DatetimeMS: lambda value: {"$date": {"$numberLong": str(int(value))}},
    bytes: _enc_binary,
    Binary: _enc_binary,
    uuid.UUID: lambda value: {"$uuid": str(value)},
    Regex: _enc_regex,
    re.Pattern: _enc_regex,
    Code: _enc_code,
    Timestamp: lambda value: {"$timestamp": {"t": value.time, "i": value.inc}},
    MinKey: lambda value: {"$minKey": 1},
    MaxKey: lambda value: {"$maxKey": 1},
    DBRef: lambda value: _enc_object(value.as_doc()),
}

_SUBCLASS_ENCODERS: tuple[tuple[type, Callable[[Any], Any]], ...] = (
    (Mapping, _enc_object),
    (str, _enc_str),
    (datetime, _enc_datetime),
    (uuid.UUID, lambda value: {"$uuid": str(value)}),
    (list, _enc_array),
)


def _encode(value: Any) -> Any:
    encoder = _ENCODERS.get(type(value))
    if encoder is not None:
        return encoder(value)
    for base, base_encoder in _SUBCLASS_ENCODERS:
        if isinstance(value, base):
            return base_encoder(value)
    raise UnfitValue(f"a Python {type(value).__name__} is not a BSON value")


# Built once: json.dumps/json.loads with options build a new encoder or decoder per call.
# What _encode builds is a fresh tree, never circular: no need to check.
_JSON_ENCODE = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode


# -- lossless jsonb as text: the hot path of every jsonb column ------------------------------
#
# The text ``json`` writes of what :func:`_encode` builds, written directly: no dicts and
# lists built only to be serialized, each key set's keys (and ``$keys`` list) quoted once
# per shape instead of once per object, the common types inline. Any other type takes
# the general path. (tests/unit/test_mapping_types.py checks that both write the same.)

_INT32_LOW, _INT32_HIGH = _INT32


def _object_text(value: Mapping[str, Any]) -> str:
    if not value:
        return "{}"
    keys = tuple(value)
    plan = _KEY_PLANS.get(keys)
    if plan is None:
        plan = _key_plan(keys)
    parts: list[str] = []
    append = parts.append
    for prefix, item in zip(plan[2], value.values(), strict=True):
        append(prefix)
        append(_item_text(item))
    append(plan[3])
    return "".join(parts)


def _array_text(value: Iterable[Any]) -> str:
    parts: list[str] = []
    append = parts.append
    for item in value:
        append(_item_text(item))
    return f"[{','.join(parts)}]"


def _item_text(item: Any) -> str:
    """One value's lossless JSON text: the common types inline, the rest by :func:`_text`."""
    kind = type(item)
    if kind is str:
        return _quote(item) if item.isascii() and "\x00" not in item else _str_text(item)
    if kind is int:
        return int.__repr__(item) if _INT32_LOW <= item < _INT32_HIGH else _int_text(item)
    if kind is dict:
        return _object_text(item)
    if kind is list:
        return _array_text(item)
    if kind is bool:
        return "true" if item else "false"
    if item is None:
        return "null"
    return _text(item)


def _str_text(value: str) -> str:
    if storable_text_problem(value) is None:
        return _quote(value if type(value) is str else str(value))
    return f'{{"$escaped":{_quote(_escape(value))}}}'


def _int_text(value: int) -> str:
    if _INT32_LOW <= value < _INT32_HIGH:
        return int.__repr__(value)
    return _JSON_ENCODE(_enc_int(value))


def _float_text(value: float) -> str:
    text = repr(value)
    if "e" in text or "n" in text or text == "-0.0":  # exponent, inf, nan, or -0.0
        return f'{{"$numberDouble":"{_DOUBLE_NAMES.get(text, text)}"}}'
    return text


_TEXT_WRITERS: dict[type, Callable[[Any], str]] = {
    str: _str_text,
    int: _int_text,
    bool: lambda value: "true" if value else "false",
    type(None): lambda value: "null",
    float: _float_text,
    Int64: lambda value: f'{{"$numberLong":"{int(value)}"}}',
    dict: _object_text,
    list: _array_text,
    tuple: _array_text,
    ObjectId: lambda value: f'{{"$oid":"{value}"}}',
    Decimal128: lambda value: f'{{"$numberDecimal":"{decimal_text(value)}"}}',
    datetime: lambda value: f'{{"$date":"{_iso_date(value)}"}}',
}


def _text(value: Any) -> str:
    writer = _TEXT_WRITERS.get(type(value))
    if writer is not None:
        return writer(value)
    return _JSON_ENCODE(_encode(value))


def to_jsonb(value: Any) -> str:
    """JSON text that survives PostgreSQL ``jsonb`` and decodes to the same BSON value."""
    return _text(value)


def _dec_binary(payload: Mapping[str, str]) -> Any:
    data = base64.b64decode(payload["base64"])
    subtype = int(payload["subType"], 16)
    return data if subtype == 0 else Binary(data, subtype)


def _dec_date(payload: Any) -> Any:
    if isinstance(payload, str):
        return datetime.fromisoformat(payload)
    return DatetimeMS(int(payload))


_DECODERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "$numberLong": lambda w: Int64(int(w["$numberLong"])),
    "$numberDouble": lambda w: float(w["$numberDouble"]),
    "$numberDecimal": lambda w: decimal128_of_text(w["$numberDecimal"]),
    "$oid": lambda w: ObjectId(w["$oid"]),
    "$date": lambda w: _dec_date(w["$date"]),
    "$binary": lambda w: _dec_binary(w["$binary"]),
    "$uuid": lambda w: uuid.UUID(w["$uuid"]),
    "$regularExpression": lambda w: Regex(
        w["$regularExpression"]["pattern"], w["$regularExpression"]["options"]
    ),
    "$code": lambda w: Code(w["$code"], w.get("$scope")),
    "$timestamp": lambda w: Timestamp(w["$timestamp"]["t"], w["$timestamp"]["i"]),
    "$minKey": lambda w: MinKey(),
    "$maxKey": lambda w: MaxKey(),
    "$escaped": lambda w: _unescape(w["$escaped"]),
}


def _dec_key(key: str) -> str:
    if key[:2] == "$~":
        return _unescape(key[2:])
    return key[1:] if key[:2] == "$$" else key


def _object_hook(obj: dict[str, Any]) -> Any:
    for key in obj:
        if key[:1] == "$":
            break
    else:
        return obj
    order = obj.pop("$keys", None)
    if order is not None:
        obj = {key: obj[key] for key in order}
    for key in obj:
        if key[:1] == "$" and key[:2] not in ("$$", "$~"):
            return _DECODERS[key](obj)
    out = {_dec_key(key): item for key, item in obj.items()}
    # As bson's decoder does: a sub-document with these keys is a DBRef.
    if isinstance(out.get("$ref"), str) and "$id" in out and isinstance(out.get("$db"), str | None):
        return DBRef(out.pop("$ref"), out.pop("$id"), out.pop("$db", None), out)
    return out


_JSON_DECODE = json.JSONDecoder(object_hook=_object_hook).decode


def from_jsonb(text: str) -> Any:
    """The value :func:`to_jsonb` encoded, also after a round trip through ``jsonb``."""
    return _JSON_DECODE(text)


# -- columns: to asyncpg and back ----------------------------------------------------------

Converter = Callable[[Any, str], Any]


def _to_integer(value: Any, kind: str) -> Any:
    return int(value)


def _to_numeric(value: Any, kind: str) -> Any:
    if kind != "decimal":
        return Decimal(int(value))
    number = Decimal(decimal_text(value))  # a third of to_decimal()'s time
    if number.is_snan():
        raise UnfitValue("Decimal128 sNaN has no numeric form")
    if number.is_signed() and (number.is_nan() or number.is_zero()):
        raise UnfitValue(f"Decimal128 {number} has no numeric form (numeric has no sign there)")
    return number


def _to_text(value: Any, kind: str) -> Any:
    if kind == "objectId":
        return str(value)
    text = str(value)
    problem = storable_text_problem(text)
    if problem is not None:
        raise UnfitValue(f"{kind} {problem}")
    return text


def _to_timestamptz(value: Any, kind: str) -> Any:
    if type(value) is DatetimeMS:
        raise UnfitValue(
            f"date {int(value)} ms since 1970 is outside Python's datetime range "
            "(years 1-9999), so not a timestamptz here"
        )
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if moment == _YEAR_ONE:
        raise UnfitValue("0001-01-01T00:00:00Z: asyncpg would write it as -infinity")
    return moment


_YEAR_ONE = datetime(1, 1, 1, tzinfo=UTC)


def _to_bytea(value: Any, kind: str) -> Any:
    if isinstance(value, Binary) and value.subtype != 0:
        raise UnfitValue(f"binary subtype {value.subtype} would be lost in bytea")
    return bytes(value)


def _to_uuid(value: Any, kind: str) -> Any:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return value.as_uuid(UuidRepresentation.STANDARD)
    except ValueError as exc:
        raise UnfitValue(f"binary subtype 4 that is not a UUID: {exc}") from None


def _to_jsonb(value: Any, kind: str) -> Any:
    return _text(value)


def _same(value: Any, kind: str) -> Any:
    return value


_CONVERTERS: dict[str, Converter] = {
    "integer": _to_integer,
    "bigint": _to_integer,
    "numeric": _to_numeric,
    "double precision": _same,
    "text": _to_text,
    "boolean": _same,
    "timestamptz": _to_timestamptz,
    "bytea": _to_bytea,
    "uuid": _to_uuid,
    "jsonb": _to_jsonb,
}


#: Column types for which the decoded value (of a BSON type the column holds) is already
#: what asyncpg writes: no conversion, no check.
PLAIN_PG_TYPES = frozenset({"integer", "bigint", "double precision", "boolean"})


def column_converter(pg_type: str) -> Converter:
    """``convert(value, bson_type)`` → what asyncpg writes to a ``pg_type`` column.

    ``value`` must already be of a BSON type the column holds (:data:`PG_TYPE_HOLDS`);
    raises :class:`UnfitValue` when this one value cannot be held exactly.
    """
    return _CONVERTERS[pg_type]


def to_column(pg_type: str, value: Any) -> Any:
    """What asyncpg writes for ``value`` in a ``pg_type`` column (``None`` for null)."""
    kind = bson_type(value)
    if kind == "null":
        return None
    if kind not in PG_TYPE_HOLDS[pg_type]:
        raise UnfitValue(f"{pg_type} does not hold BSON {kind}")
    return _CONVERTERS[pg_type](value, kind)


def from_column(pg_type: str, bson_kind: str, value: Any) -> Any:
    """The BSON value back from what asyncpg read from a ``pg_type`` column.

    ``bson_kind`` says which BSON type the column held (a widened column holds several;
    its values come back as the widest).
    """
    return None if value is None else column_reader(pg_type, bson_kind)(value)


def column_reader(pg_type: str, bson_kind: str) -> Callable[[Any], Any]:
    """:func:`from_column` for one column, chosen once: ``read(value)`` for a non-null value.

    Restoring documents from rows (``verify``, the follower's updates) calls it per value.
    """
    if pg_type == "jsonb":
        return from_jsonb
    if pg_type in ("integer", "bigint", "numeric") and bson_kind in ("int", "long"):
        return Int64 if bson_kind == "long" else int
    if pg_type == "numeric":
        return decimal128_of
    if pg_type == "text":
        if bson_kind == "objectId":
            return ObjectId
        return Code if bson_kind == "javascript" else str
    if pg_type == "uuid":
        return _uuid_back
    if pg_type == "bytea":
        return bytes
    return _same_value


def _uuid_back(value: Any) -> uuid.UUID:
    return uuid.UUID(bytes=value.bytes)


def _same_value(value: Any) -> Any:
    return value


_COEFFICIENT_DIGITS = 34
_EXPONENT_BIAS = 6176
_MAX_EXPONENT = 6111
_LOW_64 = (1 << 64) - 1
_BID = struct.Struct("<QQ")  # the low 64 bits, then the high: Decimal128.from_bid's bytes


def decimal128_of(number: Decimal) -> Decimal128:
    """``Decimal128`` of a numeric as asyncpg reads it, at PostgreSQL's own scale.

    asyncpg reads numeric 100000 as ``Decimal('1.0E+5')``: the exponent goes back to
    zero. A finite value that fits 34 digits is packed straight into the BID halves (what
    ``Decimal128(Decimal)`` computes bit by bit in Python: about 2 µs against 6 µs here);
    anything else takes that general path.
    """
    sign, digits, exponent = number.as_tuple()
    if isinstance(exponent, int) and exponent > 0:
        digits, exponent = digits + (0,) * exponent, 0
        number = Decimal((sign, digits, 0))
    text = str(number)
    if (
        isinstance(exponent, int)
        and len(digits) <= _COEFFICIENT_DIGITS
        and -_EXPONENT_BIAS <= exponent <= _MAX_EXPONENT
        and "E" not in text
    ):
        coefficient = int(text.replace(".", "").replace("-", ""))  # digits, from C
        return _packed(sign, coefficient, exponent)
    return Decimal128(number)


def _packed(negative: int, coefficient: int, exponent: int) -> Decimal128:
    """The Decimal128 of a coefficient (up to 34 digits) and an exponent in range."""
    high = (negative << 63) | ((exponent + _EXPONENT_BIAS) << 49) | (coefficient >> 64)
    return Decimal128.from_bid(_BID.pack(coefficient & _LOW_64, high))


def decimal128_of_text(text: str) -> Decimal128:
    """The ``Decimal128`` whose :func:`decimal_text` is ``text``, bit for bit.

    ``Decimal128(Decimal(text))`` packs the coefficient bit by bit in Python (about 6 µs);
    a plain finite text of up to 34 digits is packed straight into the BID halves here.
    NaN, infinities and anything else take that general path.
    """
    negative = text[:1] == "-"
    mantissa, _, power = (text[1:] if negative else text).partition("E")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    if not digits.isdigit() or not digits.isascii() or len(digits) > _COEFFICIENT_DIGITS:
        return Decimal128(Decimal(text))
    exponent = (int(power) if power else 0) - len(fraction)
    if not -_EXPONENT_BIAS <= exponent <= _MAX_EXPONENT:
        return Decimal128(Decimal(text))
    return _packed(negative, int(digits), exponent)


def comparable(pg_type: str, value: Any) -> Any:
    """One form for a value written to a ``pg_type`` column and the one asyncpg reads back.

    Equal forms mean the column holds what was written: doubles compare by ``repr``
    (``-0.0``, ``nan``), numerics by exact decimal text, instants in UTC, jsonb by its
    decoded BSON values (not by PostgreSQL's reformatted text).
    """
    if value is None:
        return None
    if pg_type == "jsonb":
        return to_jsonb(from_jsonb(value))
    if pg_type == "double precision":
        return repr(float(value))
    if pg_type == "numeric":
        return _plain_decimal(value if isinstance(value, Decimal) else Decimal(value))
    if pg_type == "timestamptz":
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    if pg_type == "uuid":
        return str(value)
    if pg_type == "bytea":
        return bytes(value)
    if pg_type in ("integer", "bigint"):
        return int(value)
    return value


def _expanded(number: Decimal) -> Decimal:
    """``number`` without a positive exponent (``1.0E+5`` → ``100000``), as numeric holds it."""
    sign, digits, exponent = number.as_tuple()
    if isinstance(exponent, int) and exponent > 0:
        return Decimal((sign, digits + (0,) * exponent, 0))
    return number


def _plain_decimal(number: Decimal) -> str:
    return str(_expanded(number)) if number.is_finite() else str(number)


def same_bson(left: Any, right: Any) -> bool:
    """Whether two values are the same BSON value: type, bits (``-0.0``, NaN) and key order.

    Python types that encode alike compare alike (a naive and an aware datetime of the
    same instant, ``uuid.UUID`` and its subtype-4 ``Binary``, a ``DBRef`` and its document).
    """
    kind = bson_type(left)
    if kind != bson_type(right):
        return False
    compare = _SAME.get(kind)
    return compare(left, right) if compare is not None else bool(left == right)


def _same_object(left: Any, right: Any) -> bool:
    left = left.as_doc() if isinstance(left, DBRef) else left
    right = right.as_doc() if isinstance(right, DBRef) else right
    return list(left) == list(right) and all(same_bson(left[k], right[k]) for k in left)


def _same_array(left: Any, right: Any) -> bool:
    return len(left) == len(right) and all(map(same_bson, left, right))


def _milliseconds(value: Any) -> int:
    if isinstance(value, DatetimeMS):
        return int(value)
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    delta: timedelta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _uuid_bytes(value: Any) -> bytes:
    return value.bytes if isinstance(value, uuid.UUID) else bytes(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SAME: dict[str, Callable[[Any, Any], bool]] = {
    "object": _same_object,
    "array": _same_array,
    "double": lambda a, b: repr(float(a)) == repr(float(b)),
    "date": lambda a, b: _milliseconds(a) == _milliseconds(b),
    "uuid": lambda a, b: _uuid_bytes(a) == _uuid_bytes(b),
    "binData": lambda a, b: bytes(a) == bytes(b) and _subtype(a) == _subtype(b),
    "decimal": lambda a, b: a.bid == b.bid,
    "string": lambda a, b: str(a) == str(b),
    "int": lambda a, b: int(a) == int(b),
    "long": lambda a, b: int(a) == int(b),
    "bool": lambda a, b: a is b,
    "regex": lambda a, b: a.pattern == b.pattern and a.flags == b.flags,
    "javascript": lambda a, b: str(a) == str(b),
    "javascriptWithScope": lambda a, b: str(a) == str(b) and _same_object(a.scope, b.scope),
}


def _subtype(value: Any) -> int:
    return int(value.subtype) if isinstance(value, Binary) else 0


# -- widening ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Widening:
    """The column type for a field whose BSON types vary, and why (a report line)."""

    pg_type: str
    reason: str
    keeps_type: bool


_NUMBERS = ("int", "long", "decimal")


def widen(bson_types: Iterable[str]) -> Widening:
    """The column type for a field seen with these BSON types (``null`` aside).

    int → long → decimal widen (bigint, then numeric: every value exact, the BSON type
    of each is not kept); any other mix is jsonb, which keeps each value and its type.
    """
    kinds = sorted(set(bson_types) - {"null"}, key=lambda k: (k not in _NUMBERS, k))
    if not kinds:
        return Widening("jsonb", "only nulls seen: jsonb takes whatever comes later", True)
    if len(kinds) == 1:
        kind = kinds[0]
        return Widening(DEFAULT_PG_TYPE[kind], f"every value is {kind}", True)
    if set(kinds) <= {"int", "long"}:
        return Widening(
            "bigint", "int and long: bigint holds both exactly (which was int is not kept)", False
        )
    if set(kinds) <= set(_NUMBERS):
        return Widening(
            "numeric",
            f"{', '.join(kinds)}: numeric holds every value exactly (the BSON type is not kept)",
            False,
        )
    return Widening("jsonb", f"mixed {', '.join(kinds)}: jsonb keeps each value and its type", True)
