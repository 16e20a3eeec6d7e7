"""Label and field selectors, with upstream's syntax, matching rules and error messages.

Label selectors follow k8s.io/apimachinery/pkg/labels (the `?labelSelector=` grammar and the
metav1.LabelSelector JSON form); field selectors follow k8s.io/apimachinery/pkg/fields plus the
per-kind field label conversions and selectable-field sets of the upstream registries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from api.errors import BadRequest
from api.resources import CATALOGUE

# --- operators (the string values of upstream's selection.Operator) -------------------------

IN = "in"
NOT_IN = "notin"
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

# Order matters: it is the order upstream lists them in "expected: ..." parse errors.
_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)

# --- label key / value validation (k8s.io/apimachinery/pkg/api/validate/content) -------------

_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY_ERR = ("must consist of alphanumeric characters, '-', '_' or '.', and must start "
                  "and end with an alphanumeric character")
_LABEL_VALUE_FMT = f"({_LABEL_KEY_FMT})?"
_LABEL_VALUE_ERR = ("a valid label must be an empty string or consist of alphanumeric "
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                    "character")
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = f"{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN_ERR = ("a lowercase RFC 1123 subdomain must consist of lower case "
                          "alphanumeric characters, '-' or '.', and must start and end with an "
                          "alphanumeric character")
_LABEL_KEY_RE = re.compile(_LABEL_KEY_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_INT64_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MAX = 2**63 - 1


def _regex_error(msg: str, regex: str, *examples: str) -> str:
    # Upstream's RegexError text, double spaces before " or " included.
    if not examples:
        return f"{msg} (regex used for validation is '{regex}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{regex}')"


def _max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def _dns1123_subdomain_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(_max_len_error(253))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_ERR, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def label_key_errors(key: str) -> list[str]:
    """Why `key` is not a valid label key (`[prefix/]name`); empty when it is valid."""
    errs: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + e for e in _dns1123_subdomain_errors(prefix))
    else:
        return ["a valid label key "
                + _regex_error(_LABEL_KEY_ERR, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len_error(63))
    if not _LABEL_KEY_RE.fullmatch(name):
        errs.append("name part " + _regex_error(_LABEL_KEY_ERR, _LABEL_KEY_FMT,
                                                "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """Why `value` is not a valid label value; empty when it is valid."""
    errs = []
    if len(value) > 63:
        errs.append(_max_len_error(63))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(_regex_error(_LABEL_VALUE_ERR, _LABEL_VALUE_FMT,
                                 "MyValue", "my_value", "12345"))
    return errs


def _go_quote(s: str) -> str:
    # Close enough to Go's %q for the strings selectors carry.
    return json.dumps(s, ensure_ascii=False)


def _go_string_slice(values: Iterable[str]) -> str:
    # How Go's %#v prints the []string a field.Error carries as its bad value.
    vals = list(values)
    if not vals:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_go_quote(v) for v in vals) + "}"


def _invalid(path: str, shown_value: str, detail: str) -> str:
    """The text of an upstream field.Invalid error: `<path>: Invalid value: <v>: <detail>`."""
    return f"{path}: Invalid value: {shown_value}: {detail}"


def _aggregate(messages: list[str]) -> str:
    # utilerrors.Aggregate: de-duplicated, bare when alone, bracketed otherwise.
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


# --- label selectors -------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: `key <operator> values`."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            # A missing key satisfies notin / != (upstream semantics).
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            have = _parse_int64(labels.get(self.key))
            want = _parse_int64(self.values[0]) if len(self.values) == 1 else None
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        shown = {GREATER_THAN: ">", LESS_THAN: "<", IN: " in ", NOT_IN: " notin "}
        op = shown.get(self.operator, self.operator)
        vals = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            return f"{self.key}{op}({vals})"
        return f"{self.key}{op}{vals}"


def _parse_int64(s: str | None) -> int | None:
    if s is None or not _INT64_RE.fullmatch(s):
        return None
    n = int(s)
    return n if -_INT64_MAX - 1 <= n <= _INT64_MAX else None


def new_requirement(key: str, operator: str, values: Iterable[str] = ()) -> Requirement:
    """Build a validated Requirement, as upstream's labels.NewRequirement.

    Raises ValueError carrying upstream's aggregated field-error text.
    """
    vals = list(values)
    errs: list[str] = []
    key_errs = label_key_errors(key)
    if key_errs:
        errs.append(_invalid("key", _go_quote(key), "; ".join(key_errs)))
    if operator in (IN, NOT_IN):
        if not vals:
            errs.append(_invalid("values", _go_string_slice(vals),
                                 "for 'in', 'notin' operators, values set can't be empty"))
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errs.append(_invalid("values", _go_string_slice(vals),
                                 "exact-match compatibility requires one single value"))
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errs.append(_invalid("values", _go_string_slice(vals),
                                 "values set must be empty for exists and does not exist"))
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(_invalid("values", _go_string_slice(vals),
                                 "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                errs.append(_invalid(f"values[{i}]", _go_quote(v),
                                     "for 'Gt', 'Lt' operators, the value must be an integer"))
    else:
        supported = ", ".join(_go_quote(o) for o in (*_BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST))
        errs.append(f"operator: Unsupported value: {_go_quote(operator)}: "
                    f"supported values: {supported}")
    for i, v in enumerate(vals):
        value_errs = label_value_errors(v)
        if value_errs:
            errs.append(_invalid(f"values[{i}][{key}]", _go_quote(v), "; ".join(value_errs)))
    if errs:
        raise ValueError(_aggregate(errs))
    return Requirement(key, operator, tuple(vals))


@dataclass(frozen=True)
class LabelSelector:
    """An AND of requirements. `nothing=True` is upstream's labels.Nothing()."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def match_nothing(cls) -> LabelSelector:
        return cls(nothing=True)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def is_empty(self) -> bool:
        """True when the selector does not restrict anything (Nothing() is not empty)."""
        return not self.nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        """The single value `key` must have to match, if the selector pins one."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _sorted_by_key(reqs: Iterable[Requirement]) -> tuple[Requirement, ...]:
    # Upstream sorts requirements by key so String() is deterministic.
    return tuple(sorted(reqs, key=lambda r: r.key))


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """`k1=v1,k2=v2` from a map, unvalidated; None or {} selects everything (SelectorFromSet)."""
    return LabelSelector(_sorted_by_key(Requirement(k, EQUALS, (v,))
                                        for k, v in (labels or {}).items()))


# The lexer and parser below mirror upstream's labels.Parse so that the same inputs are
# accepted, the same requirements come out, and errors read the same.

_TOK_ERROR, _TOK_EOS, _TOK_CLOSE, _TOK_COMMA, _TOK_NOT = "error", "eos", ")", ",", "!"
_TOK_DEQ, _TOK_EQ, _TOK_GT, _TOK_ID, _TOK_IN = "==", "=", ">", "id", "in"
_TOK_LT, _TOK_NEQ, _TOK_NOTIN, _TOK_OPEN = "<", "!=", "notin", "("

_LITERAL_TOKENS = {
    ")": _TOK_CLOSE, ",": _TOK_COMMA, "!": _TOK_NOT, "==": _TOK_DEQ, "=": _TOK_EQ,
    ">": _TOK_GT, "in": _TOK_IN, "<": _TOK_LT, "!=": _TOK_NEQ, "notin": _TOK_NOTIN,
    "(": _TOK_OPEN,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(s: str) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    pos, end = 0, len(s)
    while True:
        while pos < end and s[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            items.append((_TOK_EOS, ""))
            return items
        if s[pos] in _SPECIAL:
            # Longest run of special characters that still forms a token ("!=", "==", ...).
            buf, last = "", None
            while pos < end and s[pos] in _SPECIAL:
                if buf + s[pos] in _LITERAL_TOKENS:
                    buf += s[pos]
                    last = (_LITERAL_TOKENS[buf], buf)
                    pos += 1
                elif last is not None:
                    break
                else:
                    buf += s[pos]
                    pos += 1
            items.append(last or (_TOK_ERROR, f"error expected: keyword found '{buf}'"))
        else:
            start = pos
            while pos < end and s[pos] not in _SPECIAL and s[pos] not in _WHITESPACE:
                pos += 1
            word = s[start:pos]
            items.append((_LITERAL_TOKENS.get(word, _TOK_ID), word))


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def _item(self, i: int, values_context: bool) -> tuple[str, str]:
        tok, lit = self.items[min(i, len(self.items) - 1)]
        # In a value position `in` and `notin` are plain identifiers ("x in (in)").
        if values_context and tok in (_TOK_IN, _TOK_NOTIN):
            tok = _TOK_ID
        return tok, lit

    def lookahead(self, values_context: bool = True) -> tuple[str, str]:
        return self._item(self.pos, values_context)

    def consume(self, values_context: bool = True) -> tuple[str, str]:
        self.pos += 1
        return self._item(self.pos - 1, values_context)

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok == _TOK_EOS:
                return reqs
            if tok not in (_TOK_ID, _TOK_NOT):
                raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self.parse_requirement())
            except ValueError as e:
                raise ValueError(f"unable to parse requirement: {e}") from None
            tok, lit = self.consume()
            if tok == _TOK_EOS:
                return reqs
            if tok != _TOK_COMMA:
                raise ValueError(f"found '{lit}', expected: ',' or 'end of string'")
            tok2, lit2 = self.lookahead()
            if tok2 not in (_TOK_ID, _TOK_NOT):
                raise ValueError(f"found '{lit2}', expected: identifier after ','")

    def parse_requirement(self) -> Requirement:
        key, op = self.parse_key_and_infer_operator()
        if op in (EXISTS, DOES_NOT_EXIST):
            return new_requirement(key, op)
        op = self.parse_operator()
        values = self.parse_values() if op in (IN, NOT_IN) else self.parse_exact_value()
        # Upstream collects values in a set: de-duplicated and sorted.
        return new_requirement(key, op, sorted(values))

    def parse_key_and_infer_operator(self) -> tuple[str, str]:
        op = ""
        tok, lit = self.consume()
        if tok == _TOK_NOT:
            op = DOES_NOT_EXIST
            tok, lit = self.consume()
        if tok != _TOK_ID:
            raise ValueError(f"found '{lit}', expected: identifier")
        key_errs = label_key_errors(lit)
        if key_errs:
            # Upstream reports this one against a nil field path, hence "<nil>".
            raise ValueError(_invalid("<nil>", _go_quote(lit), "; ".join(key_errs)))
        if self.lookahead()[0] in (_TOK_EOS, _TOK_COMMA) and op != DOES_NOT_EXIST:
            op = EXISTS
        return lit, op

    def parse_operator(self) -> str:
        tok, lit = self.consume(values_context=False)
        ops = {_TOK_IN: IN, _TOK_EQ: EQUALS, _TOK_DEQ: DOUBLE_EQUALS, _TOK_GT: GREATER_THAN,
               _TOK_LT: LESS_THAN, _TOK_NOTIN: NOT_IN, _TOK_NEQ: NOT_EQUALS}
        if tok not in ops:
            raise ValueError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return ops[tok]

    def parse_values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != _TOK_OPEN:
            raise ValueError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in (_TOK_ID, _TOK_COMMA):
            values = self.parse_identifiers_list()
            if self.consume()[0] != _TOK_CLOSE:
                raise ValueError(f"found '{lit}', expected: ')'")
            return values
        if tok == _TOK_CLOSE:
            self.consume()
            return {""}  # "()" means the empty value
        raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _TOK_ID:
                values.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == _TOK_COMMA:
                    continue
                if tok2 == _TOK_CLOSE:
                    return values
                raise ValueError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _TOK_COMMA:
                # Empty slots between commas are empty-string values: "(a,,b)", "(,a)", "(a,)".
                if not values:
                    values.add("")
                if self.lookahead()[0] == _TOK_CLOSE:
                    values.add("")
                    return values
                if self.lookahead()[0] == _TOK_COMMA:
                    values.add("")
                continue
            raise ValueError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        if self.lookahead()[0] in (_TOK_EOS, _TOK_COMMA):
            return {""}  # "a=" selects a present-but-empty value
        tok, lit = self.consume()
        if tok == _TOK_ID:
            return {lit}
        raise ValueError(f"found '{lit}', expected: identifier")


def parse_label_selector(s: str) -> LabelSelector:
    """Parse the `?labelSelector=` syntax; "" selects everything.

    Grammar (upstream labels.Parse): comma-separated requirements, each `key`, `!key`,
    `key=v`, `key==v`, `key!=v`, `key in (v1,v2)`, `key notin (v1)`, `key>n`, `key<n`.
    Raises BadRequest with upstream's message on invalid input.
    """
    try:
        reqs = _Parser(s).parse()
    except ValueError as e:
        raise BadRequest(str(e)) from None
    return LabelSelector(_sorted_by_key(reqs))


_OBJECT_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_label_selector_object(sel: Mapping[str, Any] | None) -> LabelSelector:
    """Convert a metav1.LabelSelector (`matchLabels`, `matchExpressions`) to a LabelSelector.

    As upstream's LabelSelectorAsSelector: None selects nothing (a Deployment without a
    selector must not adopt every pod), while {} (no labels, no expressions) selects
    everything. Raises ValueError for an unknown operator or an invalid requirement.
    """
    if sel is None:
        return LabelSelector.match_nothing()
    match_labels: Mapping[str, str] = sel.get("matchLabels") or {}
    expressions: list[Mapping[str, Any]] = sel.get("matchExpressions") or []
    if not match_labels and not expressions:
        return LabelSelector.everything()
    reqs = [new_requirement(k, EQUALS, [v]) for k, v in match_labels.items()]
    for expr in expressions:
        operator = expr.get("operator", "")
        if operator not in _OBJECT_OPERATORS:
            raise ValueError(f"{_go_quote(str(operator))} is not a valid label selector operator")
        reqs.append(new_requirement(str(expr.get("key", "")), _OBJECT_OPERATORS[operator],
                                    expr.get("values") or []))
    return LabelSelector(_sorted_by_key(reqs))


def label_selector_object_matches(sel: Mapping[str, Any] | None,
                                  labels: Mapping[str, str] | None) -> bool:
    """Whether `labels` match a metav1.LabelSelector (None matches nothing, {} everything)."""
    return selector_from_label_selector_object(sel).matches(labels)


# --- field selectors -------------------------------------------------------------------------


def escape_field_value(value: str) -> str:
    """Escape `\\`, `,` and `=` so a literal value survives a field selector round trip."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(raw: str) -> str:
    out: list[str] = []
    in_slash = False
    for c in raw:
        if in_slash:
            if c not in "\\,=":
                raise ValueError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c in ",=":
            # Upstream prints the rune with %v, i.e. as its code point number.
            raise ValueError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise ValueError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(s: str) -> list[str]:
    # Split on commas not preceded by a backslash; escapes stay in the terms.
    terms, start, in_slash = [], 0, False
    for i, c in enumerate(s):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    # The first operator occurrence splits; "!=" and "==" win over "=" at the same spot.
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


@dataclass
class FieldSelector:
    """An AND of `field = value` / `field != value` terms.

    `requirements` holds (field, op, value) with op "=" (also for "==") or "!=".
    """

    requirements: list[tuple[str, str, str]] = field(default_factory=list)

    def matches(self, fields: Mapping[str, str]) -> bool:
        # A field the object lacks reads as "" (upstream fields.Set.Get).
        for name, op, value in self.requirements:
            if (fields.get(name, "") == value) != (op == EQUALS):
                return False
        return True

    def is_empty(self) -> bool:
        return not self.requirements

    def requires_exact_match(self, name: str) -> str | None:
        """The value `name` must equal to match, when the selector pins one."""
        for f, op, value in self.requirements:
            if f == name and op == EQUALS:
                return value
        return None

    def __str__(self) -> str:
        return ",".join(f"{f}{op}{escape_field_value(v)}" for f, op, v in self.requirements)


def parse_field_selector(s: str) -> FieldSelector:
    """Parse the `?fieldSelector=` syntax (upstream fields.ParseSelector).

    Terms are `f=v`, `f==v` or `f!=v`, comma-separated; in values `\\,` `\\=` `\\\\` are
    escapes and a bare `,` or `=` is an error. No whitespace trimming, as upstream.
    Raises BadRequest with upstream's message on invalid input.
    """
    reqs: list[tuple[str, str, str]] = []
    for part in sorted(_split_terms(s)) if s else []:
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise BadRequest(f"invalid selector: '{s}'; can't understand '{part}'")
        lhs, op, rhs = split
        try:
            value = _unescape_field_value(rhs)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        if not lhs and not value:
            continue  # upstream's Transform turns an empty term into "everything"
        reqs.append((lhs, NOT_EQUALS if op == NOT_EQUALS else EQUALS, value))
    return FieldSelector(reqs)


# --- selectable fields per resource ----------------------------------------------------------


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _bool(value: Any) -> str:
    return "true" if value else "false"


def _int(value: Any) -> str:
    return str(int(value or 0))


def _pod_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    pod_ips = status.get("podIPs") or []
    # Upstream reads the primary IP from podIPs; old writers may only set podIP.
    pod_ip = (pod_ips[0] or {}).get("ip") if pod_ips else status.get("podIP")
    return {
        "spec.nodeName": _str(spec.get("nodeName")),
        "spec.restartPolicy": _str(spec.get("restartPolicy")),
        "spec.schedulerName": _str(spec.get("schedulerName")),
        "spec.serviceAccountName": _str(spec.get("serviceAccountName")),
        "spec.hostNetwork": _bool(spec.get("hostNetwork")),
        "status.phase": _str(status.get("phase")),
        "status.podIP": _str(pod_ip),
        "status.nominatedNodeName": _str(status.get("nominatedNodeName")),
    }


def _event_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    involved = obj.get("involvedObject") or {}
    reporting = _str(obj.get("reportingComponent"))
    # Events written through events.k8s.io only carry the reporting controller.
    source = _str((obj.get("source") or {}).get("component")) or reporting
    fields = {f"involvedObject.{k}": _str(involved.get(k)) for k in (
        "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
    fields.update({
        "reason": _str(obj.get("reason")),
        "reportingComponent": reporting,
        "source": source,
        "type": _str(obj.get("type")),
    })
    return fields


def _spec(key: str, conv: Callable[[Any], str] = _str) -> Callable[[Mapping[str, Any]], str]:
    return lambda obj: conv((obj.get("spec") or {}).get(key))


def _status(key: str, conv: Callable[[Any], str] = _str) -> Callable[[Mapping[str, Any]], str]:
    return lambda obj: conv((obj.get("status") or {}).get(key))


_SIMPLE_FIELDS: dict[str, dict[str, Callable[[Mapping[str, Any]], str]]] = {
    "nodes": {"spec.unschedulable": _spec("unschedulable", _bool)},
    "namespaces": {"status.phase": _status("phase")},
    "secrets": {"type": lambda obj: _str(obj.get("type"))},
    "services": {"spec.clusterIP": _spec("clusterIP"), "spec.type": _spec("type")},
    "replicasets": {"status.replicas": _status("replicas", _int)},
    "replicationcontrollers": {"status.replicas": _status("replicas", _int)},
    "jobs": {"status.successful": _status("succeeded", _int)},
}


def _is_namespaced(plural: str, obj: Mapping[str, Any]) -> bool:
    resource = CATALOGUE.by_plural(plural)
    if resource is not None:
        return resource.namespaced
    return "namespace" in (obj.get("metadata") or {})


def field_set(plural: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The selectable fields of an object, as upstream's per-kind ToSelectableFields.

    Every kind has `metadata.name`, namespaced kinds `metadata.namespace`; absent values
    read as "" (an unscheduled pod has spec.nodeName ""), booleans as "true"/"false".
    """
    meta = obj.get("metadata") or {}
    fields = {"metadata.name": _str(meta.get("name"))}
    if _is_namespaced(plural, obj):
        fields["metadata.namespace"] = _str(meta.get("namespace"))
    if plural == "pods":
        fields.update(_pod_fields(obj))
    elif plural == "events":
        fields.update(_event_fields(obj))
    else:
        fields.update({name: get(obj) for name, get in _SIMPLE_FIELDS.get(plural, {}).items()})
    return fields


# --- which field labels each resource accepts (upstream's field label conversions) ------------

_META = ("metadata.name", "metadata.namespace")


def _not_supported(label: str) -> str:
    return f"field label not supported: {label}"


def _default_rejection(label: str) -> str:
    # Kinds without a registered conversion fall back to DefaultMetaV1FieldSelectorConversion.
    return (f"{_go_quote(label)} is not a known field selector: only "
            f"{_go_quote('metadata.name')}, {_go_quote('metadata.namespace')}")


@dataclass(frozen=True)
class _FieldLabels:
    accepted: frozenset[str]
    reject: Callable[[str], str] = _not_supported
    aliases: Mapping[str, str] = field(default_factory=dict)


_FIELD_LABELS: dict[str, _FieldLabels] = {
    "pods": _FieldLabels(
        frozenset({*_META, "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                   "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                   "status.podIP", "status.podIPs", "status.nominatedNodeName"}),
        # Old v1 clients still send spec.host.
        aliases={"spec.host": "spec.nodeName"}),
    "nodes": _FieldLabels(frozenset({"metadata.name", "spec.unschedulable"})),
    "replicationcontrollers": _FieldLabels(frozenset({*_META, "status.replicas"})),
    "events": _FieldLabels(frozenset({
        *_META, "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"})),
    "namespaces": _FieldLabels(frozenset({"metadata.name", "status.phase"})),
    "secrets": _FieldLabels(frozenset({*_META, "type"})),
    "services": _FieldLabels(frozenset({*_META, "spec.clusterIP", "spec.type"})),
    "jobs": _FieldLabels(frozenset({*_META, "status.successful"}),
                         lambda label: f"field label {_go_quote(label)} not supported "
                                       "for batchv1.Job"),
    "replicasets": _FieldLabels(frozenset({*_META, "status.replicas"}), _default_rejection),
}
_DEFAULT_FIELD_LABELS = _FieldLabels(frozenset(_META), _default_rejection)


def convert_field_selector(plural: str, sel: FieldSelector) -> FieldSelector:
    """Check every field against what `plural` supports and apply legacy renames.

    Raises BadRequest with upstream's message for an unsupported field.
    """
    labels = _FIELD_LABELS.get(plural, _DEFAULT_FIELD_LABELS)
    out: list[tuple[str, str, str]] = []
    for name, op, value in sel.requirements:
        name = labels.aliases.get(name, name)
        if name not in labels.accepted:
            raise BadRequest(labels.reject(name))
        out.append((name, op, value))
    return FieldSelector(out)


def validate_field_selector(plural: str, sel: FieldSelector) -> None:
    """Raise BadRequest if `sel` uses a field `plural` cannot be selected by."""
    convert_field_selector(plural, sel)
