"""DynamoDB tables by purpose: idempotency records expire, results and ledgers can be restored."""

from __future__ import annotations

from .core import types
from .core.rule import ResourceContext, Rule
from .core.values import get_path, truthy


def _table_protection(ctx: ResourceContext) -> None:
    tag = str(ctx.settings["purposeTag"])
    purpose = str(get_path(ctx.props, "tags", tag, default=""))
    ttl_purposes = {str(p) for p in ctx.settings["ttlPurposes"]}
    pitr_purposes = {str(p) for p in ctx.settings["pitrPurposes"]}
    if purpose in ttl_purposes:
        if not truthy(get_path(ctx.props, "ttl", "enabled")) or not get_path(ctx.props, "ttl", "attributeName"):
            ctx.violation(f"{ctx.subject} ({tag}={purpose}) has no ttl with enabled true and an attributeName, "
                          f"so idempotency records accumulate forever")
    elif purpose in pitr_purposes:
        if not truthy(get_path(ctx.props, "pointInTimeRecovery", "enabled")):
            ctx.violation(f"{ctx.subject} ({tag}={purpose}) has no pointInTimeRecovery enabled, so a bad write "
                          f"or deletion cannot be undone")
    elif ctx.settings["requirePurpose"]:
        known = ", ".join(sorted(ttl_purposes | pitr_purposes))
        ctx.violation(f"{ctx.subject} has tag {tag}={purpose or '(missing)'}; expected one of {known} so its "
                      f"protection can be judged")


_STRINGS = {"type": "array", "items": {"type": "string"}}

RULES = (
    Rule(
        name="dynamodb-table-protection",
        what="Tables tagged purpose=idempotency have TTL; purpose=results and purpose=ledger have point-in-time "
             "recovery; every table says its purpose.",
        why="Idempotency keys only need to outlive redelivery; results and the exactly-once ledger are the "
            "pipeline's record and must survive a bad deploy.",
        scope="resource",
        resource_types=(types.TABLE,),
        check=_table_protection,
        settings={
            "purposeTag": {"type": "string", "default": "purpose", "description": "Tag naming a table's purpose."},
            "ttlPurposes": {**_STRINGS, "default": ["idempotency"], "description": "Purposes that need TTL."},
            "pitrPurposes": {**_STRINGS, "default": ["results", "ledger"],
                             "description": "Purposes that need point-in-time recovery."},
            "requirePurpose": {"type": "boolean", "default": True,
                               "description": "Treat a table without a known purpose tag as a violation."},
        },
    ),
)
