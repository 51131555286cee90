"""DynamoDB tables: restorable unless they say their records are disposable (with TTL)."""

from __future__ import annotations

from pulumi_policy import Severity

from .core import types
from .core.frameworks import well_architected
from .core.rule import ResourceContext, Rule
from .core.values import get_path, truthy


def _has_ttl(ctx: ResourceContext) -> bool:
    return truthy(get_path(ctx.props, "ttl", "enabled")) and bool(get_path(ctx.props, "ttl", "attributeName"))


def _has_pitr(ctx: ResourceContext) -> bool:
    return truthy(get_path(ctx.props, "pointInTimeRecovery", "enabled"))


def _table_protection(ctx: ResourceContext) -> None:
    tag = str(ctx.settings["purposeTag"])
    purpose = str(get_path(ctx.props, "tags", tag, default="")) if tag else ""
    ttl_purposes = {str(p) for p in ctx.settings["ttlPurposes"]}
    pitr_purposes = {str(p) for p in ctx.settings["pitrPurposes"]}
    if purpose in ttl_purposes:
        if not _has_ttl(ctx):
            ctx.violation(f"{ctx.subject} ({tag}={purpose}) has no ttl with enabled true and an attributeName, "
                          f"so its records accumulate forever")
        return
    if ctx.settings["requirePurpose"] and purpose not in pitr_purposes:
        known = ", ".join(sorted(ttl_purposes | pitr_purposes))
        ctx.violation(f"{ctx.subject} has tag {tag}={purpose or '(missing)'}; expected one of {known} "
                      f"(requirePurpose is true)")
    # A table with a restorable purpose, or with none the rule knows, is judged by itself: its data is restorable
    # only with point-in-time recovery.
    if not _has_pitr(ctx):
        said = f" ({tag}={purpose})" if purpose in pitr_purposes else ""
        hint = "" if said else (f"; a table of disposable records says so with the tag {tag}=<one of "
                                f"{', '.join(sorted(ttl_purposes))}> and a ttl")
        ctx.violation(f"{ctx.subject}{said} has no pointInTimeRecovery enabled, so a bad write or deletion cannot be "
                      f"undone{hint}")


_STRINGS = {"type": "array", "items": {"type": "string"}}

RULES = (
    Rule(
        name="dynamodb-table-protection",
        what="Every table has point-in-time recovery, except one whose purpose tag says its records are disposable "
             "(purpose=idempotency), which has TTL instead; the purpose tag itself is optional.",
        why="A table's data can be restored after a bad deploy or a mistaken delete only with point-in-time "
            "recovery; idempotency keys only need to outlive redelivery, and TTL keeps them from piling up.",
        scope="resource",
        resource_types=(types.TABLE,),
        check=_table_protection,
        severity=Severity.MEDIUM,
        frameworks=(
            well_architected("REL09-BP01", "REL09-BP03",
                spec="Identify and back up all data; perform data backup automatically"),
        ),
        remediation=(
            "Turn on pointInTimeRecovery; for a table of disposable records tag it purpose=idempotency "
            "and give it a ttl attribute instead."
        ),
        url="https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/PointInTimeRecovery.html",
        settings={
            "purposeTag": {"type": "string", "default": "purpose",
                           "description": "Tag naming a table's purpose ('' to read no tag)."},
            "ttlPurposes": {**_STRINGS, "default": ["idempotency"],
                            "description": "Purposes of disposable records: TTL instead of point-in-time recovery."},
            "pitrPurposes": {**_STRINGS, "default": ["results", "ledger"],
                             "description": "Purposes that need point-in-time recovery (as does a table without a "
                                            "known purpose)."},
            "requirePurpose": {"type": "boolean", "default": False,
                               "description": "Also report a table whose purpose tag is missing or unknown."},
        },
    ),
)
