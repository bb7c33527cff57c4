"""Who may use the console: staff accounts, sign-in lock-out, sessions and CSRF tokens.

- Accounts: STAFF_ACCOUNTS holds `name:hash` entries whose hashes are salted Argon2id
  (argon2-cffi; `python -m console hash-password` makes one); STAFF_PASSWORD is one shared
  password for the account `staff`, hashed in memory at start-up and never stored.
- Lock-out: after MAX_FAILURES failed sign-ins for one account name (or MAX_ADDRESS_FAILURES
  from one address) within LOCKOUT_S, sign-in is refused for LOCKOUT_S, right password or not.
- Sessions: a random token in a cookie (HttpOnly, SameSite=Strict, Secure behind HTTPS),
  held in this process's memory: signing out or restarting the console ends it; it also
  ends after IDLE_S without a request and after MAX_AGE_S in any case.
- CSRF: every form carries the session's token, compared in constant time; the sign-in
  form, before any session, carries a token that must match a cookie of its own.
"""

from __future__ import annotations

import getpass
import hmac
import secrets
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, Optional, Tuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from clinic.settings import MIN_STAFF_PASSWORD_CHARS, SHARED_STAFF_ACCOUNT, STAFF_NAME, Settings

MAX_FAILURES = 5
MAX_ADDRESS_FAILURES = 20
LOCKOUT_S = 15 * 60
IDLE_S = 60 * 60
MAX_AGE_S = 12 * 60 * 60
COOKIE = "console_session"
SIGN_IN_COOKIE = "console_sign_in"

_hasher = PasswordHasher()  # Argon2id with the library's current defaults (salted, memory-hard)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


class Accounts:
    """Names and Argon2 hashes; `verify` takes the same time whether or not the name exists."""

    def __init__(self, hashes: Dict[str, str]) -> None:
        self._hashes = hashes
        self._dummy = hash_password(secrets.token_urlsafe(16))

    @classmethod
    def from_settings(cls, settings: Settings) -> Accounts:
        hashes = dict(settings.staff_accounts)
        if settings.staff_password and SHARED_STAFF_ACCOUNT not in hashes:
            hashes[SHARED_STAFF_ACCOUNT] = hash_password(settings.staff_password)
        return cls(hashes)

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(sorted(self._hashes))

    @property
    def only_shared(self) -> bool:
        """Only STAFF_PASSWORD is set: the sign-in form asks for the password alone."""
        return self.names == (SHARED_STAFF_ACCOUNT,)

    def verify(self, name: str, password: str) -> bool:
        stored = self._hashes.get(name)
        try:
            return _hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


class LockOut:
    """Failed sign-ins per account name and per client address, forgotten after LOCKOUT_S."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: Dict[str, Deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str) -> Deque[float]:
        now = self._clock()
        failures = self._failures.setdefault(key, deque())
        while failures and now - failures[0] > LOCKOUT_S:
            failures.popleft()
        return failures

    def locked_for(self, name: str, address: str) -> float:
        """Seconds until sign-in is allowed again (0: allowed)."""
        with self._lock:
            waits = []
            for key, limit in ((f"name:{name.lower()}", MAX_FAILURES), (f"addr:{address}", MAX_ADDRESS_FAILURES)):
                failures = self._recent(key)
                if len(failures) >= limit:
                    waits.append(LOCKOUT_S - (self._clock() - failures[-limit]))
            return max(waits, default=0.0)

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            for key in (f"name:{name.lower()}", f"addr:{address}"):
                self._recent(key).append(self._clock())

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(f"name:{name.lower()}", None)


@dataclass
class Session:
    name: str
    csrf: str
    created: float
    seen: float = field(default=0.0)


class Sessions:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._sessions: Dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, name: str) -> Tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(name, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._sessions[token] = session
            self._expire(now)
        return token, session

    def get(self, token: Optional[str]) -> Optional[Session]:
        if not token:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if now - session.seen > IDLE_S or now - session.created > MAX_AGE_S:
                del self._sessions[token]
                return None
            session.seen = now
            return session

    def end(self, token: Optional[str]) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def _expire(self, now: float) -> None:
        for token in [t for t, s in self._sessions.items() if now - s.seen > IDLE_S or now - s.created > MAX_AGE_S]:
            del self._sessions[token]


def same(a: Optional[str], b: Optional[str]) -> bool:
    """Constant-time comparison of two tokens; a missing one never matches."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def hash_password_command() -> int:
    """`python -m console hash-password`: asks for a name and a password, prints a STAFF_ACCOUNTS entry."""
    name = input("Staff member's name (letters, digits, . _ -): ").strip()
    if not STAFF_NAME.match(name):
        print("A name is 1-32 letters, digits, '.', '_' or '-'.", file=sys.stderr)
        return 2
    password = getpass.getpass("Password: ")
    if len(password) < MIN_STAFF_PASSWORD_CHARS:
        print(f"Use at least {MIN_STAFF_PASSWORD_CHARS} characters.", file=sys.stderr)
        return 2
    if getpass.getpass("Again: ") != password:
        print("The two passwords differ.", file=sys.stderr)
        return 2
    print(f"{name}:{hash_password(password)}")
    print("Add this to STAFF_ACCOUNTS (entries separated by spaces), in single quotes, e.g.\n"
          f"  export STAFF_ACCOUNTS='{name}:$argon2id$...'", file=sys.stderr)
    return 0
