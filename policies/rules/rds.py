"""RDS and Aurora: storage encrypted, automated backups kept long enough, no instance reachable from the internet.

A resource rule: every setting is the resource's own input (a cluster's or instance's `storageEncrypted` and
`backupRetentionPeriod`, an instance's `publiclyAccessible`), absent when the program leaves it unset.
"""

from __future__ import annotations

from pulumi_policy import Severity

from .core import types
from .core.frameworks import cis, well_architected
from .core.rule import ResourceContext, Rule
from .core.values import fmt, number, truthy

# Provider schema default of aws:rds/cluster:Cluster backupRetentionPeriod, and RDS's for an instance (the API's).
_DEFAULT_BACKUP_RETENTION_DAYS = 1


def _database_guardrails(ctx: ResourceContext) -> None:
    kind = ctx.args.resource_type
    if kind in (types.RDS_CLUSTER, types.RDS_INSTANCE):
        # Aurora Serverless v1 clusters are always encrypted; every other engine mode needs storageEncrypted.
        if not truthy(ctx.props.get("storageEncrypted")) and ctx.props.get("engineMode") != "serverless":
            ctx.violation(f"{ctx.subject} does not set storageEncrypted, so its storage, backups and snapshots are "
                          f"not encrypted at rest (and cannot be encrypted later without a copy)")
        least = float(ctx.settings["minBackupRetentionDays"])
        retention = number(ctx.props.get("backupRetentionPeriod"), _DEFAULT_BACKUP_RETENTION_DAYS)
        if retention < least:
            ctx.violation(f"{ctx.subject} backupRetentionPeriod {fmt(retention)} is below {fmt(least)} days"
                          + (" (0 turns automated backups off)" if retention == 0 else ""))
    if kind in (types.RDS_INSTANCE, types.RDS_CLUSTER_INSTANCE) and truthy(ctx.props.get("publiclyAccessible")):
        ctx.violation(f"{ctx.subject} sets publiclyAccessible, so it gets a public address reachable from the "
                      f"internet wherever its security groups allow")


RULES = (
    Rule(
        name="rds-encrypted-backed-up-private",
        what="RDS and Aurora clusters and instances encrypt their storage and keep automated backups for at least "
             "the minimum days; no database instance is publicly accessible.",
        why="The file-ingestion pipeline can create an Aurora cluster for the records it loads; unencrypted storage "
            "cannot be encrypted in place, a one-day backup window loses a bad load noticed after the weekend, and "
            "a public endpoint exposes the database to the internet.",
        scope="resource",
        resource_types=(types.RDS_CLUSTER, types.RDS_CLUSTER_INSTANCE, types.RDS_INSTANCE),
        check=_database_guardrails,
        severity=Severity.HIGH,
        frameworks=(
            cis("2.3.1", "2.3.3", spec="Encryption at rest is enabled for RDS instances; RDS instances are not "
                                       "publicly accessible"),
            well_architected("SEC08-BP02", "REL09-BP03",
                             spec="Enforce encryption at rest; perform data backup automatically"),
        ),
        remediation="Set storageEncrypted true (a new cluster restored from an encrypted snapshot copy for an "
                    "existing one), backupRetentionPeriod within 7..35 days, and publiclyAccessible false.",
        url="https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Overview.Encryption.html",
        settings={"minBackupRetentionDays": {"type": "integer", "minimum": 1, "maximum": 35, "default": 7,
                                             "description": "Fewest days of automated backups accepted."}},
    ),
)
