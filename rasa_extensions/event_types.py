"""Finds an event's class by its type name in a table, instead of walking Event's subclasses each time.

Rasa 3.6's `Event.resolve_by_type` lists every subclass of Event, checking each
one for abstract methods, for every event it turns back into an object: every
event of a conversation loaded from the tracker store, every event an action
returns. A profile of the server at 10 clients put that walk at 8% of Rasa's
CPU per message (docs/benchmarks.md).

The answer is the same: the table keeps, for each type name, the first class
Rasa's walk would find. A name missing from the table (an event class defined
after it was built, "topic", an unknown name) goes to Rasa's own method, which
finds it, applies the default or raises as before.

Installed by rasa_extensions.install(); the contract test checks that Rasa still
deserialises events through `Event.resolve_by_type`.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Type

_table: Dict[str, type] = {}
_rasas: Optional[Callable[..., Optional[type]]] = None


def _build() -> Dict[str, type]:
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    table: Dict[str, type] = {}
    for cls in all_subclasses(Event):
        table.setdefault(cls.type_name, cls)  # Rasa's walk returns the first match
    return table


def resolve_by_type(type_name: str, default: Optional[Type] = None) -> Optional[type]:
    """Drop-in for `Event.resolve_by_type` (a staticmethod with the same arguments)."""
    global _table
    if not _table:
        _table = _build()
    found = _table.get(type_name)
    if found is not None:
        return found
    if _rasas is None:  # not installed: Rasa's own method is still in place
        from rasa.shared.core.events import Event

        return Event.resolve_by_type(type_name, default)
    return _rasas(type_name, default)


def apply() -> str:
    global _rasas
    from rasa.shared.core.events import Event

    if _rasas is None:
        _rasas = Event.resolve_by_type
    Event.resolve_by_type = staticmethod(resolve_by_type)
    return "event classes looked up in a table"
