"""Reads of the record, one module per thing: windows, findings, runs, the replays that delivered
a message, the audit log."""
