"""The one hash behind every input cache key (spec/native.md §9): SHA-256 of the canonical
JSON of ``{service, plugin_version, input}`` — sorted keys, no insignificant whitespace,
UTF-8. What goes into ``input`` is each kind of input's own business."""

from __future__ import annotations

import hashlib
import json


def canonical_key(service: str, plugin_version: str | None, payload: object) -> str:
    """Lowercase hex SHA-256 of the canonical document of ``payload``."""
    document = {"service": service, "plugin_version": plugin_version, "input": payload}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
