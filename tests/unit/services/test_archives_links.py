"""A file served from a job is never read through a link a task may have planted."""

from __future__ import annotations

from pathlib import Path

from cyclotron.services.results.archives import read_segment


def test_a_folder_swapped_for_a_link_after_the_check_serves_nothing(tmp_path: Path) -> None:
    job = tmp_path / "job"
    (job / "out").mkdir(parents=True)
    (job / "out" / "result.txt").write_text("mine")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "result.txt").write_text("the server's keys")
    checked = (job / "out" / "result.txt").resolve()
    assert b"".join(read_segment(checked)) == b"mine"
    (job / "out").rename(job / "gone")
    (job / "out").symlink_to(secret)  # what a running task could do after the check
    assert b"".join(read_segment(checked)) == b""
    (checked.parent).unlink()
    (job / "gone").rename(job / "out")
    assert b"".join(read_segment(checked, 1, 2)) == b"in"
