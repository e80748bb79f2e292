"""The settings in force, swappable while the relay runs.

``Settings`` stays a frozen value; a reload (SIGHUP, ``qp-relay reload``) replaces
the whole value in one :class:`LiveSettings` holder that every service shares. A
service reads ``holder.current`` at use time, so a session opened after a reload
sees the new limits and billing values, while work already under way keeps what
it read when it started.
"""

from __future__ import annotations

from collections.abc import Callable

from relay.settings import Settings

Listener = Callable[[Settings, Settings], None]


class LiveSettings:
    """Holds the current :class:`Settings`; :meth:`swap` replaces them."""

    def __init__(self, settings: Settings) -> None:
        self.current = settings
        self._listeners: list[Listener] = []

    def on_swap(self, listener: Listener) -> None:
        """Call ``listener(old, new)`` after each swap (for values a service derives
        once from the settings, such as the default rate card)."""
        self._listeners.append(listener)

    def swap(self, new: Settings) -> Settings:
        """Put ``new`` in force; returns the settings it replaced."""
        old, self.current = self.current, new
        for listener in self._listeners:
            listener(old, new)
        return old


class ReadsLiveSettings:
    """For a service holding a :class:`LiveSettings` as ``_live``: ``settings`` is
    the value in force at each use (a derived value, such as the default rate
    card, is refreshed by an :meth:`LiveSettings.on_swap` listener)."""

    _live: LiveSettings

    @property
    def settings(self) -> Settings:
        """The settings in force now: a reload swaps them between two uses."""
        return self._live.current


def as_live(settings: Settings | LiveSettings) -> LiveSettings:
    """A holder for ``settings`` (the same holder when given one), so services and
    tests may still pass a plain ``Settings``."""
    return settings if isinstance(settings, LiveSettings) else LiveSettings(settings)
