"""Deletes stored conversations whose last event is older than RETENTION_DAYS (default 30).

Why: conversations hold patients' health-related messages (see
docs/deployment.md, "What is stored"); they are kept only as long as the
clinic needs them. Works on the store Rasa writes to (ops/endpoints.py):
the embedded SQLite file or TRACKER_STORE_URL (PostgreSQL), through Rasa's
`events` table (sender_id, timestamp).

A whole conversation goes at once, never part of one. A conversation that gets
a new message while the purge runs keeps that message (it starts a new
session, so Rasa needs nothing older).

    python -m ops.retention               # once (make purge)
    python -m ops.retention --dry-run     # count only
    python -m ops.retention --every-hours 6   # keep running (ops/run.sh)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import List, Optional

import sqlalchemy as sa

from clinic.settings import ConfigError, Settings

logger = logging.getLogger("retention")

BATCH = 500  # conversations per DELETE: short transactions, small IN lists


@dataclass(frozen=True)
class PurgeResult:
    conversations: int
    events: int
    cutoff: float  # Unix time; conversations idle since before this were deleted


def purge(url: str, days: float, now: Optional[float] = None, dry_run: bool = False) -> PurgeResult:
    """Deletes every conversation whose newest event is older than `days`; safe to run while Rasa serves."""
    cutoff = (time.time() if now is None else now) - days * 86400
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and not os.path.exists(parsed.database or ""):
        return PurgeResult(0, 0, cutoff)  # no conversation yet; do not create an empty file
    engine = sa.create_engine(parsed)
    try:
        if not sa.inspect(engine).has_table("events"):
            return PurgeResult(0, 0, cutoff)  # Rasa has not stored anything yet
        events = sa.table("events", sa.column("sender_id"), sa.column("timestamp"))
        stale_query = (sa.select(events.c.sender_id).group_by(events.c.sender_id)
                       .having(sa.func.max(events.c.timestamp) < cutoff))
        with engine.connect() as conn:
            stale: List[str] = [row[0] for row in conn.execute(stale_query)]
        deleted = 0
        for start in range(0, len(stale), BATCH):
            batch = stale[start:start + BATCH]
            condition = sa.and_(events.c.sender_id.in_(batch), events.c.timestamp < cutoff)
            with engine.begin() as conn:
                if dry_run:
                    deleted += conn.execute(sa.select(sa.func.count()).select_from(events).where(condition)).scalar()
                else:
                    deleted += conn.execute(events.delete().where(condition)).rowcount
        return PurgeResult(len(stale), deleted, cutoff)
    finally:
        engine.dispose()


def run_once(settings: Settings, dry_run: bool = False) -> PurgeResult:
    days = settings.retention_days
    result = purge(settings.conversations_url, days, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    logger.info("Retention %s days: %s %d conversation(s), %d event(s) idle since before %s", f"{days:g}", verb,
                result.conversations, result.events, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(result.cutoff)))
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    parser.add_argument("--every-hours", type=float, default=0,
                        help="keep running and purge at this interval (0: once and exit)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s  %(message)s")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    if args.every_hours <= 0:
        run_once(settings, dry_run=args.dry_run)
        return 0
    while True:  # stopped by the run script with the other processes
        try:
            run_once(settings, dry_run=args.dry_run)
        except sa.exc.SQLAlchemyError:
            logger.exception("Retention purge failed; trying again in %g hours", args.every_hours)
        time.sleep(args.every_hours * 3600)


if __name__ == "__main__":
    sys.exit(main())
