"""The OpenAPI 3.1 document of the JSON API, served at ``/openapi.json``.

The schemas of orders, fills and positions are derived from orderlane's own classes (their attrs
fields and type hints), so a field added to :class:`~orderlane.model.Fill` appears in the
document by itself. Money is an exact decimal string, times ISO 8601 strings.
"""

from __future__ import annotations

import enum
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs

from orderlane import __version__
from orderlane.model import Fill, Order, OrderStatus
from orderlane.positions import Position

__all__ = ["openapi_document"]

_DECIMAL = {"type": "string", "format": "decimal", "examples": ["72000", "-1234.5"]}


def _schema_of_type(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        [member] = members
        schema = _schema_of_type(member)
        return {"anyOf": [schema, {"type": "null"}]}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"type": "string", "enum": [member.value for member in hint]}
    if hint is Decimal:
        return dict(_DECIMAL)
    if hint is datetime:
        return {"type": "string", "format": "date-time"}
    if hint is date:
        return {"type": "string", "format": "date"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is str:
        return {"type": "string"}
    return {}  # pragma: no cover - a field type orderlane does not use yet: any JSON value


def _schema_of(cls: type, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties = {field.name: _schema_of_type(hints[field.name]) for field in attrs.fields(cls)}
    properties.update(extra or {})
    return {"type": "object", "properties": properties, "required": sorted(properties)}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list_of(key: str, item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {key: {"type": "array", "items": _ref(item)}},
        "required": [key],
    }


def _ok(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_ACCOUNT = _query("account", "Only this account's rows.", {"type": "string"})
_BAD = _ok(_ref("Error"), "A query parameter cannot be used.")
_DOWN = _ok(_ref("Error"), "The journal cannot be read now.")
_DENIED = _ok(_ref("Error"), "The request lacks the dashboard's token (non-loopback binds).")


def _get(summary: str, ok: dict[str, Any], *params: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": ok, "400": _BAD, "401": _DENIED, "503": _DOWN},
    }
    if params:
        operation["parameters"] = list(params)
    return {"get": operation}


def openapi_document() -> dict[str, Any]:
    """The whole document (a fresh dict each call)."""
    statuses = [status.value for status in OrderStatus]
    figures = ("realized_pnl", "gross_pnl", "commissions", "net_pnl")
    pnl_row = {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            **dict.fromkeys(figures, _DECIMAL),
            "fills": {"type": "integer"},
        },
        "required": ["key", *figures, "fills"],
    }
    schemas = {
        "Order": _schema_of(Order, {"average_fill_price": {"anyOf": [_DECIMAL, {"type": "null"}]}}),
        "Fill": _schema_of(Fill),
        "Position": _schema_of(Position),
        "Event": {
            "type": "object",
            "properties": {
                "seq": {"type": "integer"},
                "type": {"type": "string"},
                "recorded_at": {"type": "string", "format": "date-time"},
                "payload": {"type": "object"},
            },
            "required": ["seq", "type", "recorded_at", "payload"],
        },
        "PnLRow": pnl_row,
        "PnL": {
            "type": "object",
            "properties": {
                "by": {"type": "string", "enum": ["day", "session"]},
                "rows": {"type": "array", "items": _ref("PnLRow")},
                "total": _DECIMAL,
                "totals": {
                    "type": "object",
                    "properties": dict.fromkeys(figures[1:], _DECIMAL),
                    "required": list(figures[1:]),
                },
            },
            "required": ["by", "rows", "total", "totals"],
        },
        "OrderDetail": {
            "type": "object",
            "properties": {
                "order": _ref("Order"),
                "fills": {"type": "array", "items": _ref("Fill")},
                "events": {"type": "array", "items": _ref("Event")},
            },
            "required": ["order", "fills", "events"],
        },
        "Summary": {
            "type": "object",
            "properties": {
                "counts": {
                    "type": "object",
                    "properties": {status: {"type": "integer"} for status in statuses},
                    "required": statuses,
                },
                "orders": {"type": "integer"},
                "open": {"type": "integer"},
                "unknown": {"type": "integer"},
                "latest_day": {"anyOf": [_ref("PnLRow"), {"type": "null"}]},
                "marker": {"type": "string"},
            },
            "required": ["counts", "orders", "open", "unknown", "latest_day", "marker"],
        },
        "Error": {
            "type": "object",
            "properties": {"error": {"type": "string"}},
            "required": ["error"],
        },
    }
    order_filters = (
        _query(
            "status",
            "Only orders in these states (repeat it, or separate by commas).",
            {"type": "array", "items": {"type": "string", "enum": statuses}},
        ),
        _query("symbol", "Only this instrument.", {"type": "string"}),
        _query(
            "day",
            "Only orders created on this day (the dashboard's time zone).",
            {"type": "string", "format": "date"},
        ),
        _ACCOUNT,
        _query(
            "limit",
            "At most this many, newest first.",
            {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
        ),
        _query(
            "before",
            "Page on: the orders after the order with this id (the `next` of the previous page).",
            {"type": "string"},
        ),
    )
    order_page = _list_of("orders", "Order")
    order_page["properties"]["next"] = {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": "Pass it as `before` for the next page; null on the last page.",
    }
    order_page["required"].append("next")
    detail = _get("One order, its fills and its event timeline", _ok(_ref("OrderDetail"), "Found."))
    detail["get"]["parameters"] = [
        {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    detail["get"]["responses"]["404"] = _ok(_ref("Error"), "No order has this id.")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "orderlane dashboard API",
            "version": __version__,
            "description": "Read-only: orders, fills, positions and realized P&L from an "
            "orderlane journal. Money is an exact decimal string; times are ISO 8601 in UTC.",
        },
        "paths": {
            "/api/summary": _get(
                "Counts per state and the newest day's P&L",
                _ok(_ref("Summary"), "The summary."),
                _ACCOUNT,
            ),
            "/api/orders": _get(
                "Orders, newest first, a page at a time",
                _ok(order_page, "A page of orders."),
                *order_filters,
            ),
            "/api/orders/{order_id}": detail,
            "/api/fills": _get(
                "Fills, newest first",
                _ok(_list_of("fills", "Fill"), "Fills."),
                _ACCOUNT,
                _query(
                    "limit",
                    "At most this many.",
                    {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                ),
            ),
            "/api/positions": _get(
                "Positions, flat ones too",
                _ok(_list_of("positions", "Position"), "Positions."),
                _ACCOUNT,
            ),
            "/api/pnl": _get(
                "Realized P&L per trading day or per session",
                _ok(_ref("PnL"), "The P&L."),
                _query(
                    "by",
                    "Sum per trading day or per session.",
                    {"type": "string", "enum": ["day", "session"], "default": "day"},
                ),
                _ACCOUNT,
            ),
            "/api/events": {
                "get": {
                    "summary": "Server-sent events: `change` whenever the journal changes",
                    "responses": {
                        "200": {
                            "description": "An endless text/event-stream; each `change` event's "
                            "data is a JSON object with the journal's new `marker`.",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        "401": _DENIED,
                    },
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
    }
