"""Executors: where tasks run. They report what happened; they never decide states."""
