"""The webhook delivery engine: fan-out from the audit log, the dispatcher, the sender."""
