"""Writes of the record, one module per thing: the ledgers (ledger), windows and their reconcile
(windows), findings (findings) and their lifecycle (finding_lifecycle), runs (run_lifecycle for a
run started now, runs for queued ones), the cache leg (cache_check) and validation (validation),
the audit log (audit), operator actions (actions), what the feed records about itself (feed),
ledger partitions (partitions) and the audit of grants (grants)."""
