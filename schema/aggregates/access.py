"""Who sees exact aggregate values and who sees them through small-cell suppression.

:func:`aggregate_access` is the one place that decides, per reader, whether an aggregate of a
sponsor's data is shown exactly or through a :class:`~analytics.suppression.SuppressionPolicy`.
It is asked about the caller's own sponsor; another sponsor's data are read only under sharing
agreements, whose own policies apply (:mod:`schema.aggregates.pooling`).

The rules:

* the sponsor's own staff systems, ``ADMIN`` and ``DASHBOARD`` clients, see exact values (they
  may read the team-level data anyway);
* an ``EHR_INTEGRATION`` client sees exact values of an aggregate of its own teams only (a team
  always sees its own data unsuppressed); an aggregate that includes any other team is suppressed;
* a ``PARTNER`` client of the same sponsor holds ``aggregate:read`` but not ``data:read``: it is
  an outside system by nature (a funder, a registry, a public dashboard), so its aggregates are
  suppressed with the sponsor's default policy (cellMin 11, minTeams 3), like any aggregate that
  crosses a sponsor boundary or is marked public;
* a reader of another sponsor (never asked here: pooling takes the agreement's policy) is
  suppressed with the default policy.

A suppressed reader is also limited in *what* it may ask, so that no hidden value can be
recovered by subtracting two answers: only whole collaboratives (no ``teams`` scope: those are
team-identified rows) and only the all-patients stratum (a stratum could be recovered from the
total and the other strata). The aggregate of several collaboratives is itself hidden
(COMPLEMENTARY) when what it adds to the collaboratives shown on their own would be suppressed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from analytics.suppression import (
    DEFAULT_POLICY,
    Cell,
    DisclosedCell,
    SuppressionPolicy,
    SuppressionReason,
    disclose,
)
from db.enums import ClientKind
from schema.principal import Principal


@dataclass(frozen=True)
class AggregateAccess:
    """How one reader sees one sponsor's aggregates: exactly (``policy`` None) or suppressed."""

    policy: SuppressionPolicy | None
    why: str

    @property
    def exact(self) -> bool:
        """True when no suppression applies."""
        return self.policy is None


def aggregate_access(
    principal: Principal,
    *,
    sponsor_id: uuid.UUID,
    scope_team_ids: frozenset[uuid.UUID] | None = None,
) -> AggregateAccess:
    """The suppression a reader gets on an aggregate of ``sponsor_id``'s data.

    ``scope_team_ids`` are the teams the aggregate is limited to when the reader named teams
    (None: the aggregate is not limited to named teams).
    """
    if principal.sponsor_id != sponsor_id:
        return AggregateAccess(DEFAULT_POLICY, "another sponsor's data")
    if principal.kind in (ClientKind.ADMIN, ClientKind.DASHBOARD):
        return AggregateAccess(None, "the sponsor's own staff")
    if principal.kind is ClientKind.EHR_INTEGRATION:
        if scope_team_ids and scope_team_ids <= principal.team_ids:
            return AggregateAccess(None, "the reader's own teams")
        return AggregateAccess(DEFAULT_POLICY, "teams other than the reader's own")
    return AggregateAccess(DEFAULT_POLICY, "a partner system")


def disclose_total(
    parts: Sequence[Cell], total: Cell, policy: SuppressionPolicy, *, multiplier: float = 1.0
) -> DisclosedCell:
    """A total of ``parts`` (each of which the reader may also ask for on its own), suppressed.

    Per-cell rules first (:func:`~analytics.suppression.disclose`). Then complementary
    suppression: subtracting the parts the reader would see from the total reveals what the
    hidden parts add up to; when that remainder would itself be suppressed (a small count, or
    too few teams) the whole total is hidden as COMPLEMENTARY. With no hidden part nothing is
    revealed.
    """
    shown = disclose(total, policy, multiplier=multiplier)
    if shown.suppressed:
        return shown
    disclosed = [disclose(part, policy, multiplier=multiplier) for part in parts]
    hidden = [part for part, seen in zip(parts, disclosed, strict=True) if seen.suppressed]
    if not hidden:
        return shown
    remainder = Cell(
        numerator=_sum(part.numerator for part in hidden),
        denominator=_sum(part.denominator for part in hidden),
        teams=sum(part.teams or 0 for part in hidden),
    )
    if not disclose(remainder, policy, multiplier=multiplier).suppressed:
        return shown
    return DisclosedCell(
        numerator=None,
        denominator=None,
        complement=None,
        rate=None,
        numerator_hidden=True,
        denominator_hidden=True,
        reason=SuppressionReason.COMPLEMENTARY,
    )


def _sum(values: Iterable[float | None]) -> float | None:
    """Sum of the values that are present; None when none is."""
    present = [value for value in values if value is not None]
    return sum(present) if present else None
