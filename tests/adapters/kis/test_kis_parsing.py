"""KIS's wire values: the tick grid, the daily inquiry's rows and the order notices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orderlane.errors import OrderValidationError
from orderlane.model import OrderStatus, Side
from orderlane_kis.parsing import (
    NOTICE_COLUMNS,
    NoticeFormatError,
    RowFormatError,
    check_tick,
    parse_notice,
    parse_row,
    snapshot_from_row,
)


@pytest.mark.parametrize("price", ["1999", "2000", "72000", "199900", "500000", "1234000"])
def test_prices_on_the_grid_pass(price: str) -> None:
    check_tick(Decimal(price))  # no error


@pytest.mark.parametrize(
    ("price", "nearest"),
    [
        ("72050", "72,000 and 72,100"),
        ("4999", "4,995 and 5,000"),
        ("2001", "2,000 and 2,005"),
        ("199950", "199,900 and 200,000"),
        ("1500.5", "1,500 and 1,501"),
    ],
)
def test_off_tick_prices_name_the_two_nearest_valid_prices(price: str, nearest: str) -> None:
    with pytest.raises(OrderValidationError, match=nearest):
        check_tick(Decimal(price))


def test_a_non_positive_price_is_refused() -> None:
    with pytest.raises(OrderValidationError, match="not a positive price"):
        check_tick(Decimal(0))


def _row(**fields: str) -> dict[str, str]:
    row = {
        "ord_dt": "20260105",
        "ord_gno_brno": "06010",
        "odno": "0000012345",
        "orgn_odno": "",
        "sll_buy_dvsn_cd": "02",
        "pdno": "005930",
        "prdt_name": "삼성전자",
        "ord_qty": "10",
        "ord_unpr": "0",
        "ord_tmd": "090001",
        "tot_ccld_qty": "0",
        "avg_prvs": "0",
        "cncl_yn": "N",
        "tot_ccld_amt": "0",
        "rmn_qty": "10",
        "rjct_qty": "0",
        "cnc_cfrm_qty": "0",
        "excg_dvsn_cd": "01",
    }
    row.update(fields)
    return row


def test_a_row_reads_as_the_order_it_describes() -> None:
    row = parse_row(_row())
    assert (row.broker_order_id, row.branch, row.symbol, row.side, row.quantity) == (
        "0000012345",
        "06010",
        "005930",
        Side.BUY,
        10,
    )
    assert row.ordered_at is not None
    assert row.ordered_at.isoformat() == "2026-01-05T00:00:01+00:00"  # 09:00:01 KST
    assert snapshot_from_row(row).status is OrderStatus.SUBMITTED


def test_cumulative_fills_become_a_cumulative_snapshot() -> None:
    partial = parse_row(
        _row(tot_ccld_qty="4", tot_ccld_amt="287600", avg_prvs="71900", rmn_qty="6")
    )
    snapshot = snapshot_from_row(partial)
    assert (snapshot.status, snapshot.filled_quantity, snapshot.filled_notional) == (
        OrderStatus.PARTIALLY_FILLED,
        4,
        Decimal(287600),
    )
    assert snapshot.commission is None  # KIS's inquiry carries no fee
    filled = snapshot_from_row(parse_row(_row(tot_ccld_qty="10", tot_ccld_amt="720000")))
    assert filled.status is OrderStatus.FILLED


def test_a_confirmed_cancel_row_ends_its_order_with_the_fills_it_had() -> None:
    order = parse_row(_row(tot_ccld_qty="4", tot_ccld_amt="288000", rmn_qty="0"))
    cancel = parse_row(
        _row(odno="0000012399", orgn_odno="0000012345", cncl_yn="Y", cnc_cfrm_qty="6")
    )
    assert cancel.is_cancel_order
    assert not order.is_cancel_order
    snapshot = snapshot_from_row(order, [cancel])
    assert (snapshot.status, snapshot.filled_quantity) == (OrderStatus.CANCELLED, 4)


def test_a_refused_order_is_rejected() -> None:
    snapshot = snapshot_from_row(parse_row(_row(rjct_qty="10", rmn_qty="0")))
    assert snapshot.status is OrderStatus.REJECTED


@pytest.mark.parametrize(
    "fields",
    [
        {"odno": ""},
        {"sll_buy_dvsn_cd": "03"},
        {"ord_qty": "ten"},
        {"ord_qty": "1.5"},
        {"tot_ccld_amt": "-1"},
        {"tot_ccld_qty": "NaN"},
    ],
)
def test_a_malformed_row_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(RowFormatError):
        parse_row(_row(**fields))


def test_more_filled_than_ordered_is_refused() -> None:
    with pytest.raises(RowFormatError, match="filled 11 of 10"):
        snapshot_from_row(parse_row(_row(tot_ccld_qty="11")))


def _notice(**fields: str) -> str:
    values = dict.fromkeys(NOTICE_COLUMNS, "")
    values.update(
        CUST_ID="hts-user",
        ACNT_NO="1234567801",
        ODER_NO="0000012345",
        SELN_BYOV_CLS="02",
        RCTF_CLS="0",
        STCK_SHRN_ISCD="005930",
        CNTG_QTY="4",
        CNTG_UNPR="72000",
        STCK_CNTG_HOUR="090102",
        RFUS_YN="0",
        CNTG_YN="2",
        ACPT_YN="2",
        ODER_QTY="10",
    )
    values.update(fields)
    return "^".join(values[column] for column in NOTICE_COLUMNS)


def test_a_fill_notice_is_an_execution() -> None:
    notice = parse_notice(_notice())
    assert notice.is_fill
    assert (notice.broker_order_id, notice.quantity, notice.price, notice.order_quantity) == (
        "0000012345",
        4,
        Decimal(72000),
        10,
    )


def test_an_accept_notice_is_never_a_fill() -> None:
    # In a CNTG_YN 1 notice CNTG_QTY holds the order's quantity, not an execution.
    notice = parse_notice(_notice(CNTG_YN="1", CNTG_QTY="10", ACPT_YN="1"))
    assert not notice.is_fill


@pytest.mark.parametrize(
    ("plaintext", "reason"),
    [
        (_notice() + "^extra", "27 fields"),
        ("^".join(_notice().split("^")[:23]), "23 fields"),
        (_notice(CNTG_YN="3"), "CNTG_YN"),
        (_notice(CNTG_QTY="4.5"), "CNTG_QTY"),
        (_notice(SELN_BYOV_CLS="X"), "SELN_BYOV_CLS"),
        (_notice(ODER_NO="abc"), "ODER_NO"),
        (_notice(CNTG_UNPR="72,000"), "CNTG_UNPR"),
    ],
)
def test_a_notice_that_does_not_fit_the_layout_is_refused(plaintext: str, reason: str) -> None:
    with pytest.raises(NoticeFormatError, match=reason):
        parse_notice(plaintext)


def test_a_notice_in_another_column_order_is_refused_by_its_checks() -> None:
    # One version of KIS's example code puts ODER_QTY 4th: read with today's layout the
    # frame's side and kind columns no longer hold 01/02 and 1/2.
    drifted = list(NOTICE_COLUMNS)
    drifted.insert(3, drifted.pop(drifted.index("ODER_QTY")))
    values = dict(zip(NOTICE_COLUMNS, _notice().split("^"), strict=True))
    values["ODER_QTY"] = "10"
    shifted = "^".join(values[column] for column in drifted)
    notice_fields = dict(zip(NOTICE_COLUMNS, shifted.split("^"), strict=True))
    assert notice_fields["ODER_NO"] == "0000012345"
    with pytest.raises(NoticeFormatError):
        parse_notice(shifted)
    # With the layout as data, the same frame reads once the columns are named.
    assert parse_notice(shifted, drifted).quantity == 4
