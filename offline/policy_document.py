"""The answer to the invoke `aws:iam/getPolicyDocument:getPolicyDocument`, computed as the AWS provider computes it.

In the provider the data source is a pure function of its arguments. This module follows
hashicorp/terraform-provider-aws v6 `internal/service/iam`:

- policy_document.go: `dataSourcePolicyDocument` (the schema: sets, required fields, the `Allow` and `2012-10-17`
  defaults, the allowed values), `dataSourcePolicyDocumentRead` (source documents, then the statements, then override
  documents, merged in that order; `json`, `minified_json` and `id`), `dataSourcePolicyDocumentMakePrincipals`,
  `dataSourcePolicyDocumentMakeConditions`, `dataSourcePolicyDocumentReplaceVarsInList`;
- policy_model.go: `iamPolicyDoc`, `iamPolicyStatement` (the JSON field order), `iamPolicyDoc.Merge`,
  `policyDecodeConfigStringList`, and the `MarshalJSON`/`UnmarshalJSON` methods of `iamPolicyStatementPrincipalSet`
  and `iamPolicyStatementConditionSet`.

The order in which the provider sees principal and condition blocks is the order of a terraform-plugin-sdk v2
`schema.Set` (`Set.List`: elements sorted by the decimal text of their CRC-32 hash, `HashResource` over
`SerializeResourceForHash`); it decides how blocks of the same principal type, or conditions with the same test and
variable, are concatenated. The JSON text is Go's `encoding/json`: `json.MarshalIndent(doc, "", "  ")` for `json`,
`json.Marshal` for `minifiedJson`, map keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

DEFAULT_VERSION = "2012-10-17"
VERSIONS = ("2008-10-17", DEFAULT_VERSION)
EFFECTS = ("Allow", "Deny")

# iamPolicyStatement's fields in declaration order, which is the order encoding/json writes them in.
STATEMENT_FIELDS = ("Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal",
                    "Condition")

Principals = list[tuple[str, "str | list[str]"]]
Conditions = list[tuple[str, str, "str | list[str]"]]


class _Object:
    """A parsed JSON object as its key/value pairs in document order (Go decodes a struct key by key)."""

    def __init__(self, pairs: Iterable[tuple[str, Any]]) -> None:
        self.pairs = tuple(pairs)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self.pairs)


def policy_document(args: Mapping[str, Any]) -> dict[str, Any]:
    """The invoke's result (`GetPolicyDocumentResult`'s properties, camelCase) for the invoke's arguments."""
    version = args.get("version")
    if version is None:
        version = DEFAULT_VERSION
    elif version not in VERSIONS:
        raise ValueError(f"version: {version!r} is not one of {', '.join(VERSIONS)}")
    for legacy in ("sourceJson", "overrideJson"):
        # The schema keeps these only to reject them (validation.StringIsEmpty).
        if args.get(legacy) not in (None, ""):
            raise ValueError(f"{legacy}: must be empty; use {legacy.replace('Json', 'PolicyDocuments')}")
    policy_id = args.get("policyId")
    if policy_id is not None and not isinstance(policy_id, str):
        raise ValueError(f"policyId: expected a string, got {type(policy_id).__name__}")

    merged = _Document("", "", [])
    sids: set[str] = set()
    for index, text in _documents(args, "sourcePolicyDocuments"):
        source = _parse_document(text, f"sourcePolicyDocuments[{index}]")
        # Source documents may not share a Sid (with each other or within one); override documents may.
        for position, statement in enumerate(source.statements):
            sid = statement.get("Sid", "")
            if sid in sids:
                raise ValueError(f"sourcePolicyDocuments[{index}]: duplicate Sid ({sid}) in sourcePolicyDocuments "
                                 f"(statement {position}); remove the Sid or make the Sids unique")
            if sid:
                sids.add(sid)
        merged.merge(source)

    raw_statements = args.get("statements") or []
    if isinstance(raw_statements, str | bytes) or not isinstance(raw_statements, Sequence):
        raise ValueError(f"statements: expected a list of statements, got {type(raw_statements).__name__}")
    statements: list[dict[str, Any]] = []
    echoed: list[dict[str, Any]] = []
    own_sids: set[str] = set()
    for index, raw in enumerate(raw_statements):
        statement, echo = _config_statement(raw, f"statements[{index}]", version)
        sid = statement.get("Sid", "")
        if sid in own_sids:
            raise ValueError(f"statements[{index}]: duplicate Sid ({sid}); remove the Sid or make it unique")
        if sid:
            own_sids.add(sid)
        statements.append(statement)
        echoed.append(echo)
    merged.merge(_Document(version, policy_id or "", statements))

    for index, text in _documents(args, "overridePolicyDocuments"):
        merged.merge(_parse_document(text, f"overridePolicyDocuments[{index}]"))

    body = merged.to_json()
    text = _encode(body, "  ")
    result: dict[str, Any] = {
        "id": str(zlib.crc32(text.encode())),  # create.StringHashcode(json): the CRC-32 of the indented text
        "json": text,
        "minifiedJson": _encode(body, None),
        "version": version,
    }
    if raw_statements:
        result["statements"] = echoed
    for name in ("policyId", "sourcePolicyDocuments", "overridePolicyDocuments", "sourceJson", "overrideJson"):
        if args.get(name) is not None:
            result[name] = list(args[name]) if name.endswith("Documents") else args[name]
    return result


class _Document:
    """iamPolicyDoc, its statements already in their JSON form (merging moves whole statements)."""

    def __init__(self, version: str, policy_id: str, statements: list[dict[str, Any]]) -> None:
        self.version, self.policy_id, self.statements = version, policy_id, statements

    def merge(self, other: _Document) -> None:
        if other.policy_id:
            self.policy_id = other.policy_id
        # Versions compare as strings: a later document can raise the version, never lower it.
        self.version = max(self.version, other.version)
        for statement in other.statements:
            sid = statement.get("Sid", "")
            # A Sid replaces the first statement holding it, in place; one without a Sid, or a new Sid, is appended.
            # The search includes statements appended by this same merge, so a repeated Sid ends with the last one.
            match = next((i for i, held in enumerate(self.statements) if sid and held.get("Sid") == sid), None)
            if match is None:
                self.statements.append(statement)
            else:
                self.statements[match] = statement

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.version:
            body["Version"] = self.version
        if self.policy_id:
            body["Id"] = self.policy_id
        if self.statements:
            body["Statement"] = self.statements
        return body


def _documents(args: Mapping[str, Any], name: str) -> list[tuple[int, str]]:
    values = args.get(name) or []
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValueError(f"{name}: expected a list of JSON policy documents, got {type(values).__name__}")
    for index, value in enumerate(values):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name}[{index}]: expected a JSON string, got {type(value).__name__}")
    return [(index, value) for index, value in enumerate(values) if value is not None]


# --- statements from the invoke's arguments ---------------------------------------------------------------------

def _config_statement(raw: Any, where: str, version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The statement's JSON form and its echo in the result."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a statement (a mapping), got {type(raw).__name__}")
    sid = _optional_str(raw, "sid", where) or ""
    effect = raw.get("effect")
    if effect is None:
        effect = "Allow"
    elif effect not in EFFECTS:
        raise ValueError(f"{where}.effect: {effect!r} is not one of {', '.join(EFFECTS)}")
    echo: dict[str, Any] = {"effect": effect}
    if raw.get("sid") is not None:
        echo["sid"] = sid
    fields: dict[str, Any] = {"Sid": sid, "Effect": effect}
    for key, field, replace in (("actions", "Action", False), ("notActions", "NotAction", False),
                                ("resources", "Resource", True), ("notResources", "NotResource", True)):
        values = _string_set(raw, key, where)
        if values is not None:
            echo[key] = sorted(values)
        if values:
            decoded = _decode_set(values)
            # Only resources get policy variables rewritten, and after the sort: the order is that of the `&{` text.
            fields[field] = _replace_var(decoded, version, f"{where}.{key}") if replace else decoded
    for key, field in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
        if raw.get(key) is not None:
            principals, echo[key] = _config_principals(raw[key], f"{where}.{key}", version)
            fields[field] = _principals_json(principals)
    if raw.get("conditions") is not None:
        conditions, echo["conditions"] = _config_conditions(raw["conditions"], f"{where}.conditions", version)
        fields["Condition"] = _conditions_json(conditions)
    return _statement(fields), echo


def _config_principals(raw: Any, where: str, version: str) -> tuple[Principals, list[dict[str, Any]]]:
    blocks: dict[str, tuple[str, str | list[str], dict[str, Any]]] = {}
    for index, block in enumerate(_blocks(raw, where)):
        here = f"{where}[{index}]"
        kind = _required_str(block, "type", here)
        identifiers = _string_set(block, "identifiers", here)
        if not identifiers:
            raise ValueError(f"{here}: a principal needs identifiers (at least one)")
        key = f"identifiers:{{{''.join(value + ';' for value in _set_order(identifiers))}}};type:{kind};"
        decoded = _replace_var(_decode_set(identifiers), version, f"{here}.identifiers")
        blocks.setdefault(_hash(key), (kind, decoded, {"identifiers": sorted(identifiers), "type": kind}))
    ordered = [blocks[code] for code in sorted(blocks)]
    return [(kind, ids) for kind, ids, _ in ordered], [echo for _, _, echo in ordered]


def _config_conditions(raw: Any, where: str, version: str) -> tuple[Conditions, list[dict[str, Any]]]:
    blocks: dict[str, tuple[str, str, str | list[str], dict[str, Any]]] = {}
    for index, block in enumerate(_blocks(raw, where)):
        here = f"{where}[{index}]"
        test, variable = _required_str(block, "test", here), _required_str(block, "variable", here)
        values = block.get("values")
        if values is None:
            raise ValueError(f"{here}: a condition needs values")
        values = _strings(values, f"{here}.values")
        # `values` is a list, not a set: its order is kept, and duplicates too.
        key = f"test:{test};values:({''.join(value + ';' for value in values)});variable:{variable};"
        replaced = _replace_vars(values, version, f"{here}.values")
        single = replaced[0] if len(replaced) == 1 else replaced
        blocks.setdefault(_hash(key), (test, variable, single, {"test": test, "values": values, "variable": variable}))
    ordered = [blocks[code] for code in sorted(blocks)]
    return [(test, variable, values) for test, variable, values, _ in ordered], [echo for *_, echo in ordered]


def _blocks(raw: Any, where: str) -> list[Mapping[str, Any]]:
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        raise ValueError(f"{where}: expected a list of blocks, got {type(raw).__name__}")
    for index, block in enumerate(raw):
        if not isinstance(block, Mapping):
            raise ValueError(f"{where}[{index}]: expected a mapping, got {type(block).__name__}")
    return list(raw)


def _string_set(raw: Mapping[str, Any], key: str, where: str) -> list[str] | None:
    """A set of strings (schema.TypeSet): duplicates dropped, order irrelevant."""
    values = raw.get(key)
    return None if values is None else list(dict.fromkeys(_strings(values, f"{where}.{key}")))


def _strings(values: Any, where: str) -> list[str]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValueError(f"{where}: expected a list of strings, got {type(values).__name__}")
    for value in values:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected strings, got {type(value).__name__}")
    return list(values)


def _optional_str(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}.{key}: expected a string, got {type(value).__name__}")
    return value


def _required_str(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = _optional_str(raw, key, where)
    if value is None:
        raise ValueError(f"{where}: {key} is required")
    return value


def _decode_set(values: list[str]) -> str | list[str]:
    # policyDecodeConfigStringList: one value is written bare; several in descending order.
    return values[0] if len(values) == 1 else sorted(values, reverse=True)


def _replace_vars(values: list[str], version: str, where: str) -> list[str]:
    """Terraform's `&{aws:username}` escape becomes the policy variable `${aws:username}` (not in 2008-10-17)."""
    for value in values:
        if version == "2008-10-17" and "&{" in value:
            raise ValueError(f"{where}: found &{{ sequence in ({value}), which is not supported in document version "
                             "2008-10-17")
    return [value.replace("&{", "${") for value in values]


def _replace_var(value: str | list[str], version: str, where: str) -> str | list[str]:
    replaced = _replace_vars([value] if isinstance(value, str) else value, version, where)
    return replaced[0] if isinstance(value, str) else replaced


def _hash(text: str) -> str:
    # terraform-plugin-sdk hashcode.String; Set.List orders elements by this number's decimal text.
    return str(zlib.crc32(text.encode()))


def _set_order(values: list[str]) -> list[str]:
    return sorted(values, key=lambda value: _hash(value + ";"))


# --- the JSON form of principals, conditions and statements -----------------------------------------------------

def _principals_json(principals: Principals) -> str | dict[str, Any] | None:
    if not principals:
        return None
    if len(principals) == 1 and principals[0][0] == "*" and principals[0][1] in ("*", ["*"]):
        # Only a lone {"*": "*"} becomes "*"; {"AWS": "*"} stays, since IAM trust policies refuse a bare "*".
        return "*"
    merged: dict[str, str | list[str]] = {}
    for kind, identifiers in principals:
        held = merged.get(kind)
        if held is None and isinstance(identifiers, str):
            merged[kind] = identifiers
            continue
        # Blocks of the same type are concatenated in set order; each block's list is in descending order.
        before = [] if held is None else [held] if isinstance(held, str) else held
        after = [identifiers] if isinstance(identifiers, str) else sorted(identifiers, reverse=True)
        merged[kind] = before + after
    return dict(sorted(merged.items()))


def _conditions_json(conditions: Conditions) -> dict[str, Any] | None:
    grouped: dict[str, dict[str, list[str]]] = {}
    for test, variable, values in conditions:
        # Blocks with the same test and variable pool their values, in set order, unsorted.
        grouped.setdefault(test, {}).setdefault(variable, []).extend([values] if isinstance(values, str) else values)
    if not grouped:
        return None
    return {test: {variable: values[0] if len(values) == 1 else values for variable, values in sorted(by.items())}
            for test, by in sorted(grouped.items())}


def _statement(fields: Mapping[str, Any]) -> dict[str, Any]:
    # `omitempty`: empty strings, nil values and empty principal or condition sets are left out.
    return {name: fields[name] for name in STATEMENT_FIELDS if fields.get(name) not in (None, "")}


# --- source and override documents: Go's json.Unmarshal into iamPolicyDoc --------------------------------------

def _parse_document(text: str, where: str) -> _Document:
    tree = _load(text, where)
    if tree is None:
        return _Document("", "", [])  # `null` leaves the document empty, without error
    if not isinstance(tree, _Object):
        raise ValueError(f"{where}: expected a JSON object (a policy document), got {_json_type(tree)}")
    version = policy_id = ""
    statements: list[dict[str, Any]] = []
    for key, value in tree:
        # encoding/json matches struct fields case-insensitively, ignores unknown keys, and a null leaves a
        # string field as it was.
        name = key.casefold()
        if name in ("version", "id") and value is not None:
            if not isinstance(value, str):
                raise ValueError(f"{where}: {key} must be a string, got {_json_type(value)}")
            version, policy_id = (value, policy_id) if name == "version" else (version, value)
        elif name == "statement":
            if value is not None and not isinstance(value, list):
                raise ValueError(f"{where}: Statement must be a list of statements, got {_json_type(value)}")
            statements = [_source_statement(item, f"{where}: statement {i}") for i, item in enumerate(value or [])]
    return _Document(version, policy_id, statements)


_FOLDED_FIELDS = {name.casefold(): name for name in STATEMENT_FIELDS}


def _source_statement(tree: Any, where: str) -> dict[str, Any]:
    if tree is None:
        raise ValueError(f"{where} is null")  # the provider dereferences the nil statement
    if not isinstance(tree, _Object):
        raise ValueError(f"{where}: expected a JSON object, got {_json_type(tree)}")
    fields: dict[str, Any] = {}
    for key, value in tree:
        name = _FOLDED_FIELDS.get(key.casefold())
        if name in ("Sid", "Effect"):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{where}: {name} must be a string, got {_json_type(value)}")
            fields[name] = fields.get(name) if value is None else value
        elif name in ("Principal", "NotPrincipal"):
            fields[name] = _principals_json(_source_principals(value, f"{where}: {name}"))
        elif name == "Condition":
            fields[name] = _conditions_json(_source_conditions(value, f"{where}: Condition"))
        elif name is not None:
            fields[name] = _plain(value)  # Action, Resource, ...: any JSON value, written back as it came
    return _statement(fields)


def _source_principals(tree: Any, where: str) -> Principals:
    if isinstance(tree, str):
        return [("*", ["*"])]  # any string at all reads as the wildcard principal
    if not isinstance(tree, _Object):
        raise ValueError(f"{where}: unsupported data type {_json_type(tree)}")
    principals: Principals = []
    for kind, identifiers in _plain(tree).items():
        if isinstance(identifiers, list) and all(isinstance(value, str) for value in identifiers):
            principals.append((kind, sorted(identifiers)))
        elif isinstance(identifiers, str):
            principals.append((kind, identifiers))
        else:
            raise ValueError(f"{where}: identifiers of {kind!r} must be a string or a list of strings")
    return principals


def _source_conditions(tree: Any, where: str) -> Conditions:
    if tree is None:
        return []
    if not isinstance(tree, _Object):
        raise ValueError(f"{where}: expected an object of condition operators, got {_json_type(tree)}")
    conditions: Conditions = []
    for test, variables in _plain(tree).items():
        if variables is None:
            continue
        if not isinstance(variables, dict):
            raise ValueError(f"{where}: {test} must map condition keys to values, got {_json_type(variables)}")
        for variable, values in variables.items():
            if isinstance(values, bool):
                conditions.append((test, variable, "true" if values else "false"))
            elif isinstance(values, str):
                conditions.append((test, variable, [values]))
            elif isinstance(values, list):
                if not all(isinstance(value, str) for value in values):
                    raise ValueError(f"{where}: {test} {variable}: values must be strings")
                conditions.append((test, variable, values))
            # Numbers, null and objects are dropped without error.
    return conditions


def _load(text: str, where: str) -> Any:
    def constant(name: str) -> Any:
        raise ValueError(f"{where}: not JSON: {name}")

    try:
        tree = json.loads(text, object_pairs_hook=_Object, parse_int=float, parse_constant=constant)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not JSON: {error}") from None
    return _tidy(tree, where)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _tidy(tree: Any, where: str) -> Any:
    """Go's decoding: numbers are float64 (no infinities), unpaired surrogate escapes become U+FFFD."""
    if isinstance(tree, str):
        return _SURROGATE.sub("\ufffd", tree)
    if isinstance(tree, float) and math.isinf(tree):
        raise ValueError(f"{where}: a number is out of float64 range")
    if isinstance(tree, _Object):
        return _Object((_tidy(key, where), _tidy(value, where)) for key, value in tree)
    if isinstance(tree, list):
        return [_tidy(value, where) for value in tree]
    return tree


def _plain(tree: Any) -> Any:
    """A value decoded into `any`: objects become maps (the last duplicate key wins; keys are written sorted)."""
    if isinstance(tree, _Object):
        return {key: _plain(value) for key, value in sorted(dict(tree).items())}
    if isinstance(tree, list):
        return [_plain(value) for value in tree]
    return tree


def _json_type(value: Any) -> str:
    return {type(None): "null", bool: "boolean", float: "number", str: "string", list: "array"}.get(
        type(value), "object")


# --- encoding/json's output ------------------------------------------------------------------------------------

_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                             "\u2029": "\\u2029"})


def _encode(value: Any, indent: str | None, depth: int = 0) -> str:
    """json.MarshalIndent(value, "", indent), or json.Marshal(value) when indent is None."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        # Python writes control characters as Go does (\b, \f, \n, \r, \t, else \u00xx); Go also escapes HTML.
        return json.dumps(value, ensure_ascii=False).translate(_GO_ESCAPES)
    if isinstance(value, int | float):
        return _go_float(float(value))
    if isinstance(value, dict):
        colon = ": " if indent is not None else ":"
        items = [_encode(key, None) + colon + _encode(item, indent, depth + 1) for key, item in value.items()]
        opening, closing = "{", "}"
    else:
        items = [_encode(item, indent, depth + 1) for item in value]
        opening, closing = "[", "]"
    if not items:
        return opening + closing
    if indent is None:
        return opening + ",".join(items) + closing
    inner, outer = "\n" + indent * (depth + 1), "\n" + indent * depth
    return opening + inner + ("," + inner).join(items) + outer + closing


def _go_float(number: float) -> str:
    """A float64 as encoding/json writes it: shortest digits, exponent form only below 1e-6 or from 1e21."""
    if number == 0:
        return "-0" if math.copysign(1, number) < 0 else "0"
    exact = Decimal(repr(number)).normalize()
    if 1e-6 <= abs(number) < 1e21:
        return format(exact, "f")
    sign, digits, exponent = exact.as_tuple()
    assert isinstance(exponent, int)
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    power = exponent + len(digits) - 1
    # strconv writes at least two exponent digits; encoding/json then trims e-07 to e-7 (but keeps e+21).
    return ("-" if sign else "") + mantissa + (f"e+{power:02d}" if power >= 0 else f"e-{-power}")
