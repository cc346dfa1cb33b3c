"""Jobs as their owners see them: queries, cancel, delete, progress events, logs."""
