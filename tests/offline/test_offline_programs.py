"""Any Pulumi Python program for AWS synthesizes offline: one small fixture program per pattern programs use
(`tests/offline/programs/`), each in both modes, several times over (a race shows up as a rare hang or crash), and
the policy pack run over it through the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from offline import cli
from offline.model import UNKNOWN
from offline.synth import Synthesis, SynthesisError, synthesize

PROGRAMS = Path(__file__).resolve().parent / "programs"
NAMES = sorted(p.name for p in PROGRAMS.iterdir() if (p / "Pulumi.yaml").is_file())
REPEATS = 4


def synth(name: str, mode: str) -> Synthesis:
    return synthesize("test", mode, project_dir=PROGRAMS / name)  # type: ignore[arg-type]


def inputs(synthesis: Synthesis, name: str) -> dict[str, Any]:
    return synthesis.named(name).inputs


def test_the_corpus_covers_the_patterns() -> None:
    assert set(NAMES) >= {"references", "siblings", "main_option", "invokes", "stack_reference", "secrets",
                          "autonamed", "components", "transforms"}


@pytest.mark.parametrize("mode", ["preview", "update"])
@pytest.mark.parametrize("name", NAMES)
def test_each_program_synthesizes_every_time_and_the_pack_judges_it(name: str, mode: str) -> None:
    results = [synth(name, mode) for _ in range(REPEATS)]
    assert len({len(r.resources) for r in results}) == 1
    assert all(record.outputs for record in results[0].resources if record.custom)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["preview", "--stack", "test", "--mode", mode, "--json", "--project-dir", str(PROGRAMS / name)])
    assert code in (0, 1), err.getvalue()
    assert json.loads(out.getvalue())["resources"]


def test_update_mode_leaves_no_output_null_or_unknown() -> None:
    for name in NAMES:
        for record in synth(name, "update").resources:
            text = json.dumps(record.outputs)
            assert UNKNOWN not in text and "null" not in text, (name, record.name)


def test_resource_references_resolve_to_ids_across_components_and_providers() -> None:
    previewed, applied = synth("references", "preview"), synth("references", "update")
    role = applied.named("net-role")
    assert inputs(previewed, "fn")["role"] == UNKNOWN  # a role's id is unknown until it exists
    assert inputs(applied, "fn")["role"] == role.id == role.inputs["name"]
    assert applied.named("fn").outputs["arn"].startswith("arn:aws:lambda:us-west-2:")  # the explicit provider's
    assert applied.named("topic").outputs["arn"].startswith("arn:aws:sns:eu-west-1:")
    topic_arn = applied.named("topic").outputs["arn"]
    assert inputs(applied, "alarm")["alarmActions"] == [topic_arn, topic_arn]  # a resource in a list: its id
    assert applied.outputs["component"] == "urn:pulumi:test::references::fixture:index:Network::net"


@pytest.mark.parametrize("name", ["siblings", "main_option"])
def test_the_program_imports_its_sibling_modules(name: str) -> None:
    result = synth(name, "preview")
    physical = {r.inputs.get("name") or r.inputs.get("bucket") for r in result.resources if r.custom}
    assert physical & {"fixture-jobs", "fixture-main-option-data"}


def test_everyday_invokes_are_answered_and_the_answers_file_is_read() -> None:
    result = synth("invokes", "update")
    web = inputs(result, "web")
    assert web["ami"].startswith("ami-") and web["subnetId"].startswith("subnet-")
    assert web["availabilityZone"] == "eu-west-1a" and web["tags"]["image"] == "2026.12"
    assert web["tags"]["zone"].startswith("Z")
    assert result.outputs["cidr"] == "172.31.0.0/16"
    statement = json.loads(inputs(result, "send")["policy"])["Statement"][0]
    assert statement["Resource"] == "arn:aws:sqs:eu-west-1:123456789012:jobs"


def test_a_stack_reference_reads_the_answers_file() -> None:
    for mode in ("preview", "update"):
        result = synth("stack_reference", mode)
        assert inputs(result, "app")["vpcId"] == "vpc-0fixture0network"
        assert result.outputs["vpc"] == "vpc-0fixture0network"


def test_secret_config_reaches_the_program_as_a_secret_placeholder() -> None:
    result = synth("secrets", "preview")
    assert inputs(result, "token-copy")["value"] == "[secret]"
    assert result.outputs["replicas"] == 2


def test_auto_named_resources_give_the_program_their_names() -> None:
    names = synth("autonamed", "preview").outputs["names"]
    assert [re.sub(r"-[0-9a-f]{7}$", "", n) for n in names] == ["Jobs", "uploads", "worker"]


def test_components_and_apply_chains_resolve() -> None:
    assert synth("components", "preview").outputs["summary"] == "ORDERS-JOBS -> ORDERS-JOBS-DLQ"


def test_stack_transformations_and_transforms_are_applied() -> None:
    queue = inputs(synth("transforms", "preview"), "jobs")
    assert queue["sqsManagedSseEnabled"] is True  # the resource's own transform, run as the engine runs it
    assert queue["tags"] == {"team": "fixture"}  # the stack transformation, run by the SDK


# --- a program the tool cannot run: a clear error -----------------------------------------------------------

def project(tmp_path: Path, program: str, *, pulumi_yaml: str = "", stack: str = "test") -> Path:
    (tmp_path / "Pulumi.yaml").write_text(f"name: tmp\nruntime: python\n{pulumi_yaml}")
    (tmp_path / f"Pulumi.{stack}.yaml").write_text("config:\n  aws:region: eu-west-1\n")
    (tmp_path / "__main__.py").write_text(textwrap.dedent(program))
    return tmp_path


def test_an_unanswered_invoke_names_itself_its_arguments_and_the_answers_file(tmp_path: Path) -> None:
    project(tmp_path, """
        import pulumi_aws as aws
        aws.ssm.get_parameter(name="/missing")
    """)
    with pytest.raises(SynthesisError) as failure:
        synthesize("test", project_dir=tmp_path)
    message = str(failure.value)
    assert "aws:ssm/getParameter:getParameter" in message and '{"name": "/missing"}' in message
    assert str(tmp_path / "offline.test.yaml") in message


def test_a_failing_program_shows_its_own_frames_only(tmp_path: Path) -> None:
    project(tmp_path, """
        import limits
        limits.check(3)
    """)
    (tmp_path / "limits.py").write_text("def check(n):\n    raise ValueError(f'{n} buckets is too many')\n")
    with pytest.raises(SynthesisError) as failure:
        synthesize("test", project_dir=tmp_path)
    lines = str(failure.value).splitlines()
    assert lines[0] == "ValueError: 3 buckets is too many"
    files = [line.split('"')[1] for line in lines if line.strip().startswith("File ")]
    assert files == [str(tmp_path / "__main__.py"), str(tmp_path / "limits.py")]


def test_a_program_virtualenv_provides_its_own_packages(tmp_path: Path) -> None:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = tmp_path / "venv" / "lib" / version / "site-packages"
    site.mkdir(parents=True)
    (site / "fixture_naming.py").write_text("PREFIX = 'from-venv'\n")
    project(tmp_path, """
        import pulumi_aws as aws
        from fixture_naming import PREFIX
        aws.sqs.Queue("q", name=f"{PREFIX}-q")
    """, pulumi_yaml="runtime:\n  name: python\n  options:\n    virtualenv: venv\n")
    assert inputs(synthesize("test", project_dir=tmp_path), "q")["name"] == "from-venv-q"
    assert "fixture_naming" in sys.modules and str(site) not in sys.path  # the path is restored afterwards


def test_a_program_that_never_finishes_is_stopped_with_a_clear_error(tmp_path: Path) -> None:
    project(tmp_path, """
        import asyncio
        import pulumi
        import pulumi_aws as aws
        never = asyncio.get_event_loop().create_future()
        aws.sqs.Queue("q", name=pulumi.Output.from_input(never))
    """)
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "offline", "preview", "--stack", "test", "--project-dir",
                           str(tmp_path), "--timeout", "3"], cwd=repo, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: the preview did not finish within 3 s (--timeout): the program or the "
                                   "policy pack is waiting for something that never comes")


def test_a_foreign_stack_named_like_ours_does_not_take_our_policy_config(tmp_path: Path) -> None:
    shutil.copytree(PROGRAMS / "siblings", tmp_path / "p")
    (tmp_path / "p" / "Pulumi.dev.yaml").write_text("config:\n  aws:region: eu-west-1\n")
    args = cli.build_parser().parse_args(["preview", "--stack", "dev", "--project-dir", str(tmp_path / "p")])
    assert cli._default_policy_config(args) is None
    ours = cli.build_parser().parse_args(["preview", "--stack", "dev"])
    assert cli._default_policy_config(ours) == ours.policy_pack / "config" / "dev.json"


def test_values_read_back_after_create_look_like_aws() -> None:
    result = synth("website", "update")
    server = result.outputs["server"]
    assert re.fullmatch(r"i-[0-9a-f]{17}", server["id"])
    assert re.fullmatch(r"10\.0\.\d+\.\d+", server["private_ip"]) and server["public_dns"].startswith("ec2-")
    assert result.outputs["route_table"].startswith("rtb-")
    record = inputs(result, "validation")
    assert record["type"] == "CNAME" and record["name"].endswith(".www.example.com.")
    trust = json.loads(inputs(result, "deploy")["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"]["AWS"] == "arn:aws:iam::123456789012:user/deployer"
    assert "arn" not in result.named("validation").outputs or result.named("validation").outputs["arn"]


def test_a_project_name_the_cli_would_refuse_is_named(tmp_path: Path) -> None:
    project(tmp_path, "import pulumi\n")
    (tmp_path / "Pulumi.yaml").write_text("name: ${PROJECT}\nruntime: python\n")
    with pytest.raises(SynthesisError, match=r"project name '\$\{PROJECT\}' is not a valid Pulumi project name"):
        synthesize("test", project_dir=tmp_path)


def test_a_stack_file_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    project(tmp_path, "import pulumi\n")
    (tmp_path / "Pulumi.test.yaml").write_text("config:\n  aws:region: eu-west-1\n  bad: value: here\n")
    with pytest.raises(SynthesisError, match=r"Pulumi\.test\.yaml: not valid YAML"):
        synthesize("test", project_dir=tmp_path)
