"""Every error orderlane raises, in one tree.

::

    OrderlaneError
      BrokerError
        BrokerConnectionError      request did not reach the broker: safe to retry
        BrokerTimeoutError         .request_sent tells whether the broker may have acted
        BrokerRateLimitError       .retry_after when known
        BrokerAuthError
        OrderRejectedError         the broker said no: never retried
          InsufficientBalanceError
          InvalidSymbolError
          OrderValidationError
        OrderNotFoundError
        BrokerAnswerError          a bad answer (wrong type, NaN, negative price): nothing booked
      OrderRetryExhaustedError     .original_error, .attempts
      InvalidTransitionError
      DuplicateSignalError
      InvalidSignalError           the signal itself is malformed; nothing was stored
      OrderVetoedError             an observer's validate hook refused the order
      UnknownOrderError            the journal holds no order with that id (also a LookupError)
      ConfigurationError           unknown adapter names, live trading not enabled, bad settings
      JournalError                 the database holds something the code cannot use

``engine.execute(signal)`` returns an ``Order`` for every broker outcome; it raises only
``InvalidSignalError``, ``OrderVetoedError``, ``DuplicateSignalError`` and ``ConfigurationError``,
and ``JournalError`` when the database refuses a write before anything was sent (the engine
ends that order once the journal takes writes again). An order that went to the broker is
returned as last stored instead, and the engine books the broker's answer once the journal takes
writes again.
Broker errors are raised by adapters and decided on by the engine's retry classification: a
rejection ends the order REJECTED, connection and rate-limit errors are retried, and anything
after which the broker may hold the order makes it UNKNOWN until the broker is asked.
"""

from __future__ import annotations

__all__ = [
    "BrokerAnswerError",
    "BrokerAuthError",
    "BrokerConnectionError",
    "BrokerError",
    "BrokerRateLimitError",
    "BrokerTimeoutError",
    "ConfigurationError",
    "DuplicateSignalError",
    "InsufficientBalanceError",
    "InvalidSignalError",
    "InvalidSymbolError",
    "InvalidTransitionError",
    "JournalError",
    "OrderNotFoundError",
    "OrderRejectedError",
    "OrderRetryExhaustedError",
    "OrderValidationError",
    "OrderVetoedError",
    "OrderlaneError",
    "UnknownOrderError",
]


class OrderlaneError(Exception):
    """Base of every orderlane error."""


class BrokerError(OrderlaneError):
    """Something a broker (or the way to it) answered or failed to answer."""


class BrokerConnectionError(BrokerError):
    """The request did not reach the broker, so it cannot have acted: safe to retry.

    Set ``request_sent=True`` when the connection dropped after the request was written:
    the broker may then hold the order, and the engine treats the failure as ambiguous.
    """

    def __init__(self, message: str = "", *, request_sent: bool = False) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class BrokerTimeoutError(BrokerError):
    """No answer in time. ``request_sent`` says whether the broker may have acted."""

    def __init__(self, message: str = "", *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class BrokerRateLimitError(BrokerError):
    """The broker refused the request for exceeding its rate limit; nothing was done."""

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BrokerAuthError(BrokerError):
    """Credentials were refused or a token could not be obtained."""


class OrderRejectedError(BrokerError):
    """The broker refused the order. Final: never retried."""


class InsufficientBalanceError(OrderRejectedError):
    """Not enough cash or shares for the order."""


class InvalidSymbolError(OrderRejectedError):
    """The symbol is unknown to the broker or not tradable."""


class OrderValidationError(OrderRejectedError):
    """The broker found the order's fields invalid (price, quantity, order type...)."""


class OrderNotFoundError(BrokerError):
    """The broker says it has no such order."""


class BrokerAnswerError(BrokerError):
    """What an adapter answered is not a usable broker answer: a field of the wrong type (a float
    price, a bool quantity), an impossible value (NaN, a negative or zero fill price, a negative
    commission, more filled than ordered) or a result of the wrong kind.

    Raised by the engine's ``Broker`` facade, which checks every answer before anything of it is
    booked. ``adapter``, ``operation`` (the hook) and ``field`` name what was wrong. The order it
    was about is left as it is, for a later status inquiry to settle; after a place request it
    counts as an answer that does not parse (the order is looked up, never marked on a guess).
    """

    def __init__(
        self, message: str, *, adapter: str = "", operation: str = "", field: str = ""
    ) -> None:
        super().__init__(message)
        self.adapter = adapter
        self.operation = operation
        self.field = field


class OrderRetryExhaustedError(OrderlaneError):
    """Every attempt of a retried operation failed with a retryable error."""

    def __init__(
        self, message: str, *, original_error: BaseException | None, attempts: int
    ) -> None:
        super().__init__(message)
        self.original_error = original_error
        self.attempts = attempts


class InvalidTransitionError(OrderlaneError):
    """An order was asked to move to a state its current state does not lead to."""


class DuplicateSignalError(OrderlaneError):
    """A signal id was executed before with different fields."""


class InvalidSignalError(OrderlaneError, ValueError):
    """The signal is malformed (quantity, side, price...). Nothing was stored or sent."""


class OrderVetoedError(OrderlaneError):
    """An observer's ``orderlane_validate_order`` hook refused the order before it was stored."""


class UnknownOrderError(OrderlaneError, LookupError):
    """The journal holds no order with the id asked for."""


class ConfigurationError(OrderlaneError):
    """Settings are missing or wrong: unknown adapter, live trading not enabled, bad URL..."""


class JournalError(OrderlaneError):
    """The journal's database is unusable as it is (newer schema, corrupt row, lost update)."""
