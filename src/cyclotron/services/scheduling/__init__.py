"""Scheduling: which task runs next and where (dispatcher, fair admission, leases, retention)."""
