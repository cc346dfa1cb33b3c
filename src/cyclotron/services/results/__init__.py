"""Results: a job's files and merged results for callers allowed to see them, and archives."""
