"""What the AWS provider answers, emulated where the policy pack or the program can observe it.

A create is answered as the bridged provider answers it (`docs/offline-fidelity.md`):

* in preview mode with the *planned state*: the checked inputs (`offline.check`), and every property the provider
  computes (`offline.schema`) that the program left unset as unknown, `tagsAll` and `region` excepted (the
  provider plans both from known values); the id is unknown;
* in update mode with the state after a completed create: ids, ARNs and URLs in AWS's formats from the stack's
  account and region, every other computed property the value AWS reports for a new resource where AWS documents
  one, else an empty value of its type (never null).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

from offline import tf_defaults
from offline.aws_account import AwsAccount
from offline.aws_formats import computed_outputs, realistic_value
from offline.check import check
from offline.invokes import InvokeAnswerer
from offline.model import UNKNOWN, Mode
from offline.schema import schema_of

# What AWS reports for a new resource where the program left a computed property unset and AWS documents a default.
_REPORTED_AFTER_CREATE: dict[str, dict[str, Any]] = {
    # SQS managed encryption is on for every new queue since October 2022.
    "aws:sqs/queue:Queue": {"sqsManagedSseEnabled": True, "kmsDataKeyReusePeriodSeconds": 300},
    # Every new bucket is encrypted with SSE-S3 since January 2023.
    "aws:s3/bucket:Bucket": {"serverSideEncryptionConfiguration": {"rule": {"applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "AES256"}, "bucketKeyEnabled": False}}},
    "aws:lambda/function:Function": {"architectures": ["x86_64"], "ephemeralStorage": {"size": 512},
                                     "tracingConfig": {"mode": "PassThrough"}},
}


def planned_state(type_: str, checked: dict[str, Any], region: str) -> dict[str, Any]:
    """`Create(preview=true)`: the checked inputs with every schema default, every computed property the program
    left unset unknown (`region` is planned from the provider's region, `tagsAll` from known tags)."""
    schema = schema_of(type_)
    state = copy.deepcopy(checked)  # the plan fills blocks in; the checked inputs stay as they are
    tf_defaults.apply_planned_defaults(type_, state)
    tf_defaults.fill_nested_computed(type_, state, planned=UNKNOWN)
    if state.get("tagsAll") == {}:
        del state["tagsAll"]  # without tags or default tags the provider's plan leaves tags_all to be computed
    for prop in sorted(schema.computed - state.keys() if schema else ()):
        state[prop] = region if prop == "region" else UNKNOWN
    if schema is None:
        state.update({"id": UNKNOWN, "arn": UNKNOWN})  # a type the SDK does not declare: at least its identity
    return state


def applied_state(type_: str, name: str, checked: dict[str, Any], acct: AwsAccount) -> tuple[str, dict[str, Any]]:
    """`Create`: the id and the state after a completed create, every computed property with a value."""
    resource_id, computed = computed_outputs(type_, name, checked, acct)
    state = {**computed, **copy.deepcopy(checked)}
    tf_defaults.apply_planned_defaults(type_, state)
    reported = _REPORTED_AFTER_CREATE.get(type_, {})
    schema = schema_of(type_)
    if schema is None:
        return resource_id, state
    physical = str(checked.get("name") or name)
    tf_defaults.fill_nested_computed(type_, state, name=physical)
    for prop in sorted(schema.computed - state.keys()):
        state[prop] = (acct.region if prop == "region" else reported[prop] if prop in reported
                       else realistic_value(type_, prop, schema.kind_of(prop), physical, state, acct))
    # Keep only what the resource has: the formats above may name an output a type does not declare.
    return resource_id, {k: v for k, v in state.items() if k in schema.outputs or k in checked or k == "id"}


class AwsProviderEmulator(Mocks):
    """The engine's provider for `aws` resources and invokes, in preview or update mode.

    `RecordingMonitor` calls `check`, `create`, `read` and `invoke` in the engine's order; the `Mocks` methods
    are not used (the monitor answers every call itself, without the SDK's mock path).
    """

    def __init__(self, account: AwsAccount, mode: Mode, invokes: InvokeAnswerer | None = None) -> None:
        self.account = account
        self.mode = mode
        self.invokes = invokes or InvokeAnswerer(account)

    def call(self, args: MockCallArgs) -> dict:  # type: ignore[override]  # the SDK accepts a bare dict
        raise NotImplementedError("invokes are answered through RecordingMonitor.Invoke")

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict]:
        raise NotImplementedError("resources are registered through RecordingMonitor.RegisterResource")

    @staticmethod
    def check(type_: str, name: str, urn: str, inputs: dict[str, Any], *, region: str | None = None,
              default_tags: dict[str, Any] | None = None) -> dict[str, Any]:
        if type_.startswith("pulumi:providers:"):
            return inputs
        return check(type_, name, urn, inputs, region=region, default_tags=default_tags)

    def create(self, type_: str, name: str, checked: dict[str, Any], region: str | None = None
               ) -> tuple[str, dict[str, Any]]:
        """The id and state of a custom resource created from `checked` inputs ("" for an id unknown at preview),
        in `region` (an explicit provider's) or the stack's."""
        if type_.startswith("pulumi:providers:"):
            return f"{name}-provider-id", checked
        account = replace(self.account, region=region) if region else self.account
        if self.mode == "preview":
            return "", planned_state(type_, checked, account.region)
        return applied_state(type_, name, checked, account)

    def read(self, type_: str, resource_id: str, given: dict[str, Any], region: str | None = None
             ) -> dict[str, Any]:
        """The state of an existing resource (`Resource.get`, a StackReference): read from the cloud, so known in a
        preview too."""
        if type_ == "pulumi:pulumi:StackReference":
            return {"name": resource_id, "outputs": self.invokes.stack_outputs(resource_id),
                    "secretOutputNames": []}
        account = replace(self.account, region=region) if region else self.account
        return applied_state(type_, resource_id, given, account)[1]

    def invoke(self, token: str, args: dict[str, Any], region: str | None = None) -> dict[str, Any]:
        """An invoke's answer in `region` (its provider's), or the region its own `region` argument names."""
        return self.invokes.invoke(token, args, region=args.get("region") or region)
