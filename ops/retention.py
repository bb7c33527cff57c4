"""Deletes every stored message older than RETENTION_DAYS (default 30), and old logs.

Why: conversations hold patients' health-related messages (see
docs/deployment.md, "What is stored"); they are kept only as long as the
clinic needs them. Works on the store Rasa writes to (ops/endpoints.py):
the embedded SQLite file or TRACKER_STORE_URL (PostgreSQL), through Rasa's
`events` table (sender_id, timestamp).

Each event older than the limit goes, whatever the conversation did since: a
message written 60 days ago is deleted even when the patient wrote again last
week (Rasa needs only the current session, which starts after a long silence).
Rotated logs under RUN_DIR older than the limit go too (the current logs are
rotated first, copy-then-truncate, so a running process keeps writing), and
each purge is recorded in the audit log (clinic/audit.py).

    python -m ops.retention               # once (make purge)
    python -m ops.retention --dry-run     # count only
    python -m ops.retention --every-hours 6   # keep running (ops/run.sh)
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import sqlalchemy as sa

from clinic import audit
from clinic.settings import ConfigError, Settings

logger = logging.getLogger("retention")

BATCH = 5000  # events per DELETE: short transactions while Rasa keeps serving
ROTATED_SUFFIX = ".%Y%m%d"


@dataclass(frozen=True)
class PurgeResult:
    conversations: int  # conversations that lost at least one message
    emptied: int  # of those, conversations with nothing left
    events: int
    cutoff: float  # Unix time; every event older than this was deleted


def purge(url: str, days: float, now: Optional[float] = None, dry_run: bool = False) -> PurgeResult:
    """Deletes every event older than `days`, in every conversation; safe to run while Rasa serves."""
    cutoff = (time.time() if now is None else now) - days * 86400
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and not os.path.exists(parsed.database or ""):
        return PurgeResult(0, 0, 0, cutoff)  # no conversation yet; do not create an empty file
    engine = sa.create_engine(parsed)
    try:
        if not sa.inspect(engine).has_table("events"):
            return PurgeResult(0, 0, 0, cutoff)  # Rasa has not stored anything yet
        events = sa.table("events", sa.column("id"), sa.column("sender_id"), sa.column("timestamp"))
        old = events.c.timestamp < cutoff
        per_sender = (sa.select(events.c.sender_id, sa.func.count(), sa.func.max(events.c.timestamp))
                      .where(events.c.sender_id.in_(sa.select(events.c.sender_id).where(old)))
                      .group_by(events.c.sender_id))
        old_counts = (sa.select(events.c.sender_id, sa.func.count()).where(old).group_by(events.c.sender_id))
        with engine.connect() as conn:
            touched: Dict[str, int] = {sender: count for sender, count in conn.execute(old_counts).all()}
            emptied = sum(1 for _, _, newest in conn.execute(per_sender) if newest is not None and newest < cutoff)
        total = sum(touched.values())
        if not dry_run:
            with engine.begin() as conn:  # staff alerts quote patients' words: the same limit applies
                for name, column in (("staff_alerts", "created_at"), ("telegram_outbox", "created_at")):
                    if sa.inspect(engine).has_table(name):
                        conn.execute(sa.text(f"DELETE FROM {name} WHERE {column} < :cutoff"), {"cutoff": cutoff})
            batch = sa.select(events.c.id).where(old).limit(BATCH).scalar_subquery()
            while True:
                with engine.begin() as conn:
                    if conn.execute(events.delete().where(events.c.id.in_(batch))).rowcount == 0:
                        break
        return PurgeResult(len(touched), emptied, total, cutoff)
    finally:
        engine.dispose()


def rotate_logs(run_dir: Path, days: float, now: Optional[float] = None) -> int:
    """Copies each current log aside (then empties it) and deletes copies older than `days`; returns how many."""
    now = time.time() if now is None else now
    if not run_dir.is_dir():
        return 0
    stamp = time.strftime(ROTATED_SUFFIX, time.gmtime(now))
    for log in run_dir.glob("*.log"):
        if log.stat().st_size == 0:
            continue
        rotated = log.with_name(log.name + stamp)
        with log.open("rb") as source, rotated.open("ab") as target:
            shutil.copyfileobj(source, target)
        os.chmod(rotated, 0o600)
        with log.open("r+b") as current:  # the writer appends (O_APPEND), so it carries on at the new end
            current.truncate(0)
    deleted = 0
    for old in run_dir.glob("*.log.*"):
        if old.stat().st_mtime < now - days * 86400:
            old.unlink()
            deleted += 1
    return deleted


def run_once(settings: Settings, dry_run: bool = False, logs_too: bool = True) -> PurgeResult:
    """One purge; `logs_too`: also rotate the logs (not under `make run`, whose supervisor rotates them)."""
    days = settings.retention_days
    result = purge(settings.conversations_url, days, dry_run=dry_run)
    logs = 0 if dry_run or not logs_too else rotate_logs(settings.run_dir, days)
    verb = "would delete" if dry_run else "deleted"
    logger.info("Retention %s days: %s %d message event(s) older than %s from %d conversation(s) (%d now empty); "
                "%d old log file(s) deleted", f"{days:g}", verb, result.events,
                time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(result.cutoff)), result.conversations,
                result.emptied, logs)
    if not dry_run:
        audit.record(settings, "retention purge", by="retention", days=days, events=result.events,
                     conversations=result.conversations, emptied=result.emptied, log_files=logs)
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    parser.add_argument("--every-hours", type=float, default=0,
                        help="keep running and purge at this interval (0: once and exit)")
    parser.add_argument("--no-logs", action="store_true",
                        help="leave the logs alone (make run's supervisor rotates them, at start and daily)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s  %(message)s")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    if args.every_hours <= 0:
        run_once(settings, dry_run=args.dry_run, logs_too=not args.no_logs)
        return 0
    while True:  # stopped by the run script with the other processes
        try:
            run_once(settings, dry_run=args.dry_run, logs_too=not args.no_logs)
        except sa.exc.SQLAlchemyError:
            logger.exception("Retention purge failed; trying again in %g hours", args.every_hours)
        time.sleep(args.every_hours * 3600)


if __name__ == "__main__":
    sys.exit(main())
