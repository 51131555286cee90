"""A rule as the pack declares it, and the wrapper that turns it into a Pulumi policy.

Every rule gets the same three behaviours from here instead of implementing them itself:

* settings: its config merged over the defaults of its schema (rules work with no config at all);
* exemptions: a violation for an exempted resource is suppressed and recorded, one for a lapsed exemption says so;
* strict unknowns: `UnknownValueError` (raised by the SDK's property proxy when a rule reads a value unknown at
  preview) is caught here, per resource, and either becomes a violation naming the property
  (`unknownValues: violation`) or is re-raised once the rule has judged every other resource, so the SDK still
  records its "can't run policy ... during preview" note.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from . import exemptions, settings
from .frameworks import Framework
from .index import StackIndex
from .types import label
from .values import name_of

Scope = Literal["resource", "stack"]


@dataclass(frozen=True)
class Rule:
    """One rule of the pack: what it checks, why, and how (`check` receives a ResourceContext or StackContext)."""

    name: str
    what: str
    why: str
    scope: Scope
    check: Callable[[Any], None]
    resource_types: tuple[str, ...] = ()  # resource rules run only for these types
    settings: settings.Schema = field(default_factory=dict)
    relations: tuple[str, ...] = ()  # the property dependencies a stack rule follows, for the catalogue
    notes: str = ""  # Markdown the catalogue prints in the rule's section (decisions and their sources)
    level: EnforcementLevel = EnforcementLevel.MANDATORY
    # Reporting metadata, sent with the policy (GetAnalyzerInfo) and printed in the catalogue.
    severity: Severity | None = None
    frameworks: tuple[Framework, ...] = ()  # the first is the policy's framework; all become tags
    remediation: str = ""  # the steps that fix a violation
    url: str = ""  # documentation of the practice the rule enforces
    tags: tuple[str, ...] = ()

    @property
    def schema(self) -> dict[str, dict[str, Any]]:
        return settings.schema_for(self.settings)

    def metadata(self) -> dict[str, Any]:
        """The SDK's reporting arguments of a Policy: severity, framework, tags, remediation_steps, url."""
        primary = self.frameworks[0] if self.frameworks else None
        framework = None if primary is None else PolicyComplianceFramework(
            name=primary.name, version=primary.version or None, reference=primary.reference,
            specification=primary.specification)
        tags = [*self.tags, *(tag for f in self.frameworks for tag in f.tags())]
        return {"severity": self.severity, "framework": framework, "tags": tags or None,
                "remediation_steps": self.remediation or None, "url": self.url or None}


class Reporter:
    """Reports a rule's violations through the SDK callback, applying exemptions and strict unknowns."""

    def __init__(self, rule: Rule, config: Mapping[str, Any], report: ReportViolation, stack: bool) -> None:
        self.rule = rule
        self.config = config
        self._report = report
        self._stack = stack
        self._exemptions = exemptions.parse(config.get(settings.EXEMPTIONS))
        self._strict = config.get(settings.UNKNOWN_VALUES) == "violation"
        self._skipped: UnknownValueError | None = None

    def violation(self, message: str, urn: str) -> None:
        exemption = exemptions.find(self._exemptions, name_of(urn), urn)
        if exemption is not None and exemption.active(exemptions.today()):
            exemptions.LEDGER.record(exemptions.Applied(self.rule.name, urn, exemption, message))
            return
        if exemption is not None:
            message += exemptions.lapse_note(exemption)
        # A resource policy's diagnostic always belongs to the resource under analysis; only a stack policy
        # passes the URN it is talking about.
        self._report(message, urn if self._stack else None)

    @contextmanager
    def about(self, resource_type: str, urn: str) -> Iterator[None]:
        """Judge one resource; a value unknown at preview ends only this resource's judgement."""
        try:
            yield
        except UnknownValueError as unknown:
            subject = label(resource_type, name_of(urn)) if urn else "the stack"
            if self._strict:
                self.violation(f"{subject}: {unknown.message}, so this rule cannot give a verdict "
                               f"(unknownValues is 'violation')", urn)
            elif self._skipped is None:
                # Keep the SDK's wording. A stack policy's note carries no URN, so the resource's name goes first
                # in the property path to say whose value it was.
                path = [name_of(urn), *unknown.props] if self._stack and urn else list(unknown.props)
                self._skipped = UnknownValueError(unknown.unknown_type_sentinel, path)

    def finish(self) -> None:
        if self._skipped is not None:
            raise self._skipped


class ResourceContext:
    """What a resource rule sees: the resource's inputs, its settings, and `violation`."""

    def __init__(self, args: ResourceValidationArgs, reporter: Reporter) -> None:
        self.args = args
        self.props: Mapping[str, Any] = args.props
        self.settings = reporter.config
        self.subject = label(args.resource_type, args.name)
        self._reporter = reporter

    def violation(self, message: str) -> None:
        self._reporter.violation(message, self.args.urn)


class StackContext:
    """What a stack rule sees: the indexed stack, its settings, `about` (one resource at a time), `violation`."""

    def __init__(self, resources: Sequence[PolicyResource], reporter: Reporter) -> None:
        self.index = StackIndex(resources)
        self.settings = reporter.config
        self._reporter = reporter

    def about(self, resource: PolicyResource) -> AbstractContextManager[None]:
        """`with ctx.about(resource):` judges one resource; an unknown value ends only that judgement."""
        return self._reporter.about(resource.resource_type, resource.urn)

    def violation(self, resource: PolicyResource | str, message: str) -> None:
        """Report against a resource (or a URN; "" is the stack itself)."""
        self._reporter.violation(message, resource if isinstance(resource, str) else resource.urn)


def describe(resource: PolicyResource) -> str:
    return label(resource.resource_type, resource.name)


def to_policy(rule: Rule) -> Policy:
    schema = PolicyConfigSchema(properties=rule.schema)
    if rule.scope == "resource":
        types = frozenset(rule.resource_types)

        def validate_resource(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if args.resource_type not in types:
                return
            reporter = Reporter(rule, settings.resolve(rule.schema, args.get_config()), report, stack=False)
            with reporter.about(args.resource_type, args.urn):
                rule.check(ResourceContext(args, reporter))
            reporter.finish()

        return ResourceValidationPolicy(name=rule.name, description=rule.what, validate=validate_resource,
                                        enforcement_level=rule.level, config_schema=schema, **rule.metadata())

    def validate_stack(args: StackValidationArgs, report: ReportViolation) -> None:
        reporter = Reporter(rule, settings.resolve(rule.schema, args.get_config()), report, stack=True)
        with reporter.about("", ""):
            rule.check(StackContext(args.resources, reporter))
        reporter.finish()

    return StackValidationPolicy(name=rule.name, description=rule.what, validate=validate_stack,
                                 enforcement_level=rule.level, config_schema=schema, **rule.metadata())

