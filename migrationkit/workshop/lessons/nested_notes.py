"""What lesson 08 says: every sentence with a number is made here, from the lesson's runs.

A layout (or an index) is called faster only when its middle runs all beat the other's
(a quarter of each side's runs left out at each end) and its median is at least 1.5
times lower (:func:`~migrationkit.workshop.lessons.nested.clearly_faster`); otherwise
the text says the runs overlap or the gap is small. The conclusion names, for each
layout, only the questions it clearly won and the sizes it measured.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from bson import Decimal128, ObjectId

from migrationkit._mapping.spec import TableMapping
from migrationkit._normalize.rows import DocumentRows
from migrationkit._target.mapping_sql import create_table_statements
from migrationkit.workshop.lessons import overlap as O
from migrationkit.workshop.lessons.nested import (
    BATCH_SIZE,
    INDEXED,
    LESSON_INDEXES,
    MIGRATION_REPEATS,
    NO_INDEX,
    REPEATS,
    WORKERS,
    Answer,
    MiB,
    Migrated,
    Shop,
    TableSize,
    Timings,
    answer_size,
    clearly_faster,
    disagreements,
    layout_bytes,
)
from migrationkit.workshop.lessons.nested_sql import LAYOUT_NAMES, LAYOUTS, Layout, Question
from migrationkit.workshop.lessons.overlap import DASH, TIMES, Spread

#: What each question stands for, in the conclusion ("pick X when you ...").
USE_CASES = {
    "revenue": "add up every line item (revenue per city)",
    "bought": "search inside the orders (who bought a product)",
    "largest": "rank the orders (the 10 largest)",
    "city": "filter on a field of the address (customers in a city)",
    "document": "read whole documents back (one customer)",
}
#: How many characters of a long value the row previews show.
PREVIEW_CHARS = 70


def mib(value: int) -> str:
    return f"{value / MiB:,.1f} MiB"


def _spread_ms(spread: Spread) -> str:
    low, high = spread.seconds_range
    return f"{O.ms(spread.seconds)} ({O.ms(low).removesuffix(' ms')}{DASH}{O.ms(high)})"


# -- the set-up ---------------------------------------------------------------------------


def shop_note(shop: Shop) -> str:
    """Markdown: this run's data and settings, then the machine (lessons 02-07's note)."""
    seeded = (
        "already there, reused" if shop.seeded_s is None else f"seeded in {shop.seeded_s:.1f} s"
    )
    return (
        f"**This run:** {shop.customers:,} customers in `{shop.settings.mongo_collection}` "
        f"({mib(shop.bson_bytes)} of BSON; {shop.orders:,} orders, {shop.items:,} line items), "
        f"{seeded}. `migrate()`: {WORKERS} asyncio workers, batches of {BATCH_SIZE}, "
        f"{MIGRATION_REPEATS} runs a layout; every query {REPEATS} runs after untimed ones. "
        f"{O.machine_note()}"
    )


def _short(value: Any) -> str:
    if isinstance(value, datetime):
        text = value.isoformat(timespec="milliseconds")
    elif isinstance(value, Decimal128 | ObjectId | Decimal):
        text = str(value)
    else:
        text = str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def document_preview(document: Mapping[str, Any], *, orders: int = 1) -> str:
    """The document as indented text, with only its first ``orders`` orders in full."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        if isinstance(value, ObjectId):
            return f"ObjectId('{value}')"
        if isinstance(value, Decimal128):
            return f"Decimal128('{value}')"
        if isinstance(value, datetime):
            return f"datetime({value.isoformat(timespec='milliseconds')})"
        return value

    shown = dict(document)
    hidden = len(shown.get("orders", [])) - orders
    shown["orders"] = shown.get("orders", [])[:orders]
    text = json.dumps(plain(shown), indent=2, ensure_ascii=False)
    if hidden > 0:
        text += f"\n… and {hidden} more order{'s' if hidden > 1 else ''}"
    return text


def ddl_markdown(mappings: Mapping[Layout, TableMapping]) -> str:
    """Markdown: the ``CREATE TABLE`` statements ``migrate()`` runs for each mapping."""
    parts = []
    for layout, mapping in mappings.items():
        statements = ";\n".join(create_table_statements(mapping))
        parts.append(f"*{LAYOUT_NAMES[layout]}*\n\n```sql\n{statements};\n```")
    return "\n\n".join(parts)


def rows_markdown(mapping: TableMapping, rows: DocumentRows, *, child_rows: int = 2) -> str:
    """Markdown: the rows one document becomes under ``mapping`` (long values cut short)."""
    parts = [_table(mapping.table, mapping.column_names, [rows.row])]
    for child in mapping.children:
        found = rows.children.get(child.table, [])
        shown = found[:child_rows]
        more = f" (the first {len(shown)} of {len(found)})" if len(found) > len(shown) else ""
        parts.append(_table(child.table + more, child.column_names, shown))
    return "\n\n".join(parts)


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "| " + " | ".join(f"`{name}`" for name in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = [
        "| " + " | ".join("NULL" if v is None else _short(v) for v in row) + " |" for row in rows
    ]
    return "\n".join([f"`{title}`", "", head, rule, *body])


# -- migrating ----------------------------------------------------------------------------


def migration_note(migrated: Migrated) -> str:
    """Markdown: each layout's copy rate, the rows it wrote, what bound it; the source alone."""
    read = migrated.read
    lines = []
    for layout in LAYOUTS:
        spread = migrated.runs[layout]
        low, high = spread.rate_range
        mapping_rows = ", ".join(
            f"`{table}` {rows:,} rows"
            for table, rows in migrated.rows.items()
            if table in migrated.tables[layout]
        )
        bound = O.bound_by(spread, read_rate=read.rate, fewest_rate=spread.rate, fewest=WORKERS)
        lines.append(
            f"- **{LAYOUT_NAMES[layout]}**: {spread.rate:,.0f} customers/s "
            f"({low:,.0f}{DASH}{high:,.0f}), copy {spread.seconds:.1f} s; {mapping_rows}. "
            f"Bound by {bound}."
        )
    lines.append(
        f"- **The source alone** (the kit's reader, writing nothing): {read.rate:,.0f} "
        f"customers/s ({read.rate_range[0]:,.0f}{DASH}{read.rate_range[1]:,.0f})."
    )
    ranked = sorted(LAYOUTS, key=lambda layout: migrated.runs[layout].seconds)
    fast, slow = migrated.runs[ranked[0]], migrated.runs[ranked[-1]]
    if clearly_faster(fast, slow):
        lines.append(
            f"\n**{LAYOUT_NAMES[ranked[0]]}** wrote fastest and **{LAYOUT_NAMES[ranked[-1]]}** "
            f"slowest: {ratio(slow.seconds / fast.seconds)} the time, every run apart."
        )
    else:
        lines.append(
            "\nNo layout copied clearly faster than another (fastest "
            f"{LAYOUT_NAMES[ranked[0]]}, {fast.seconds:.1f} s; slowest "
            f"{LAYOUT_NAMES[ranked[-1]]}, {slow.seconds:.1f} s): writing them costs about the same "
            "here."
        )
    return "\n".join(lines)


def ratio(value: float) -> str:
    return f"{value:.1f}{TIMES}"


# -- sizes --------------------------------------------------------------------------------


def sizes_table(sizes: Sequence[TableSize]) -> str:
    """Markdown: every table, its rows and the parts of its size."""
    lines = [
        "| layout | table | rows | table (heap) | TOAST | the kit's key index "
        "| the lesson's indexes | total |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        parts = " | ".join(mib(value) for value in size.parts.values())
        lines.append(
            f"| {LAYOUT_NAMES[size.layout]} | `{size.table}` | {size.rows:,} | {parts} "
            f"| **{mib(size.total)}** |"
        )
    return "\n".join(lines)


def sizes_note(
    sizes: Sequence[TableSize], *, bson_bytes: int, compressed: Mapping[tuple[str, str], float]
) -> str:
    """Markdown: each layout's total against the BSON, the extremes, and what compression did."""
    totals = {layout: parts["total"] for layout, parts in layout_bytes(sizes).items()}
    small = min(totals, key=totals.__getitem__)
    big = max(totals, key=totals.__getitem__)
    lines = [
        f"- **{LAYOUT_NAMES[layout]}**: {mib(total)} with every index, "
        f"{total / bson_bytes:.2f}{TIMES} the documents' {mib(bson_bytes)} of BSON."
        for layout, total in totals.items()
    ]
    lines.append(
        f"- Smallest: **{LAYOUT_NAMES[small]}**; largest: **{LAYOUT_NAMES[big]}**, "
        f"{ratio(totals[big] / totals[small])} as big."
    )
    parts = layout_bytes(sizes)
    bare = {layout: p["total"] - p[LESSON_INDEXES] for layout, p in parts.items()}
    lean = min(bare, key=bare.__getitem__)
    lines.append(
        "- Without the lesson's indexes (the tables, TOAST and the kit's keys): "
        + ", ".join(f"{LAYOUT_NAMES[layout]} {mib(total)}" for layout, total in bare.items())
        + f"; the smallest is **{LAYOUT_NAMES[lean]}**. The lesson's indexes: "
        + ", ".join(
            f"{LAYOUT_NAMES[layout]} {mib(p[LESSON_INDEXES])}" for layout, p in parts.items()
        )
        + "."
    )
    shares = ", ".join(
        f"`{table}.{column}` {share:.0%}" for (table, column), share in compressed.items()
    )
    lines.append(
        "- PostgreSQL compresses a row's long values only when the row passes about 2 kB "
        f"(TOAST's threshold). Values stored compressed: {shares}."
    )
    return "\n".join(lines)


# -- answers ------------------------------------------------------------------------------


def agreement_note(
    answers: Mapping[str, Mapping[Layout, Answer]], questions: Sequence[Question]
) -> str:
    """Markdown: for each question, whether the three layouts gave the same answer."""
    differ = set(disagreements(answers))
    lines = []
    for question in questions:
        by_layout = answers[question.key]
        size = answer_size(by_layout[LAYOUTS[0]])
        what = "one document" if question.kind == "document" else f"{size:,} rows"
        verdict = (
            "**the layouts differ**: "
            + ", ".join(
                f"{LAYOUT_NAMES[layout]} {answer_size(a):,}" for layout, a in by_layout.items()
            )
            if question.key in differ
            else "the same on all three layouts"
        )
        lines.append(f"- *{question.title}*: {what}, {verdict}.")
    return "\n".join(lines)


def answer_preview(question: Question, answer: Answer, *, rows: int = 5) -> str:
    """Markdown: the first ``rows`` rows of an answer (a document: its top-level fields)."""
    if question.kind == "document":
        orders = answer.get("orders", [])
        items = sum(len(order["items"]) for order in orders)
        body = [
            f"| `{key}` | {_short(value)} |" for key, value in answer.items() if key != "orders"
        ]
        body.append(f"| `orders` | {len(orders)} orders, {items} line items |")
        return "\n".join([f"**{question.title}**", "", "| field | value |", "|---|---|", *body])
    shown = answer[:rows]
    more = f" (the first {len(shown)} of {len(answer):,})" if len(answer) > len(shown) else ""
    lines = [f"**{question.title}**{more}", ""]
    lines.append("| " + " | ".join(f"`{name}`" for name in question.columns) + " |")
    lines.append("|" + "---|" * len(question.columns))
    lines += ["| " + " | ".join(_short(value) for value in row) + " |" for row in shown]
    return "\n".join(lines)


# -- query times --------------------------------------------------------------------------


def index_effect(bare: Spread, indexed: Spread, *, used: bool = True) -> str:
    """``12.3x faster``, ``slower``, ``no clear change``, or ``not used`` (the same plan)."""
    if not used:
        return "not used (the same plan)"
    if clearly_faster(indexed, bare):
        return f"{ratio(bare.seconds / indexed.seconds)} faster"
    if clearly_faster(bare, indexed):
        return f"{ratio(indexed.seconds / bare.seconds)} slower"
    return "no clear change"


def timing_table(timings: Timings, questions: Sequence[Question]) -> str:
    """Markdown: every question on every layout, both ways, and how the indexed plan read."""
    lines = [
        "| question | layout | no index | indexed | the index | indexed, the tables were read by |",
        "|---|---|---:|---:|---|---|",
    ]
    for question in questions:
        for layout in LAYOUTS:
            bare = timings.get(question.key, layout, NO_INDEX)
            indexed = timings.get(question.key, layout, INDEXED)
            effect = index_effect(bare, indexed, used=timings.index_used(question.key, layout))
            read = "; ".join(timings.plans[(question.key, layout, INDEXED)])
            lines.append(
                f"| {question.title} | {LAYOUT_NAMES[layout]} | {_spread_ms(bare)} "
                f"| {_spread_ms(indexed)} | {effect} | {read} |"
            )
    return "\n".join(lines)


def winner(timings: Timings, key: str) -> tuple[Layout, bool]:
    """The layout with the fastest indexed median for question ``key``, and whether it was
    clearly faster than both others."""
    indexed = {layout: timings.get(key, layout, INDEXED) for layout in LAYOUTS}
    best = min(LAYOUTS, key=lambda layout: indexed[layout].seconds)
    clear = all(clearly_faster(indexed[best], indexed[o]) for o in LAYOUTS if o != best)
    return best, clear


def index_helped(timings: Timings, key: str) -> dict[Layout, float | None]:
    """Per layout, no index over indexed (medians) where the plan used an index and it
    clearly helped; else None."""
    out: dict[Layout, float | None] = {}
    for layout in LAYOUTS:
        bare = timings.get(key, layout, NO_INDEX)
        indexed = timings.get(key, layout, INDEXED)
        helped = timings.index_used(key, layout) and clearly_faster(indexed, bare)
        out[layout] = bare.seconds / indexed.seconds if helped else None
    return out


def _joined(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _indexed(timings: Timings, key: str, layout: Layout) -> Spread:
    return timings.get(key, layout, INDEXED)


def fastest_note(timings: Timings, questions: Sequence[Question]) -> str:
    """Markdown: for each question, the fastest layout with its indexes, and how clearly."""
    lines = []
    for question in questions:
        best, _ = winner(timings, question.key)
        spread = _indexed(timings, question.key, best)
        others = [layout for layout in LAYOUTS if layout != best]
        ahead = [o for o in others if clearly_faster(spread, _indexed(timings, question.key, o))]
        level = [o for o in others if o not in ahead]

        def named(layouts: Sequence[Layout], key: str = question.key) -> str:
            return _joined(
                [f"{LAYOUT_NAMES[o]} ({O.ms(_indexed(timings, key, o).seconds)})" for o in layouts]
            )

        parts = []
        if ahead:
            parts.append(f"clearly ahead of {named(ahead)}")
        if level:
            parts.append(f"not clearly ahead of {named(level)}")
        lines.append(
            f"- *{question.title}*: **{LAYOUT_NAMES[best]}** {O.ms(spread.seconds)}, "
            + "; ".join(parts)
            + "."
        )
    return "\n".join(lines)


def _ratio_range(values: Sequence[float]) -> str:
    low, high = min(values), max(values)
    return ratio(low) if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}{DASH}{ratio(high)}"


def _titles(questions: Sequence[Question]) -> str:
    return _joined([f"*{q.title}*" for q in questions])


def conclusion(
    timings: Timings,
    questions: Sequence[Question],
    sizes: Sequence[TableSize],
    migrated: Migrated,
) -> str:
    """Markdown: when to pick which layout, from this run's numbers only."""
    totals = {layout: parts["total"] for layout, parts in layout_bytes(sizes).items()}
    least = min(totals.values())
    lines = []
    for layout in LAYOUTS:
        won = [q for q in questions if winner(timings, q.key) == (layout, True)]
        smallest = totals[layout] == least
        others = _joined(
            [f"{LAYOUT_NAMES[o]} {totals[o] / least - 1:.0%} more" for o in LAYOUTS if o != layout]
        )
        size = (
            f"the least on disk, {mib(totals[layout])} ({others})"
            if smallest
            else f"{mib(totals[layout])} on disk ({totals[layout] / least - 1:.0%} more than the "
            "least)"
        )
        cases = [USE_CASES[q.key] for q in won] + (["need the least space"] if smallest else [])
        facts = [
            f"*{q.title}* {O.ms(_indexed(timings, q.key, layout).seconds)} against "
            + _joined(
                [
                    f"{LAYOUT_NAMES[o]} {O.ms(_indexed(timings, q.key, o).seconds)}"
                    for o in LAYOUTS
                    if o != layout
                ]
            )
            for q in won
        ]
        if cases:
            lines.append(
                f"- **Pick {LAYOUT_NAMES[layout]} when you {' or '.join(cases)}**: "
                + "; ".join([*facts, size])
                + "."
            )
        else:
            lines.append(
                f"- **{LAYOUT_NAMES[layout]}**: not clearly the fastest at any question here, "
                f"nor the smallest; {size}."
            )
    helped = {q.key: index_helped(timings, q.key) for q in questions}
    always = [q for q in questions if all(v is not None for v in helped[q.key].values())]
    never = [q for q in questions if all(v is None for v in helped[q.key].values())]
    if always:
        parts = _joined(
            [
                f"*{q.title}* {_ratio_range([v for v in helped[q.key].values() if v])}"
                for q in always
            ]
        )
        lines.append(
            f"- **Whatever the layout, index what you search**: with its index, {parts} faster "
            "on every layout."
        )
    if never:
        lines.append(f"- No index clearly changed {_titles(never)} on any layout.")
    ranked = sorted(LAYOUTS, key=lambda layout: migrated.runs[layout].seconds)
    fast, slow = migrated.runs[ranked[0]], migrated.runs[ranked[-1]]
    if clearly_faster(fast, slow):
        lines.append(
            f"- Writing: {LAYOUT_NAMES[ranked[0]]} copied in {fast.seconds:.1f} s, "
            f"{LAYOUT_NAMES[ranked[-1]]} in {slow.seconds:.1f} s (medians)."
        )
    else:
        lines.append(
            f"- Writing does not decide it: no layout copied clearly faster ({fast.seconds:.1f}"
            f"{DASH}{slow.seconds:.1f} s, medians)."
        )
    return "\n".join(lines)


def recap(
    timings: Timings,
    questions: Sequence[Question],
    sizes: Sequence[TableSize],
    answers: Mapping[str, Mapping[Layout, Answer]],
) -> str:
    """The lesson's three lines, each number from the runs."""
    differ = disagreements(answers)
    same = (
        f"all {len(questions)} questions got the same answer from all three"
        if not differ
        else f"{len(differ)} of {len(questions)} questions got different answers"
    )
    helped = {q.key: index_helped(timings, q.key) for q in questions}
    searched = [q for q in questions if any(v is not None for v in helped[q.key].values())]
    gains = [v for q in searched for v in helped[q.key].values() if v is not None]
    never = [q for q in questions if q not in searched]
    index_line = (
        f"2. An index made {_titles(searched)} {_ratio_range(gains)} faster where it clearly helped"
        if searched
        else "2. No index clearly changed any query here"
    ) + (f"; it did not clearly change {_titles(never)} on any layout." if never else ".")
    totals = {layout: parts["total"] for layout, parts in layout_bytes(sizes).items()}
    small, big = min(totals, key=totals.__getitem__), max(totals, key=totals.__getitem__)
    wins = [
        f"*{q.title}*: {LAYOUT_NAMES[winner(timings, q.key)[0]]}"
        for q in questions
        if winner(timings, q.key)[1]
    ]
    won = "; ".join(wins) if wins else "no layout was clearly fastest at any question"
    return "\n".join(
        [
            f"1. One collection, three mappings (jsonb, flattened columns, child tables), one "
            f"`migrate()` each; {same}, in SQL that differs by layout.",
            index_line,
            f"3. The layout decided the rest. Clearly fastest with their indexes: {won}. "
            f"Smallest: {LAYOUT_NAMES[small]} ({mib(totals[small])}); largest: "
            f"{LAYOUT_NAMES[big]} ({mib(totals[big])}).",
        ]
    )
