"""Per service: does AWS's guidance put aws:SourceAccount or aws:SourceArn in the trust policy of a role the service
assumes? Each decision names the AWS documentation it follows, and the catalogue prints them as a table.

A condition the service does not satisfy when it assumes the role breaks the role, so the rule demands the keys only
where the service's own confused-deputy guidance puts them in the role's trust policy. A service missing from this
table falls under IAM's general guidance (GENERAL), which recommends the keys for every service principal; a stack
whose service does not send them lists it in `servicesWithoutSourceConditions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

GENERAL: Final = "https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html"


@dataclass(frozen=True)
class Decision:
    service: str
    source_condition: bool  # True: AWS's guidance for this service puts the keys in the role's trust policy
    source: str  # the AWS documentation the decision follows
    basis: str  # what that documentation says, in one sentence


DECISIONS: Final = (
    Decision("states.amazonaws.com", True,
             "https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html",
             "Step Functions' 'Prevent cross-service confused deputy issue' puts aws:SourceArn (the state machine) "
             "and aws:SourceAccount in the state machine role's trust policy."),
    Decision("lambda.amazonaws.com", False,
             "https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html",
             "Lambda's execution-role trust policy carries no condition; Lambda ties the role's credentials to a "
             "function through lambda:SourceFunctionArn in identity policies "
             "(https://docs.aws.amazon.com/lambda/latest/dg/permissions-source-function-arn.html), and an "
             "aws:SourceArn condition in the trust policy has made function creation fail "
             "(aws/aws-parallelcluster#6926)."),
    Decision("appsync.amazonaws.com", False,
             "https://docs.aws.amazon.com/appsync/latest/devguide/security_iam_service-with-iam.html",
             "AppSync's IAM documentation gives no confused-deputy guidance for a data source role's trust policy, "
             "and its data source role trusts appsync.amazonaws.com without a condition; iam:PassRole is what "
             "limits which API gets the role."),
    Decision("apigateway.amazonaws.com", False,
             "https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html",
             "API Gateway's CloudWatch Logs role (one per account and Region) trusts apigateway.amazonaws.com "
             "without a condition, and its documentation gives no confused-deputy guidance for that trust policy."),
    Decision("glue.amazonaws.com", False,
             "https://docs.aws.amazon.com/glue/latest/dg/create-an-iam-role.html",
             "Glue's service role trusts glue.amazonaws.com without a condition, and Glue's documentation gives no "
             "confused-deputy guidance for that trust policy."),
    Decision("redshift.amazonaws.com", False,
             "https://docs.aws.amazon.com/redshift/latest/mgmt/authorizing-redshift-service-database-users.html",
             "Redshift's guidance for restricting a cluster role is an sts:ExternalId condition naming database "
             "users, not aws:SourceAccount or aws:SourceArn."),
)

_BY_SERVICE: Final = {d.service: d for d in DECISIONS}

# Services that assume roles without source context, accepted by default (besides the table's):
# EC2 assumes an instance profile's role for the instance, and Lambda@Edge replicas run in other Regions.
_ALSO_WITHOUT_SOURCE_CONTEXT: Final = ("ec2.amazonaws.com", "edgelambda.amazonaws.com")


def without_source_conditions() -> list[str]:
    """The default of `servicesWithoutSourceConditions`."""
    return [*_ALSO_WITHOUT_SOURCE_CONTEXT, *(d.service for d in DECISIONS if not d.source_condition)]


def guidance_for(service: str) -> str:
    """The AWS guidance a finding about `service`'s trust policy names."""
    decision = _BY_SERVICE.get(service)
    return decision.source if decision is not None and decision.source_condition else GENERAL


def catalogue_table() -> str:
    rows = [f"| `{d.service}` | {'demanded' if d.source_condition else 'not demanded'} | {d.basis} "
            f"[source]({d.source}) |" for d in DECISIONS]
    return "\n".join([
        "Source conditions per service (a service not listed follows IAM's general confused-deputy guidance, "
        f"{GENERAL}, and is demanded unless `servicesWithoutSourceConditions` lists it):", "",
        "| Service | aws:SourceAccount / aws:SourceArn | Why |", "|---|---|---|", *rows])
