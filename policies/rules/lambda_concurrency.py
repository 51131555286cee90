"""Every function reserves concurrency, or says in a tag why it must not.

An unreserved function draws on the account's shared pool: a burst of one workload starves every other function in
the account, and one whose callers retry into a throttle turns that into an outage. Reserving concurrency both caps a
function and guarantees it. A function that must scale with the account (an interactive API sized by its callers,
say) carries a written exemption instead: a tag, by default `ai-pipelines:concurrency-exemption`, whose value is the
reason. A tag rather than an entry in the pack's config, because the decision belongs to the function's design, not
to one stack: it is written where the function is built, reviewed in the same change, deployed with it and visible
on the function itself in AWS (console, Resource Groups tag queries, AWS Config), and it holds in every stack the
program deploys. A temporary waiver for one stack is what the config's dated `exemptions` are for.
"""

from __future__ import annotations

from pulumi_policy import Severity

from .core import aws_defaults, types
from .core.frameworks import serverless_lens, well_architected
from .core.rule import ResourceContext, Rule
from .core.values import fmt, number

DEFAULT_EXEMPTION_TAG = "ai-pipelines:concurrency-exemption"


def _reserved(ctx: ResourceContext) -> None:
    minimum = float(ctx.settings["minimumReservedConcurrency"])
    tag = str(ctx.settings["exemptionTag"])
    tags = ctx.props.get("tags") or {}
    if tag in tags:
        if not str(tags[tag] or "").strip():
            ctx.violation(f"{ctx.subject} carries the exemption tag {tag} with no reason: its value must say why "
                          f"the function may not reserve concurrency")
        return
    reserved = number(ctx.props.get("reservedConcurrentExecutions"), aws_defaults.UNRESERVED_CONCURRENCY)
    if reserved < 0:
        ctx.violation(f"{ctx.subject} reserves no concurrency (reservedConcurrentExecutions unset or -1), so it "
                      f"shares the account's pool: another workload's burst can throttle it, and its own can "
                      f"throttle everything else; reserve concurrency or tag it {tag} with the reason")
    elif reserved < minimum:
        ctx.violation(f"{ctx.subject} reservedConcurrentExecutions {fmt(reserved)} is below the minimum "
                      f"{fmt(minimum)}" + (" (0 throttles every invocation)" if reserved == 0 else ""))


RULES = (
    Rule(
        name="lambda-concurrency-reserved",
        what="Every function reserves concurrency (reservedConcurrentExecutions >= the minimum), or carries the "
             "exemption tag whose value is the reason it does not.",
        why="An unreserved function shares the account's concurrency: another workload's burst fails it, and its "
            "own burst fails everything else. A reservation is both its ceiling and its guarantee.",
        scope="resource",
        resource_types=(types.FUNCTION,),
        check=_reserved,
        notes="The exemption is a tag on the function rather than pack config: it is part of the function's "
              "design, written and reviewed where the function is built, visible on the deployed function, and "
              "the same in every stack. Use the config's dated `exemptions` for a temporary waiver in one stack. A "
              "function inside a nested CloudFormation stack (the Secrets Manager rotation functions the file-"
              "ingestion pipeline deploys from AWS's Serverless Application Repository) is not a resource of the "
              "Pulumi stack and is not judged; Secrets Manager invokes it only to rotate, a few calls per scheduled "
              "rotation.",
        severity=Severity.MEDIUM,
        frameworks=(
            well_architected("REL05-BP02", spec="Throttle requests"),
            serverless_lens("REL 1", spec="Regulating inbound request rates"),
        ),
        remediation="Set reservedConcurrentExecutions on the function to what it can need (its callers' "
                     "concurrency, a downstream quota), or tag it with the exemption tag and the reason as value.",
        url="https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html",
        settings={
            "minimumReservedConcurrency": {"type": "integer", "minimum": 1, "default": 1,
                                           "description": "Smallest reserved concurrency accepted."},
            "exemptionTag": {"type": "string", "minLength": 1, "default": DEFAULT_EXEMPTION_TAG,
                             "description": "Tag key whose presence, with the reason as its value, exempts a "
                                            "function."},
        },
    ),
)
