"""The rule for text a request stores or searches: no NUL, no other control character, and
valid Unicode.

PostgreSQL refuses NUL in a text column (SQLite keeps it), and a lone surrogate (``"\\ud800"``
in JSON) cannot be written as UTF-8 by either; the other control characters (C0, DEL and C1)
have no place in a name, a title or a search either. So every face refuses them alike, each
in its own 4xx shape, before anything reaches the database: one-line text (names, titles,
searches, identifiers) allows none of them, multi-line text (the strings of an editor project
or of an input document: descriptions, an mmCIF block) allows tab, line feed and carriage
return.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

Location = tuple[str | int, ...]

# C0 controls, DEL, C1 controls and the surrogate code points.
_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_MULTI_LINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# How many refused strings of one document are reported (the first ones, in document order).
MAX_REPORTED = 10


def text_problem(text: str, *, multiline: bool = False) -> str | None:
    """Why ``text`` is refused, or None: a control character or a lone surrogate."""
    found = (_MULTI_LINE if multiline else _ONE_LINE).search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        return f"must be valid Unicode text, not a lone surrogate (U+{code:04X})"
    what = "NUL" if code == 0 else f"U+{code:04X}"
    return f"must not contain control characters ({what} at position {found.start()})"


def storable(text: str) -> str:
    """``text`` with what no database may hold replaced by U+FFFD (multi-line text): for text
    the server writes rather than refuses, such as a task's error quoting its stderr."""
    return _MULTI_LINE.sub("\ufffd", text)


def encodable(text: str) -> str:
    """``text`` as UTF-8 can carry it: each lone surrogate written as its escape (``\\ud800``),
    for messages that quote what a request sent."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def document_problems(
    value: Any, where: Location = (), *, multiline: bool = True
) -> Iterator[tuple[Location, str]]:
    """Every refused key or string of a JSON document, with its location, in document order;
    at most ``MAX_REPORTED`` of them. Keys are one-line text, strings multi-line unless told."""
    reported = 0
    pending: list[tuple[Location, Any]] = [(where, value)]
    while pending and reported < MAX_REPORTED:
        location, item = pending.pop()
        problems: list[tuple[Location, str]] = []
        children: list[tuple[Location, Any]] = []
        if isinstance(item, str):
            problem = text_problem(item, multiline=multiline)
            if problem is not None:
                problems.append((location, problem))
        elif isinstance(item, Mapping):
            for key, child in item.items():
                problem = text_problem(str(key))
                if problem is not None:
                    problems.append(((*location, str(key)), f"key {problem}"))
                children.append(((*location, str(key)), child))
        elif isinstance(item, Sequence) and not isinstance(item, bytes | bytearray):
            children.extend(((*location, i), child) for i, child in enumerate(item))
        for found in problems[: MAX_REPORTED - reported]:
            reported += 1
            yield found
        pending.extend(reversed(children))
