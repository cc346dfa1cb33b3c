"""Converters from a YAPTIDE editor project to one engine's input files.

Each converter is a pure function of the project (the editor's ``input_json``) and refuses,
rather than approximates, whatever the engine's input cannot express:

    ValueError
    └── ConversionError    an editor feature the target engine cannot take; the message names it
"""

from __future__ import annotations

__all__ = ["ConversionError"]


class ConversionError(ValueError):
    """The project uses something the target engine's input files cannot express."""
