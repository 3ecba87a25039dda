"""Mappings: how any MongoDB collection becomes PostgreSQL tables, every BSON value kept.

``spec`` says what a mapping is, ``types`` what each BSON type becomes (and the lossless
jsonb encoding), ``normalize`` turns one document into rows, ``restore`` turns rows back
into the document, ``toml`` reads and writes mappings, ``infer`` proposes one from a
sample (with ``field_stats``, ``infer_fields``, ``infer_assembly``, ``column_names`` and
``infer_report``). ``fast_rows`` writes the rows of mappings of columns, flattened
objects and top-level child tables, and of the users table, from raw BSON in C
(``_fastrows.c``); everything else
is pure Python. The SQL for a mapping is in
:mod:`migrationkit._target.mapping_sql`, and :mod:`migrationkit._target.fidelity`
measures what each writer keeps.
"""

from migrationkit._mapping.normalize import (
    DocumentRejected,
    Normalizer,
    compile_mapping,
    document_key,
    normalize,
)
from migrationkit._mapping.restore import restore_document
from migrationkit._mapping.spec import (
    USERS,
    VALIDATORS,
    ChildTable,
    Column,
    MappingError,
    TableMapping,
    join_path,
    split_path,
)
from migrationkit._mapping.toml import mapping_from_dict, mapping_to_toml, mappings_from_toml
from migrationkit._mapping.types import (
    MAPPING_BSON_OPTIONS,
    TYPE_MAP,
    UnfitValue,
    bson_type,
    comparable,
    format_type_map,
    from_jsonb,
    same_bson,
    to_jsonb,
    widen,
)
from migrationkit._normalize.rows import DocumentRows

__all__ = [
    "MAPPING_BSON_OPTIONS",
    "TYPE_MAP",
    "USERS",
    "VALIDATORS",
    "ChildTable",
    "Column",
    "DocumentRejected",
    "DocumentRows",
    "MappingError",
    "Normalizer",
    "TableMapping",
    "UnfitValue",
    "bson_type",
    "comparable",
    "compile_mapping",
    "document_key",
    "format_type_map",
    "from_jsonb",
    "join_path",
    "mapping_from_dict",
    "mapping_to_toml",
    "mappings_from_toml",
    "normalize",
    "restore_document",
    "same_bson",
    "split_path",
    "to_jsonb",
    "widen",
]
