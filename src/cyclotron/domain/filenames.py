"""The rule every face applies to the name of a submitted file."""

from __future__ import annotations

from collections.abc import Collection

from cyclotron.errors import InputError

MAX_NAME_BYTES = 255


def check_file_name(name: str, seen: Collection[str] = ()) -> None:
    """Names are used as they are or refused; they are never rewritten."""
    if not name or name == ".":
        raise InputError(f"Invalid file name: {name!r}")
    if len(name.encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
        raise InputError(f"File name longer than {MAX_NAME_BYTES} bytes")
    if "/" in name or "\\" in name:
        raise InputError(f"File name must not contain a path: {name!r}")
    if ".." in name:
        raise InputError(f"File name must not contain '..': {name!r}")
    if "\x00" in name:
        raise InputError("File name must not contain NUL")
    if name in seen:
        raise InputError(f"Duplicate file name: {name!r}")
