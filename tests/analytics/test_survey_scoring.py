"""Survey scoring: subscale means, the missing-item rule, the overall score, bands."""

from __future__ import annotations

import pytest

from analytics.survey_scoring import Band, Scale, Section, score_response, section_score

ACIC_SCALE = Scale(
    min=0,
    max=11,
    step=1,
    bands=(
        Band(0, 2, "Limited support"),
        Band(3, 5, "Basic support"),
        Band(6, 8, "Reasonably good support"),
        Band(9, 11, "Fully developed"),
    ),
)
SIX = Section("organization", ("o1", "o2", "o3", "o4", "o5", "o6"), ACIC_SCALE)
THREE = Section("community", ("c1", "c2", "c3"), ACIC_SCALE)


def test_a_subscale_is_the_mean_of_its_answered_items() -> None:
    answers = {"o1": 4, "o2": 5, "o3": 6, "o4": 7, "o5": None}  # o5 null, o6 absent: missing
    score = section_score(SIX, answers, min_answered_share=0.5)
    assert score.answered == 4 and score.items == 6
    assert score.score == pytest.approx(5.5)
    assert score.band is not None and score.band.label == "Basic support"


def test_half_the_items_is_enough_and_less_is_not() -> None:
    three_of_six = {"o1": 9, "o2": 10, "o3": 11}
    assert section_score(SIX, three_of_six, min_answered_share=0.5).score == 10
    one_of_three = {"c1": 8}
    assert section_score(THREE, one_of_three, min_answered_share=0.5).score is None
    two_of_three = {"c1": 8, "c3": 6}
    assert section_score(THREE, two_of_three, min_answered_share=0.5).score == 7
    # A stricter rule from the version: every item needed.
    assert section_score(THREE, two_of_three, min_answered_share=1.0).score is None
    assert section_score(THREE, {}, min_answered_share=0.01).score is None


def test_overall_is_the_mean_of_subscales_not_of_items() -> None:
    answers = {f"o{i}": 2 for i in range(1, 7)} | {"c1": 8, "c2": 8, "c3": 8}
    scores = score_response([SIX, THREE], answers, scale=ACIC_SCALE, min_answered_share=0.5)
    assert [s.score for s in scores.sections] == [2, 8]
    assert scores.overall == 5  # the item mean would be 4
    assert scores.complete
    assert scores.overall_band is not None and scores.overall_band.label == "Basic support"


def test_overall_needs_every_subscale() -> None:
    answers = {f"o{i}": 6 for i in range(1, 7)} | {"c1": 8}
    scores = score_response([SIX, THREE], answers, scale=ACIC_SCALE, min_answered_share=0.5)
    assert scores.sections[0].score == 6 and scores.sections[1].score is None
    assert scores.overall is None and scores.overall_band is None and not scores.complete


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (0, "Limited support"),
        (2.5, "Limited support"),
        (3, "Basic support"),
        (5.99, "Basic support"),
        (8.5, "Reasonably good support"),
        (9, "Fully developed"),
        (11, "Fully developed"),
    ],
)
def test_a_score_belongs_to_the_band_with_the_greatest_min_not_above_it(
    score: float, band: str
) -> None:
    found = ACIC_SCALE.band(score)
    assert found is not None and found.label == band


@pytest.mark.parametrize(
    ("value", "ok"), [(0, True), (11, True), (7, True), (7.5, False), (-1, False), (12, False)]
)
def test_answers_must_be_on_the_scale(value: float, ok: bool) -> None:
    assert (ACIC_SCALE.problem(value) is None) is ok
