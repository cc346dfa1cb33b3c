"""Simulator plug-ins: each knows one engine and never touches the database, HTTP or executors."""
