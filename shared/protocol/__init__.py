"""Wire protocol and session-state tables. Pure: nothing here does I/O."""
