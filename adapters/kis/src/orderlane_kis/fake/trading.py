"""The trading endpoints: place, cancel/modify, the daily order inquiry and the balance.

Each handler takes the request's parameters (names upper-cased, so matched case-insensitively),
its ``tr_id`` and ``tr_cont`` and the authenticated app, and returns a :class:`Reply`: the body
KIS sends (``rt_cd``, ``msg_cd``, ``msg1`` and the payload) and the ``tr_cont`` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

import attrs

from orderlane_kis.fake.book import BUY, MARKET_LIKE, ORDER_DIVISIONS, SELL, Book, VenueOrder
from orderlane_kis.fake.codes import Answer, Codes
from orderlane_kis.fake.tokens import App
from orderlane_kis.krx import kst

__all__ = ["ORDER_TRS", "TR_IDS", "Reply", "Trading"]

Mode = Literal["paper", "live"]
Operation = Literal["place", "cancel", "inquiry", "balance", "cancellable", "orderable"]

#: Order TR ids and the side they mean, per host; the new ids first, then the older ones.
ORDER_TRS: dict[Mode, dict[str, str]] = {
    "live": {"TTTC0012U": BUY, "TTTC0011U": SELL, "TTTC0802U": BUY, "TTTC0801U": SELL},
    "paper": {"VTTC0012U": BUY, "VTTC0011U": SELL, "VTTC0802U": BUY, "VTTC0801U": SELL},
}
#: Every TR id each trading endpoint accepts, per host.
TR_IDS: dict[Operation, dict[Mode, frozenset[str]]] = {
    "place": {mode: frozenset(ids) for mode, ids in ORDER_TRS.items()},
    "cancel": {
        "live": frozenset({"TTTC0013U", "TTTC0803U"}),
        "paper": frozenset({"VTTC0013U", "VTTC0803U"}),
    },
    "inquiry": {
        "live": frozenset({"TTTC0081R", "TTTC8001R"}),
        "paper": frozenset({"VTTC0081R", "VTTC8001R"}),
    },
    "balance": {"live": frozenset({"TTTC8434R"}), "paper": frozenset({"VTTC8434R"})},
    # How much an account can buy (an older TR id clients still send).
    "orderable": {"live": frozenset({"TTTC8908R"}), "paper": frozenset({"VTTC8908R"})},
    # Orders that can still be modified or cancelled: live only (paper answers EGW02006).
    "cancellable": {"live": frozenset({"TTTC0084R", "TTTC8036R"}), "paper": frozenset()},
}
EXCHANGES: dict[Mode, frozenset[str]] = {
    "live": frozenset({"KRX", "NXT", "SOR"}),
    "paper": frozenset({"KRX"}),
}
_SIDE_NAMES = {BUY: "현금매수", SELL: "현금매도"}


@attrs.frozen
class Reply:
    answer: Answer
    payload: Mapping[str, object] = attrs.Factory(dict)
    tr_cont: str = ""

    def body(self) -> dict[str, object]:
        return {**self.payload, **self.answer.body()}


def check_tr(operation: Operation, mode: Mode, tr_id: str) -> Answer | None:
    """The gateway's refusal of ``tr_id`` on this endpoint and host, or None."""
    if tr_id in TR_IDS[operation][mode]:
        return None
    if mode == "paper" and tr_id in TR_IDS[operation]["live"]:
        return Codes.LIVE_TR_ON_PAPER
    return Codes.UNKNOWN_TR


def _int(params: Mapping[str, str], name: str, *, minimum: int = 0) -> int | Answer:
    text = params.get(name)
    if text is None:
        return Codes.bad_input(name, "NOT FOUND")
    text = str(text).strip()
    if not text.isdigit() or int(text) < minimum:
        return Codes.bad_input(name)
    return int(text)


class Trading:
    """Trading endpoints over one :class:`Book`."""

    def __init__(self, book: Book, mode: Mode, page_size: int) -> None:
        self.book = book
        self.mode = mode
        self.page_size = page_size

    def _account(self, app: App, params: Mapping[str, str]) -> str | Answer:
        for name in ("CANO", "ACNT_PRDT_CD"):
            if name not in params:
                return Codes.bad_input(name, "NOT FOUND")
        number = f"{params['CANO']}-{params['ACNT_PRDT_CD']}"
        if number not in app.accounts or number not in self.book.accounts:
            return Codes.BAD_ACCOUNT
        return number

    def _exchange(self, params: Mapping[str, str]) -> str | Answer:
        exchange = (params.get("EXCG_ID_DVSN_CD") or "").strip().upper() or "KRX"
        if exchange not in EXCHANGES[self.mode]:
            return Codes.bad_input("EXCG_ID_DVSN_CD")
        return exchange

    def _stamp(self, order: VenueOrder) -> dict[str, str]:
        return {
            "KRX_FWDG_ORD_ORGNO": order.branch,
            "ODNO": order.odno,
            "ORD_TMD": kst(order.accepted_at).strftime("%H%M%S"),
        }

    # ------------------------------------------------------------------ order-cash

    def place(self, app: App, tr_id: str, params: Mapping[str, str]) -> Reply:
        side = ORDER_TRS[self.mode][tr_id]
        account = self._account(app, params)
        if isinstance(account, Answer):
            return Reply(account)
        symbol = (params.get("PDNO") or "").strip()
        if not symbol:
            return Reply(Codes.bad_input("PDNO", "NOT FOUND"))
        ord_dvsn = (params.get("ORD_DVSN") or "").strip()
        if ord_dvsn not in ORDER_DIVISIONS:
            return Reply(Codes.bad_input("ORD_DVSN"))
        quantity = _int(params, "ORD_QTY", minimum=1)
        if isinstance(quantity, Answer):
            return Reply(quantity)
        price = _int(params, "ORD_UNPR")
        if isinstance(price, Answer):
            return Reply(price)
        exchange = self._exchange(params)
        if isinstance(exchange, Answer):
            return Reply(exchange)
        result = self.book.place(
            self.book.accounts[account],
            side=side,
            symbol=symbol,
            ord_dvsn=ord_dvsn,
            quantity=quantity,
            price=price,
            exchange=exchange,
            tr_id=tr_id,
        )
        if isinstance(result, Answer):
            return Reply(result)
        if self.mode == "live":
            answer = Codes.ORDER_SENT
        else:
            answer = Codes.PAPER_BUY_SENT if side == BUY else Codes.PAPER_SELL_SENT
        return Reply(answer, {"output": self._stamp(result)})

    # ------------------------------------------------------------------ order-rvsecncl

    def cancel(self, app: App, tr_id: str, params: Mapping[str, str]) -> Reply:
        account = self._account(app, params)
        if isinstance(account, Answer):
            return Reply(account)
        original = (params.get("ORGN_ODNO") or "").strip()
        if not original.isdigit():
            return Reply(Codes.bad_input("ORGN_ODNO"))
        action = (params.get("RVSE_CNCL_DVSN_CD") or "").strip()
        if action not in ("01", "02"):
            return Reply(Codes.bad_input("RVSE_CNCL_DVSN_CD"))
        exchange = self._exchange(params)
        if isinstance(exchange, Answer):
            return Reply(exchange)
        everything = (params.get("QTY_ALL_ORD_YN") or "").strip().upper() == "Y"
        quantity: int | None = None
        if not everything:
            parsed = _int(params, "ORD_QTY", minimum=1)
            if isinstance(parsed, Answer):
                return Reply(parsed)
            quantity = parsed
        odno = f"{int(original):010d}"
        holder = self.book.accounts[account]
        if action == "02":
            result = self.book.cancel(holder, odno, quantity, tr_id)
        else:
            ord_dvsn = (params.get("ORD_DVSN") or "").strip() or None
            if ord_dvsn is not None and ord_dvsn not in ORDER_DIVISIONS:
                return Reply(Codes.bad_input("ORD_DVSN"))
            market = ord_dvsn in MARKET_LIKE
            price = 0 if market else _int(params, "ORD_UNPR", minimum=1)
            if isinstance(price, Answer):
                return Reply(price)
            result = self.book.modify(holder, odno, quantity, price, tr_id, ord_dvsn)
        if isinstance(result, Answer):
            return Reply(result)
        if self.mode == "live":
            answer = Codes.ORDER_SENT
        else:
            answer = Codes.PAPER_CANCEL_SENT if action == "02" else Codes.PAPER_MODIFY_SENT
        return Reply(answer, {"output": self._stamp(result)})

    # ------------------------------------------------------------------ paging

    def _page(
        self,
        rows: list[VenueOrder],
        params: Mapping[str, str],
        tr_cont: str,
        key: str,
        descending: bool,
    ) -> tuple[list[VenueOrder], str, str, str]:
        """This page of ``rows``: (rows, ctx_area_fk100, ctx_area_nk100, tr_cont header).

        ``ctx_area_nk100`` carries the last order number of the page, so a page asked for later
        continues after it even when new orders arrived meanwhile.
        """
        after = (params.get("CTX_AREA_NK100") or "").strip()
        last = after.split("^")[0]
        following = tr_cont.strip().upper() == "N" and last.isdigit()
        if following:
            bound = int(last)
            rows = [r for r in rows if (int(r.odno) < bound if descending else int(r.odno) > bound)]
        page, more = rows[: self.page_size], len(rows) > self.page_size
        nk100 = f"{page[-1].odno}^{key}" if page else after
        if more:
            return page, key, nk100, "M" if following else "F"
        return page, key, nk100, "E" if following else "D"

    # ------------------------------------------------------------------ inquire-daily-ccld

    def inquiry(self, app: App, params: Mapping[str, str], tr_cont: str) -> Reply:
        account = self._account(app, params)
        if isinstance(account, Answer):
            return Reply(account, tr_cont="")
        for name in ("INQR_STRT_DT", "INQR_END_DT", "INQR_DVSN_3"):
            if name not in params:
                return Reply(Codes.bad_input(name, "NOT FOUND"))
        start, end = params["INQR_STRT_DT"].strip(), params["INQR_END_DT"].strip()
        if not (_is_date(start) and _is_date(end)):
            return Reply(Codes.bad_input("INQR_STRT_DT"))
        exchange = (params.get("EXCG_ID_DVSN_CD") or "").strip().upper() or "KRX"
        if exchange not in EXCHANGES[self.mode] | {"ALL"}:
            return Reply(Codes.bad_input("EXCG_ID_DVSN_CD"))
        rows = [
            row
            for row in self.book.visible_orders(account)
            if start <= _day(row.accepted_at) <= end
            and _matches(row, params)
            and (exchange == "ALL" or row.exchange == exchange)
        ]
        descending = (params.get("INQR_DVSN") or "00").strip() != "01"  # 00: newest first
        if descending:
            rows.reverse()
        key = "^".join([account.replace("-", ""), start, end])
        page, fk100, nk100, header = self._page(rows, params, tr_cont, key, descending)
        if not rows:
            answer = Codes.INQUIRY_EMPTY
        else:
            answer = Codes.INQUIRY_MORE if header in ("F", "M") else Codes.INQUIRY_LAST
        ordered = sum(row.quantity for row in rows if row.kind != "cancel")
        filled = sum(row.filled for row in rows)
        amount = sum(row.amount for row in rows)
        payload = {
            "ctx_area_fk100": fk100,
            "ctx_area_nk100": nk100,
            "output1": [self._row(self._as_answered(row)) for row in page],
            "output2": {
                "tot_ord_qty": str(ordered),
                "tot_ccld_qty": str(filled),
                "tot_ccld_amt": str(amount),
                "prsm_tlex_smtl": "0",
                "pchs_avg_pric": _average(amount, filled),
            },
        }
        return Reply(answer, payload, header)

    def _as_answered(self, row: VenueOrder) -> VenueOrder:
        """The row, or the older state a test scripted its next answer to show."""
        executions = self.book.stale.pop(row.odno, None)
        return row if executions is None else row.as_of(executions)

    def _row(self, row: VenueOrder) -> dict[str, str]:
        answer = self._true_row(row)
        if row.odno in self.book.malformed:  # a scripted slip: amounts that are no amounts
            self.book.malformed.discard(row.odno)
            answer.update(avg_prvs="NaN", tot_ccld_amt="-" + answer["tot_ccld_amt"])
        return answer

    def _true_row(self, row: VenueOrder) -> dict[str, str]:
        name = self.book.instruments[row.symbol].name if row.symbol in self.book.instruments else ""
        side_name = _SIDE_NAMES[row.side]
        if row.kind == "cancel":
            side_name = side_name[-2:] + "취소"
        elif row.kind == "modify":
            side_name = side_name[-2:] + "정정"
        return {
            "ord_dt": _day(row.accepted_at),
            "ord_gno_brno": row.branch,
            "odno": row.odno,
            "orgn_odno": row.original or "",
            "ord_dvsn_name": ORDER_DIVISIONS[row.ord_dvsn],
            "sll_buy_dvsn_cd": row.side,
            "sll_buy_dvsn_cd_name": side_name,
            "pdno": row.symbol,
            "prdt_name": name,
            "ord_qty": str(row.quantity),
            "ord_unpr": str(row.price),
            "ord_tmd": kst(row.accepted_at).strftime("%H%M%S"),
            "tot_ccld_qty": str(row.filled),
            "avg_prvs": _average(row.amount, row.filled),
            "cncl_yn": "Y" if row.kind == "cancel" else "N",
            "tot_ccld_amt": str(row.amount),
            "loan_dt": "",
            "ordr_empno": "",
            "ord_dvsn_cd": row.ord_dvsn,
            "cnc_cfrm_qty": str(row.cancelled),
            "rmn_qty": str(max(row.remaining, 0)),
            "rjct_qty": str(row.rejected),
            "ccld_cndt_name": "없음",
            "inqr_ip_addr": "",
            "cpbc_ordp_ord_rcit_dvsn_cd": "",
            "cpbc_ordp_infm_mthd_dvsn_cd": "",
            "infm_tmd": "",
            "ctac_tlno": "",
            "prdt_type_cd": "300",
            "excg_dvsn_cd": "01" if row.exchange == "KRX" else "02",
            "excg_id_dvsn_cd": row.exchange,
        }

    # ------------------------------------------------------------------ inquire-balance

    def balance(self, app: App, params: Mapping[str, str], tr_cont: str) -> Reply:
        number = self._account(app, params)
        if isinstance(number, Answer):
            return Reply(number)
        account = self.book.accounts[number]
        rows = []
        evaluation = cost_total = 0
        for symbol in sorted(account.holdings):
            holding = account.holdings[symbol]
            instrument = self.book.instruments.get(symbol)
            quote = instrument.quote if instrument else 0
            value = quote * holding.quantity
            evaluation += value
            cost_total += holding.cost
            rows.append(
                {
                    "pdno": symbol,
                    "prdt_name": instrument.name if instrument else "",
                    "trad_dvsn_name": "현금",
                    "hldg_qty": str(holding.quantity),
                    "ord_psbl_qty": str(self.book.sellable(account, symbol)),
                    "pchs_avg_pric": _average(holding.cost, holding.quantity),
                    "pchs_amt": str(holding.cost),
                    "prpr": str(quote),
                    "evlu_amt": str(value),
                    "evlu_pfls_amt": str(value - holding.cost),
                    "evlu_pfls_rt": _rate(value - holding.cost, holding.cost),
                }
            )
        page, fk100, nk100, header = self._page_holdings(rows, params, tr_cont)
        cash = account.cash
        summary = {
            "dnca_tot_amt": str(cash),
            "nxdy_excc_amt": str(cash),
            "prvs_rcdl_excc_amt": str(cash),
            "scts_evlu_amt": str(evaluation),
            "tot_evlu_amt": str(cash + evaluation),
            "nass_amt": str(cash + evaluation),
            "pchs_amt_smtl_amt": str(cost_total),
            "evlu_amt_smtl_amt": str(evaluation),
            "evlu_pfls_smtl_amt": str(evaluation - cost_total),
        }
        payload = {
            "ctx_area_fk100": fk100,
            "ctx_area_nk100": nk100,
            "output1": page,
            "output2": [summary],
        }
        answer = Codes.INQUIRY_MORE if header in ("F", "M") else Codes.INQUIRY_LAST
        return Reply(answer, payload, header)

    def _page_holdings(
        self, rows: list[dict[str, str]], params: Mapping[str, str], tr_cont: str
    ) -> tuple[list[dict[str, str]], str, str, str]:
        after = (params.get("CTX_AREA_NK100") or "").strip()
        following = tr_cont.strip().upper() == "N" and bool(after)
        if following:
            rows = [row for row in rows if row["pdno"] > after]
        page, more = rows[: self.page_size], len(rows) > self.page_size
        nk100 = page[-1]["pdno"] if page else after
        if more:
            return page, "", nk100, "M" if following else "F"
        return page, "", nk100, "E" if following else "D"

    # ------------------------------------------------------------------ inquire-psbl-rvsecncl

    def cancellable(self, app: App, params: Mapping[str, str]) -> Reply:
        number = self._account(app, params)
        if isinstance(number, Answer):
            return Reply(number)
        rows = [
            self._row(row)
            for row in self.book.visible_orders(number)
            if row.kind != "cancel" and row.remaining > 0
        ]
        payload = {"ctx_area_fk100": "", "ctx_area_nk100": "", "output": rows}
        return Reply(Codes.INQUIRY_LAST, payload, "D")

    # ------------------------------------------------------------------ inquire-psbl-order

    def orderable(self, app: App, params: Mapping[str, str]) -> Reply:
        """What the account can buy of ``PDNO`` at ``ORD_UNPR`` (the quote when it is 0)."""
        number = self._account(app, params)
        if isinstance(number, Answer):
            return Reply(number)
        account = self.book.accounts[number]
        instrument = self.book.instruments.get((params.get("PDNO") or "").strip())
        price = _int(params, "ORD_UNPR")
        if isinstance(price, Answer):
            return Reply(price)
        if price == 0 and instrument is not None:
            price = instrument.quote
        cash = self.book.available_cash(account)
        quantity = cash // price if price else 0
        output = {
            "ord_psbl_cash": str(cash),
            "ord_psbl_sbst": "0",
            "ruse_psbl_amt": "0",
            "fund_rpch_chgs": "0",
            "psbl_qty_calc_unpr": str(price),
            "nrcvb_buy_amt": str(cash),
            "nrcvb_buy_qty": str(quantity),
            "max_buy_amt": str(cash),
            "max_buy_qty": str(quantity),
            "cma_evlu_amt": "0",
            "ovrs_re_use_amt_wcrc": "0",
            "ord_psbl_frcr_amt_wcrc": "0",
        }
        return Reply(Codes.INQUIRY_LAST, {"output": output}, "D")


def _is_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return True


def _day(moment: datetime) -> str:
    return kst(moment).strftime("%Y%m%d")


def _matches(row: VenueOrder, params: Mapping[str, str]) -> bool:
    side = (params.get("SLL_BUY_DVSN_CD") or "00").strip()
    if side in (SELL, BUY) and row.side != side:
        return False
    symbol = (params.get("PDNO") or "").strip()
    if symbol and row.symbol != symbol:
        return False
    odno = (params.get("ODNO") or "").strip()
    if odno and (not odno.isdigit() or int(odno) != int(row.odno)):
        return False
    filled = (params.get("CCLD_DVSN") or "00").strip()
    if filled == "01" and row.filled == 0:
        return False
    return not (filled == "02" and row.remaining <= 0)


def _average(amount: int, quantity: int) -> str:
    return str(amount // quantity) if quantity else "0"


def _rate(gain: int, cost: int) -> str:
    return f"{gain * 100 / cost:.2f}" if cost else "0.00"
