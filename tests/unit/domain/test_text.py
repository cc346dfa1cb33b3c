"""The rule for text that is stored or searched: no control characters, valid Unicode."""

from __future__ import annotations

import pytest

from cyclotron.domain.text import (
    MAX_REPORTED,
    document_problems,
    encodable,
    storable,
    text_problem,
)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("a\x00b", "NUL at position 1"),
        ("\x1b[31mred", "U+001B at position 0"),
        ("tab\there", "U+0009 at position 3"),
        ("line\nbreak", "U+000A at position 4"),
        ("del\x7f", "U+007F at position 3"),
        ("c1\x85", "U+0085 at position 2"),
    ],
)
def test_one_line_text_refuses_every_control_character(text: str, found: str) -> None:
    assert text_problem(text) == f"must not contain control characters ({found})"


def test_a_lone_surrogate_is_not_text() -> None:
    assert text_problem("a\ud800") == "must be valid Unicode text, not a lone surrogate (U+D800)"


def test_multi_line_text_allows_tab_and_line_breaks_only() -> None:
    assert text_problem("a\tb\r\nc", multiline=True) is None
    assert text_problem("a\nb\x00", multiline=True) == (
        "must not contain control characters (NUL at position 3)"
    )


def test_ordinary_text_passes() -> None:
    assert text_problem("Proton beam — 150 MeV in H₂O ✓") is None


def test_a_document_reports_each_refused_string_and_key_where_it_is() -> None:
    document = {
        "title": "ok",
        "beam": {"name": "a\x00", "notes": "two\nlines"},
        "outputs": [{"name": "fine"}, {"name\x01": "x", "tags": ["\ud800"]}],
    }
    found = dict(document_problems(document, ("input", "project")))
    control = "must not contain control characters"
    assert found == {
        ("input", "project", "beam", "name"): f"{control} (NUL at position 1)",
        ("input", "project", "outputs", 1, "name\x01"): f"key {control} (U+0001 at position 4)",
        ("input", "project", "outputs", 1, "tags", 0): (
            "must be valid Unicode text, not a lone surrogate (U+D800)"
        ),
    }
    assert [location[2] for location in found] == ["beam", "outputs", "outputs"]  # in order


def test_one_line_documents_refuse_line_breaks_in_their_strings() -> None:
    assert list(document_problems({"partition": "a\nb"}, multiline=False)) == [
        (("partition",), "must not contain control characters (U+000A at position 1)")
    ]
    assert list(document_problems(None)) == []


def test_a_document_reports_at_most_the_first_problems() -> None:
    document = [f"bad\x00{i}" for i in range(3 * MAX_REPORTED)]
    found = list(document_problems(document))
    assert [location for location, _ in found] == [(i,) for i in range(MAX_REPORTED)]


def test_text_the_server_writes_is_made_storable_not_refused() -> None:
    assert storable("bad\x00byte\nnext\tline\x1b\ud800") == "bad\ufffdbyte\nnext\tline\ufffd\ufffd"


def test_a_message_quoting_a_lone_surrogate_can_be_sent_as_utf8() -> None:
    shown = encodable("unknown 'a\ud800' é")
    assert shown == "unknown 'a\\ud800' é"
    shown.encode("utf-8")
