"""All services of one relay node, wired once: what console handlers and the
transport reach through a small context instead of the whole relay."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relay.services.audit import Auditor
from relay.services.authorities import Authorities
from relay.services.diagnostics import Diagnostics
from relay.services.directory import Directory
from relay.services.documents import InvoiceTemplates
from relay.services.enrollment import Enrollment
from relay.services.help_requests import HelpRequests
from relay.services.live_settings import LiveSettings, as_live
from relay.services.metrics import RelayMetrics
from relay.services.office import Office
from relay.services.ports import AgentChannel, Tap
from relay.services.recordings import Recordings
from relay.services.sessions import SessionManager
from relay.services.time_entries import TimeEntries
from relay.settings import Settings
from relay.store.interface import Store
from shared.clock import Clock


@dataclass
class Services:
    relay_id: str
    clock: Clock
    live: LiveSettings
    authorities: Authorities
    sessions: SessionManager
    directory: Directory
    diagnostics: Diagnostics
    requests: HelpRequests
    enrollment: Enrollment
    entries: TimeEntries
    office: Office
    recordings: Recordings
    auditor: Auditor
    metrics: RelayMetrics
    ca_pin: str = ""  # sha256:… of the relay's private CA; empty with a public certificate

    @property
    def settings(self) -> Settings:
        """The settings in force now (a reload swaps them; read them at use time)."""
        return self.live.current

    @property
    def public_url(self) -> str:
        """What agents and technicians dial (known once the node listens)."""
        return self.sessions.public_url

    def trust_option(self) -> str:
        """`` --ca-pin sha256:…`` for the lines clients run, when they need it."""
        if self.ca_pin and self.public_url.startswith("wss://"):
            return f" --ca-pin {self.ca_pin}"
        return ""

    def store_writes(self) -> int:
        """Committed write transactions of the store since it was opened."""
        return self.sessions.store.write_transactions


def build_services(
    *,
    store: Store,
    clock: Clock,
    settings: Settings | LiveSettings,
    authorities: Authorities,
    relay_id: str,
    channel: AgentChannel,
    data_dir: Path,
    tap: Tap | None = None,
    metrics: RelayMetrics | None = None,
) -> Services:
    """Wire every service of a node around one store and one agent channel; they
    share one settings holder, so a reload reaches them all."""
    settings = as_live(settings)
    metrics = metrics if metrics is not None else RelayMetrics()
    limits = settings.current.limits
    auditor = Auditor(store, clock, limits.audit_window_seconds, limits.audit_buffer_keys)
    diagnostics = Diagnostics(store, channel, clock, settings)
    sessions = SessionManager(
        store,
        clock,
        settings,
        relay_id,
        channel=channel,
        authorities=authorities,
        on_phase=diagnostics.session_phase,
        tap=tap,
        public_url=settings.current.public_url.rstrip("/"),
        metrics=metrics,
    )
    book = sessions.timekeeper.book
    requests = HelpRequests(store, diagnostics, clock, auditor, limits.help_requests_per_agent)

    def reload_requests(_old: Settings, new: Settings) -> None:
        requests.per_agent = new.limits.help_requests_per_agent

    settings.on_swap(reload_requests)
    return Services(
        relay_id=relay_id,
        clock=clock,
        live=settings,
        authorities=authorities,
        sessions=sessions,
        directory=Directory(store, clock, channel, sessions, auditor),
        diagnostics=diagnostics,
        requests=requests,
        enrollment=Enrollment(store, clock, settings, authorities, relay_id, auditor),
        entries=TimeEntries(store, clock, settings, book),
        office=Office(store, clock, settings, book, InvoiceTemplates(data_dir)),
        recordings=Recordings(data_dir),
        auditor=auditor,
        metrics=metrics,
    )
