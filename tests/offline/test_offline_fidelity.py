"""The offline engine answers as a real `pulumi preview` (and `pulumi up`) of a new stack would, asserted on what
the policy pack receives: `Analyze` gets the provider's Check output, `AnalyzeStack` the planned state.

One fixture program holds a resource of each kind `docs/offline-fidelity.md` describes: a queue whose `policy` and
`redrivePolicy` are set by separate resources (so its own are computed), a bucket with separate encryption, public
access and policy resources, auto-named resources, a role with an inline policy unknown at preview, and a function
that leaves properties with schema defaults unset.
"""

from __future__ import annotations

import importlib.util
import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from google.protobuf import json_format

from offline import tf_defaults
from offline.analyzer import DEFAULT_PACK_DIR, PolicyPackProcess, _Messages
from offline.model import UNKNOWN, Mode
from offline.schema import _classes_by_token, schema_of
from offline.synth import Synthesis, run_program

REGION = "eu-west-1"
ACCOUNT = "123456789012"
AUTO_NAME = r"-[0-9a-f]{7}"
TLS_ONLY = {"Effect": "Deny", "Principal": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def fidelity_program() -> None:
    dlq = aws.sqs.Queue("orders-dlq", name="orders-dlq", sqs_managed_sse_enabled=True, policy=_document(
        {**TLS_ONLY, "Action": "sqs:*", "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-dlq"}))
    queue = aws.sqs.Queue("orders", name="orders", sqs_managed_sse_enabled=True, tags={"team": "orders"})
    aws.sqs.QueuePolicy("orders-policy", queue_url=queue.url, policy=queue.name.apply(lambda name: _document(
        {**TLS_ONLY, "Action": "sqs:*", "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"})))
    aws.sqs.RedrivePolicy("orders-redrive", queue_url=queue.url, redrive_policy=dlq.name.apply(lambda name: json.dumps(
        {"deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}", "maxReceiveCount": 5})))
    aws.sqs.Queue("bare", name="bare", sqs_managed_sse_enabled=True)

    bucket = aws.s3.Bucket("Uploads")
    aws.s3.BucketServerSideEncryptionConfiguration("uploads-sse", bucket=bucket.bucket, rules=[{
        "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}}])
    aws.s3.BucketPublicAccessBlock("uploads-pab", bucket=bucket.bucket, block_public_acls=True,
                                   block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
    aws.s3.BucketPolicy("uploads-policy", bucket=bucket.bucket, policy=bucket.bucket.apply(lambda name: _document(
        {**TLS_ONLY, "Action": "s3:*", "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"]})))

    role = aws.iam.Role("worker", assume_role_policy=_document(
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}),
        inline_policies=[
            {"name": "known", "policy": _document({"Effect": "Allow", "Action": "sqs:SendMessage",
                                                   "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"})},
            {"name": "late", "policy": queue.arn.apply(lambda arn: _document(
                {"Effect": "Allow", "Action": "sqs:*", "Resource": arn}))},
        ])
    aws.lambda_.Function("worker-fn", role=role.arn, runtime="python3.13", handler="app.handler",
                         code=pulumi.AssetArchive({}))


def synthesize(mode: Mode) -> Synthesis:
    return run_program(fidelity_program, project="fidelity", stack="test", mode=mode, config={"aws:region": REGION})


@pytest.fixture(scope="module")
def preview() -> Synthesis:
    return synthesize("preview")


@pytest.fixture(scope="module")
def update() -> Synthesis:
    return synthesize("update")


def analyzed(synthesis: Synthesis, name: str) -> dict[str, Any]:
    """The properties `Analyze` sends the pack for the resource: its checked inputs."""
    message = _Messages(synthesis.resources).analyze_request(synthesis.named(name))
    return json_format.MessageToDict(message.properties)


def stack_analyzed(synthesis: Synthesis, name: str) -> dict[str, Any]:
    """The properties `AnalyzeStack` sends the pack for the resource: its state after Create."""
    message = _Messages(synthesis.resources).stack_resource(synthesis.named(name))
    return json_format.MessageToDict(message.properties)


# --- the computed-property table, from the installed SDK --------------------------------------------------------

@pytest.mark.parametrize(("token", "prop"), [
    ("aws:sqs/queue:Queue", "policy"),
    ("aws:sqs/queue:Queue", "redrivePolicy"),
    ("aws:sqs/queue:Queue", "arn"),
    ("aws:s3/bucket:Bucket", "serverSideEncryptionConfiguration"),
    ("aws:s3/bucket:Bucket", "policy"),
    ("aws:iam/role:Role", "inlinePolicies"),
    ("aws:lambda/function:Function", "loggingConfig"),
])
def test_computed_table_holds_known_cases(token: str, prop: str) -> None:
    schema = schema_of(token)
    assert schema is not None and prop in schema.computed


@pytest.mark.parametrize(("token", "prop"), [
    ("aws:iam/role:Role", "assumeRolePolicy"),          # required input
    ("aws:sqs/queuePolicy:QueuePolicy", "policy"),      # required input
    ("aws:sqs/queuePolicy:QueuePolicy", "queueUrl"),    # required input
    ("aws:lambda/function:Function", "role"),           # required input
    # required input of a resource whose Args class is exported as <Name>InitArgs
    ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "rules"),
    ("aws:sqs/queue:Queue", "visibilityTimeoutSeconds"),  # optional with a Terraform default: never computed
    ("aws:lambda/function:Function", "timeout"),
    ("aws:sqs/queue:Queue", "kmsMasterKeyId"),          # optional, no default: absent when unset
])
def test_computed_table_leaves_out_what_the_program_sets(token: str, prop: str) -> None:
    schema = schema_of(token)
    assert schema is not None and prop in schema.outputs and prop not in schema.computed


def test_an_undeclared_type_has_no_schema() -> None:
    assert schema_of("aws:nothing/here:Nothing") is None


def test_every_resource_type_of_the_sdk_has_its_inputs() -> None:
    tokens = _classes_by_token()
    assert len(tokens) > 1000
    without_inputs = [token for token in tokens if not schema_of(token).inputs]  # type: ignore[union-attr]
    assert len(without_inputs) <= 5, without_inputs  # a few resources take no arguments at all


@pytest.mark.parametrize("token", sorted(tf_defaults.SCHEMA_DEFAULTS))
def test_every_schema_default_is_an_optional_input_the_provider_does_not_compute(token: str) -> None:
    schema = schema_of(token)
    assert schema is not None, token
    for prop in tf_defaults.SCHEMA_DEFAULTS[token]:
        assert prop in schema.inputs and prop not in schema.required_inputs and prop not in schema.computed, prop


# --- Check: what Analyze receives ------------------------------------------------------------------------------

def test_analyze_sees_checked_inputs_with_truthy_schema_defaults(preview: Synthesis) -> None:
    queue = analyzed(preview, "orders")
    assert queue["visibilityTimeoutSeconds"] == 30 and queue["messageRetentionSeconds"] == 345_600
    assert "delaySeconds" not in queue and "fifoQueue" not in queue  # falsy defaults are left to the plan
    assert "policy" not in queue and "redrivePolicy" not in queue and "arn" not in queue
    assert queue["tagsAll"] == {"team": "orders"}
    function = analyzed(preview, "worker-fn")
    assert function["timeout"] == 3 and function["memorySize"] == 128
    assert function["reservedConcurrentExecutions"] == -1 and function["packageType"] == "Zip"
    assert function["tagsAll"] == {}


def test_auto_names_are_known_at_preview_and_stable(preview: Synthesis, update: Synthesis) -> None:
    bucket = analyzed(preview, "Uploads")["bucket"]
    assert re.fullmatch(r"uploads" + AUTO_NAME, bucket)  # S3 names are lower-cased
    role = analyzed(preview, "worker")["name"]
    assert re.fullmatch(r"worker" + AUTO_NAME, role)
    assert analyzed(preview, "worker-fn")["name"].startswith("worker-fn-")
    assert stack_analyzed(preview, "Uploads")["bucket"] == bucket
    assert analyzed(update, "Uploads")["bucket"] == bucket and analyzed(update, "worker")["name"] == role


def test_an_inline_policy_unknown_at_preview_is_dropped_by_check(preview: Synthesis, update: Synthesis) -> None:
    assert [p["name"] for p in analyzed(preview, "worker")["inlinePolicies"]] == ["known"]
    assert [p["name"] for p in analyzed(update, "worker")["inlinePolicies"]] == ["known", "late"]


def test_policy_documents_are_json_strings(preview: Synthesis) -> None:
    for name in ("orders-policy", "uploads-policy"):
        assert json.loads(analyzed(preview, name)["policy"])["Statement"][0]["Effect"] == "Deny"
    assert json.loads(analyzed(preview, "orders-redrive")["redrivePolicy"])["maxReceiveCount"] == 5


# --- Create(preview): what AnalyzeStack receives ---------------------------------------------------------------

def test_planned_state_leaves_computed_properties_unknown(preview: Synthesis) -> None:
    queue = stack_analyzed(preview, "orders")
    assert queue["policy"] == UNKNOWN and queue["redrivePolicy"] == UNKNOWN  # set by the separate resources
    assert queue["arn"] == UNKNOWN and queue["url"] == UNKNOWN
    assert queue["sqsManagedSseEnabled"] is True and queue["name"] == "orders"  # set by the program: known
    assert queue["delaySeconds"] == 0 and queue["visibilityTimeoutSeconds"] == 30  # every default in the plan
    assert queue["region"] == REGION and queue["tagsAll"] == {"team": "orders"}  # planned from known values
    bucket = stack_analyzed(preview, "Uploads")
    assert bucket["serverSideEncryptionConfiguration"] == UNKNOWN and bucket["policy"] == UNKNOWN
    assert [p["name"] for p in stack_analyzed(preview, "worker")["inlinePolicies"]] == ["known"]  # set: known
    assert stack_analyzed(preview, "worker-fn")["tagsAll"] == UNKNOWN  # no tags: the plan leaves it computed
    assert stack_analyzed(preview, "worker-fn")["loggingConfig"] == UNKNOWN


def test_the_separate_resources_keep_what_the_program_set(preview: Synthesis) -> None:
    assert json.loads(stack_analyzed(preview, "orders-policy")["policy"])["Statement"][0]["Action"] == "sqs:*"
    encryption = stack_analyzed(preview, "uploads-sse")
    assert encryption["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert stack_analyzed(preview, "uploads-pab")["blockPublicPolicy"] is True


def test_update_mode_gives_every_computed_property_a_value(update: Synthesis) -> None:
    for record in update.resources:
        if not record.custom:
            continue
        schema = schema_of(record.type)
        assert schema is not None
        missing = sorted(schema.computed - record.outputs.keys())
        assert missing == [], f"{record.name}: {missing}"
        assert UNKNOWN not in json.dumps(record.outputs), record.name
    queue = stack_analyzed(update, "orders")
    assert queue["arn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders" and queue["policy"] == ""
    assert queue["sqsManagedSseEnabled"] is True
    bucket = stack_analyzed(update, "Uploads")
    assert bucket["serverSideEncryptionConfiguration"]["rule"]["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "AES256"}  # what S3 reports for a new bucket


def test_a_resource_reference_is_sent_as_its_id() -> None:
    def program() -> None:
        role = aws.iam.Role("ref-role", name="ref-role", assume_role_policy=_document())
        aws.lambda_.Function("ref-fn", role=role, runtime="python3.13", handler="a.b", code=pulumi.AssetArchive({}))

    previewed = run_program(program, project="fidelity", stack="test", mode="preview")
    applied = run_program(program, project="fidelity", stack="test", mode="update")
    assert previewed.named("ref-fn").inputs["role"] == UNKNOWN  # the role's id is unknown until it exists
    assert applied.named("ref-fn").inputs["role"] == "ref-role"


# --- the pack's verdicts under the planned state ---------------------------------------------------------------

RULES = ("messaging-encrypted-tls-only", "s3-bucket-guardrails")


@pytest.mark.parametrize("unknown_values", ["skip", "violation"])
def test_the_pack_judges_settings_where_the_stack_sets_them(preview: Synthesis, unknown_values: str) -> None:
    config = {rule: {"unknownValues": unknown_values} for rule in RULES}
    with PolicyPackProcess(project="fidelity", stack="test", mode="preview") as pack:
        report = pack.analyze(preview.resources, policy_config=config)
    judged = [(v.policy, v.urn.rsplit("::", 1)[-1]) for v in report.violations if v.policy in RULES]
    assert [s for s in report.skipped if s.policy in RULES] == []
    # The queue and the bucket set their policies and encryption through separate resources, the dead-letter queue
    # its policy inline: no finding. The bare queue has no resource policy: a verdict, not a skip, although its own
    # `policy` is unknown at preview.
    assert judged == [("messaging-encrypted-tls-only", "bare")]


def test_the_packs_assumed_defaults_are_the_providers() -> None:
    """The pack's fallbacks for absent properties (policies/rules/core/aws_defaults.py) are the provider's."""
    path = DEFAULT_PACK_DIR / "rules" / "core" / "aws_defaults.py"
    spec = importlib.util.spec_from_file_location("pack_aws_defaults", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.SCHEMA_DEFAULTS
    for (token, prop), value in module.SCHEMA_DEFAULTS.items():
        assert tf_defaults.planned_defaults(token).get(prop) == value, (token, prop)


def program_with_values_unknown_at_preview() -> None:
    """Owners' own settings the program builds from other resources' outputs: unknown at preview, and set."""
    topic = aws.sns.Topic("late-topic", name="late-topic", kms_master_key_id="alias/aws/sns")
    aws.sqs.Queue("late", name="late", sqs_managed_sse_enabled=True, policy=topic.arn.apply(lambda arn: _document(
        {**TLS_ONLY, "Action": "sqs:*", "Resource": arn})))
    aws.iam.Role("late-admin", assume_role_policy=_document(
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}),
        managed_policy_arns=topic.arn.apply(lambda _: ["arn:aws:iam::aws:policy/AdministratorAccess"]))


@pytest.mark.parametrize("unknown_values", ["skip", "violation"])
def test_an_owner_setting_the_program_left_unknown_is_not_read_as_unset(unknown_values: str) -> None:
    """A queue policy or a role's managed policies built from an unknown output must not pass (or fail) as if the
    program had left them unset: the rule cannot judge them at preview, and says so."""
    synthesis = run_program(program_with_values_unknown_at_preview, project="fidelity", stack="test",
                            config={"aws:region": REGION})
    rules = ("messaging-encrypted-tls-only", "iam-no-broad-managed-policies")
    config = {rule: {"unknownValues": unknown_values} for rule in rules}
    with PolicyPackProcess(project="fidelity", stack="test", mode="preview") as pack:
        report = pack.analyze(synthesis.resources, policy_config=config)
    found = {(v.policy, v.urn.rsplit("::", 1)[-1]): v.message for v in report.violations if v.policy in rules}
    notes = {s.policy: s.message for s in report.skipped if s.policy in rules}
    if unknown_values == "violation":
        assert "can't be known during preview" in found[("messaging-encrypted-tls-only", "late")]
        assert "can't be known during preview" in found[("iam-no-broad-managed-policies", "late-admin")]
    else:
        assert ("messaging-encrypted-tls-only", "late") not in found  # not "has no resource policy"
        assert "value at .late.policy can't be known" in notes["messaging-encrypted-tls-only"]
        assert "value at .late-admin.managedPolicyArns can't be known" in notes["iam-no-broad-managed-policies"]


def program_of_provider_details() -> None:
    """Nested defaults and computed fields, a second provider with default tags, auto-named ids beyond `name`."""
    west = aws.Provider("west", region="us-west-2", default_tags={"tags": {"team": "data"}})
    aws.sqs.Queue("west-q", name="west-q", tags={"app": "x"}, opts=pulumi.ResourceOptions(provider=west))
    region = aws.get_region(opts=pulumi.InvokeOptions(provider=west))
    aws.sqs.Queue("named-by-invoke", name=f"q-{region.region}")
    aws.lambda_.Function("logs-json", role="arn:aws:iam::123456789012:role/r", runtime="python3.13",
                         handler="a.b", code=pulumi.AssetArchive({}), logging_config={"log_format": "JSON"})
    role = aws.iam.Role("schedule-role", name="schedule-role", assume_role_policy=_document(),
                        inline_policies=[{"policy": _document({"Effect": "Allow", "Action": "sqs:SendMessage",
                                                               "Resource": "*"})}, {"name": "empty", "policy": ""}])
    aws.scheduler.Schedule("nightly", schedule_expression="rate(1 day)", flexible_time_window={"mode": "OFF"},
                           target={"arn": "arn:aws:sqs:eu-west-1:123456789012:jobs", "role_arn": role.arn,
                                   "retry_policy": {"maximum_retry_attempts": 3}})
    rule = aws.cloudwatch.EventRule("every-hour", schedule_expression="rate(1 hour)")
    aws.cloudwatch.EventTarget("to-jobs", rule=rule.name, arn="arn:aws:sqs:eu-west-1:123456789012:jobs")
    key = aws.kms.Key("data")
    aws.kms.Alias("data", target_key_id=key.key_id)

    class Pipeline(pulumi.ComponentResource):
        def __init__(self) -> None:
            super().__init__("fidelity:index:Pipeline", "pipeline", {"given": "at construction"})
            self.register_outputs({"registered": "afterwards"})

    Pipeline()
    pulumi.export("region", region.region)


@pytest.fixture(scope="module")
def details() -> Synthesis:
    return run_program(program_of_provider_details, project="fidelity", stack="test", config={"aws:region": REGION})


def test_check_applies_region_and_the_providers_default_tags(details: Synthesis) -> None:
    queue = analyzed(details, "west-q")
    assert queue["region"] == "us-west-2"
    assert queue["tagsAll"] == {"team": "data", "app": "x"}
    assert analyzed(details, "logs-json")["region"] == REGION


def test_an_invoke_is_answered_for_its_providers_region(details: Synthesis) -> None:
    assert details.outputs["region"] == "us-west-2"
    assert analyzed(details, "named-by-invoke")["name"] == "q-us-west-2"


def test_defaults_inside_a_set_block_are_applied_by_check(details: Synthesis) -> None:
    retry = analyzed(details, "nightly")["target"]["retryPolicy"]
    assert retry == {"maximumRetryAttempts": 3, "maximumEventAgeInSeconds": 86_400}


def test_a_computed_field_left_out_of_a_set_block_is_unknown_in_the_plan(details: Synthesis) -> None:
    assert "logGroup" not in analyzed(details, "logs-json")["loggingConfig"]
    assert stack_analyzed(details, "logs-json")["loggingConfig"]["logGroup"] == UNKNOWN
    applied = run_program(program_of_provider_details, project="fidelity", stack="test", mode="update",
                          config={"aws:region": REGION})
    name = analyzed(applied, "logs-json")["name"]
    assert stack_analyzed(applied, "logs-json")["loggingConfig"]["logGroup"] == f"/aws/lambda/{name}"


def test_auto_names_beyond_name(details: Synthesis) -> None:
    assert re.fullmatch(r"to-jobs" + AUTO_NAME, analyzed(details, "to-jobs")["targetId"])
    alias = next(r for r in details.resources if r.type == "aws:kms/alias:Alias")
    assert re.fullmatch(r"alias/data" + AUTO_NAME, alias.inputs["name"])
    inline = analyzed(details, "schedule-role")["inlinePolicies"]
    assert [re.fullmatch(r"inline-policy" + AUTO_NAME, p["name"]) is not None for p in inline] == [True]  # "" dropped


def test_components_send_their_registered_outputs_to_analyze_stack(details: Synthesis) -> None:
    component = next(r for r in details.resources if r.type == "fidelity:index:Pipeline")
    message = _Messages(details.resources).stack_resource(component)
    assert json_format.MessageToDict(message.properties) == {"registered": "afterwards"}
    root = next(r for r in details.resources if r.type == "pulumi:pulumi:Stack")
    assert json_format.MessageToDict(_Messages(details.resources).stack_resource(root).properties) == {
        "region": "us-west-2"}
