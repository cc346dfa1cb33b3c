"""The native ``/api`` face: spec/native.md."""
