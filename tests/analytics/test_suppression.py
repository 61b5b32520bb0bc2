"""Small-cell suppression: counts 1-10 hidden and 0 shown (cellMin 11), fewer than three teams
hide the point, and complementary suppression protects a hidden cell next to a shown total."""

from __future__ import annotations

import pytest

from analytics.suppression import (
    Cell,
    SuppressionPolicy,
    SuppressionReason,
    disclose,
    disclose_group,
    disclose_series,
)


@pytest.mark.parametrize(
    ("count", "hidden"), [(0, False), (1, True), (10, True), (11, False), (250, False)]
)
def test_counts_1_to_10_are_hidden_and_0_is_shown(count: int, hidden: bool) -> None:
    cell = disclose(Cell(numerator=count, denominator=500, teams=5), multiplier=100)
    assert cell.numerator_hidden is hidden
    if hidden:
        assert cell.numerator is None and cell.rate is None and cell.complement is None
        assert cell.reason is SuppressionReason.SMALL_CELL and cell.suppressed
        assert cell.denominator == 500  # the denominator alone gives nothing away
    else:
        assert cell.numerator == count and cell.rate == pytest.approx(count / 5)
        assert cell.complement == 500 - count and cell.reason is None and not cell.suppressed


def test_a_small_complement_hides_the_numerator() -> None:
    # 495 of 500: the 5 without the event could be recomputed from numerator and denominator.
    cell = disclose(Cell(numerator=495, denominator=500, teams=4))
    assert cell.numerator is None and cell.complement is None and cell.rate is None
    assert cell.denominator == 500 and cell.reason is SuppressionReason.SMALL_CELL


def test_a_small_denominator_is_hidden_too() -> None:
    cell = disclose(Cell(numerator=0, denominator=7, teams=3))
    assert cell.numerator is None and cell.denominator is None and cell.rate is None
    assert cell.reason is SuppressionReason.SMALL_CELL


def test_all_events_of_a_large_denominator_are_shown() -> None:
    cell = disclose(Cell(numerator=40, denominator=40, teams=3))
    assert (cell.numerator, cell.denominator, cell.complement, cell.rate) == (40, 40, 0, 1.0)


@pytest.mark.parametrize("teams", [0, 1, 2])
def test_fewer_than_three_teams_hide_the_whole_point(teams: int) -> None:
    cell = disclose(Cell(numerator=400, denominator=900, teams=teams))
    assert (cell.numerator, cell.denominator, cell.complement, cell.rate) == (None,) * 4
    assert cell.reason is SuppressionReason.TOO_FEW_TEAMS


def test_policy_thresholds_are_per_reader() -> None:
    strict = SuppressionPolicy(cell_min=21, min_teams=5)
    assert disclose(Cell(15, 100, teams=6), strict).numerator is None
    assert disclose(Cell(15, 100, teams=4), strict).reason is SuppressionReason.TOO_FEW_TEAMS
    assert disclose(Cell(15, 100), SuppressionPolicy(cell_min=1)).numerator == 15


def test_a_series_is_suppressed_point_by_point() -> None:
    cells = disclose_series([Cell(3, 100, 4), Cell(30, 100, 4), Cell(None, None, 0)])
    assert [cell.reason for cell in cells] == [
        SuppressionReason.SMALL_CELL,
        None,
        SuppressionReason.TOO_FEW_TEAMS,
    ]


def test_one_hidden_cell_next_to_a_shown_total_hides_the_next_smallest() -> None:
    # Numerators 4, 30, 25, 60 add up to the shown 119: 4 alone could be recomputed as
    # 119 - 30 - 25 - 60, so the smallest shown numerator (25) is hidden as well.
    cells = [Cell(4, 100), Cell(30, 100), Cell(25, 100), Cell(60, 100)]
    group = disclose_group(cells, Cell(119, 400))
    assert [cell.numerator for cell in group.cells] == [None, 30, None, 60]
    assert [cell.reason for cell in group.cells] == [
        SuppressionReason.SMALL_CELL,
        None,
        SuppressionReason.COMPLEMENTARY,
        None,
    ]
    assert group.cells[2].rate is None and group.cells[2].denominator == 100
    assert group.total.numerator == 119 and not group.total.suppressed


def test_hidden_cells_must_not_add_up_to_a_small_count() -> None:
    # 3 + 4 hidden would be recoverable together as 7 (a small count): hide one more cell.
    cells = [Cell(3, 100), Cell(4, 100), Cell(40, 100), Cell(45, 100)]
    group = disclose_group(cells, Cell(92, 400))
    assert [cell.numerator for cell in group.cells] == [None, None, None, 45]
    assert group.cells[2].reason is SuppressionReason.COMPLEMENTARY


def test_zero_cells_are_not_used_as_complements_and_the_total_goes_instead() -> None:
    cells = [Cell(5, 100), Cell(0, 100)]
    group = disclose_group(cells, Cell(5, 200))
    assert group.cells[1].numerator == 0
    assert group.cells[0].numerator is None
    # 5 is itself small, so the total is hidden by the small-cell rule already.
    assert group.total.numerator is None and group.total.reason is SuppressionReason.SMALL_CELL
    cells = [Cell(5, 100), Cell(0, 100), Cell(0, 100)]
    group = disclose_group(cells, Cell(5, 300), SuppressionPolicy(cell_min=3))
    assert group.cells[0].numerator == 5  # 5 is not small under cell_min 3: nothing to protect


def test_no_complementary_suppression_when_nothing_is_hidden_or_the_total_is_hidden() -> None:
    cells = [Cell(20, 100), Cell(30, 100)]
    group = disclose_group(cells, Cell(50, 200))
    assert [cell.reason for cell in group.cells] == [None, None]
    hidden_total = disclose_group([Cell(2, 100), Cell(30, 100)], Cell(32, 200, teams=2))
    assert hidden_total.total.reason is SuppressionReason.TOO_FEW_TEAMS
    assert hidden_total.cells[1].numerator == 30


def test_complementary_suppression_of_denominators() -> None:
    # Denominators 8 (small), 50, 60 with a shown total 118: 8 could be recomputed, so the next
    # smallest denominator goes too. Its numerator also goes: the first cell's numerator (0 of 8,
    # hidden because its complement 8 is small) could otherwise be recomputed from the total 40.
    cells = [Cell(0, 8), Cell(20, 50), Cell(20, 60)]
    group = disclose_group(cells, Cell(40, 118))
    assert [cell.denominator for cell in group.cells] == [None, None, 60]
    assert [cell.numerator for cell in group.cells] == [None, None, 20]
    assert group.cells[1].reason is SuppressionReason.COMPLEMENTARY
    assert group.cells[2].rate == pytest.approx(20 / 60) and not group.cells[2].suppressed
