"""Multipart reception of the file-upload face: names, limits, broken bodies (spec §3.1)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from cyclotron.api.multipart import (
    ReceivedForm,
    disposition_params,
    receive_multipart,
)
from cyclotron.domain.filenames import check_file_name
from cyclotron.errors import InputError, PayloadTooLarge

BOUNDARY = "----cyclotron-test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"

# --- Content-Disposition parameters -----------------------------------------------------------


def test_plain_quoted_parameters() -> None:
    assert disposition_params('form-data; name="file"; filename="run.sh"') == {
        "name": "file",
        "filename": "run.sh",
    }


def test_quoted_value_may_hold_semicolons_spaces_and_escapes() -> None:
    params = disposition_params(r'form-data; name="file"; filename="a \"b\"; c\\d.txt"')
    assert params["filename"] == 'a "b"; c\\d.txt'


def test_unquoted_value_and_case_insensitive_keys() -> None:
    params = disposition_params("form-data; NAME=user_id; FileName=plain.txt")
    assert params == {"name": "user_id", "filename": "plain.txt"}


def test_rfc5987_filename_is_decoded_and_wins_over_the_plain_one() -> None:
    value = 'form-data; name="file"; filename="rates.txt"; filename*=UTF-8\'\'%E2%82%AC%20rates.txt'
    assert disposition_params(value)["filename"] == "€ rates.txt"
    # the extended form wins whichever comes first
    value = "form-data; filename*=utf-8'en'%C3%A9t%C3%A9.txt; filename=\"ete.txt\""
    assert disposition_params(value)["filename"] == "été.txt"


def test_rfc5987_other_charset() -> None:
    value = "form-data; name=\"file\"; filename*=ISO-8859-1''%E9t%E9.txt"
    assert disposition_params(value)["filename"] == "été.txt"


@pytest.mark.parametrize(
    "value",
    [
        "form-data; filename*=UTF-8''%FF%FE.txt",  # not UTF-8
        "form-data; filename*=no-such-charset''%41bc",
    ],
)
def test_undecodable_rfc5987_filename_is_an_input_error(value: str) -> None:
    with pytest.raises(InputError):
        disposition_params(value)


# --- file-name rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "a" * 256,
        "é" * 128,  # 128 characters, 256 bytes in UTF-8
        "/",
        "a/b.txt",
        "/etc/passwd",
        "a\\b.txt",
        "..",
        "../evil.sh",
        "..\\evil.sh",
        "..hidden",
        "x..y",
        "trailing..",
        "nul\x00.txt",
    ],
)
def test_refused_names(name: str) -> None:
    with pytest.raises(InputError):
        check_file_name(name, [])


@pytest.mark.parametrize(
    "name",
    ["run.sh", ".env", ".hidden.d", "a.b.c", "€ rates.txt", "a" * 255, "é" * 127 + "a", "-x"],
)
def test_accepted_names(name: str) -> None:
    check_file_name(name, [])


def test_a_repeated_name_is_refused() -> None:
    check_file_name("data.txt", ["run.sh"])
    with pytest.raises(InputError, match="data.txt"):
        check_file_name("data.txt", ["run.sh", "data.txt"])


def test_names_differing_only_in_case_are_distinct() -> None:
    check_file_name("Data.txt", ["data.txt"])


# --- streaming reception -----------------------------------------------------------------------


def field_part(name: str, value: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def file_part(field: str, disposition_name: str, content: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; {disposition_name}\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + content + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def receive(
    data: bytes | Iterable[bytes],
    target: Path,
    limit: int = 10**9,
    chunk: int = 1000,
    content_type: str | None = CONTENT_TYPE,
) -> ReceivedForm:
    stream = chunks(data, chunk) if isinstance(data, bytes) else _iterate(data)
    return asyncio.run(receive_multipart(content_type, stream, target, limit))


async def _iterate(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


RUN_SH = b"#!/bin/bash\necho hi > out.txt\n"
BINARY = bytes(range(256)) * 50 + b"\r\n--" + BOUNDARY.encode() + b"x\r\n"  # boundary look-alike


def sample_body() -> bytes:
    return body(
        field_part("user_id", " 17 "),
        file_part("file", 'filename="run.sh"', RUN_SH),
        field_part("service", "example"),
        file_part("upload", 'filename="input.bin"', BINARY),
        file_part("file", "filename*=UTF-8''%E2%82%AC.txt", "€uro".encode()),
        file_part("file", 'filename="empty.txt"', b""),
    )


@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 20])
def test_files_are_written_and_fields_read(tmp_path: Path, chunk: int) -> None:
    target = tmp_path / "staging"
    form = receive(sample_body(), target, chunk=chunk)
    assert form.fields == {"user_id": " 17 ", "service": "example"}
    assert form.files == ["run.sh", "input.bin", "€.txt", "empty.txt"]
    assert sorted(p.name for p in target.iterdir()) == sorted(form.files)
    assert (target / "run.sh").read_bytes() == RUN_SH
    assert (target / "input.bin").read_bytes() == BINARY
    assert (target / "€.txt").read_text(encoding="utf-8") == "€uro"
    assert (target / "empty.txt").read_bytes() == b""


def test_body_of_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    data = sample_body()
    form = receive(data, tmp_path / "staging", limit=len(data))
    assert "run.sh" in form.files


def test_body_over_the_limit_is_refused(tmp_path: Path) -> None:
    data = sample_body()
    with pytest.raises(PayloadTooLarge, match=str(len(data) - 1)):
        receive(data, tmp_path / "staging", limit=len(data) - 1)


def test_limit_is_checked_while_reading_not_at_the_end(tmp_path: Path) -> None:
    consumed: list[int] = []

    def endless() -> Iterable[bytes]:
        yield file_part("file", 'filename="big.bin"', b"")[:-2]
        while True:
            consumed.append(1)
            yield b"x" * 1024

    with pytest.raises(PayloadTooLarge):
        receive(endless(), tmp_path / "staging", limit=10 * 1024)
    assert len(consumed) <= 11


def test_truncated_body_is_an_input_error(tmp_path: Path) -> None:
    data = sample_body()
    for cut in (len(data) - 3, len(data) // 2, 10):
        with pytest.raises(InputError) as caught:
            receive(data[:cut], tmp_path / f"staging{cut}")
        assert not isinstance(caught.value, PayloadTooLarge)


def test_empty_body_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        receive(b"", tmp_path / "staging")


def test_garbage_instead_of_a_boundary_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        receive(b"this is not multipart at all\r\n" * 10, tmp_path / "staging")


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "multipart/form-data", "multipart/mixed; boundary=" + BOUNDARY],
)
def test_wrong_content_type_is_an_input_error(tmp_path: Path, content_type: str | None) -> None:
    with pytest.raises(InputError):
        receive(sample_body(), tmp_path / "staging", content_type=content_type)


@pytest.mark.parametrize(
    "name",
    [
        'filename="../evil.sh"',
        'filename="a/b.txt"',
        'filename="a\\\\b.txt"',
        'filename="x..y"',
        'filename="..hidden"',
        'filename=""',
        "filename*=UTF-8''nul%00.txt",
    ],
)
def test_bad_file_name_stops_reception_and_writes_nothing_outside(
    tmp_path: Path, name: str
) -> None:
    target = tmp_path / "jobs" / "staging"
    target.parent.mkdir()
    data = body(file_part("file", name, b"#!/bin/sh\nrm -rf ~\n"))
    with pytest.raises(InputError):
        receive(data, target)
    assert not (tmp_path / "jobs" / "evil.sh").exists()
    assert not (target / "a").exists()
    assert list(tmp_path.rglob("*.sh")) == []


def test_duplicate_file_names_are_refused(tmp_path: Path) -> None:
    data = body(
        file_part("file", 'filename="data.txt"', b"first"),
        file_part("other", 'filename="data.txt"', b"second"),
    )
    with pytest.raises(InputError, match="data.txt"):
        receive(data, tmp_path / "staging")
    assert (tmp_path / "staging" / "data.txt").read_bytes() == b"first"


def test_part_without_form_data_disposition_is_refused(tmp_path: Path) -> None:
    data = (
        f'--{BOUNDARY}\r\nContent-Disposition: attachment; filename="a.txt"\r\n\r\nx\r\n'
        f"--{BOUNDARY}--\r\n"
    ).encode()
    with pytest.raises(InputError):
        receive(data, tmp_path / "staging")


def test_oversized_text_field_is_refused(tmp_path: Path) -> None:
    data = body(field_part("service", "x" * (64 * 1024 + 1)))
    with pytest.raises(InputError, match="service"):
        receive(data, tmp_path / "staging")


def test_fields_only_body_creates_no_directory(tmp_path: Path) -> None:
    target = tmp_path / "staging"
    form = receive(body(field_part("user_id", "1")), target)
    assert form.fields == {"user_id": "1"} and form.files == []
    assert not target.exists()
