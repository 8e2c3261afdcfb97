"""The answers the fake KIS venue gives, by name: ``rt_cd``, ``msg_cd``, ``msg1`` and HTTP status.

Codes marked *documented* are the ones KIS-OPEN-API.md records; the others are the fake venue's
own choice where the document records none (an off-tick price, selling what is not held, a field
missing). A client must not depend on those: it classifies by the documented codes and treats any
other non-zero ``rt_cd`` as the business rejection it is.
"""

from __future__ import annotations

import attrs

__all__ = ["Answer", "Codes"]


@attrs.frozen
class Answer:
    """A trading-API answer without payload: status line and the three fields every body has."""

    rt_cd: str
    msg_cd: str
    msg1: str
    status: int = 200

    def body(self) -> dict[str, object]:
        return {"rt_cd": self.rt_cd, "msg_cd": self.msg_cd, "msg1": self.msg1}

    def with_message(self, msg1: str) -> Answer:
        return attrs.evolve(self, msg1=msg1)


class Codes:
    """Every answer by name; ``PAPER_*`` ones are what the paper host says instead."""

    # ---- gateway (documented)
    RATE_LIMIT = Answer("1", "EGW00201", "초당 거래건수를 초과하였습니다.", 500)
    TOKEN_EXPIRED = Answer("1", "EGW00123", "기간이 만료된 token 입니다.", 500)
    TOKEN_INVALID = Answer("1", "EGW00121", "유효하지 않은 token 입니다.", 500)
    TOKEN_MISSING = Answer("1", "EGW00122", "token 값이 존재하지 않습니다.", 500)
    GATEWAY_TIMEOUT = Answer("1", "EGW00301", "연결시간이 초과되었습니다.", 500)
    GATEWAY_NO_ANSWER = Answer("1", "EGW00302", "거래 서비스 응답이 지연되었습니다.", 500)
    PAPER_KEY_ON_LIVE = Answer(
        "1", "EGW02004", "모의투자 앱키로 실전투자 서비스를 호출하였습니다.", 500
    )
    LIVE_TR_ON_PAPER = Answer("1", "EGW02006", "모의투자에서는 해당업무가 제공되지 않습니다.", 500)
    # ---- gateway (the fake's own)
    BAD_APP_KEY = Answer("1", "EGW00103", "유효하지 않은 AppKey입니다.", 500)
    UNKNOWN_TR = Answer("1", "OPSQ0002", "없는 서비스 코드 입니다", 500)

    # ---- orders (documented)
    ORDER_SENT = Answer("0", "APBK0013", "주문 전송 완료 되었습니다.")
    PAPER_BUY_SENT = Answer("0", "40600000", "모의투자 매수주문이 완료 되었습니다.")
    PAPER_SELL_SENT = Answer("0", "40590000", "모의투자 매도주문이 완료 되었습니다.")
    INSUFFICIENT_CASH = Answer("7", "APBK0952", "주문가능금액을 초과 했습니다")
    PAPER_INSUFFICIENT_CASH = Answer("1", "40250000", "모의투자 주문가능금액이 부족합니다.")
    BAD_ACCOUNT = Answer("1", "APAC0081", "계좌번호를 확인하여 주십시오.")
    BAD_SYMBOL = Answer("1", "APBK0656", "해당종목정보가 없습니다.")
    PAPER_BAD_SYMBOL = Answer("1", "MCA05918", "종목정보를 확인하세요.")
    MARKET_CLOSED = Answer("1", "APBK0919", "장운영시간이 아닙니다.")
    PAPER_MARKET_CLOSED = Answer("1", "40580000", "모의투자 장종료 입니다.")
    PAPER_BEFORE_OPEN = Answer("1", "40570000", "모의투자 장시작전 입니다.")
    PAPER_NOT_BUSINESS_DAY = Answer("1", "40100000", "모의투자 영업일이 아닙니다.")
    PAPER_NOTHING_TO_CANCEL = Answer("1", "40330000", "모의투자 정정/취소할 수량이 없습니다.")
    # ---- orders (the fake's own)
    PAPER_CANCEL_SENT = Answer("0", "40640000", "모의투자 취소주문이 완료 되었습니다.")
    PAPER_MODIFY_SENT = Answer("0", "40630000", "모의투자 정정주문이 완료 되었습니다.")
    NOTHING_TO_CANCEL = Answer("1", "APBK0404", "정정/취소할 수량이 없습니다.")
    OFF_TICK = Answer("1", "APBK0506", "호가단위에 맞지 않는 주문가격입니다.")
    PAPER_OFF_TICK = Answer("1", "40290000", "모의투자 호가단위 오류입니다.")
    NOT_HELD = Answer("1", "APBK0400", "주문 가능한 수량을 초과 했습니다.")
    PAPER_NOT_HELD = Answer("1", "40240000", "모의투자 잔고내역이 없습니다.")
    ORDER_NOT_FOUND = Answer("1", "APBK0344", "원주문번호가 존재하지 않습니다.")
    BAD_INPUT = Answer("1", "OPSQ2001", "ERROR INPUT FIELD")

    # ---- inquiries (documented)
    INQUIRY_MORE = Answer("0", "KIOK0510", "조회가 계속됩니다.")
    INQUIRY_LAST = Answer("0", "KIOK0460", "조회 되었습니다.(마지막 자료)")
    INQUIRY_EMPTY = Answer("0", "KIOK0500", "조회할 내용이 없습니다.")

    @staticmethod
    def bad_input(field: str, problem: str = "INVALID") -> Answer:
        return Codes.BAD_INPUT.with_message(f"ERROR {problem} INPUT FIELD [{field}]")
