"""Small-cell suppression of aggregate values before they cross a privacy boundary.

The policy (per reader: from the sharing agreement or the sponsor's default) has two numbers:

* ``cell_min`` (default 11): a count from 1 to ``cell_min - 1`` is a *small cell* and is hidden;
  0 is shown (it reveals no individual). A cell is one aggregate point: numerator, denominator
  and the values derived from them, the rate and the complement ``denominator - numerator``
  (the people without the event).
* ``min_teams`` (default 3): a point made from fewer contributing teams hides every value
  (``TOO_FEW_TEAMS``).

Rules for one cell (:func:`disclose`), in order:

1. fewer than ``min_teams`` teams → numerator, denominator, complement and rate hidden;
2. a small numerator **or** a small complement → numerator, complement and rate hidden (either
   one with the denominator would give the other back); everything else derived from the
   numerator (mean/median of team rates, teams meeting a goal) must be hidden with it;
3. a small denominator → the denominator is hidden too.

Complementary suppression (:func:`disclose_group`): when cells add up to a total that is
shown, a single hidden value could be recomputed as total - the shown ones. So, separately for
numerators and for denominators, while exactly one cell is hidden, or the hidden ones together
come to a small count, the smallest shown non-zero cell is hidden as well (``COMPLEMENTARY``);
when no cell is left to hide, the total is hidden instead.

A hidden value is None with a reason, never a silent zero. Reasons keep the first that applied:
TOO_FEW_TEAMS before SMALL_CELL before COMPLEMENTARY.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

from analytics.aggregates import rate as compute_rate

DEFAULT_CELL_MIN = 11
"""Counts 1-10 are hidden by default."""
DEFAULT_MIN_TEAMS = 3
"""A point needs at least three contributing teams by default."""


class SuppressionReason(enum.StrEnum):
    """Why a value is hidden."""

    SMALL_CELL = "SMALL_CELL"
    TOO_FEW_TEAMS = "TOO_FEW_TEAMS"
    COMPLEMENTARY = "COMPLEMENTARY"


@dataclass(frozen=True)
class SuppressionPolicy:
    """A reader's suppression thresholds."""

    cell_min: int = DEFAULT_CELL_MIN
    min_teams: int = DEFAULT_MIN_TEAMS

    def is_small(self, count: float | None) -> bool:
        """Whether a count must be hidden: 0 < count < cell_min (0 and None are not small)."""
        return count is not None and 0 < count < self.cell_min


DEFAULT_POLICY = SuppressionPolicy()


@dataclass(frozen=True)
class Cell:
    """One aggregate point before suppression; ``teams`` None means not a multi-team value."""

    numerator: float | None
    denominator: float | None = None
    teams: int | None = None


@dataclass(frozen=True)
class DisclosedCell:
    """A cell as a reader may see it: hidden values are None and ``reason`` says why."""

    numerator: float | None
    denominator: float | None
    complement: float | None
    rate: float | None
    numerator_hidden: bool
    denominator_hidden: bool
    reason: SuppressionReason | None

    @property
    def suppressed(self) -> bool:
        """Whether anything in the cell is hidden."""
        return self.reason is not None


def disclose(
    cell: Cell, policy: SuppressionPolicy = DEFAULT_POLICY, *, multiplier: float = 1.0
) -> DisclosedCell:
    """Apply the per-cell rules (too few teams, small cells) to one aggregate point."""
    numerator, denominator = cell.numerator, cell.denominator
    complement = None
    if numerator is not None and denominator is not None:
        complement = denominator - numerator
    if cell.teams is not None and cell.teams < policy.min_teams:
        return DisclosedCell(None, None, None, None, True, True, SuppressionReason.TOO_FEW_TEAMS)
    numerator_hidden = policy.is_small(numerator) or policy.is_small(complement)
    denominator_hidden = policy.is_small(denominator)
    shown = DisclosedCell(
        numerator=numerator,
        denominator=denominator,
        complement=complement,
        rate=compute_rate(numerator, denominator, multiplier),
        numerator_hidden=False,
        denominator_hidden=False,
        reason=None,
    )
    return _hide(
        shown,
        numerator=numerator_hidden,
        denominator=denominator_hidden,
        reason=SuppressionReason.SMALL_CELL,
    )


def _hide(
    cell: DisclosedCell, *, numerator: bool, denominator: bool, reason: SuppressionReason
) -> DisclosedCell:
    """``cell`` with the numerator and/or denominator (and what derives from them) hidden."""
    if not numerator and not denominator:
        return cell
    numerator_hidden = cell.numerator_hidden or numerator
    denominator_hidden = cell.denominator_hidden or denominator
    return replace(
        cell,
        numerator=None if numerator_hidden else cell.numerator,
        denominator=None if denominator_hidden else cell.denominator,
        complement=None,
        rate=None,
        numerator_hidden=numerator_hidden,
        denominator_hidden=denominator_hidden,
        reason=cell.reason or reason,
    )


def disclose_series(
    cells: Sequence[Cell], policy: SuppressionPolicy = DEFAULT_POLICY, *, multiplier: float = 1.0
) -> list[DisclosedCell]:
    """Per-cell suppression of a series of points (no total is shown, so no complements)."""
    return [disclose(cell, policy, multiplier=multiplier) for cell in cells]


@dataclass(frozen=True)
class DisclosedGroup:
    """Cells that add up to a total, after per-cell and complementary suppression."""

    cells: tuple[DisclosedCell, ...]
    total: DisclosedCell


def disclose_group(
    cells: Sequence[Cell],
    total: Cell,
    policy: SuppressionPolicy = DEFAULT_POLICY,
    *,
    multiplier: float = 1.0,
) -> DisclosedGroup:
    """Suppress cells whose numerators and denominators add up to ``total`` (e.g. the teams or
    sponsors of a collaborative in one period), so no hidden value can be recomputed."""
    shown = [disclose(cell, policy, multiplier=multiplier) for cell in cells]
    shown_total = disclose(total, policy, multiplier=multiplier)
    for dimension in ("numerator", "denominator"):
        shown, shown_total = _complement(shown, shown_total, cells, total, dimension, policy)
    return DisclosedGroup(tuple(shown), shown_total)


def _complement(
    shown: list[DisclosedCell],
    shown_total: DisclosedCell,
    cells: Sequence[Cell],
    total: Cell,
    dimension: str,
    policy: SuppressionPolicy,
) -> tuple[list[DisclosedCell], DisclosedCell]:
    """Hide more cells of one dimension until the hidden ones cannot be told apart or added up
    to a small count from the shown total."""
    hidden_flag = f"{dimension}_hidden"
    total_value: float | None = getattr(total, dimension)
    if total_value is None or getattr(shown_total, hidden_flag):
        return shown, shown_total
    while True:
        hidden = [i for i, cell in enumerate(shown) if getattr(cell, hidden_flag)]
        if not hidden:
            return shown, shown_total
        visible_sum = sum(
            getattr(cells[i], dimension) or 0.0 for i in range(len(shown)) if i not in hidden
        )
        recoverable = total_value - visible_sum
        if len(hidden) > 1 and not policy.is_small(recoverable):
            return shown, shown_total
        candidates = [
            (value, i)
            for i, cell in enumerate(shown)
            if i not in hidden and (value := getattr(cells[i], dimension)) is not None and value > 0
        ]
        if not candidates:
            hidden_total = _hide(
                shown_total,
                numerator=dimension == "numerator",
                denominator=dimension == "denominator",
                reason=SuppressionReason.COMPLEMENTARY,
            )
            return shown, hidden_total
        _, chosen = min(candidates)
        shown[chosen] = _hide(
            shown[chosen],
            numerator=dimension == "numerator",
            denominator=dimension == "denominator",
            reason=SuppressionReason.COMPLEMENTARY,
        )
