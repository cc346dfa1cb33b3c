"""SLURM as text: option rules (spec section 6), scripts, commands, and parsers.

The parser inputs are output captured from SLURM 22.05.8 (Debian 12) on the single-node
cluster that tests/support/slurm.py starts, with accounting (slurmdbd) enabled for the
sacct captures.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cyclotron.domain.states import JobState, TaskState
from cyclotron.errors import InputError
from cyclotron.executors.slurm.commands import (
    ARRAY_TASK_ID,
    DEFAULT_ARRAY_TIME,
    BatchOptions,
    ShellVariable,
    TaskEffect,
    UnexpectedOutput,
    array_script,
    batch_options,
    collect_effect,
    collect_script,
    option_words,
    parse_sacct,
    parse_sbatch,
    parse_squeue,
    render_command,
    sacct_command,
    sbatch_command,
    scancel_command,
    slurm_state,
    squeue_command,
    task_effect,
    task_log_paths,
)

# --- option rules -----------------------------------------------------------------------------


def test_no_options_give_the_default_array_time_and_nothing_else() -> None:
    for raw in (None, {}, {"cluster_name": "default"}):
        options = batch_options(raw)
        assert dict(options.array_options) == {"time": DEFAULT_ARRAY_TIME}
        assert dict(options.collect_options) == {}
        assert options.array_header == options.collect_header == ()
    assert batch_options(None) == BatchOptions()


def test_documentation_shape_slurm_options_is_the_array_options() -> None:
    options = batch_options({"slurm_options": {"time": "01:00:00", "partition": "plgrid"}})
    assert dict(options.array_options) == {"time": "01:00:00", "partition": "plgrid"}
    assert option_words(options.array_options) == ["--time=01:00:00", "--partition=plgrid"]


def test_array_options_win_over_slurm_options_after_dashes_are_dropped() -> None:
    options = batch_options(
        {
            "slurm_options": {"--time": "02:00:00", "partition": "plgrid", "mem": "1G"},
            "array_options": {"time": "03:00:00", "--partition": "short"},
        }
    )
    assert dict(options.array_options) == {"time": "03:00:00", "partition": "short", "mem": "1G"}


def test_ui_shape_with_all_four_keys() -> None:
    options = batch_options(
        {
            "cluster_name": "default",
            "array_options": {"nodes": 1, "cpus-per-task": 2, "mem-per-cpu": "500M"},
            "array_header": "#SBATCH --constraint=x86\n\n#SBATCH --qos=normal  \n",
            "collect_options": {"time": "00:10:00", "ntasks": 1},
            "collect_header": "#SBATCH --comment=merge",
        }
    )
    assert dict(options.array_options) == {
        "nodes": "1",
        "cpus-per-task": "2",
        "mem-per-cpu": "500M",
        "time": DEFAULT_ARRAY_TIME,
    }
    assert options.array_header == ("#SBATCH --constraint=x86", "#SBATCH --qos=normal")
    assert dict(options.collect_options) == {"time": "00:10:00", "ntasks": "1"}
    assert options.collect_header == ("#SBATCH --comment=merge",)


def test_the_default_time_yields_to_a_time_in_the_header_or_a_short_time_option() -> None:
    assert "time" not in batch_options({"array_header": "#SBATCH --time=04:00:00"}).array_options
    assert "time" not in batch_options({"array_header": "#SBATCH -t 10"}).array_options
    assert dict(batch_options({"array_options": {"t": 10}}).array_options) == {"t": "10"}


def test_numbers_are_accepted_as_values_and_one_letter_names_render_short() -> None:
    options = batch_options({"array_options": {"N": 2, "mem-per-gpu": 1.5, "-c": 4}})
    assert option_words(options.array_options) == [
        "-N 2",
        "--mem-per-gpu=1.5",
        "-c 4",
        f"--time={DEFAULT_ARRAY_TIME}",
    ]


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"array_options": {"ti me": "1"}}, "batch_options.array_options.ti me"),
        ({"array_options": {"time;": "1"}}, "batch_options.array_options.time;"),
        ({"array_options": {"--": "1"}}, "batch_options.array_options.--"),
        ({"slurm_options": {"": "1"}}, "batch_options.slurm_options."),
        ({"collect_options": {"t\u00e9": "1"}}, "batch_options.collect_options.t\u00e9"),
    ],
)
def test_option_names_must_use_the_allowed_characters(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(InputError) as caught:
        batch_options(raw)
    assert caught.value.message.startswith(f"{named}: ")


@pytest.mark.parametrize(
    "value",
    ["01:00:00; rm -rf ~", "a b", "$(id)", "`id`", "x'y", 'x"y', "a\nb", "", "50%", "~/x", "a*"],
)
def test_option_values_must_use_the_allowed_characters(value: str) -> None:
    with pytest.raises(InputError) as caught:
        batch_options({"array_options": {"time": value}})
    assert caught.value.message.startswith("batch_options.array_options.time: ")


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}])
def test_option_values_must_be_strings_or_numbers(value: object) -> None:
    with pytest.raises(
        InputError, match=r"^batch_options\.collect_options\.mem: .*string or a number"
    ):
        batch_options({"collect_options": {"mem": value}})


def test_allowed_value_characters_pass_unchanged() -> None:
    value = "AZaz09_.,=/:-"
    assert batch_options({"array_options": {"x": value}}).array_options["x"] == value


@pytest.mark.parametrize(
    ("name", "owned"),
    [
        ("array", "array"),
        ("--array", "array"),
        ("Array", "array"),
        ("arr", "array"),
        ("a", "array"),
        ("dependency", "dependency"),
        ("depend", "dependency"),
        ("d", "dependency"),
        ("parsable", "parsable"),
        ("pars", "parsable"),
        ("output", "output"),
        ("-o", "output"),
        ("error", "error"),
        ("e", "error"),
        ("wait", "wait"),
        ("W", "wait"),
    ],
)
def test_server_owned_options_are_rejected_in_any_spelling(name: str, owned: str) -> None:
    for key in ("slurm_options", "array_options", "collect_options"):
        with pytest.raises(InputError) as caught:
            batch_options({key: {name: "1"}})
        assert caught.value.message == (
            f"batch_options.{key}.{name}: the option --{owned} is set by the server"
        )


@pytest.mark.parametrize("name", ["partition", "p", "A", "account", "D", "chdir", "export"])
def test_options_that_only_look_like_owned_ones_pass(name: str) -> None:
    assert batch_options({"array_options": {name: "x"}}).array_options[name] == "x"


@pytest.mark.parametrize(
    ("header", "line"),
    [
        ("#SBATCH --qos=normal\nsrun hostname", 2),
        ("#SBATCH --qos=normal\n#SBATCH --comment=$(id)", 2),
        ("#SBATCH --comment='x'", 1),
        ("#SBATCH\t--qos=normal", 1),
        ("#SBATCH", 1),
        ("  #SBATCH --qos=normal", 1),
        ("#sbatch --qos=normal", 1),
        ("#SBATCH --qos=normal;id", 1),
    ],
)
def test_header_lines_must_be_sbatch_lines_of_allowed_characters(header: str, line: int) -> None:
    for key in ("array_header", "collect_header"):
        with pytest.raises(InputError) as caught:
            batch_options({key: header})
        assert caught.value.message.startswith(f"batch_options.{key} line {line}: ")


@pytest.mark.parametrize(
    "header", ["#SBATCH --array=1-100", "#SBATCH -o /tmp/x", "#SBATCH --dependency=after:1"]
)
def test_header_lines_cannot_set_server_owned_options(header: str) -> None:
    with pytest.raises(InputError, match=r"^batch_options\.array_header line 1: the option"):
        batch_options({"array_header": header})


def test_header_allows_spaces_hashes_and_crlf_line_ends() -> None:
    header = "#SBATCH --nodes 1 # one node\r\n#SBATCH  --qos=normal\r\n"
    options = batch_options({"array_header": header})
    assert options.array_header == ("#SBATCH --nodes 1 # one node", "#SBATCH  --qos=normal")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "batch_options must be an object"),
        ({"array_options": ["time"]}, "batch_options.array_options must be an object"),
        ({"slurm_options": "time=1"}, "batch_options.slurm_options must be an object"),
        ({"array_header": ["#SBATCH -N 1"]}, "batch_options.array_header must be a string"),
    ],
)
def test_wrong_shapes_are_rejected(raw: object, message: str) -> None:
    with pytest.raises(InputError) as caught:
        batch_options(raw)
    assert caught.value.message.startswith(message)


def test_a_long_bad_item_is_shortened_in_the_message() -> None:
    with pytest.raises(InputError) as caught:
        batch_options({"array_options": {"x": "y " * 500}})
    assert len(caught.value.message) < 200


# --- scripts ----------------------------------------------------------------------------------

JOB_DIR = "/home/cyclotron-hpc/cyclotron/jobs/abc123"


def test_array_script_text() -> None:
    options = batch_options(
        {
            "array_options": {"time": "00:30:00", "partition": "plgrid"},
            "array_header": "#SBATCH --qos=normal",
        }
    )
    script = array_script(
        JOB_DIR,
        3,
        options,
        [["/opt/venv/bin/python", "-m", "cyclotron.worker", "--task", ARRAY_TASK_ID]],
        job_name="cyclotron-abc123",
    )
    assert script == (
        "#!/bin/bash\n"
        "#SBATCH --job-name=cyclotron-abc123\n"
        "#SBATCH --array=1-3\n"
        f"#SBATCH --output={JOB_DIR}/task_%a.out\n"
        f"#SBATCH --error={JOB_DIR}/task_%a.err\n"
        "#SBATCH --time=00:30:00\n"
        "#SBATCH --partition=plgrid\n"
        "#SBATCH --qos=normal\n"
        "\n"
        "set -euo pipefail\n"
        f"cd -- {JOB_DIR}\n"
        '/opt/venv/bin/python -m cyclotron.worker --task "${SLURM_ARRAY_TASK_ID}"\n'
    )


def test_collect_script_text_with_environment() -> None:
    options = batch_options(
        {"collect_options": {"time": "00:10:00"}, "collect_header": "#SBATCH --mem=1G"}
    )
    script = collect_script(
        JOB_DIR + "/",
        options,
        [["python", "-m", "cyclotron.collect"], ["touch", "done"]],
        environment={"CYCLOTRON_URL": "http://server:8000/"},
    )
    assert script == (
        "#!/bin/bash\n"
        f"#SBATCH --output={JOB_DIR}/collect.out\n"
        f"#SBATCH --error={JOB_DIR}/collect.err\n"
        "#SBATCH --time=00:10:00\n"
        "#SBATCH --mem=1G\n"
        "\n"
        "set -euo pipefail\n"
        f"cd -- {JOB_DIR}\n"
        "export CYCLOTRON_URL=http://server:8000/\n"
        "python -m cyclotron.collect\n"
        "touch done\n"
    )


def test_user_headers_come_after_the_options_so_they_win() -> None:
    options = batch_options({"array_header": "#SBATCH --time=05:00:00"})
    lines = array_script(JOB_DIR, 1, options, [["true"]]).splitlines()
    assert lines.index("#SBATCH --time=05:00:00") > lines.index("#SBATCH --array=1-1")
    assert not any(line.startswith("#SBATCH --time=00:59:59") for line in lines)


def test_script_commands_are_quoted_and_run_in_the_job_directory(tmp_path: Path) -> None:
    """The script itself, run by bash as SLURM would run one array task."""
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    tricky = 'it\'s "quoted" $(not run) `nor this` ; & | > *'
    script = array_script(
        str(job_dir),
        4,
        BatchOptions(),
        [
            ["sh", "-c", 'printf "%s|%s" "$1" "$2" > "out_$2.txt"', "sh", tricky, ARRAY_TASK_ID],
            ["sh", "-c", 'echo "$SECRET_FREE" >> "out_$1.txt"', "sh", ARRAY_TASK_ID],
        ],
        environment={"SECRET_FREE": "a b'c"},
    )
    path = tmp_path / "array.sh"
    path.write_text(script)
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "3"}
    subprocess.run(["bash", str(path)], cwd=tmp_path, env=env, check=True, timeout=30)
    assert (job_dir / "out_3.txt").read_text() == f"{tricky}|3a b'c\n"


def test_script_stops_at_the_first_failing_command(tmp_path: Path) -> None:
    script = collect_script(
        str(tmp_path), BatchOptions(), [["false"], ["touch", "should-not-exist"]]
    )
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, check=False, timeout=30)
    assert result.returncode == 1
    assert not (tmp_path / "should-not-exist").exists()


@pytest.mark.parametrize(
    "job_dir", ["relative/dir", "/", "/a b", "/a/%j", "/a/../etc", "/a;b", "", "~/jobs"]
)
def test_job_directory_must_be_a_plain_absolute_path(job_dir: str) -> None:
    with pytest.raises(ValueError, match="job directory"):
        array_script(job_dir, 1, BatchOptions(), [["true"]])


def test_script_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one task"):
        array_script(JOB_DIR, 0, BatchOptions(), [["true"]])
    with pytest.raises(ValueError, match="at least one command"):
        collect_script(JOB_DIR, BatchOptions(), [])
    with pytest.raises(ValueError, match="empty command"):
        collect_script(JOB_DIR, BatchOptions(), [[]])
    with pytest.raises(ValueError, match="job name"):
        collect_script(JOB_DIR, BatchOptions(), [["true"]], job_name="a b")
    with pytest.raises(ValueError, match="variable name"):
        collect_script(JOB_DIR, BatchOptions(), [["true"]], environment={"A-B": "1"})
    with pytest.raises(ValueError, match="shell variable"):
        ShellVariable("$(id)")


def test_render_command_and_task_log_paths() -> None:
    assert render_command(["echo", "a b", ShellVariable("HOME")]) == "echo 'a b' \"${HOME}\""
    assert task_log_paths(JOB_DIR, 7) == (f"{JOB_DIR}/task_7.out", f"{JOB_DIR}/task_7.err")


# --- submission and cancelling ----------------------------------------------------------------


def test_sbatch_command() -> None:
    assert sbatch_command(f"{JOB_DIR}/array.sh") == f"sbatch --parsable {JOB_DIR}/array.sh"
    assert sbatch_command("/x y/collect.sh", dependency="14") == (
        "sbatch --parsable --dependency=afterany:14 '/x y/collect.sh'"
    )
    with pytest.raises(ValueError, match="job id"):
        sbatch_command("/a.sh", dependency="14; rm -rf ~")


@pytest.mark.parametrize(
    ("stdout", "job_id"),
    [
        ("8\n", "8"),  # captured: sbatch --parsable --array=1-4 ...
        ("22\n", "22"),  # captured: sbatch --parsable --hold --array=1-5%2 ...
        ("1234;cyclotron\n", "1234"),  # the documented form on a multi-cluster setup
        ("\n  77 \n\n", "77"),
    ],
)
def test_parse_sbatch(stdout: str, job_id: str) -> None:
    assert parse_sbatch(stdout) == job_id


@pytest.mark.parametrize(
    "stdout", ["", "Submitted batch job 8\n", "sbatch: error: Batch job submission failed\n", ";x"]
)
def test_parse_sbatch_refuses_anything_else(stdout: str) -> None:
    with pytest.raises(UnexpectedOutput, match="no job id"):
        parse_sbatch(stdout)


def test_scancel_command() -> None:
    assert scancel_command(["14", "16"]) == "scancel 14 16"
    with pytest.raises(ValueError, match="job id"):
        scancel_command(["14_2"])
    with pytest.raises(ValueError, match="no job ids"):
        scancel_command([])


# --- squeue -----------------------------------------------------------------------------------


def test_squeue_command() -> None:
    command = squeue_command(["14", "15", "16"])
    assert shlex.split(command) == [
        "squeue",
        "--states=all",
        "--noheader",
        "--array",
        "--jobs=14,15,16",
        "--format=%F|%K|%T",
    ]


# Captured: an array of 4 (task 1 exits 0, task 2 exits 3, tasks 3-4 sleep), a plain job
# and a collect job depending on the array (afterany), 1.5 s after submission ...
SQUEUE_EARLY = """\
8|1|COMPLETED
8|2|FAILED
8|3|PENDING
8|4|PENDING
9|N/A|PENDING
10|N/A|PENDING
"""
# ... and after `scancel 8` by the job's owner.
SQUEUE_AFTER_CANCEL = """\
8|3|CANCELLED
8|4|CANCELLED
8|1|COMPLETED
10|N/A|COMPLETED
8|2|FAILED
9|N/A|RUNNING
"""
# Captured: an array with a one-minute limit whose task 3 ran past it.
SQUEUE_TIMEOUT = """\
14|1|COMPLETED
14|2|FAILED
14|6|PENDING
15|N/A|PENDING
16|N/A|PENDING
14|5|RUNNING
14|4|RUNNING
14|3|TIMEOUT
"""


def test_parse_squeue_array_tasks_and_plain_jobs() -> None:
    assert parse_squeue(SQUEUE_EARLY) == {
        ("8", 1): "COMPLETED",
        ("8", 2): "FAILED",
        ("8", 3): "PENDING",
        ("8", 4): "PENDING",
        ("9", None): "PENDING",
        ("10", None): "PENDING",
    }
    assert parse_squeue(SQUEUE_AFTER_CANCEL)[("8", 3)] == "CANCELLED"
    assert parse_squeue(SQUEUE_AFTER_CANCEL)[("10", None)] == "COMPLETED"
    timeout = parse_squeue(SQUEUE_TIMEOUT)
    assert timeout[("14", 3)] == "TIMEOUT"
    assert timeout[("14", 4)] == "RUNNING"
    assert len(timeout) == 8


def test_parse_squeue_of_a_single_forgotten_job_is_empty() -> None:
    # Captured: `squeue ... --jobs=999` exits 1; with several ids it exits 0 and prints nothing.
    stderr = "slurm_load_jobs error: Invalid job id specified\n"
    assert parse_squeue("", exit_status=1, stderr=stderr) == {}
    assert parse_squeue("") == {}


def test_parse_squeue_refuses_failures_and_foreign_lines() -> None:
    with pytest.raises(UnexpectedOutput, match="exit status 1"):
        parse_squeue("", exit_status=1, stderr="squeue: error: Unable to contact slurm controller")
    for text in ("JOBID PARTITION NAME\n", "8_1|COMPLETED\n", "8|x|RUNNING\n", "8|1|A|B\n"):
        with pytest.raises(UnexpectedOutput):
            parse_squeue(text)


# --- sacct ------------------------------------------------------------------------------------


def test_sacct_command() -> None:
    assert shlex.split(sacct_command(["14", "15"])) == [
        "sacct",
        "--parsable2",
        "--noheader",
        "--allocations",
        "--jobs=14,15",
        "--format=JobID,State,ExitCode",
    ]


# Captured with slurmdbd: array 14 (1-6, task 1 exits 0, task 2 exits 3, the others sleep
# past a one-minute limit), plain job 15 and collect job 16 (afterany:14), without
# --allocations. Note the stale `14_[5-6]|PENDING` while 14_5 runs.
SACCT_RUNNING = """\
15|PENDING|0:0
16|PENDING|0:0
14_1|COMPLETED|0:0
14_1.batch|COMPLETED|0:0
14_2|FAILED|3:0
14_2.batch|FAILED|3:0
14_3|TIMEOUT|0:0
14_3.batch|CANCELLED|0:15
14_4|RUNNING|0:0
14_4.batch|RUNNING|0:0
14_5|RUNNING|0:0
14_5.batch|RUNNING|0:0
14_[5-6]|PENDING|0:0
"""
# ... after `scancel 14` by the owner (uid 999), with --allocations.
SACCT_CANCELLED = """\
15|RUNNING|0:0
16|COMPLETED|0:0
14_1|COMPLETED|0:0
14_2|FAILED|3:0
14_3|TIMEOUT|0:0
14_4|CANCELLED by 999|0:0
14_5|CANCELLED by 999|0:0
14_[5-6]|CANCELLED by 999|0:0
"""
# Captured: a held array with a throttle, before and after root's scancel.
SACCT_HELD = "22_[1-5%2]|PENDING|0:0\n"
SACCT_HELD_CANCELLED = "22_[1-5%2]|CANCELLED by 0|0:0\n"


def test_parse_sacct_skips_steps_and_expands_pending_ranges() -> None:
    assert parse_sacct(SACCT_RUNNING) == {
        ("15", None): "PENDING",
        ("16", None): "PENDING",
        ("14", 1): "COMPLETED",
        ("14", 2): "FAILED",
        ("14", 3): "TIMEOUT",
        ("14", 4): "RUNNING",
        ("14", 5): "RUNNING",
        ("14", 6): "PENDING",
    }


def test_parse_sacct_reads_cancelled_by_a_uid_as_cancelled() -> None:
    states = parse_sacct(SACCT_CANCELLED)
    assert states[("14", 4)] == states[("14", 5)] == states[("14", 6)] == "CANCELLED"
    assert states[("16", None)] == "COMPLETED"
    assert parse_sacct(SACCT_HELD) == {("22", i): "PENDING" for i in range(1, 6)}
    assert parse_sacct(SACCT_HELD_CANCELLED) == {("22", i): "CANCELLED" for i in range(1, 6)}


def test_parse_sacct_other_shapes() -> None:
    # No output for unknown ids (captured: rc 0, nothing printed); heterogeneous jobs skipped.
    assert parse_sacct("") == {}
    assert parse_sacct("30+0|COMPLETED|0:0\n30+1|COMPLETED|0:0\n31.0|FAILED|1:0\n") == {}
    assert parse_sacct("40_[1,3-4]|PENDING|0:0\n") == {
        ("40", 1): "PENDING",
        ("40", 3): "PENDING",
        ("40", 4): "PENDING",
    }
    for text in ("JobID|State|ExitCode\n", "14_x|RUNNING|0:0\n", "14\n", "14_[a-b]|PENDING|0:0\n"):
        with pytest.raises(UnexpectedOutput):
            parse_sacct(text)


# --- what states mean -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "effect"),
    [
        ("PENDING", TaskEffect(TaskState.PENDING)),
        ("CONFIGURING", TaskEffect(TaskState.PENDING)),
        ("REQUEUED", TaskEffect(TaskState.PENDING)),
        ("RUNNING", TaskEffect(TaskState.RUNNING)),
        ("COMPLETING", TaskEffect(TaskState.RUNNING)),
        ("COMPLETED", TaskEffect(TaskState.COMPLETED)),
        ("FAILED", TaskEffect(TaskState.FAILED, "SLURM state FAILED")),
        ("TIMEOUT", TaskEffect(TaskState.FAILED, "SLURM state TIMEOUT")),
        ("OUT_OF_MEMORY", TaskEffect(TaskState.FAILED, "SLURM state OUT_OF_MEMORY")),
        ("NODE_FAIL", TaskEffect(TaskState.FAILED, "SLURM state NODE_FAIL")),
        ("BOOT_FAIL", TaskEffect(TaskState.FAILED, "SLURM state BOOT_FAIL")),
        ("DEADLINE", TaskEffect(TaskState.FAILED, "SLURM state DEADLINE")),
        ("PREEMPTED", TaskEffect(TaskState.FAILED, "SLURM state PREEMPTED")),
        ("CANCELLED", TaskEffect(TaskState.FAILED, "cancelled on the cluster")),
        ("CANCELLED by 999", TaskEffect(TaskState.FAILED, "cancelled on the cluster")),
        ("CANCELLED+", TaskEffect(TaskState.FAILED, "cancelled on the cluster")),
    ],
)
def test_task_effect_follows_the_spec_table(state: str, effect: TaskEffect) -> None:
    assert task_effect(state) == effect


def test_task_effect_of_an_unknown_state_changes_nothing() -> None:
    effect = task_effect("SOMETHING_NEW")
    assert effect.target is None
    assert effect.note == "unknown SLURM state 'SOMETHING_NEW'"


def test_every_state_captured_from_the_cluster_has_an_effect() -> None:
    states = {
        *parse_squeue(SQUEUE_EARLY).values(),
        *parse_squeue(SQUEUE_AFTER_CANCEL).values(),
        *parse_squeue(SQUEUE_TIMEOUT).values(),
        *parse_sacct(SACCT_RUNNING).values(),
        *parse_sacct(SACCT_CANCELLED).values(),
    }
    assert states == {"PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}
    assert all(task_effect(state).target is not None for state in states)


@pytest.mark.parametrize(
    ("state", "target"),
    [
        ("PENDING", JobState.MERGING_QUEUED),
        ("RUNNING", JobState.MERGING_RUNNING),
        ("COMPLETING", JobState.MERGING_RUNNING),
        ("COMPLETED", JobState.FAILED),
        ("FAILED", JobState.FAILED),
        ("CANCELLED by 0", JobState.FAILED),
        ("TIMEOUT", JobState.FAILED),
        ("WHATEVER", None),
    ],
)
def test_collect_effect(state: str, target: JobState | None) -> None:
    assert collect_effect(state) == target


def test_slurm_state_strips_decorations() -> None:
    assert slurm_state(" cancelled by 1000 ") == "CANCELLED"
    assert slurm_state("RUNNING+") == "RUNNING"
