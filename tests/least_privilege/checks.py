"""The least-privilege judgement of one role, from its statements and what AWS authorizes with it.

Three findings, each naming the role, the statement and the resource:

* denied: a request the role must make is not allowed (no Allow applies with its resource and conditions, or a
  Deny does): AccessDenied in production.
* unexercised: a granted (action, resource) pair that no request matches, and no reviewed reason explains
  (`UNEXERCISED`).
* too wide: a grant broader than what is touched. An S3 object grant covers exactly a configured key prefix (and
  not a shorter one than every request it serves needs); an S3 listing is limited by ``s3:prefix`` to configured
  prefixes; ``*`` only for actions that support no resource-level permission; any other wildcard only where AWS
  names the resource at run time (`RUN_TIME_NAMED`); no NotAction, NotResource or wildcard action in an Allow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.support.iam_actions import resource_formats
from tests.support.iam_eval import Authorization, allowed, as_list, conditions_hold, covers, matches

_ACCOUNT = r"arn:[^:]+:{service}:[^:*?]+:\d{{12}}:"
# Wildcards that stand for a name AWS chooses at run time, each with the reason it cannot be named in the policy.
RUN_TIME_NAMED: Mapping[str, str] = {
    _ACCOUNT.format(service="states") + r"execution:[^:*?/]+:\*":
        "a run's execution: its name is the run id given at StartExecution",
    _ACCOUNT.format(service="states") + r"execution:[^:*?/]+/\*:\*":
        "a Distributed Map's child executions: <machine>/<map run label>:<child id>, both chosen by Step Functions",
    _ACCOUNT.format(service="bedrock") + r"model-invocation-job/\*":
        "a batch job's ARN holds the id Bedrock assigns (a tag condition names this pipeline's jobs where it can)",
    _ACCOUNT.format(service="logs") + r"log-group:[^:*?]+:log-stream:\*":
        "a function's log streams are named by the Lambda runtime",
    _ACCOUNT.format(service="secretsmanager") + r"secret:[^*?]+-\?{6}":
        "Secrets Manager appends six random characters to a secret's name in its ARN",
    _ACCOUNT.format(service="ec2") + r"network-interface/\*":
        "a VPC function's network interfaces get ids chosen by EC2",
    _ACCOUNT.format(service="kms") + r"key/\*":
        "a key's id is chosen by KMS when it is created (unknown at preview); the statement names the key by its alias "
        "with kms:ResourceAliases, which `_kms_key_width` requires",
}
_KMS_KEYS = re.compile(_ACCOUNT.format(service="kms") + r"key/\*")
_S3_OBJECTS = re.compile(r"arn:[^:]+:s3:::([^/*?]+)/(.*)")
_S3_BUCKET = re.compile(r"arn:[^:]+:s3:::([^/*?]+)")
_S3_PREFIX_KEY = "s3:prefix"


@dataclass(frozen=True, order=True)
class Finding:
    kind: str  # "denied", "unexercised" or "too wide"
    role: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.role}: {self.detail}"


def allows(statement: Mapping[str, Any]) -> bool:
    return statement.get("Effect") == "Allow"


def check_role(role: str, statements: Sequence[Mapping[str, Any]], requests: Iterable[Authorization], *,
               prefixes: frozenset[str], unexercised: Mapping[tuple[str, str, str, str], str]) -> list[Finding]:
    """Every finding for `role` (its stack-independent name) given what AWS authorizes with it."""
    requests = list(requests)
    findings = [Finding("denied", role, f"{r.action} on {r.resource} ({r.origin})")
                for r in requests if not allowed(statements, r)]
    for statement in filter(allows, statements):
        sid = str(statement.get("Sid"))
        findings += [Finding("too wide", role, f"{sid}: {problem}") for problem in width(statement, requests, prefixes)]
        for action in as_list(statement.get("Action")):
            for resource in as_list(statement.get("Resource")):
                if not _exercised(statement, action, resource, requests) and not reviewed(
                        unexercised, role, sid, action, resource):
                    findings.append(Finding("unexercised", role, f"{sid}: {action} on {resource}"))
    return sorted(set(findings))


def reviewed(unexercised: Mapping[tuple[str, str, str, str], str], role: str, sid: str, action: str,
             resource: str) -> bool:
    return any((role, sid, action) == key[:3] and resource.endswith(key[3]) for key in unexercised)


def _exercised(statement: Mapping[str, Any], action: str, resource: str, requests: Sequence[Authorization]) -> bool:
    return any(matches(action, r.action, case_sensitive=False) and covers(resource, r.resource)
               and conditions_hold(statement.get("Condition", {}), r) for r in requests)


def width(statement: Mapping[str, Any], requests: Sequence[Authorization], prefixes: frozenset[str]) -> list[str]:
    """Why an Allow statement grants more than what is touched (nothing when it is exact)."""
    if "NotAction" in statement or "NotResource" in statement:
        return ["NotAction/NotResource in an Allow grants every other action or resource"]
    actions = [str(a) for a in as_list(statement.get("Action"))]
    problems = [f"the action pattern {a} grants actions nobody calls" for a in actions if "*" in a or "?" in a]
    for resource in map(str, as_list(statement.get("Resource"))):
        problems += _resource_width(statement, actions, resource, requests, prefixes)
    return problems


def _resource_width(statement: Mapping[str, Any], actions: Sequence[str], resource: str,
                    requests: Sequence[Authorization], prefixes: frozenset[str]) -> list[str]:
    if resource == "*":
        scoped = [a for a in actions if resource_formats(a) != ["*"]]
        return [f"* for {', '.join(scoped)}, which support resource-level permissions"] if scoped else []
    if objects := _S3_OBJECTS.fullmatch(resource):
        return _s3_objects_width(statement, actions, objects.group(1), objects.group(2), requests, prefixes)
    if _S3_BUCKET.fullmatch(resource):
        return _s3_listing_width(statement, actions, resource, prefixes)
    if ("*" in resource or "?" in resource) and not any(re.fullmatch(p, resource) for p in RUN_TIME_NAMED):
        return [f"{resource} has a wildcard where the resource's name is known"]
    if _KMS_KEYS.fullmatch(resource):
        return _kms_key_width(statement, resource)
    return []


def _kms_key_width(statement: Mapping[str, Any], resource: str) -> list[str]:
    """Every key of the account and region unless the statement names the key by an alias it alone carries; every
    store the key encrypts unless an encryption-context condition names the stores (queue, bucket, table, ...)."""
    aliases = [str(v) for operator, tests in (statement.get("Condition") or {}).items()
               if operator in ("ForAnyValue:StringEquals", "StringEquals")
               for key, values in tests.items() if key.lower() == "kms:resourcealiases" for v in as_list(values)]
    if not aliases or any("*" in a or "?" in a for a in aliases):
        return [f"{resource} without a kms:ResourceAliases condition naming one alias grants every key there"]
    stores = [key for tests in (statement.get("Condition") or {}).values() for key in tests
              if key.lower().startswith("kms:encryptioncontext:")]
    if not stores:
        return [f"{resource}: no kms:EncryptionContext condition, so the key may be used for any store it encrypts"]
    return []


def _s3_objects_width(statement: Mapping[str, Any], actions: Sequence[str], bucket: str, key: str,
                      requests: Sequence[Authorization], prefixes: frozenset[str]) -> list[str]:
    prefix = key[:-1] if key.endswith("*") else key
    resource = f"s3:::{bucket}/{key}"
    if "*" in prefix or "?" in prefix or prefix not in prefixes:
        return [f"{resource} is not a configured key prefix of the bucket ({', '.join(sorted(prefixes))})"]
    served = [r.resource for r in requests if any(matches(a, r.action, case_sensitive=False) for a in actions)
              and covers(f"arn:{_partition(r.resource)}:{resource}", r.resource)
              and conditions_hold(statement.get("Condition", {}), r)]
    narrower = sorted(p for p in prefixes if p.startswith(prefix) and p != prefix and served
                      and all(r.split(f":::{bucket}/", 1)[1].startswith(p) for r in served))
    return [f"{resource}: every request it serves is under the configured prefix {narrower[-1]}"] if narrower else []


def _s3_listing_width(statement: Mapping[str, Any], actions: Sequence[str], resource: str,
                      prefixes: frozenset[str]) -> list[str]:
    listing = [a for a in actions if a.lower().startswith("s3:list")]
    if not listing:
        return []
    limits = [str(v) for operator, tests in (statement.get("Condition") or {}).items()
              if operator.removesuffix("IfExists") in ("StringLike", "StringEquals")
              for key, values in tests.items() if key.lower() == _S3_PREFIX_KEY for v in as_list(values)]
    unconfigured = [v for v in limits if v.removesuffix("*") not in prefixes or "*" in v.removesuffix("*")]
    if not limits or unconfigured:
        return [f"{', '.join(listing)} on {resource} lists beyond the configured prefixes "
                f"(s3:prefix limited to {limits or 'nothing'})"]
    return []


def _partition(arn: str) -> str:
    return arn.split(":", 2)[1] if arn.startswith("arn:") else "aws"
