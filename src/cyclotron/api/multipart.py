"""Streaming multipart reading that the faces share: ``PartReader``, the python-multipart
callbacks every reader needs, and ``receive_multipart``, a body straight into a staging
directory with the file-upload face's name rules (the native structure upload keeps its one
file in memory with its own reader).

Bytes are counted as they arrive, so a body over the limit is refused whether or not it
declared a Content-Length; a bad file name stops the reading at once.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import unquote

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from cyclotron.domain.filenames import check_file_name
from cyclotron.errors import InputError, PayloadTooLarge

MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 10_000
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    # SHA-256 of each file's content, by name (what an idempotency key's digest covers).
    digests: dict[str, str] = field(default_factory=dict)


def disposition_params(value: str) -> dict[str, str]:
    """The parameters of a Content-Disposition value, ``filename*`` (RFC 5987) decoded."""
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        key = key.lower()
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if key.endswith("*"):
            charset, _, rest = raw.partition("'")
            _lang, _, encoded = rest.partition("'")
            try:
                raw = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError) as exc:
                raise InputError(f"undecodable {key} parameter") from exc
            key = key[:-1]
            params[key] = raw  # the extended form wins over the plain one
        else:
            params.setdefault(key, raw.strip())
    return params


def _decode_header(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class PartReader(ABC):
    """The python-multipart callbacks every reader needs: each part's headers, collected.

    Subclasses handle ``on_headers_finished``, ``on_part_data``, ``on_part_end`` and
    ``on_end``; ``_headers`` holds the current part's headers, names in lower case.
    """

    def __init__(self) -> None:
        self.finished = False
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[str, str] = {}

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self._headers, self._header_name, self._header_value = {}, b"", b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        name = self._header_name.decode("latin-1").lower()
        self._headers[name] = _decode_header(self._header_value)
        self._header_name, self._header_value = b"", b""

    @abstractmethod
    def on_headers_finished(self) -> None:
        """A part's headers are read (``_headers``): decide what to do with its data."""

    @abstractmethod
    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        """The next bytes of the part, ``data[start:end]``."""

    @abstractmethod
    def on_part_end(self) -> None:
        """The part ended."""

    def on_end(self) -> None:
        self.finished = True


class _Receiver(PartReader):
    """python-multipart callbacks writing each file part into ``target``."""

    def __init__(self, target: Path) -> None:
        super().__init__()
        self.target = target
        self.form = ReceivedForm()
        self._parts = 0
        self._file: IO[bytes] | None = None
        self._file_digest = hashlib.sha256()
        self._field_name: str | None = None
        self._field_value = bytearray()

    def on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise InputError(f"More than {MAX_PARTS} parts")
        super().on_part_begin()

    def on_headers_finished(self) -> None:
        disposition = self._headers.get("content-disposition", "")
        kind, _ = parse_options_header(disposition.split(";", 1)[0])
        if kind != b"form-data":
            raise InputError("Each part needs Content-Disposition: form-data")
        params = disposition_params(disposition)
        if "filename" in params:
            name = params["filename"]
            check_file_name(name, self.form.files)
            self.form.files.append(name)
            self.target.mkdir(exist_ok=True)
            self._file = open(self.target / name, "xb")  # noqa: SIM115 - closed in on_part_end
            self._file_digest = hashlib.sha256()
        else:
            self._field_name = params.get("name", "")
            self._field_value = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.write(data[start:end])
            self._file_digest.update(data[start:end])
            return
        self._field_value += data[start:end]
        if len(self._field_value) > MAX_FIELD_BYTES:
            raise InputError(
                f"Form field {self._field_name!r} is longer than {MAX_FIELD_BYTES} bytes"
            )

    def on_part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self.form.digests[self.form.files[-1]] = self._file_digest.hexdigest()
        elif self._field_name is not None:
            self.form.fields.setdefault(self._field_name, _decode_header(bytes(self._field_value)))
            self._field_name = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def receive_multipart(
    content_type: str | None, body: AsyncIterator[bytes], target: Path, limit: int
) -> ReceivedForm:
    """Parse a multipart body into files under ``target`` and text fields in memory."""
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InputError("Expected a multipart/form-data body")
    receiver = _Receiver(target)
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > limit:
                raise PayloadTooLarge(f"Request body larger than the limit of {limit} bytes")
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise InputError(f"Malformed multipart body: {exc}") from exc
    finally:
        receiver.close()
    if not receiver.finished:
        raise InputError("Malformed multipart body: it ends before its closing boundary")
    return receiver.form
