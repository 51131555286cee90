"""The offline answer to `aws:iam/getPolicyDocument`: the provider's rendering, ordering, merging and errors.

Expected documents marked "provider acceptance test" are those of terraform-provider-aws
`internal/service/iam/policy_document_data_source_test.go` (partition `aws`), less the `"Sid": ""` entries that the
provider's current model leaves out (`Sid string json:",omitempty"`).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest

from offline.policy_document import policy_document


def rendered(**args: Any) -> dict[str, Any]:
    return json.loads(policy_document(args)["minifiedJson"])


def statement(**args: Any) -> dict[str, Any]:
    [only] = rendered(statements=[args])["Statement"]
    return only


def aws(*identifiers: str) -> dict[str, Any]:
    return {"type": "AWS", "identifiers": list(identifiers)}


# --- the whole text ------------------------------------------------------------------------------------------

BASIC_STATEMENTS: list[dict[str, Any]] = [
    {"sid": "1", "actions": ["s3:ListAllMyBuckets", "s3:GetBucketLocation"], "resources": ["arn:aws:s3:::*"]},
    {"actions": ["s3:ListBucket"], "resources": ["arn:aws:s3:::foo"],
     "conditions": [{"test": "StringLike", "variable": "s3:prefix", "values": ["home/", "", "home/&{aws:username}/"]}],
     "notPrincipals": [aws("arn:blahblah:example")]},
    {"actions": ["s3:*"],
     "resources": ["arn:aws:s3:::foo/home/&{aws:username}", "arn:aws:s3:::foo/home/&{aws:username}/*"],
     "principals": [aws("arn:blahblah:example")]},
    {"effect": "Deny", "notActions": ["s3:*"], "notResources": ["arn:aws:s3:::*"]},
    {"effect": "Allow", "actions": ["kinesis:*"], "principals": [aws("*")]},
    {"effect": "Allow", "actions": ["firehose:*"], "principals": [{"type": "*", "identifiers": ["*"]}]},
]

# provider acceptance test: testAccPolicyDocumentConfig / testAccPolicyDocumentExpectedJSON
BASIC_JSON = """{
  "Version": "2012-10-17",
  "Id": "policy_id",
  "Statement": [
    {
      "Sid": "1",
      "Effect": "Allow",
      "Action": [
        "s3:ListAllMyBuckets",
        "s3:GetBucketLocation"
      ],
      "Resource": "arn:aws:s3:::*"
    },
    {
      "Effect": "Allow",
      "Action": "s3:ListBucket",
      "Resource": "arn:aws:s3:::foo",
      "NotPrincipal": {
        "AWS": "arn:blahblah:example"
      },
      "Condition": {
        "StringLike": {
          "s3:prefix": [
            "home/",
            "",
            "home/${aws:username}/"
          ]
        }
      }
    },
    {
      "Effect": "Allow",
      "Action": "s3:*",
      "Resource": [
        "arn:aws:s3:::foo/home/${aws:username}/*",
        "arn:aws:s3:::foo/home/${aws:username}"
      ],
      "Principal": {
        "AWS": "arn:blahblah:example"
      }
    },
    {
      "Effect": "Deny",
      "NotAction": "s3:*",
      "NotResource": "arn:aws:s3:::*"
    },
    {
      "Effect": "Allow",
      "Action": "kinesis:*",
      "Principal": {
        "AWS": "*"
      }
    },
    {
      "Effect": "Allow",
      "Action": "firehose:*",
      "Principal": "*"
    }
  ]
}"""


def test_json_is_indented_with_two_spaces_as_the_provider_writes_it() -> None:
    assert policy_document({"policyId": "policy_id", "statements": BASIC_STATEMENTS})["json"] == BASIC_JSON


def test_minified_json_is_the_same_document_without_whitespace() -> None:
    result = policy_document({"policyId": "policy_id", "statements": BASIC_STATEMENTS})
    assert result["minifiedJson"] == json.dumps(json.loads(BASIC_JSON), separators=(",", ":"))
    assert result["minifiedJson"].startswith('{"Version":"2012-10-17","Id":"policy_id","Statement":[{"Sid":"1",')


def test_id_is_the_crc32_of_the_indented_json() -> None:
    result = policy_document({"statements": [{"actions": ["s3:GetObject"], "resources": ["*"]}]})
    assert result["id"] == str(zlib.crc32(result["json"].encode()))
    assert result["id"] == "2090251874"


def test_go_escapes_html_characters_in_strings() -> None:
    result = policy_document({"statements": [{"actions": ["a"], "conditions": [
        {"test": "StringLike", "variable": "aws:Referer", "values": ["<a&b>"]}]}]})
    assert '"aws:Referer":"\\u003ca\\u0026b\\u003e"' in result["minifiedJson"]
    assert json.loads(result["json"])["Statement"][0]["Condition"]["StringLike"]["aws:Referer"] == "<a&b>"


def test_a_document_without_statements_is_only_its_version() -> None:
    result = policy_document({})
    assert (result["json"], result["minifiedJson"]) == ('{\n  "Version": "2012-10-17"\n}', '{"Version":"2012-10-17"}')


# --- single and multiple values ---------------------------------------------------------------------------------

def test_one_value_is_written_bare_several_as_a_descending_list() -> None:
    one = statement(actions=["s3:GetObject"], resources=["arn:aws:s3:::b/*"], principals=[aws("arn:aws:iam::1:root")])
    assert (one["Action"], one["Resource"], one["Principal"]) == (
        "s3:GetObject", "arn:aws:s3:::b/*", {"AWS": "arn:aws:iam::1:root"})
    several = statement(actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], resources=["b", "c", "a"],
                        principals=[aws("arn:aws:iam::1:root", "arn:aws:iam::3:root", "arn:aws:iam::2:root")])
    assert several["Action"] == ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
    assert several["Resource"] == ["c", "b", "a"]
    assert several["Principal"] == {"AWS": ["arn:aws:iam::3:root", "arn:aws:iam::2:root", "arn:aws:iam::1:root"]}


def test_actions_are_a_set_so_duplicates_collapse() -> None:
    assert statement(actions=["s3:GetObject", "s3:GetObject"])["Action"] == "s3:GetObject"
    assert statement(notActions=["b", "a", "b"])["NotAction"] == ["b", "a"]


def test_resources_are_ordered_before_policy_variables_are_rewritten() -> None:
    # "&" sorts after "%", "$" before it: the order is the `&{` text's, not the written `${` text's.
    assert statement(resources=["r/%", "r/&{aws:username}"])["Resource"] == ["r/${aws:username}", "r/%"]
    # Principals are sorted once more when written, so there the rewritten text decides.
    assert statement(principals=[aws("r/%", "r/&{aws:username}")])["Principal"] == {"AWS": ["r/%", "r/${aws:username}"]}


def test_actions_keep_the_ampersand_escape() -> None:
    assert statement(actions=["s3:&{x}"])["Action"] == "s3:&{x}"


# --- principals ----------------------------------------------------------------------------------------------------

def test_only_a_lone_wildcard_type_and_identifier_becomes_a_bare_star() -> None:
    assert statement(principals=[{"type": "*", "identifiers": ["*"]}])["Principal"] == "*"
    assert statement(principals=[aws("*")])["Principal"] == {"AWS": "*"}
    assert statement(principals=[{"type": "*", "identifiers": ["*"]}, aws("*")])["Principal"] == {"*": "*", "AWS": "*"}
    assert statement(notPrincipals=[{"type": "*", "identifiers": ["*"]}])["NotPrincipal"] == "*"


def test_principal_types_are_written_in_key_order() -> None:
    principal = statement(principals=[{"type": "Service", "identifiers": ["lambda.amazonaws.com"]}, aws("a"),
                                      {"type": "Federated", "identifiers": ["cognito-identity.amazonaws.com"]}])
    assert list(principal["Principal"]) == ["AWS", "Federated", "Service"]


@pytest.mark.parametrize(("partition", "expected"), [
    # provider acceptance tests: ...StatementPrincipalIdentifiersMultiplePrincipals (aws) and ...Gov (aws-us-gov).
    # Blocks of one type are concatenated in the order of the SDK's set, which hashes the block's text.
    ("aws", ["333333333333", "444444444444", "222222222222", "111111111111"]),
    ("aws-us-gov", ["333333333333", "222222222222", "111111111111", "444444444444"]),
])
def test_blocks_of_one_principal_type_concatenate_in_set_hash_order(partition: str, expected: list[str]) -> None:
    root = f"arn:{partition}:iam::{{}}:root".format
    principal = statement(actions=["*"], principals=[aws(root("111111111111"), root("222222222222")),
                                                     aws(root("333333333333")), aws(root("444444444444"))])
    assert principal["Principal"] == {"AWS": [root(account) for account in expected]}


def test_a_single_identifier_block_and_a_list_block_of_one_type_are_joined() -> None:
    # provider acceptance test: ...StatementPrincipalIdentifiersStringAndSlice
    principal = statement(principals=[aws("arn:aws:iam::111111111111:root"),
                                      aws("arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root")])
    assert principal["Principal"] == {"AWS": ["arn:aws:iam::111111111111:root", "arn:aws:iam::333333333333:root",
                                              "arn:aws:iam::222222222222:root"]}


def test_identical_principal_blocks_collapse() -> None:
    assert statement(principals=[aws("b", "a"), aws("a", "b")])["Principal"] == {"AWS": ["b", "a"]}


# --- conditions ----------------------------------------------------------------------------------------------------

def test_conditions_group_by_test_then_variable_in_key_order() -> None:
    conditions = statement(conditions=[
        {"test": "StringLike", "variable": "s3:prefix", "values": ["home/"]},
        {"test": "StringEquals", "variable": "aws:SourceAccount", "values": ["1"]},
        {"test": "StringEquals", "variable": "aws:PrincipalOrgID", "values": ["o-1", "o-2"]},
    ])["Condition"]
    assert conditions == {"StringEquals": {"aws:PrincipalOrgID": ["o-1", "o-2"], "aws:SourceAccount": "1"},
                          "StringLike": {"s3:prefix": "home/"}}
    assert list(conditions) == ["StringEquals", "StringLike"]
    assert list(conditions["StringEquals"]) == ["aws:PrincipalOrgID", "aws:SourceAccount"]


def test_condition_values_keep_their_order_and_duplicates() -> None:
    condition = statement(conditions=[{"test": "StringLike", "variable": "v", "values": ["b", "a", "b"]}])["Condition"]
    assert condition == {"StringLike": {"v": ["b", "a", "b"]}}


def test_same_test_and_variable_pool_their_values_in_set_hash_order() -> None:
    conditions = [{"test": "StringEquals", "variable": "aws:x", "values": [value]} for value in ("a", "b", "c", "d")]
    # The SDK's set lists the blocks by the decimal text of each block's CRC-32 (as text: "321120360" for "c" comes
    # after "1738010265" for "a"), not as written.
    assert statement(conditions=conditions)["Condition"] == {"StringEquals": {"aws:x": ["d", "a", "c", "b"]}}
    assert statement(conditions=conditions[::-1])["Condition"] == {"StringEquals": {"aws:x": ["d", "a", "c", "b"]}}


def test_identical_condition_blocks_collapse() -> None:
    block = {"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}
    assert statement(conditions=[block, dict(block)])["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- version, Id, Sid and merging ------------------------------------------------------------------------------------

def test_version_defaults_to_2012_10_17_and_is_echoed() -> None:
    result = policy_document({"statements": [{"actions": ["ec2:*"]}]})
    assert (json.loads(result["json"])["Version"], result["version"]) == ("2012-10-17", "2012-10-17")
    assert rendered(version="2008-10-17", statements=[{"actions": ["ec2:*"]}])["Version"] == "2008-10-17"


def test_version_2008_refuses_policy_variables() -> None:
    for block in ({"resources": ["&{aws:username}"]}, {"principals": [aws("&{aws:username}")]},
                  {"conditions": [{"test": "StringLike", "variable": "v", "values": ["&{aws:username}"]}]}):
        with pytest.raises(ValueError, match="not supported in document version 2008-10-17"):
            policy_document({"version": "2008-10-17", "statements": [block]})


def test_a_later_document_can_raise_the_version_never_lower_it() -> None:
    source = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "a"}]})
    assert rendered(version="2008-10-17", sourcePolicyDocuments=[source])["Version"] == "2012-10-17"


def test_policy_id_becomes_id_and_an_override_document_id_wins() -> None:
    assert rendered(policyId="mine")["Id"] == "mine"
    assert rendered(policyId="mine", overridePolicyDocuments=['{"Id": "theirs"}'])["Id"] == "theirs"
    assert "Id" not in rendered(policyId="")


def test_override_replaces_a_statement_with_the_same_sid_in_place() -> None:
    # provider acceptance test: testAccPolicyDocumentOverrideConfig
    override = json.dumps({"Version": "2012-10-17",
                           "Statement": [{"Sid": "SidToOverwrite", "Effect": "Allow", "Action": "s3:*",
                                          "Resource": "*"}]})
    document = rendered(overridePolicyDocuments=[override], statements=[
        {"actions": ["ec2:*"], "resources": ["*"]},
        {"sid": "SidToOverwrite", "actions": ["s3:*"], "resources": ["arn:aws:s3:::somebucket",
                                                                      "arn:aws:s3:::somebucket/*"]}])
    assert document["Statement"] == [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
                                     {"Sid": "SidToOverwrite", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}]


def test_override_documents_merge_in_order_appending_statements_without_sid() -> None:
    # provider acceptance test: testAccPolicyDocumentOverrideListConfig
    a = {"Statement": [{"Effect": "Allow", "Action": "foo:ActionOne"},
                       {"Sid": "overrideSid", "Effect": "Allow", "Action": "bar:ActionOne"}]}
    b = {"Statement": [{"Sid": "validSid", "Effect": "Deny", "Action": "foo:ActionTwo"}]}
    c = {"Statement": [{"Sid": "overrideSid", "Effect": "Deny", "Action": "bar:ActionOne"},
                       {"Effect": "Allow", "Action": "foo:ActionOne"}]}
    document = rendered(overridePolicyDocuments=[json.dumps(doc) for doc in (a, b, c)])
    assert document["Statement"] == [{"Effect": "Allow", "Action": "foo:ActionOne"},
                                     {"Sid": "overrideSid", "Effect": "Deny", "Action": "bar:ActionOne"},
                                     {"Sid": "validSid", "Effect": "Deny", "Action": "foo:ActionTwo"},
                                     {"Effect": "Allow", "Action": "foo:ActionOne"}]


def test_statements_replace_source_statements_with_the_same_sid() -> None:
    source = json.dumps({"Statement": [{"Sid": "Keep", "Effect": "Allow", "Action": "a"},
                                       {"Sid": "Mine", "Effect": "Allow", "Action": "iam:*"},
                                       {"Effect": "Allow", "Action": "b"}]})
    document = rendered(sourcePolicyDocuments=[source],
                        statements=[{"sid": "Mine", "actions": ["*"]}, {"actions": ["c"]}])
    assert [(s.get("Sid"), s["Action"]) for s in document["Statement"]] == [
        ("Keep", "a"), ("Mine", "*"), (None, "b"), (None, "c")]


def test_source_documents_may_not_share_a_sid() -> None:
    # provider acceptance test: testAccPolicyDocumentSourceListConflictingConfig
    a = {"Statement": [{"Effect": "Allow", "Action": "foo:ActionOne"},
                       {"Sid": "conflictSid", "Effect": "Allow", "Action": "bar:ActionOne"}]}
    b = {"Statement": [{"Sid": "validSid", "Effect": "Deny", "Action": "foo:ActionTwo"}]}
    c = {"Statement": [{"Sid": "conflictSid", "Effect": "Allow", "Action": "bar:ActionTwo"}]}
    with pytest.raises(ValueError, match=r"sourcePolicyDocuments\[2\]: duplicate Sid \(conflictSid\)"):
        policy_document({"sourcePolicyDocuments": [json.dumps(doc) for doc in (a, b, c)]})
    with pytest.raises(ValueError, match="duplicate Sid"):
        policy_document({"sourcePolicyDocuments": [json.dumps({"Statement": c["Statement"] * 2})]})
    # Statements without a Sid never conflict.
    unnamed = json.dumps({"Statement": [{"Effect": "Allow", "Action": "x"}]})
    assert len(rendered(sourcePolicyDocuments=[unnamed, unnamed])["Statement"]) == 2


def test_statements_may_not_share_a_sid_but_may_all_lack_one() -> None:
    with pytest.raises(ValueError, match=r"statements\[1\]: duplicate Sid \(1\)"):
        policy_document({"statements": [{"sid": "1", "actions": ["a"]}, {"sid": "1", "actions": ["b"]}]})
    assert len(rendered(statements=[{"sid": "", "actions": ["a"]}, {"actions": ["b"]}])["Statement"]) == 2


# --- documents read back as Go reads them ----------------------------------------------------------------------------

def test_source_statements_are_rewritten_in_the_provider_form() -> None:
    source = json.dumps({"statement": [{"effect": "Allow", "ACTION": ["b", "a"], "Principal": "anyone",
                                        "NotPrincipal": {"AWS": ["x", "y"]}, "Unknown": 1,
                                        "Condition": {"Bool": {"aws:SecureTransport": False, "n": 1}}}]})
    [only] = rendered(sourcePolicyDocuments=[source])["Statement"]
    # Field names match case-insensitively, any string principal is the wildcard, identifiers are written in
    # descending order, a boolean condition value turns into a string, a number is dropped.
    assert only == {"Effect": "Allow", "Action": ["b", "a"], "Principal": "*", "NotPrincipal": {"AWS": ["y", "x"]},
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def test_source_values_of_any_type_are_written_back_as_go_writes_them() -> None:
    source = '{"Statement": [{"Action": {"b": 1, "a": [1.50, 1e21, 1e-7, 100]}}]}'
    assert policy_document({"sourcePolicyDocuments": [source]})["minifiedJson"] == (
        '{"Version":"2012-10-17","Statement":[{"Action":{"a":[1.5,1e+21,1e-7,100],"b":1}}]}')


# --- bad inputs ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    ({"statements": [{"effect": "allow"}]}, r"statements\[0\]\.effect: 'allow' is not one of Allow, Deny"),
    ({"statements": [{"effect": ""}]}, "is not one of Allow, Deny"),
    ({"statements": [{"principals": [{"type": "AWS"}]}]}, r"statements\[0\]\.principals\[0\]: .*identifiers"),
    ({"statements": [{"principals": [{"type": "AWS", "identifiers": []}]}]}, "identifiers"),
    ({"statements": [{"principals": [{"identifiers": ["x"]}]}]}, "type is required"),
    ({"statements": [{"conditions": [{"test": "Bool", "variable": "v"}]}]}, "needs values"),
    ({"statements": ["s3:GetObject"]}, r"statements\[0\]: expected a statement \(a mapping\), got str"),
    ({"statements": [{"actions": "s3:GetObject"}]}, "expected a list of strings"),
    ({"sourcePolicyDocuments": ["{not json"]}, r"sourcePolicyDocuments\[0\]: not JSON"),
    ({"sourcePolicyDocuments": [""]}, r"sourcePolicyDocuments\[0\]: not JSON"),
    ({"overridePolicyDocuments": ['{"Statement": [{"Action": NaN}]}']}, "not JSON"),
    ({"sourcePolicyDocuments": ["[]"]}, "expected a JSON object"),
    ({"sourcePolicyDocuments": ['{"Statement": {"Action": "a"}}']}, "Statement must be a list"),
    ({"sourcePolicyDocuments": ['{"Statement": [null]}']}, "statement 0 is null"),
    ({"sourcePolicyDocuments": ['{"Statement": [{"Principal": null}]}']}, "Principal: unsupported data type null"),
    ({"sourcePolicyDocuments": ['{"Statement": [{"Sid": 1}]}']}, "Sid must be a string"),
    ({"version": "2012-10-18"}, "version: '2012-10-18' is not one of"),
    ({"sourceJson": "{}"}, "sourceJson: must be empty"),
])
def test_bad_input_is_a_value_error_naming_what_is_wrong(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        policy_document(args)


# --- the result ------------------------------------------------------------------------------------------------------

def test_the_result_echoes_the_inputs_with_the_schema_defaults() -> None:
    source = '{"Statement": []}'
    result = policy_document({"policyId": "p", "sourcePolicyDocuments": [source], "statements": [
        {"actions": ["b", "a", "b"], "principals": [aws("y", "x")]}]})
    assert set(result) == {"id", "json", "minifiedJson", "version", "policyId", "sourcePolicyDocuments", "statements"}
    assert (result["version"], result["policyId"], result["sourcePolicyDocuments"]) == ("2012-10-17", "p", [source])
    assert result["statements"] == [{"effect": "Allow", "actions": ["a", "b"],
                                     "principals": [{"identifiers": ["x", "y"], "type": "AWS"}]}]
