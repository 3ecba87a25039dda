"""From the planner's drafts to a :class:`~migrationkit._mapping.spec.TableMapping`.

Three steps after :class:`~migrationkit._mapping.infer_fields.FieldPlanner` has decided
each field: fit every table within PostgreSQL's 1,600 columns (fold the widest
flattened object back into jsonb, then leave out the least present fields), give
tables and columns their names, and build the mapping and its per-column comments.
"""

from __future__ import annotations

from collections import Counter

from migrationkit._mapping.column_names import assign_names, fold_path
from migrationkit._mapping.field_stats import Path, display_path
from migrationkit._mapping.infer_fields import ColumnDraft, FieldPlanner, TableDraft
from migrationkit._mapping.spec import MAX_COLUMNS, ChildTable, Column, TableMapping, join_path


def assemble(planner: FieldPlanner, collection: str) -> TableMapping:
    """The mapping of ``collection`` the planner's fields make, every table within limits."""
    main = _plan_within_column_limit(planner)
    _name(planner, main)
    return TableMapping(
        collection=collection,
        table=main.name,
        columns=tuple(_column(draft, planner.catch_all) for draft in main.columns),
        children=tuple(
            ChildTable(
                path=join_path(child.keys),
                table=child.name,
                columns=tuple(_column(draft, planner.catch_all) for draft in child.columns),
                catch_all=planner.catch_all,
            )
            for child in main.children
        ),
        drop=tuple(main.drop),
        catch_all=planner.catch_all,
    )


def column_comments(planner: FieldPlanner, documents: int) -> dict[str, str]:
    """What each column saw, keyed as :func:`mapping_to_toml` looks comments up."""
    comments = {}
    for line in planner.lines:
        draft = line.column
        if draft is None:
            continue
        path = join_path(draft.keys)
        if line.table.base:
            path = f"{join_path(line.table.keys)}[].{path}"
        seen = line.freeze(documents)
        types = ", ".join(f"{name} {count:,}" for name, count in seen.types.items())
        flags = "".join(f"; ! {warning}" for warning in seen.warnings)
        comments[path] = f"{seen.presence:.1f}% present: {types}{flags}"
    return comments


def _column(draft: ColumnDraft, catch_all: str | None) -> Column:
    return Column(
        path=join_path(draft.keys),
        name=draft.name,
        pg_type=draft.pg_type,
        bson_types=draft.bson_types,
        nullable=draft.nullable,
        on_mismatch="extra" if draft.nullable and catch_all else "reject",
    )


# -- PostgreSQL's column limit ----------------------------------------------------------


def _plan_within_column_limit(planner: FieldPlanner) -> TableDraft:
    # Flattening can exceed PostgreSQL's 1,600 columns: fold the widest flattened
    # object back into one jsonb column until every table fits.
    while True:
        main = planner.plan()
        widest = _widest_flattened(main, planner.catch_all)
        if widest is None:
            break
        path, width = widest
        planner.forced_jsonb.add(path)
        planner.global_warnings.append(
            f"over PostgreSQL's {MAX_COLUMNS:,} columns: {display_path(path)} "
            f"({width:,} flattened columns) kept as one jsonb column instead"
        )
    for table in (main, *main.children):
        _trim_to_column_limit(planner, table)
    return main


def _widest_flattened(main: TableDraft, catch_all: str | None) -> tuple[Path, int] | None:
    best: tuple[Path, int] | None = None
    for table in (main, *main.children):
        if _width(table, catch_all) <= MAX_COLUMNS:
            continue
        roots = Counter(c.flattened_from for c in table.columns if c.flattened_from is not None)
        for root, width in roots.items():
            if best is None or width > best[1]:
                best = (table.base + root, width)
    return best


def _trim_to_column_limit(planner: FieldPlanner, table: TableDraft) -> None:
    catch_all = planner.catch_all
    excess = _width(table, catch_all) - MAX_COLUMNS
    if excess <= 0:
        return
    by_presence = sorted(table.columns, key=lambda c: -c.presence)
    dropped = {id(draft) for draft in by_presence[len(table.columns) - excess :]}
    table.columns = [c for c in table.columns if id(c) not in dropped]
    where = f"lands in {catch_all!r}" if catch_all else "is dropped (counted at load)"
    for line in planner.lines:
        if id(line.column) in dropped:
            line.column, line.store = None, "extra"
            line.warnings.append(
                f"past PostgreSQL's {MAX_COLUMNS:,} columns (among the least present): {where}"
            )
    planner.global_warnings.append(
        f"table {table.name!r}: {len(dropped):,} fields over PostgreSQL's {MAX_COLUMNS:,} "
        f"columns are not columns; each {where}"
    )


def _width(table: TableDraft, catch_all: str | None) -> int:
    return 2 + len(table.columns) + (1 if catch_all else 0)


# -- names ------------------------------------------------------------------------------


def _name(planner: FieldPlanner, main: TableDraft) -> None:
    tables = [
        (child.keys, join_path(child.keys), f"{main.name}__{fold_path(child.keys)}")
        for child in main.children
    ]
    names = assign_names(tables, reserved={main.name.casefold()})
    for child in main.children:
        child.name, warning = names[child.keys]
        if warning and child.line is not None:
            child.line.warnings.append(f"table name: {warning}")
    for table in (main, *main.children):
        _name_columns(planner, table)


def _name_columns(planner: FieldPlanner, table: TableDraft) -> None:
    wanted = [(c.keys, join_path(c.keys) or "value", fold_path(c.keys)) for c in table.columns]
    names = assign_names(wanted, reserved=planner.reserved)
    lines = {id(line.column): line for line in planner.lines if line.column is not None}
    for draft in table.columns:
        draft.name, warning = names[draft.keys]
        if warning:
            lines[id(draft)].warnings.append(warning)
