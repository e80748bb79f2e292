"""Diagnostics the agent gathers for the technician.

``runner.take_snapshot`` runs every collector (``system``, ``cpu_mem``, ``disks``,
``services``, ``network``, ``probes``, ``sockets``, ``journal``) in its own worker
thread under its own timeout and returns a sanitised
:class:`shared.diagnostics.Snapshot` with the findings of ``findings.evaluate``.
"""
