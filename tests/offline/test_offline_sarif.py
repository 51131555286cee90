"""`--sarif`: the findings as SARIF 2.1.0, valid against the SARIF schema, one result per finding with its rule and
the program line that registered the resource."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from offline import cli

PROGRAMS = Path(__file__).resolve().parent / "programs"
# The SARIF 2.1.0 schema as Microsoft's SARIF tooling ships it on the npm registry (fetched on first use).
SCHEMA_PACKAGE = "@microsoft/jest-sarif@1.0.0-beta.0"
SCHEMA_MEMBER = "package/lib/schemas/sarif-2.1.0-rtm.5.json"


@pytest.fixture(scope="module")
def sarif_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm (Node.js) is not installed, so the SARIF schema cannot be fetched")
    where = tmp_path_factory.mktemp("sarif-schema")
    subprocess.run([npm, "pack", SCHEMA_PACKAGE, "--silent"], cwd=where, check=True, capture_output=True,
                   timeout=300)
    [archive] = where.glob("*.tgz")
    with tarfile.open(archive) as tar:
        member = tar.extractfile(SCHEMA_MEMBER)
        assert member is not None
        return json.load(member)  # type: ignore[no-any-return]


def preview_sarif(project: Path, stack: str, out: Path) -> tuple[int, dict[str, Any]]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(["preview", "--stack", stack, "--project-dir", str(project), "--sarif", str(out)])
    return code, json.loads(out.read_text())


def test_findings_are_valid_sarif_with_rules_and_program_lines(sarif_schema: dict[str, Any], tmp_path: Path) -> None:
    code, log = preview_sarif(PROGRAMS / "autonamed", "test", tmp_path / "out.sarif")
    assert code == 1
    jsonschema.validate(log, sarif_schema)
    [run] = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "ai-pipelines-guardrails" and len(rules) >= 19
    assert run["results"], "the program has findings"
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        [location] = result["locations"]
        assert location["physicalLocation"]["artifactLocation"] == {"uri": "__main__.py", "uriBaseId": "%SRCROOT%"}
        assert location["logicalLocations"][0]["fullyQualifiedName"].startswith("urn:pulumi:test::autonamed::")
    queue = next(r for r in run["results"] if r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
                 .endswith("::Jobs"))
    source = (PROGRAMS / "autonamed" / "__main__.py").read_text().splitlines()
    assert 'aws.sqs.Queue("Jobs")' in source[queue["locations"][0]["physicalLocation"]["region"]["startLine"] - 1]


def test_a_passing_stack_is_valid_sarif_with_no_results(sarif_schema: dict[str, Any], tmp_path: Path) -> None:
    code, log = preview_sarif(PROGRAMS / "stack_reference", "test", tmp_path / "out.sarif")
    assert code == 0
    jsonschema.validate(log, sarif_schema)
    assert log["runs"][0]["results"] == []
