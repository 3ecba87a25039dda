"""Comparing settings run several times: a difference counts only where the ranges part.

Each setting is a :class:`~migrationkit.workshop.lessons.overlap.Spread` (its runs'
median and min-max). Two settings whose min-max ranges overlap cannot be told apart
by these runs: the lessons call them a tie instead of ranking their medians, and
state a ratio only between settings that do not overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from migrationkit.workshop.lessons.overlap import DASH, TIMES, Spread

#: What a spread is compared on: its rows/s (the default) or its seconds.
Span = Callable[[Spread], tuple[float, float]]


def rate_span(spread: Spread) -> tuple[float, float]:
    return spread.rate_range


def seconds_span(spread: Spread) -> tuple[float, float]:
    return spread.seconds_range


def overlaps(a: Spread, b: Spread, *, span: Span = rate_span) -> bool:
    """Whether the min-max ranges of ``a`` and ``b`` share any value (touching counts)."""
    low_a, high_a = span(a)
    low_b, high_b = span(b)
    return low_a <= high_b and low_b <= high_a


def tiers(spreads: Sequence[Spread]) -> list[list[Spread]]:
    """The spreads, fastest median first, grouped where their rate ranges overlap.

    A group is a chain of overlapping ranges (the union of intervals): within it no
    setting is told apart from its neighbour, so none is ranked above another. Each
    group's members keep the order of their medians; groups are separated by a gap.
    """
    ordered = sorted(spreads, key=lambda spread: spread.rate_range[1], reverse=True)
    groups: list[list[Spread]] = []
    lowest = 0.0
    for spread in ordered:
        low, high = spread.rate_range
        if groups and high >= lowest:
            groups[-1].append(spread)
            lowest = min(lowest, low)
        else:
            groups.append([spread])
            lowest = low
    return [sorted(group, key=lambda spread: spread.rate, reverse=True) for group in groups]


def times(value: float) -> str:
    """A ratio with the digits that matter: ``1.14x`` near one, ``3.1x`` above 1.5."""
    return f"{value:.2f}{TIMES}" if value < 1.5 else f"{value:.1f}{TIMES}"


def times_as_fast(a: Spread, b: Spread) -> float:
    """How many times ``b``'s median rows/s ``a``'s median is."""
    return a.rate / b.rate if b.rate > 0 else float("inf")


def versus(a: Spread, b: Spread) -> str:
    """``"3.1x"`` (a's median over b's), or ``"a tie"`` where their ranges overlap."""
    if overlaps(a, b):
        return "a tie (their ranges overlap)"
    return times(times_as_fast(a, b))


def rate_cell(spread: Spread) -> str:
    """``"22,071 (20,100-23,900)"``: the median rows/s and the runs' range."""
    low, high = spread.rate_range
    return f"{spread.rate:,.0f} ({low:,.0f}{DASH}{high:,.0f})"


def seconds_cell(spread: Spread) -> str:
    """``"1.42 s (1.38-1.51)"``: the median seconds and the runs' range."""
    low, high = spread.seconds_range
    return f"{spread.seconds:.2f} s ({low:.2f}{DASH}{high:.2f})"
