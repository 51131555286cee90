"""The DynamoDB table block: protection follows from the purpose a table declares."""

from __future__ import annotations

import pytest

from components.blocks.iam import AwsEnv
from components.blocks.table import DataTable
from offline.synth import Synthesis, SynthesisError, run_program
from tests.blocks.programs import NAMING

REGION, ACCOUNT = "eu-west-1", "123456789012"


def synth(mode: str = "preview", protect: bool = False) -> Synthesis:
    def program() -> None:
        env = AwsEnv.lookup()
        seen = DataTable(NAMING, env, "idempotency", purpose="idempotency", hash_key="id",
                         ttl_attribute="expiration", protect=protect)
        results = DataTable(NAMING, env, "results", purpose="results", hash_key="resultId", protect=protect)
        statement = results.statement_to_write("WriteResults", ["dynamodb:PutItem"])
        assert statement.actions == ["dynamodb:PutItem"] and seen.name.endswith("-idempotency")

    return run_program(program, project="ai-pipelines", stack="test", mode=mode,  # type: ignore[arg-type]
                       config={"aws:region": REGION})


@pytest.fixture(scope="module", params=["preview", "update"])
def stack(request: pytest.FixtureRequest) -> Synthesis:
    return synth(request.param)


def test_an_idempotency_table_expires_its_records_and_says_so(stack: Synthesis) -> None:
    table = stack.named("demo-idempotency-table").inputs
    assert table["name"] == "ai-pipelines-test-demo-idempotency"
    assert table["ttl"] == {"attributeName": "expiration", "enabled": True}
    assert table["pointInTimeRecovery"] == {"enabled": False}
    assert table["tags"]["purpose"] == "idempotency"


def test_a_results_table_can_be_restored_and_never_expires_records(stack: Synthesis) -> None:
    table = stack.named("demo-results-table").inputs
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert "ttl" not in table
    assert table["tags"] == {"project": "ai-pipelines", "stack": "test", "pipeline": "demo", "owner": "platform",
                             "purpose": "results"}


def test_every_table_is_on_demand_encrypted_and_keyed_by_a_string(stack: Synthesis) -> None:
    for name, key in (("demo-idempotency-table", "id"), ("demo-results-table", "resultId")):
        table = stack.named(name).inputs
        assert table["billingMode"] == "PAY_PER_REQUEST"
        assert table["serverSideEncryption"] == {"enabled": True}
        assert table["hashKey"] == key and table["attributes"] == [{"name": key, "type": "S"}]


def test_the_arn_is_known_in_update_mode(stack: Synthesis) -> None:
    if stack.mode == "update":
        assert stack.named("demo-results-table").outputs["arn"] == (
            f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/ai-pipelines-test-demo-results")


def test_protection_guards_against_pulumi_and_dynamodb_deletes() -> None:
    protected = synth(protect=True)
    for name in ("demo-idempotency-table", "demo-results-table"):
        assert protected.named(name).protect is True
        assert protected.named(name).inputs["deletionProtectionEnabled"] is True
    assert synth().named("demo-results-table").inputs["deletionProtectionEnabled"] is False


@pytest.mark.parametrize(("purpose", "ttl", "message"), [
    ("idempotency", None, "needs a ttl_attribute"),
    ("results", "expiration", "keeps its records; it takes no ttl_attribute"),
    ("ledger", "expiration", "keeps its records"),
])
def test_a_purpose_and_a_ttl_that_disagree_are_refused(purpose: str, ttl: str | None, message: str) -> None:
    def program() -> None:
        DataTable(NAMING, AwsEnv.lookup(), "bad", purpose=purpose, hash_key="id",  # type: ignore[arg-type]
                  ttl_attribute=ttl)

    with pytest.raises((ValueError, SynthesisError), match=message):
        run_program(program, project="ai-pipelines", stack="test", config={"aws:region": REGION})
