"""Pure bookkeeping, no I/O but the state file: ledger, series router, billing cycle, snapshots."""
