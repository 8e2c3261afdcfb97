"""What one crash trial does, drawn from a seed: the signals, the kills and the venue's faults.

Everything random in a trial is drawn here, from ``random.Random(seed, trial)``, so a trial is
reproduced by its seed: the same signals, the same aimed kill points at the same occurrences, the
same delays of the random kills and the same faults (where a random kill lands in the engine's
work still depends on the machine's timing).

Every signal of a trial has its own quantity, so its intent (symbol, side, quantity, price) is
unique: the venue's record of orders, which knows nothing of signal ids, tells by itself which
signal each order it holds was sent for.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import attrs

__all__ = [
    "AIMED_POINTS",
    "KILL_ENV",
    "KILL_POINTS",
    "SYMBOLS",
    "Kill",
    "SignalSpec",
    "TrialPlan",
    "plan_trial",
    "tick_of",
]

#: The environment variable that arms an aimed kill in the engine's process: ``<point>:<n>``.
KILL_ENV = "ORDERLANE_CHAOS_KILL"
#: Kills aimed at the moments that matter, and the random one.
#: ``before_send``: SUBMITTING is committed, the place request not sent yet.
#: ``after_accept``: the venue took the order and answered; the answer is not committed yet.
#: ``group_commit``: inside a transaction that commits several orders' changes together.
AIMED_POINTS: tuple[str, ...] = ("before_send", "after_accept", "group_commit")
KILL_POINTS: tuple[str, ...] = (*AIMED_POINTS, "random")
#: The symbols a trial trades (the fake venue's quotes: 72,000, 42,000, 100,000 won).
SYMBOLS: tuple[str, ...] = ("005930", "035720", "000270")
#: Faults switched on at the venue for a run of the engine: (action, operation, extra arguments).
#: (An expired token is left to the fault matrix: KIS issues one token a minute, so each costs
#: a minute's wait and says nothing about crashes.)
FAULTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("gateway_timeout", "place", {"msg_cd": "EGW00301"}),
    ("gateway_timeout", "place", {"msg_cd": "EGW00302", "processed": False}),
    ("drop_after", "place", {}),
    ("drop_before", "place", {}),
    ("http_error", "place", {"status": 500}),
    ("rate_limit", "place", {}),
    ("http_error", "inquiry", {"status": 502}),
    ("gateway_timeout", "cancel", {"msg_cd": "EGW00301"}),
)


def tick_of(price: int) -> int:
    """KRX's tick for a stock at ``price`` won."""
    for bound, tick in ((2_000, 1), (5_000, 5), (20_000, 10), (50_000, 50), (200_000, 100)):
        if price < bound:
            return tick
    return 500 if price < 500_000 else 1_000


@attrs.frozen
class SignalSpec:
    signal_id: str
    symbol: str
    side: Literal["BUY", "SELL"]
    quantity: int
    order_type: Literal["MARKET", "LIMIT"]
    limit_price: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @property
    def intent(self) -> tuple[str, str, int]:
        """What the venue's record shows of it (each trial's quantities are distinct)."""
        return (self.symbol, self.side, self.quantity)


@attrs.frozen
class Kill:
    """One kill of the engine: at an aimed point's ``occurrence``-th passage, or ``random``
    after ``delay`` seconds."""

    point: str
    occurrence: int = 1
    delay: float = 0.0

    @property
    def env(self) -> str | None:
        """The value of ``ORDERLANE_CHAOS_KILL`` that arms it in the engine's process."""
        return None if self.point == "random" else f"{self.point}:{self.occurrence}"


@attrs.frozen
class TrialPlan:
    trial: int
    signals: tuple[SignalSpec, ...]
    kills: tuple[Kill, ...]
    #: Per run of the engine (index as ``kills``; the last, unkilled run has none).
    faults: tuple[tuple[tuple[str, str, dict[str, Any]], ...], ...]
    #: Scripted behaviour of some orders: signal index -> "partial" or "hold".
    scripts: tuple[str, ...]
    #: Quote moves during a run: (delay in seconds, symbol, ticks from the base quote).
    quote_moves: tuple[tuple[float, str, int], ...]
    drop_notices: int = 0


def plan_trial(
    seed: int,
    trial: int,
    quotes: dict[str, int],
    *,
    signals: int = 10,
    max_kills: int = 3,
) -> TrialPlan:
    """The plan of trial ``trial`` of a run seeded ``seed``."""
    rng = random.Random(f"{seed}:{trial}")  # noqa: S311 - a plan, not a secret
    quantities = rng.sample(range(1, 10 * signals + 1), signals)
    specs: list[SignalSpec] = []
    for index, quantity in enumerate(quantities):
        symbol = rng.choice(SYMBOLS)
        side: Literal["BUY", "SELL"] = rng.choice(("BUY", "SELL"))
        if rng.random() < 0.5:
            specs.append(SignalSpec(f"t{trial}-s{index}", symbol, side, quantity, "MARKET"))
            continue
        quote = quotes[symbol]
        tick = tick_of(quote)
        # Marketable (fills at the quote) or resting a tick or two away (a quote move or the
        # final cancel settles it).
        away = rng.choice((-2, -1, 1, 2))
        toward = 1 if side == "BUY" else -1
        price = quote + toward * away * tick
        specs.append(SignalSpec(f"t{trial}-s{index}", symbol, side, quantity, "LIMIT", price))
    count = rng.randint(1, max_kills)
    # Every trial aims at least once, in turn, so each aimed point is tried as often as the
    # others; the other kills are aimed or random.
    kills = [Kill(AIMED_POINTS[trial % len(AIMED_POINTS)], rng.randint(1, 3))]
    for _ in range(count - 1):
        point = rng.choice(KILL_POINTS)
        if point == "random":
            kills.append(Kill("random", delay=round(rng.uniform(0.3, 4.0), 3)))
        else:
            kills.append(Kill(point, rng.randint(1, 4)))
    rng.shuffle(kills)
    faults = tuple(tuple(rng.sample(FAULTS, rng.randint(0, 2))) for _ in range(len(kills) + 1))
    scripts = tuple(
        rng.choice(("partial", "partial", "hold", "fill", "fill", "fill"))
        for _ in range(rng.randint(0, 3))
    )
    moves = tuple(
        (round(rng.uniform(0.5, 4.0), 3), rng.choice(SYMBOLS), rng.choice((-2, -1, 1, 2)))
        for _ in range(rng.randint(0, 2))
    )
    return TrialPlan(
        trial,
        tuple(specs),
        tuple(kills),
        faults,
        scripts,
        moves,
        drop_notices=rng.choice((0, 0, 1, 2)),
    )
