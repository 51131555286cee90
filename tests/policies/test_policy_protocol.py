"""The analyzer driver and the policy config: the pack started as the CLI starts it, configured as the CLI
configures it, and always stopped."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from offline import policy_config
from offline.analyzer import DEFAULT_PACK_DIR, PolicyPackError, PolicyPackProcess, analyze
from offline.model import PolicyInfo
from policies.rules import RULES
from tests.policies.builders import PROJECT, STACK, Stack, alarm_topic, compliant_stack, queue_with_dlq, worker
from tests.policies.reports import findings, only

VISIBILITY = "sqs-visibility-timeout-covers-consumer"


def low_visibility_stack() -> Stack:
    stack = Stack()
    topic = alarm_topic(stack)
    worker(stack, "worker", queue_with_dlq(stack, "jobs", topic, queue={"visibilityTimeoutSeconds": 30}), topic)
    return stack


def test_pack_identity_and_defaults(pack: PolicyPackProcess) -> None:
    info = pack.info()
    assert info.name == "ai-pipelines-guardrails"
    policies = {p.name: p for p in pack.policies()}
    # The pack serves every rule it registers, each once (names are unique).
    assert sorted(policies) == sorted(rule.name for rule in RULES)
    # Advisory by default: the exemptions report only.
    assert policies.pop("exemptions-applied").enforcement == "advisory"
    assert {p.enforcement for p in policies.values()} == {"mandatory"}
    for policy in policies.values():
        assert {"unknownValues", "exemptions", "reason"} <= set(policy.config_schema["properties"])


def test_enforcement_level_from_config(pack: PolicyPackProcess) -> None:
    records = low_visibility_stack().records
    report = pack.analyze(records, policy_config={VISIBILITY: "advisory"})
    assert only(report, VISIBILITY).enforcement == "advisory"
    assert next(p for p in report.policies if p.name == VISIBILITY).enforcement == "advisory"
    report = pack.analyze(records, policy_config={"all": "advisory", VISIBILITY: {"enforcementLevel": "mandatory"}})
    assert only(report, VISIBILITY).enforcement == "mandatory"
    assert {p.enforcement for p in report.policies if p.name != VISIBILITY} == {"advisory"}
    assert not findings(pack.analyze(records, policy_config={VISIBILITY: "disabled"}), VISIBILITY)


def test_config_is_sent_afresh_for_each_analysis(pack: PolicyPackProcess) -> None:
    records = low_visibility_stack().records
    assert not findings(pack.analyze(records, policy_config={VISIBILITY: "disabled"}), VISIBILITY)
    assert only(pack.analyze(records), VISIBILITY).enforcement == "mandatory"


@pytest.mark.parametrize(("config", "message"), [
    ({"sqs-visiblity-timeout": "advisory"}, "names 'sqs-visiblity-timeout', which the pack does not have"),
    ({VISIBILITY: {"ration": 5}}, "sets ration, which its config schema does not declare"),
    ({VISIBILITY: {"ratio": "six"}}, "ratio must be number"),
    ({VISIBILITY: {"ratio": 0}}, "ratio must be >= 1"),
    ({VISIBILITY: "strict"}, "'strict' is not one of advisory, mandatory, remediate, disabled"),
    ({VISIBILITY: {"unknownValues": "ignore"}}, "unknownValues must be one of"),
    ({"all": {"enforcementLevel": "advisory", "ratio": 5}}, "'all' may only set enforcementLevel"),
])
def test_invalid_config_is_rejected(pack: PolicyPackProcess, config: dict, message: str) -> None:
    with pytest.raises(policy_config.PolicyConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pack.analyze(low_visibility_stack().records, policy_config=config)


def test_resolve_fills_schema_defaults() -> None:
    policies = [PolicyInfo("p", "mandatory", "", {"properties": {"limit": {"type": "integer", "default": 3},
                                                                  "names": {"type": "array"}}})]
    resolved = policy_config.resolve(policies, {"p": {"names": ["a"]}})
    assert resolved["p"].enforcement == "mandatory"
    assert resolved["p"].properties == {"limit": 3, "names": ["a"]}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_policy_configs_resolve(pack: PolicyPackProcess, stack: str) -> None:
    config = policy_config.load(DEFAULT_PACK_DIR / "config" / f"{stack}.json")
    resolved = policy_config.resolve(pack.policies(), config)
    for name, entry in config.items():
        assert entry.get("reason"), f"{name}: every departure from a default says why, beside it"
        assert resolved[name].properties["unknownValues"] == "violation"


def test_policy_config_file_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("")
    assert policy_config.load(tmp_path / "empty.json") == {}
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(policy_config.PolicyConfigError, match="must be a JSON object"):
        policy_config.load(tmp_path / "list.json")


def test_stack_policies_see_outputs_when_present(pack: PolicyPackProcess) -> None:
    """AnalyzeStack carries each resource's outputs (after an update) and its inputs when it has none."""
    stack = compliant_stack()
    queue = stack.find("aws:sqs/queue:Queue", "p0-jobs")
    queue.outputs = {**queue.inputs, "visibilityTimeoutSeconds": 30, "arn": "arn:aws:sqs:eu-west-1:1:q"}
    violation = only(pack.analyze(stack.records), VISIBILITY)
    assert violation.urn == queue.urn and "visibilityTimeoutSeconds 30 s" in violation.message


def test_one_shot_analyze_in_update_mode() -> None:
    report = analyze(compliant_stack().records, project=PROJECT, stack=STACK, mode="update")
    assert report.violations == [] and report.skipped == []


def _fake_pack(tmp_path: Path, main: str) -> Path:
    pack_dir = tmp_path / "pack"
    pack_dir.mkdir()
    (pack_dir / "PulumiPolicy.yaml").write_text("runtime: python\nversion: 0.0.1\n")
    (pack_dir / "__main__.py").write_text(textwrap.dedent(main))
    return pack_dir


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_pack_that_fails_to_start_reports_its_traceback(tmp_path: Path) -> None:
    pack_dir = _fake_pack(tmp_path, "import missing_rules_module\n")
    with pytest.raises(PolicyPackError, match="missing_rules_module"):
        analyze([], project=PROJECT, stack=STACK, pack_dir=pack_dir)


def test_pack_logs_reach_the_engine_service_and_the_process_is_stopped(tmp_path: Path) -> None:
    pack_dir = _fake_pack(tmp_path, """
        import sys
        import grpc
        from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc
        from pulumi_policy import PolicyPack, ResourceValidationPolicy

        # pulumi.policy passes the engine address first, as the CLI's analyzer shim does.
        engine = engine_pb2_grpc.EngineStub(grpc.insecure_channel(sys.argv[1]))
        engine.Log(engine_pb2.LogRequest(severity=engine_pb2.INFO, message="hello from the pack"))
        print("to stderr", file=sys.stderr)
        PolicyPack("fake", [ResourceValidationPolicy("noop", "does nothing", validate=lambda args, report: None)])
    """)
    with PolicyPackProcess(pack_dir, project=PROJECT, stack=STACK) as fake:
        pid = fake.pid
        assert pid is not None
        assert fake.analyze([]).violations == []
        assert any(e.severity == "info" and e.message == "hello from the pack" for e in fake.logs)
        assert "to stderr" in fake.stderr_text()
    assert _gone(pid)


def test_process_is_stopped_on_interrupt() -> None:
    with pytest.raises(KeyboardInterrupt), PolicyPackProcess(project=PROJECT, stack=STACK) as process:
        pid = process.pid
        raise KeyboardInterrupt
    assert pid is not None and _gone(pid)


def test_pack_imports_nothing_from_the_program_or_the_offline_path() -> None:
    """Pulumi runs the pack in its own virtualenv with `policies/` as its only source tree."""
    for source in DEFAULT_PACK_DIR.rglob("*.py"):
        if "venv" in source.relative_to(DEFAULT_PACK_DIR).parts:
            continue  # the pack's own virtualenv (its installed requirements)
        for line in source.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                assert words[1].split(".")[0] not in ("components", "offline", "tests", "handlers"), (
                    f"{source.relative_to(DEFAULT_PACK_DIR)}: {line.strip()}")
