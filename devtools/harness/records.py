"""What Rasa stored, read straight from the conversation store: tests check the record, not only the replies."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import sqlalchemy as sa


def stored_events(url: str, conversation_id: str, type_name: Optional[str] = None) -> List[Dict[str, Any]]:
    """The conversation's events (every session), as stored, in storage order; only `type_name` ones if given."""
    query = "SELECT data FROM events WHERE sender_id = :s" + (" AND type_name = :t" if type_name else "") + \
        " ORDER BY id"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(query), {"s": conversation_id, "t": type_name})
            return [json.loads(row[0]) for row in rows]
    finally:
        engine.dispose()
