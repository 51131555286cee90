"""The harness itself, driven through `offline.cli.main` on the fixture project and its fixture pack.

One known verdict per category: a resource policy violation, a stack policy violation found through property
dependencies, a value unknown at preview reported as skipped, policy config sent and honoured; exit codes, the
JSON shape, the export, and the policy pack process stopped on every path.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fixture_paths import FIXTURE_PACK, FIXTURE_PROJECT

from offline import analyzer, cli
from offline.export import read_export

REPO = Path(__file__).resolve().parents[2]
URN = "urn:pulumi:{stack}::offline-fixture::fixture:index:Pipeline${type}::{name}"


def urn(type_: str, name: str, stack: str = "violating") -> str:
    return URN.format(stack=stack, type=type_, name=name)


def preview(capsys: pytest.CaptureFixture[str], stack: str, *extra: str,
            pack: Path = FIXTURE_PACK) -> tuple[int, str, str]:
    code = cli.main(["preview", "--stack", stack, "--project-dir", str(FIXTURE_PROJECT), "--policy-pack", str(pack),
                     *extra])
    out, err = capsys.readouterr()
    return code, out, err


def preview_json(capsys: pytest.CaptureFixture[str], stack: str, *extra: str, **kwargs: Any) -> tuple[int, dict]:
    code, out, _ = preview(capsys, stack, "--json", *extra, **kwargs)
    return code, json.loads(out)


def verdicts(report: dict, key: str = "violations") -> dict[str, dict]:
    return {entry["policy"]: entry for entry in report[key]}


@pytest.fixture(scope="module")
def violating_report() -> tuple[int, dict]:
    """The JSON report of the violating stack in preview mode, computed once for the tests that only read it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["preview", "--stack", "violating", "--project-dir", str(FIXTURE_PROJECT),
                         "--policy-pack", str(FIXTURE_PACK), "--json"])
    return code, json.loads(out.getvalue())


# --- one verdict per category ------------------------------------------------------------------------------


def test_resource_policy_violation_with_the_schema_default(violating_report: tuple[int, dict]) -> None:
    code, report = violating_report
    violation = verdicts(report)["fixture-function-timeout"]
    assert code == 1
    assert violation["enforcement"] == "mandatory"
    assert violation["urn"] == urn("aws:lambda/function:Function", "orders-worker")
    assert "exceeds the maximum of 300" in violation["message"]  # the default the driver filled in


def test_stack_policy_violation_found_through_property_dependencies(violating_report: tuple[int, dict]) -> None:
    _, report = violating_report
    violation = verdicts(report)["fixture-visibility-covers-timeout"]
    assert violation["urn"] == urn("aws:lambda/eventSourceMapping:EventSourceMapping", "orders-source")
    assert "queue orders-queue" in violation["message"] and "function orders-worker" in violation["message"]


def test_value_unknown_at_preview_is_skipped_and_judged_after_update(
        capsys: pytest.CaptureFixture[str], violating_report: tuple[int, dict]) -> None:
    _, in_preview = violating_report
    skipped = verdicts(in_preview, "skipped")
    assert list(skipped) == ["fixture-queue-policy-tls"]
    assert skipped["fixture-queue-policy-tls"]["urn"] == urn("aws:sqs/queuePolicy:QueuePolicy",
                                                             "orders-queue-policy")
    assert ".policy can't be known during preview" in skipped["fixture-queue-policy-tls"]["message"]

    _, after_update = preview_json(capsys, "violating", "--mode", "update")
    assert after_update["skipped"] == [] and "fixture-queue-policy-tls" not in verdicts(after_update)


def test_policy_config_is_sent_and_honoured(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "violating.json"
    config.write_text(json.dumps({"fixture-function-timeout": {"maxTimeoutSeconds": 900},
                                  "fixture-visibility-covers-timeout": "advisory"}))
    code, report = preview_json(capsys, "violating", "--policy-config", str(config))
    assert code == 0  # the only violation left is advisory
    assert set(verdicts(report)) == {"fixture-visibility-covers-timeout"}
    assert verdicts(report)["fixture-visibility-covers-timeout"]["enforcement"] == "advisory"
    assert {"name": "fixture-visibility-covers-timeout", "enforcement": "advisory"} in report["policies"]


def test_the_packs_config_for_the_stack_is_the_default(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(FIXTURE_PACK, pack, ignore=shutil.ignore_patterns("__pycache__"))
    (pack / "config").mkdir()
    (pack / "config" / "violating.json").write_text(json.dumps({"all": "disabled"}))
    code, report = preview_json(capsys, "violating", pack=pack)
    assert code == 0 and report["violations"] == [] and report["skipped"] == []


# --- exit codes and failures -------------------------------------------------------------------------------


def test_clean_stack_exits_0_in_both_modes(capsys: pytest.CaptureFixture[str]) -> None:
    for mode in ("preview", "update"):
        code, out, _ = preview(capsys, "clean", "--mode", mode)
        assert code == 0, out
        assert out.splitlines()[-1].startswith(f"PASS: stack clean ({mode}): 10 resources, 3 policies, 0 violations")


def test_mandatory_violation_exits_1_with_a_readable_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = preview(capsys, "violating")
    assert code == 1
    assert "fixture-function-timeout" in out and "orders-worker (aws:lambda:Function)" in out
    assert "fixture-queue-policy-tls" in out.split("Policies skipped because a value was unknown (1)")[1]
    assert out.splitlines()[-1].startswith("FAIL: stack violating (preview)")


@pytest.mark.parametrize(("stack", "extra", "message"), [
    ("broken", [], "Pulumi.broken.yaml: offline-fixture:timeoutSeconds must be at least 1 (got 0)"),
    ("missing", [], "no stack file Pulumi.missing.yaml; stacks here: broken, clean, violating"),
    ("violating", ["--policy-config", "{config}"], "'no-such-policy', which the pack does not have"),
    ("violating", ["--policy-config", "{absent}"], "No such file or directory"),
])
def test_program_and_config_failures_exit_2_with_their_own_message(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, stack: str, extra: list[str], message: str) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"no-such-policy": "advisory"}))
    argv = [arg.format(config=config, absent=tmp_path / "absent.json") for arg in extra]
    code, out, err = preview(capsys, stack, *argv)
    assert code == 2
    assert out == "" and message in err and "Traceback" not in err


def test_a_pack_that_fails_to_start_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text("raise SystemExit('this pack is broken')\n")
    code, _, err = preview(capsys, "clean", pack=tmp_path)
    assert code == 2 and "this pack is broken" in err


# --- the JSON report and the files ---------------------------------------------------------------------------


def test_json_report_shape(violating_report: tuple[int, dict]) -> None:
    _, report = violating_report
    assert list(report) == ["stack", "mode", "elapsed_s", "resources", "policies", "violations", "skipped"]
    assert (report["stack"], report["mode"]) == ("violating", "preview")
    assert isinstance(report["elapsed_s"], float) and report["elapsed_s"] > 0
    shapes = {"resources": ["urn", "type", "name", "parent", "custom"], "policies": ["name", "enforcement"],
              "violations": ["policy", "enforcement", "urn", "message"], "skipped": ["policy", "urn", "message"]}
    for key, fields in shapes.items():
        assert report[key], key
        assert all(list(entry) == fields for entry in report[key]), key
    by_name = {r["name"]: r for r in report["resources"]}
    assert by_name["orders-worker"]["parent"] == by_name["orders"]["urn"] and by_name["orders-worker"]["custom"]
    assert by_name["offline-fixture-violating"]["parent"] is None  # the root stack
    assert [p["name"] for p in report["policies"]] == [
        "fixture-function-timeout", "fixture-visibility-covers-timeout", "fixture-queue-policy-tls"]


def test_export_and_graph_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    export, chart, fenced = tmp_path / "stack.json", tmp_path / "flow.mmd", tmp_path / "flow.md"
    code, report = preview_json(capsys, "violating", "--mode", "update", "--export", str(export),
                                "--graph", str(chart))
    preview_json(capsys, "violating", "--graph", str(fenced))
    assert code == 1
    exported = {r.urn for r in read_export(export)}
    assert {r["urn"] for r in report["resources"]} < exported
    assert chart.read_text().startswith("flowchart LR\n")
    assert fenced.read_text() == f"```mermaid\n{chart.read_text()}```\n"


def test_invalid_account_id_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        preview(capsys, "clean", "--account-id", "12345")
    assert exit_.value.code == 2 and "12 digits" in capsys.readouterr().err


# --- the pack process is always stopped ----------------------------------------------------------------------


@pytest.fixture
def pack_processes(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Every policy pack process the driver starts."""
    started: list[subprocess.Popen[bytes]] = []

    class RecordingPopen(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(analyzer.subprocess, "Popen", RecordingPopen)
    return started


def _gone(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is not None and not Path(f"/proc/{process.pid}").exists()


def test_pack_stopped_after_a_verdict_and_after_a_config_error(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, pack_processes: list[subprocess.Popen[bytes]]) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"fixture-function-timeout": {"maxTimeoutSeconds": "long"}}))
    assert preview(capsys, "violating")[0] == 1
    assert preview(capsys, "violating", "--policy-config", str(config))[0] == 2  # raised while the pack runs
    assert len(pack_processes) == 2 and all(_gone(p) for p in pack_processes)


def test_pack_stopped_on_ctrl_c_in_process(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                           pack_processes: list[subprocess.Popen[bytes]]) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        assert pack_processes and pack_processes[0].poll() is None  # the pack is running when Ctrl-C arrives
        raise KeyboardInterrupt

    monkeypatch.setattr(analyzer.PolicyPackProcess, "analyze", interrupted)
    code, _, err = preview(capsys, "violating")
    assert code == cli.EXIT_INTERRUPTED and "interrupted" in err
    assert len(pack_processes) == 1 and _gone(pack_processes[0])


def _fixture_argv(stack: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "offline", "preview", "--stack", stack, "--project-dir", str(FIXTURE_PROJECT),
            "--policy-pack", str(FIXTURE_PACK), *extra]


def test_real_subprocess_json_and_exit_code() -> None:
    done = subprocess.run(_fixture_argv("violating", "--json"), cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert {v["policy"] for v in report["violations"]} == {"fixture-function-timeout",
                                                            "fixture-visibility-covers-timeout"}


def _pack_children(parent: int) -> list[int]:
    """Pids of `python -m pulumi.policy` processes whose parent is `parent` (Linux /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(parent) and b"pulumi.policy" in cmdline:
            found.append(int(status.parent.name))
    return found


def _as_a_terminal_starts_it() -> None:
    """Ctrl-C's disposition of a foreground job: a test run in the background of a non-interactive shell (`make test
    &`, a CI step's `cmd &`) inherits SIGINT ignored, passes that to its children, and Python installs no
    KeyboardInterrupt handler in a process that starts with SIGINT ignored: rightly, as `nohup` and `&` ask."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the process table from /proc")
def test_real_ctrl_c_stops_the_pack(tmp_path: Path) -> None:
    busy = tmp_path / "pack-busy"  # written by the fixture pack once it is inside AnalyzeStack
    env = {**os.environ, "OFFLINE_FIXTURE_PACK_SLEEP": "60", "OFFLINE_FIXTURE_PACK_BUSY_FILE": str(busy)}
    # Output to files, not pipes: the test waits for the CLI's own exit, not for every holder of its pipes.
    err_file = tmp_path / "stderr"
    with open(err_file, "w") as err_out:
        cli_process = subprocess.Popen(_fixture_argv("violating"), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                       stderr=err_out, text=True, preexec_fn=_as_a_terminal_starts_it)
    try:
        deadline = time.monotonic() + 60
        while not (children := _pack_children(cli_process.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert children, "the policy pack never started"
        while not busy.exists() and time.monotonic() < deadline:  # a cold pack takes a while to import
            time.sleep(0.1)
        assert busy.exists(), "the policy pack never reached AnalyzeStack"
        cli_process.send_signal(signal.SIGINT)
        try:
            cli_process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            threads = sorted(p.name for p in Path(f"/proc/{cli_process.pid}/task").glob("*"))
            pytest.fail(f"the CLI still runs 30 s after Ctrl-C ({len(threads)} threads); its stderr:\n"
                        f"{err_file.read_text()[-3000:]}")
    finally:
        cli_process.kill()
    err = err_file.read_text()
    assert cli_process.returncode == cli.EXIT_INTERRUPTED, err
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
