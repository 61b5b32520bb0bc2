"""Scoring of survey instruments (e.g. the ACIC): sections (subscales) and the overall score.

The rules, which hold for every instrument:

* An item's answer is a number on its section's scale (``min`` to ``max``, on the ``step`` grid
  when there is one). An item without an answer is *missing*.
* A **section** (subscale) is the mean of its answered items — provided that at least
  ``min_answered_share`` of its items are answered (the version's missing-item rule, 0.5 by
  default: 3 of 6 items are enough, 1 of 3 is not). Otherwise the section has no score.
* The **overall** score is the mean of the section scores, each section weighing the same
  whatever its number of items (as the ACIC's authors score it). It exists only when every
  section is scored: leaving out a section would silently change what the overall score means.
* A score's **band** is the band with the greatest ``min`` not above the score. Bands name whole
  ranges of item answers (ACIC: 0-2, 3-5, 6-8, 9-11), and means fall between them: 2.5 is
  still "limited support", 3.0 is "basic support".

Pure functions: no database, no GraphQL.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SHARE_TOLERANCE = 1e-9
"""Slack when comparing the answered share with the rule (3/6 is exactly one half)."""


@dataclass(frozen=True)
class Band:
    """A labelled range of a scale, e.g. 9-11 "fully developed support"."""

    min: float
    max: float
    label: str


@dataclass(frozen=True)
class Scale:
    """The answers an item accepts and how scores on it read."""

    min: float
    max: float
    step: float | None
    bands: tuple[Band, ...]

    def band(self, score: float) -> Band | None:
        """The band of ``score`` (the one with the greatest min not above it), or None."""
        found = None
        for band in sorted(self.bands, key=lambda b: b.min):
            if band.min <= score:
                found = band
        return found

    def problem(self, value: float) -> str | None:
        """Why ``value`` is not an answer on this scale, or None when it is one."""
        if not math.isfinite(value):
            return "an answer is a finite number"
        if not self.min <= value <= self.max:
            return f"an answer is between {self.min:g} and {self.max:g}"
        if self.step is not None:
            steps = (value - self.min) / self.step
            if abs(steps - round(steps)) > SHARE_TOLERANCE:
                return f"an answer is a multiple of {self.step:g} from {self.min:g}"
        return None


@dataclass(frozen=True)
class Section:
    """A section (subscale): its code, its items' codes in order and its scale."""

    code: str
    items: tuple[str, ...]
    scale: Scale


@dataclass(frozen=True)
class SectionScore:
    """A section's score (None when too few items are answered) and how many items were."""

    code: str
    score: float | None
    band: Band | None
    answered: int
    items: int


@dataclass(frozen=True)
class Scores:
    """Every section's score and the overall score (None unless every section is scored)."""

    sections: tuple[SectionScore, ...]
    overall: float | None
    overall_band: Band | None

    @property
    def complete(self) -> bool:
        """True when every section, and so the overall score, is scored."""
        return self.overall is not None


def section_score(
    section: Section, answers: Mapping[str, float | None], *, min_answered_share: float
) -> SectionScore:
    """One section's score under the missing-item rule (see the module docstring)."""
    answered = [value for item in section.items if (value := answers.get(item)) is not None]
    total = len(section.items)
    enough = bool(answered) and len(answered) / total + SHARE_TOLERANCE >= min_answered_share
    score = statistics.fmean(answered) if enough else None
    return SectionScore(
        code=section.code,
        score=score,
        band=section.scale.band(score) if score is not None else None,
        answered=len(answered),
        items=total,
    )


def score_response(
    sections: Sequence[Section],
    answers: Mapping[str, float | None],
    *,
    scale: Scale,
    min_answered_share: float,
) -> Scores:
    """Section and overall scores of one response; ``scale`` bands the overall score."""
    scored = tuple(
        section_score(section, answers, min_answered_share=min_answered_share)
        for section in sections
    )
    section_values = [s.score for s in scored if s.score is not None]
    complete = bool(scored) and len(section_values) == len(scored)
    overall = statistics.fmean(section_values) if complete else None
    return Scores(
        sections=scored,
        overall=overall,
        overall_band=scale.band(overall) if overall is not None else None,
    )
