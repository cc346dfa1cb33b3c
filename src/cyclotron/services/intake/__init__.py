"""Intake: one path from a face-neutral request to a stored job."""
