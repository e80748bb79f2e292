"""The relay's pure rules: who may do what, session policy, help-request lifecycle,
support codes, ids and tunnel-token rules. Imports only :mod:`relay.model` and
``shared``; no I/O."""
