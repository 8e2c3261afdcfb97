"""One cattrs converter for everything orderlane writes out: events, the journal, JSON output.

Decimals become strings (exact), datetimes ISO 8601 with offset, enums their value.

An attrs class whose fields are all plain values (text, numbers, Decimal, dates and times, enums,
other such classes, each maybe None) is turned into a dict by one function written out for it,
every conversion inline: the events of every order are written this way, and cattrs' own
generated function calls a hook per field. The output is the same (``tests/core`` compares the
two); any other class keeps cattrs' own.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import cattrs
from cattrs.fns import identity

__all__ = ["converter", "to_json", "unstructure"]

converter = cattrs.Converter()


def _iso(value: datetime | date) -> str:
    return value.isoformat()


#: Decimals, datetimes and dates: each type's hook, and the same written as one expression of
#: the value ``{v}`` for the functions written out below (used while the converter's hook for the
#: type is still this one; one registered later is called instead).
_EXPRESSIONS: dict[Any, tuple[Callable[[Any], Any], str]] = {
    Decimal: (str, "str({v})"),
    datetime: (_iso, "{v}.isoformat()"),
    date: (_iso, "{v}.isoformat()"),
}
for _kind, (_hook, _expression_text) in _EXPRESSIONS.items():
    converter.register_unstructure_hook(_kind, _hook)
converter.register_structure_hook(Decimal, lambda value, _: Decimal(str(value)))
converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
converter.register_structure_hook(date, lambda value, _: date.fromisoformat(value))
converter.register_unstructure_hook(timedelta, lambda value: value.total_seconds())
converter.register_structure_hook(timedelta, lambda value, _: timedelta(seconds=float(value)))
converter.register_unstructure_hook(
    frozenset, lambda value: sorted(converter.unstructure(v) for v in value)
)

#: The classes whose function is being written: a field of one of them (a class that refers to
#: itself) is left to cattrs, which handles the recursion.
_WRITING: set[type] = set()


def _expression(kind: Any, value: str, namespace: dict[str, Any]) -> str | None:
    """Python that turns ``value`` (a field of type ``kind``) into plain data as this converter
    would, or None where the type is not one :func:`flat_unstructure_fn` writes out."""
    if kind in _EXPRESSIONS:
        registered, expression = _EXPRESSIONS[kind]
        if converter.get_unstructure_hook(kind) is registered:
            return expression.format(v=value)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(kind) if option is not type(None)]
        if len(options) != 1 or len(typing.get_args(kind)) != 2:
            return None
        inner = _expression(options[0], value, namespace)
        if inner is None:
            return None
        return value if inner == value else f"(None if {value} is None else {inner})"
    if (
        not isinstance(kind, type)
        or kind in _WRITING
        or not (
            kind in (str, int, bool, float, *_EXPRESSIONS)
            or issubclass(kind, enum.Enum)
            or attrs.has(kind)
        )
    ):
        return None
    hook = converter.get_unstructure_hook(kind)
    if hook is identity:  # text, numbers, enums that are text or numbers
        return value
    name = f"unstructure_{len(namespace)}"
    namespace[name] = hook
    return f"{name}({value})"


def flat_unstructure_fn(cls: type) -> Callable[[Any], dict[str, Any]] | None:
    """The dict of an attrs instance of ``cls``, every field converted inline; None when a
    field's type is not a plain value, or cattrs would treat the field in a way of its own (an
    ``Annotated`` override, a class that refers to itself): cattrs' own function is used then.
    Fields that are no ``__init__`` argument are left out, as cattrs leaves them out."""
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except (NameError, TypeError):  # pragma: no cover - annotations that do not resolve
        return None
    namespace: dict[str, Any] = {}
    items = []
    _WRITING.add(cls)
    try:
        for field in attrs.fields(cls):
            if not field.init:
                continue
            kind = hints.get(field.name)
            if typing.get_origin(kind) is typing.Annotated:
                return None
            expression = _expression(kind, f"inst.{field.name}", namespace)
            if expression is None:
                return None
            items.append(f"{field.name!r}: {expression}")
    finally:
        _WRITING.discard(cls)
    # Built from the class's own field names (identifiers), as attrs builds __init__.
    source = "def unstructure(inst):\n    return {" + ", ".join(items) + "}\n"
    exec(compile(source, f"<orderlane unstructure {cls.__qualname__}>", "exec"), namespace)  # noqa: S102
    function: Callable[[Any], dict[str, Any]] = namespace["unstructure"]
    return function


def _attrs_unstructure_fn(cls: type) -> Callable[[Any], Any]:
    written = flat_unstructure_fn(cls)
    if written is not None:
        return written
    return cattrs.gen.make_dict_unstructure_fn(cls, converter)


converter.register_unstructure_hook_factory(attrs.has, _attrs_unstructure_fn)


def unstructure(obj: Any) -> Any:
    """Plain JSON-ready data for an attrs object (or a list/dict of them)."""
    return converter.unstructure(obj)


def to_json(obj: Any, *, indent: int | None = None) -> str:
    return json.dumps(unstructure(obj), indent=indent, ensure_ascii=False)
