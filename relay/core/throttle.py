"""Slow down guessing without letting strangers lock anyone out.

Every authentication attempt names an *identity* (a technician token's hash prefix,
an agent id, an enrollment token's hash prefix, or the shared support-code space)
and comes from an *address* (the client's, see :mod:`relay.core.forwarded`).
Failures are counted over a sliding window in three tables, in the spirit of
OpenSSH's PerSourcePenalties and fail2ban, but per identity as well:

- per (identity, address): reaching the limit blocks that identity from that
  address, so a revoked agent or a stale token that keeps retrying stops itself
  and nobody else;
- per identity, over all addresses: reaching the limit blocks that identity (a
  distributed attack on one account); another identity is never affected;
- per address, over all identities: reaching the limit only *slows* the address's
  failures, it never refuses valid credentials. Many people share one address
  (an office NAT, a proxy), so a guesser there must not lock out the others.

Identities that everybody shares (support codes are one space of short codes, not
one account) are counted per address only: a per-identity count would let one
guesser lock out every client waiting with a code.

Memory is bounded: each table keeps at most ``max_keys`` keys (the least recently
failed dropped first) and at most ``limit`` timestamps per key.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from dataclasses import dataclass

from shared.clock import Clock


class Verdict(enum.Enum):
    """What the gate does with an attempt before checking its credentials."""

    ALLOW = "allow"  # check the credentials, answer a failure at once
    SLOW = "slow"  # check the credentials; a failure is answered only after a delay
    BLOCK = "block"  # refuse without checking: this identity failed too often


@dataclass(frozen=True)
class Attempt:
    """One authentication attempt: who it claims to be, and where it comes from."""

    identity: str
    address: str
    shared: bool = False  # the identity is a space shared by everyone (support codes)


@dataclass(frozen=True)
class ThrottleLimits:
    """Failures allowed within ``window`` seconds, per table (all positive)."""

    per_pair: int = 20
    per_identity: int = 100
    per_address: int = 20
    window: float = 60.0
    max_keys: int = 10_000


class FailureWindow:
    """Failure times per key within a sliding window; bounded keys and times."""

    def __init__(self, clock: Clock, limit: int, window: float, max_keys: int) -> None:
        self._clock = clock
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        # Insertion order is failure order (a key moves to the end when it fails),
        # so the first key is the stalest one to evict.
        self._times: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._times)

    def count(self, key: str) -> int:
        """Failures of ``key`` within the window (at most the limit: older ones are
        not kept, because only reaching the limit matters)."""
        times = self._times.get(key)
        if times is None:
            return 0
        cutoff = self._clock.monotonic() - self._window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._times[key]
        return len(times)

    def full(self, key: str) -> bool:
        """Whether ``key`` reached the limit within the window."""
        return self.count(key) >= self._limit

    def add(self, key: str) -> None:
        """Record one failure of ``key`` now."""
        times = self._times.pop(key, None)
        if times is None:
            times = deque(maxlen=self._limit)
            while len(self._times) >= self._max_keys:
                self._times.popitem(last=False)
        times.append(self._clock.monotonic())
        self._times[key] = times


class AuthThrottle:
    """The three failure tables and the verdict they give an attempt."""

    def __init__(self, clock: Clock, limits: ThrottleLimits) -> None:
        self.limits = limits

        def table(limit: int) -> FailureWindow:
            return FailureWindow(clock, limit, limits.window, limits.max_keys)

        self.pairs = table(limits.per_pair)
        self.identities = table(limits.per_identity)
        self.addresses = table(limits.per_address)

    def verdict(self, attempt: Attempt) -> Verdict:
        """Whether ``attempt`` may be checked, and how its failure is answered."""
        if self.pairs.full(_pair(attempt)):
            return Verdict.BLOCK
        if not attempt.shared and self.identities.full(attempt.identity):
            return Verdict.BLOCK
        if self.addresses.full(attempt.address):
            return Verdict.SLOW
        return Verdict.ALLOW

    def failed(self, attempt: Attempt) -> None:
        """Record that ``attempt`` presented wrong credentials."""
        self.pairs.add(_pair(attempt))
        if not attempt.shared:
            self.identities.add(attempt.identity)
        self.addresses.add(attempt.address)


def _pair(attempt: Attempt) -> str:
    # A NUL cannot occur in an address, so the joined key is unambiguous.
    return f"{attempt.address}\0{attempt.identity}"
