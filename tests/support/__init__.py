"""Test support: live server processes and databases."""
