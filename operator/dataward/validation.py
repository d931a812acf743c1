"""Offline admission: the CRDs in `crds/` evaluated the way the API server evaluates them.

The CRD YAML is the only place a field rule is written. This module reads those same files and
applies, in the API server's order: schema defaults, the structural OpenAPI schema (with
`jsonschema`), unknown-field rejection (what kubectl's strict field validation does),
`x-kubernetes-list-type` uniqueness, and the `x-kubernetes-validations` CEL rules (with the
`common-expression-language` library), each evaluated at the node that declares it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import cel
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from dataward.model.fields import closest_name
from dataward.model.k8s_names import (
    MAX_ANNOTATIONS_BYTES,
    is_dns_label,
    is_dns_subdomain,
    is_label_value,
    is_qualified_name,
)

GROUP: Final = "dataward.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CRD_FILES: Final[Mapping[str, str]] = {
    "PrivacyPolicy": "dataward.io_privacypolicies.yaml",
    "PersonalDataStore": "dataward.io_personaldatastores.yaml",
    "DataSubjectRequest": "dataward.io_datasubjectrequests.yaml",
}

_REQUIRED_MESSAGE = re.compile(r"^'(?P<name>.+)' is a required property$")
# jsonschema keywords whose OpenAPI v3 meaning is the same as in JSON Schema 2020-12.
_SAME_KEYWORDS: Final = frozenset(
    {
        "type",
        "required",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
    }
)


class _Missing:
    """The absence of an old value (`oldSelf` is unbound), distinct from null."""


_MISSING: Final = _Missing()


@dataclass(frozen=True)
class FieldError:
    """One problem with one field; `path` is written as the API server writes it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class _Crd:
    """The parts of a CRD that validation needs."""

    kind: str
    namespaced: bool
    schema: Mapping[str, Any]
    validator: Draft202012Validator


@dataclass(frozen=True)
class _Node:
    """A value in the object with its schema, its old value (or _MISSING) and its path."""

    value: Any
    old: Any
    schema: Mapping[str, Any]
    path: str


def crd_directory() -> Path:
    """Where the CRD files are: `dataward/crds`, a link to the repository's `crds/`."""
    return Path(__file__).resolve().parent / "crds"


@cache
def _load_crd(kind: str) -> _Crd:
    text = (crd_directory() / CRD_FILES[kind]).read_text(encoding="utf-8")
    crd = yaml.safe_load(text)
    spec = crd["spec"]
    version = next(v for v in spec["versions"] if v["name"] == VERSION)
    schema = version["schema"]["openAPIV3Schema"]
    return _Crd(
        kind=kind,
        namespaced=spec["scope"] == "Namespaced",
        schema=schema,
        validator=Draft202012Validator(to_json_schema(schema)),
    )


def crd_schema(kind: str) -> Mapping[str, Any]:
    """The openAPIV3Schema of a Dataward kind, as written in its CRD."""
    return _load_crd(kind).schema


def validate_object(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None = None
) -> list[FieldError]:
    """Every reason the API server would refuse `obj` (an update of `old`, when given)."""
    kind = obj.get("kind")
    if obj.get("apiVersion") != API_VERSION:
        return [FieldError("apiVersion", f"must be {API_VERSION}, not {obj.get('apiVersion')!r}")]
    if not isinstance(kind, str) or kind not in CRD_FILES:
        kinds = " or ".join(CRD_FILES)
        return [FieldError("kind", f"must be {kinds}, not {kind!r}")]
    crd = _load_crd(kind)
    # The API server ignores status on writes to the main resource (status is a subresource).
    new = apply_defaults({k: v for k, v in obj.items() if k != "status"}, kind)
    previous: Any = _MISSING
    if old is not None and old.get("kind") == kind:
        previous = apply_defaults({k: v for k, v in old.items() if k != "status"}, kind)

    errors = _metadata_errors(new.get("metadata"), namespaced=crd.namespaced)
    errors += _schema_errors(crd, new)
    nodes = list(_nodes(new, previous, crd.schema, ""))
    errors += [error for node in nodes for error in _unknown_fields(node)]
    errors += [error for node in nodes for error in _duplicates(node)]
    rule_errors, unevaluated = _rule_errors(nodes)
    errors += rule_errors
    if not errors:
        # A rule that could not run is only news when nothing else explains it.
        errors += unevaluated
    return list(dict.fromkeys(errors))


def apply_defaults(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """A copy of `obj` with the CRD's defaults filled in, as the API server stores it."""
    out = copy.deepcopy(dict(obj))
    _default(out, _load_crd(kind).schema)
    return out


def _default(value: Any, schema: Mapping[str, Any]) -> None:
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties", {})
        for name, sub in properties.items():
            missing = name not in value or (value[name] is None and not sub.get("nullable"))
            if missing and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _default(value[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for name, item in value.items():
                if name not in properties:
                    _default(item, extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for item in value:
            _default(item, schema["items"])


def to_json_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    """Translate a structural OpenAPI v3 schema into JSON Schema 2020-12.

    Defaults, descriptions and `x-kubernetes-*` extensions do not validate and are dropped;
    unknown fields, list types and CEL rules are checked by this module's own walk.
    """
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _SAME_KEYWORDS}
    if isinstance(out.get("pattern"), str):
        out["pattern"] = _re2_end(out["pattern"])
    if isinstance(node.get("properties"), Mapping):
        out["properties"] = {k: to_json_schema(v) for k, v in node["properties"].items()}
    if isinstance(node.get("items"), Mapping):
        out["items"] = to_json_schema(node["items"])
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        out["additionalProperties"] = to_json_schema(extra)
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            out[key] = [to_json_schema(sub) for sub in node[key]]
    if isinstance(node.get("not"), Mapping):
        out["not"] = to_json_schema(node["not"])
    # OpenAPI v3.0 writes exclusive bounds as booleans next to minimum/maximum.
    for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if node.get(flag) is True and bound in out:
            out[flag] = out.pop(bound)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("allOf", []).append({"anyOf": [{"type": "integer"}, {"type": "string"}]})
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _re2_end(pattern: str) -> str:
    """In RE2 a final `$` is the end of the text; in Python it also matches before a newline."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + "\\Z"
    return pattern


def _metadata_errors(metadata: Any, *, namespaced: bool) -> list[FieldError]:
    if not isinstance(metadata, Mapping):
        return [FieldError("metadata", "is required, with at least a name")]
    errors: list[FieldError] = []
    name = metadata.get("name")
    if name is None and not metadata.get("generateName"):
        errors.append(FieldError("metadata.name", "is required"))
    elif name is not None and (
        not isinstance(name, str) or not is_dns_subdomain(name)
    ):
        errors.append(
            FieldError(
                "metadata.name",
                f"{name!r} must be a DNS subdomain: lowercase letters, digits, '-' and '.', "
                "at most 253 characters",
            )
        )
    namespace = metadata.get("namespace")
    if namespaced and namespace is not None:
        if not isinstance(namespace, str) or not is_dns_label(namespace):
            errors.append(
                FieldError("metadata.namespace", f"{namespace!r} is not a namespace name")
            )
    return errors + _labels_errors(metadata.get("labels")) + _annotations_errors(
        metadata.get("annotations")
    )


def _labels_errors(labels: Any) -> list[FieldError]:
    """metadata.labels as the API server validates them, never repeating a value."""
    if labels is None:
        return []
    if not isinstance(labels, Mapping):
        return [FieldError("metadata.labels", "must be a map of keys to strings")]
    errors: list[FieldError] = []
    for key, value in labels.items():
        if not isinstance(key, str) or not is_qualified_name(key):
            errors.append(FieldError("metadata.labels", _QUALIFIED_KEY))
        elif not isinstance(value, str):
            errors.append(
                FieldError(f"metadata.labels.{key}", "must be a string: quote the value")
            )
        elif not is_label_value(value):
            errors.append(FieldError(f"metadata.labels.{key}", _LABEL_VALUE))
    return errors


def _annotations_errors(annotations: Any) -> list[FieldError]:
    """metadata.annotations as the API server validates them, never repeating a value (an
    annotation can hold anything)."""
    if annotations is None:
        return []
    if not isinstance(annotations, Mapping):
        return [FieldError("metadata.annotations", "must be a map of keys to strings")]
    errors: list[FieldError] = []
    size = 0
    for key, value in annotations.items():
        if not isinstance(key, str) or not is_qualified_name(key.lower()):
            errors.append(FieldError("metadata.annotations", _QUALIFIED_KEY))
            continue
        if not isinstance(value, str):
            errors.append(
                FieldError(f"metadata.annotations.{key}", "must be a string: quote the value")
            )
            continue
        size += len(key.encode()) + len(value.encode())
    if size > MAX_ANNOTATIONS_BYTES:
        errors.append(
            FieldError(
                "metadata.annotations",
                f"hold {size} bytes in all, keys and values; the API server takes at most "
                f"{MAX_ANNOTATIONS_BYTES}",
            )
        )
    return errors


_QUALIFIED_KEY = (
    "a key is not a qualified name: NAME or PREFIX/NAME, NAME at most 63 letters, digits, "
    "'-', '_' or '.' (beginning and ending with a letter or digit), PREFIX a DNS subdomain"
)
_LABEL_VALUE = (
    "is not a label value: at most 63 letters, digits, '-', '_' or '.', beginning and "
    "ending with a letter or digit (the value is not repeated here)"
)


def _schema_errors(crd: _Crd, obj: Mapping[str, Any]) -> list[FieldError]:
    errors = sorted(crd.validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    return [_field_error(error) for error in errors]


def _field_error(error: ValidationError) -> FieldError:
    """Word a jsonschema error the way a person fixing the YAML needs it."""
    path = _render_path(error.absolute_path)
    value = error.instance
    limit = error.validator_value
    kind = error.validator
    if kind == "required":
        match = _REQUIRED_MESSAGE.match(error.message)
        name = match.group("name") if match else str(limit)
        return FieldError(_join(path, name), "is required")
    messages: dict[str, str] = {
        "enum": f"{value!r} is not supported; write one of: {_choices(limit)}",
        "type": f"must be {_type_words(limit)}, not {json.dumps(value)}",
        "minimum": f"{value!r} is too small; write at least {limit}",
        "maximum": f"{value!r} is too large; write at most {limit}",
        "exclusiveMinimum": f"{value!r} is too small; write more than {limit}",
        "exclusiveMaximum": f"{value!r} is too large; write less than {limit}",
        "minLength": "must not be empty" if limit == 1 else f"needs {limit} characters or more",
        "maxLength": f"must be {limit} characters or fewer",
        "minItems": "must not be empty" if limit == 1 else f"must have at least {limit} items",
        "maxItems": f"must have at most {limit} items",
        "minProperties": "must not be empty" if limit == 1 else f"needs {limit} entries",
        "maxProperties": f"must have at most {limit} entries",
        "pattern": f"{value!r} does not match {limit}",
    }
    return FieldError(path or "(object)", messages.get(str(kind), error.message))


def _choices(values: Any) -> str:
    return ", ".join(str(v) for v in values) if isinstance(values, list) else str(values)


def _type_words(types: Any) -> str:
    words = {"object": "an object", "array": "a list", "integer": "an integer", "null": "null"}
    names = types if isinstance(types, list) else [types]
    return " or ".join(words.get(str(t), f"a {t}") for t in names)


def _nodes(value: Any, old: Any, schema: Mapping[str, Any], path: str) -> Iterator[_Node]:
    """Every value in the object that has a schema, with its old value when one correlates."""
    yield _Node(value, old, schema, path)
    if isinstance(value, Mapping):
        properties: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if not path and name in ("metadata", "status"):
                continue  # ObjectMeta is validated by the API server itself; status is ignored
            sub = properties.get(name, extra if isinstance(extra, Mapping) else None)
            if sub is not None:
                previous = old.get(name, _MISSING) if isinstance(old, Mapping) else _MISSING
                yield from _nodes(item, previous, sub, _join(path, name))
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from _nodes(
                item, _old_item(item, old, schema), schema["items"], f"{path}[{index}]"
            )


def _old_item(item: Any, old: Any, schema: Mapping[str, Any]) -> Any:
    """The old list item an item correlates with: only list-type maps correlate, by key."""
    keys = schema.get("x-kubernetes-list-map-keys")
    if schema.get("x-kubernetes-list-type") != "map" or not keys or not isinstance(old, list):
        return _MISSING
    if not isinstance(item, Mapping):
        return _MISSING
    wanted = [item.get(key) for key in keys]
    for candidate in old:
        if isinstance(candidate, Mapping) and [candidate.get(key) for key in keys] == wanted:
            return candidate
    return _MISSING


def _unknown_fields(node: _Node) -> Iterator[FieldError]:
    """Fields the schema does not declare: kubectl's strict field validation refuses them."""
    if not isinstance(node.value, Mapping) or node.schema.get(
        "x-kubernetes-preserve-unknown-fields"
    ):
        return
    if "additionalProperties" in node.schema:
        return
    known: Mapping[str, Any] = node.schema.get("properties", {})
    for name in node.value:
        if name in known or (not node.path and name == "status"):
            continue
        hint = closest_name(str(name), list(known))
        suffix = f'; did you mean "{hint}"?' if hint else ""
        yield FieldError(_join(node.path, str(name)), f'unknown field "{name}"{suffix}')


def _duplicates(node: _Node) -> Iterator[FieldError]:
    """Repeated keys in list-type maps and repeated values in list-type sets."""
    list_type = node.schema.get("x-kubernetes-list-type")
    if not isinstance(node.value, list) or list_type not in ("map", "set"):
        return
    keys: Sequence[str] = node.schema.get("x-kubernetes-list-map-keys", ())
    seen: set[str] = set()
    for index, item in enumerate(node.value):
        if list_type == "map":
            if not isinstance(item, Mapping):
                continue
            identity: Any = {key: item.get(key) for key in keys}
            advice = f"each entry's {', '.join(keys)} must be unique"
        else:
            identity = item
            advice = "list each value once"
        token = json.dumps(identity, sort_keys=True, default=str)
        if token in seen:
            yield FieldError(f"{node.path}[{index}]", f"Duplicate value: {token}; {advice}")
        seen.add(token)


def _rule_errors(nodes: Sequence[_Node]) -> tuple[list[FieldError], list[FieldError]]:
    """Failed CEL rules, and rules that could not be evaluated at all."""
    failed: list[FieldError] = []
    unevaluated: list[FieldError] = []
    for node in nodes:
        rules = node.schema.get("x-kubernetes-validations") or ()
        if not rules or not _has_schema_type(node.value, node.schema):
            continue
        for entry in rules:
            expression = str(entry["rule"])
            program = _program(expression)
            activation: dict[str, Any] = {"self": node.value}
            if "oldSelf" in program.variables():
                # A transition rule runs only on update, when the old value exists.
                if isinstance(node.old, _Missing):
                    continue
                activation["oldSelf"] = node.old
            path = node.path + _field_path(str(entry.get("fieldPath", "")))
            try:
                result = program.execute(activation)
            except Exception as error:  # the library raises several unrelated types
                unevaluated.append(FieldError(path, f"could not evaluate {expression!r}: {error}"))
                continue
            if result is not True:
                failed.append(FieldError(path, _rule_message(entry, activation)))
    return failed, unevaluated


@cache
def _program(expression: str) -> cel.Program:
    return cel.compile(expression)


def _rule_message(entry: Mapping[str, Any], activation: Mapping[str, Any]) -> str:
    expression = entry.get("messageExpression")
    if expression:
        try:
            message = _program(str(expression)).execute(dict(activation))
        except Exception:  # the API server also falls back to message when this fails
            message = None
        if isinstance(message, str) and message:
            return message
    return str(entry.get("message") or f"failed rule: {entry['rule']}")


def _field_path(field_path: str) -> str:
    """A rule's fieldPath (`.a.b` or `['a']`) in this module's dotted form."""
    return re.sub(r"\['([^']*)'\]", r".\1", field_path)


def _has_schema_type(value: Any, schema: Mapping[str, Any]) -> bool:
    """CEL rules run only on a value of their declared type, as in the API server."""
    expected = schema.get("type")
    if expected == "object":
        return isinstance(value, Mapping)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    return value is not None


def _render_path(parts: Sequence[str | int] | Any) -> str:
    path = ""
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, str(part))
    return path


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
