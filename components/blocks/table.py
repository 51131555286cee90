"""DynamoDB tables whose protection follows from what they hold.

A table says its purpose in a `purpose` tag, and the purpose decides the protection: idempotency records expire
(TTL), results and ledgers can be restored (point-in-time recovery). Every table is on-demand, encrypted with
the stack's key when it has one (`key`), else with the AWS-managed `aws/dynamodb` key (named explicitly rather than
left to the account default) and, when the stack protects its data, guarded against deletion by both Pulumi and
DynamoDB.

>>> seen = DataTable(naming, env, "idempotency", purpose="idempotency", hash_key="id",
...                  ttl_attribute="expiration", protect=False)  # doctest: +SKIP
>>> results = DataTable(naming, env, "results", purpose="results", hash_key="resultId",
...                     protect=True)  # doctest: +SKIP
>>> results.statement_to_write("WriteResults", ["dynamodb:PutItem"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import pulumi
import pulumi_aws as aws

from components.blocks.iam import AwsEnv, Statement
from components.blocks.key import StackKey, key_use
from components.blocks.naming import Naming

TablePurpose = Literal["idempotency", "results", "ledger"]

PURPOSE_TAG: Final = "purpose"
# On-demand capacity: a bursty pipeline never throttles on provisioned capacity it guessed wrong.
BILLING_MODE: Final = "PAY_PER_REQUEST"
# Purposes whose records only need to outlive redelivery; the rest are the pipeline's record.
EXPIRING_PURPOSES: Final = frozenset({"idempotency"})
# Kept, restorable purposes that may still drop records past a retention horizon (TTL alongside PITR).
RETENTION_PURPOSES: Final = frozenset({"ledger", "results"})
# DynamoDB encrypts a table's items under a table key it keeps encrypted with the KMS key; reading or writing items
# has it decrypt the table key (kms:Decrypt through DynamoDB, encryption context aws:dynamodb:tableName).
KEY_ACTIONS: Final = ("kms:Decrypt",)
TABLE_CONTEXT: Final = "aws:dynamodb:tableName"


class DataTable(pulumi.ComponentResource):
    """A table with a string hash key, protected according to its purpose.

    `ttl_attribute` is required for an expiring purpose (idempotency) and refused for the others: results and
    ledgers are kept and restorable, never silently expired. A ledger or results table may instead name a
    `retention_attribute`: TTL on an expiry time its writer sets far past any replay (records then go by retention,
    not by accident), with point-in-time recovery still on.
    """

    def __init__(self, naming: Naming, env: AwsEnv, name_purpose: str, *, purpose: TablePurpose, hash_key: str,
                 ttl_attribute: str | None = None, retention_attribute: str | None = None, protect: bool = False,
                 key: StackKey | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:DataTable", naming.logical(f"{name_purpose}-table"), None, opts)
        expiring = purpose in EXPIRING_PURPOSES
        if expiring and not ttl_attribute:
            raise ValueError(f"table {name_purpose}: purpose {purpose} needs a ttl_attribute, or records pile up")
        if not expiring and ttl_attribute:
            raise ValueError(f"table {name_purpose}: purpose {purpose} keeps its records; it takes no ttl_attribute")
        if retention_attribute and purpose not in RETENTION_PURPOSES:
            raise ValueError(f"table {name_purpose}: only a ledger or results take a retention_attribute (purpose "
                             f"{purpose})")
        expires = ttl_attribute or retention_attribute
        self.name = naming.name(name_purpose, max_length=255)
        self.table = aws.dynamodb.Table(
            naming.logical(f"{name_purpose}-table"),
            name=self.name,
            billing_mode=BILLING_MODE,
            hash_key=hash_key,
            attributes=[aws.dynamodb.TableAttributeArgs(name=hash_key, type="S")],
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=expires, enabled=True) if expires else None,
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=not expiring),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=key.arn if key is not None else None),
            deletion_protection_enabled=protect,
            tags={**naming.tags, PURPOSE_TAG: purpose},
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        self.arn: pulumi.Output[str] = env.dynamodb_table(self.table.name)
        self.table_name: pulumi.Output[str] = self.table.name
        self.key = key
        self.register_outputs({"name": self.table.name, "arn": self.arn})

    def statement_to_write(self, sid: str, actions: Sequence[str]) -> Statement:
        """A statement allowing `actions` on this table only (no indexes, no other table)."""
        return Statement(sid, actions, [self.arn])

    def statements_to_write(self, sid: str, actions: Sequence[str]) -> list[Statement]:
        """`statement_to_write` and, with a key, the key statement DynamoDB needs for it (``<sid>Encrypted``)."""
        return [self.statement_to_write(sid, actions),
                *key_use(self.key, f"{sid}Encrypted", KEY_ACTIONS, via="dynamodb",
                         context={TABLE_CONTEXT: [self.name]})]
