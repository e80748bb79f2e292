"""Orchestration over the store and the pure rules: sessions, diagnostics, help
requests, enrollment, the directory, timekeeping, time entries and invoicing.
Collaborators (the store, the agent channel, the clock) come in through
constructors; nothing here speaks WebSocket."""
