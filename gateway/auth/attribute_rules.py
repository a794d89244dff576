"""Attribute rules: what a provider's attributes give a patron (groups, a patron id) or refuse,
in the spirit of EZproxy's ``shibuser.txt``. Pure: text in, plain values out.

One rule per line, read top to bottom::

    If eduPersonAffiliation equals alumni; Deny "Alumni: ask the library about a card"
    If eduPersonAffiliation matches "member|student|staff|faculty"; Group Licensed
    If not mail contains "@"; Deny
    If eduPersonPrincipalName present; PatronId eduPersonPrincipalName
    Group Everyone

A rule is ``If <condition> [and <condition>]...; <action>``, or an action alone (it always
applies). A condition is about one attribute and holds when *some* value of it does:

- ``<name> equals <text>``: a value is the text, ignoring case;
- ``<name> contains <text>``: a value holds the text, ignoring case;
- ``<name> matches <regex>``: a value matches the whole regular expression, case-sensitive
  (write ``(?i)`` for ignoring case);
- ``<name> present``: the attribute has a value;
- ``not`` before any of them: no value does (``not <name> present``: the attribute is missing).

Actions: ``Group <name> [<name>...]`` adds groups (those the database rules' ``Group`` lines
name); ``Deny ["<message>"]`` refuses the sign-in (the message, if any, is shown to the patron
under the standard text) and stops; ``PatronId <name>`` takes the patron id from the
attribute's first value (it applies only when the attribute has one; a later one wins).

Words (``If``, ``and``, ``not``, the operators, the actions) are case-insensitive; attribute
names are not. A text with spaces or ``;`` goes in double quotes (``\\"`` and ``\\\\`` inside).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.rules.model import DEFAULT_GROUPS

Attributes = Mapping[str, tuple[str, ...]]
"""A provider's answer, normalised: attribute name -> its values as strings."""

ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.:/#@+-]{1,200}")
"""An attribute or claim name a rule may test: SAML's ``urn:oid:1.3.6.1.4.1.5923.1.1.1.1``,
an OIDC claim, a namespaced claim such as ``https://example.org/roles``."""
GROUP_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
"""What a group may be called: a name the rules' ``Group`` line can write, nothing that would
break the session's comma-separated list."""
MAX_GROUPS = 64
MAX_PATTERN = 500
"""Characters a ``matches`` expression may have (the regular expression's size cap)."""
MAX_MESSAGE = 300
"""Characters of a ``Deny`` message."""
MAX_VALUE = 2048
"""Characters of a value a condition looks at (a longer one is cut first)."""

_TOKEN = re.compile(r'\s*(?:(;)|"((?:[^"\\]|\\.)*)"|([^\s;"]+))')


class RuleError(ValueError):
    """A rule that does not parse; the message says what is wrong, in words for a librarian."""


class Op(enum.Enum):
    """How a condition compares an attribute's values."""

    EQUALS = "equals"
    CONTAINS = "contains"
    MATCHES = "matches"
    PRESENT = "present"


@dataclass(frozen=True)
class Condition:
    """One test on an attribute's values."""

    attribute: str
    op: Op
    text: str = ""
    negated: bool = False
    pattern: re.Pattern[str] | None = None

    def holds(self, attributes: Attributes) -> bool:
        """Whether the condition holds for ``attributes``."""
        values = [v[:MAX_VALUE] for v in attributes.get(self.attribute, ()) if v]
        return _TESTS[self.op](self, values) != self.negated


def _equals(c: Condition, values: list[str]) -> bool:
    wanted = c.text.casefold()
    return any(v.casefold() == wanted for v in values)


def _contains(c: Condition, values: list[str]) -> bool:
    wanted = c.text.casefold()
    return any(wanted in v.casefold() for v in values)


def _matches(c: Condition, values: list[str]) -> bool:
    assert c.pattern is not None
    return any(c.pattern.fullmatch(v) for v in values)


def _present(c: Condition, values: list[str]) -> bool:
    return bool(values)


_TESTS = {Op.EQUALS: _equals, Op.CONTAINS: _contains, Op.MATCHES: _matches, Op.PRESENT: _present}


class Action(enum.Enum):
    """What a rule does when its conditions hold."""

    GROUP = "group"
    DENY = "deny"
    PATRON_ID = "patronid"


@dataclass(frozen=True)
class Rule:
    """One parsed line."""

    text: str
    conditions: tuple[Condition, ...]
    action: Action
    groups: tuple[str, ...] = ()
    message: str = ""
    attribute: str = ""
    """``PatronId``'s attribute."""


class _Quoted(str):
    """A text given in double quotes: never a keyword, even if it reads ``and``."""


def _keyword(word: str | None) -> str:
    """A bare word in lower case, to compare with the rule words; empty for anything else."""
    return "" if word is None or isinstance(word, _Quoted) else word.lower()


def _tokens(line: str) -> list[str | None]:
    """Words and quoted texts (``_Quoted``); ``None`` stands for ``;``."""
    out: list[str | None] = []
    position, line = 0, line.rstrip()
    while position < len(line):
        match = _TOKEN.match(line, position)
        if match is None:
            raise RuleError(f"an unclosed quote at character {position + 1}")
        position = match.end()
        semicolon, quoted, word = match.groups()
        if semicolon:
            out.append(None)
        else:
            out.append(_Quoted(re.sub(r"\\(.)", r"\1", quoted)) if quoted is not None else word)
    return out


def _attribute(word: str | None) -> str:
    if word is None or not ATTRIBUTE_NAME.fullmatch(word):
        raise RuleError(f"expects an attribute name, got {word or 'nothing'!r}")
    return word


def _condition(words: list[str | None]) -> Condition:
    negated = bool(words) and _keyword(words[0]) == "not"
    words = words[1:] if negated else words
    if len(words) < 2:
        raise RuleError("a condition is '<attribute> equals|contains|matches <text>' or "
                        "'<attribute> present'")  # fmt: skip
    name = _attribute(words[0])
    try:
        op = Op(_keyword(words[1]))
    except ValueError:
        raise RuleError(
            f"expects equals, contains, matches or present after {name}, got {words[1]!r}"
        ) from None
    rest = words[2:]
    if op is Op.PRESENT:
        if rest:
            raise RuleError(f"'present' takes nothing after it, got {rest[0]!r}")
        return Condition(name, op, negated=negated)
    if len(rest) != 1 or rest[0] is None:
        raise RuleError(f"'{op.value}' expects one text (in double quotes if it has spaces)")
    text = rest[0]
    if op is not Op.MATCHES:
        return Condition(name, op, text, negated)
    if len(text) > MAX_PATTERN:
        raise RuleError(f"the regular expression is longer than {MAX_PATTERN} characters")
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise RuleError(f"the regular expression does not compile: {exc}") from None
    return Condition(name, op, text, negated, pattern)


def _action(text: str, conditions: tuple[Condition, ...], words: list[str | None]) -> Rule:
    if not words or words[0] is None:
        raise RuleError("expects an action: Group, Deny or PatronId")
    if None in words:
        raise RuleError("expects one ';', between the conditions and the action")
    name, args = _keyword(words[0]), [str(w) for w in words[1:]]
    if name == "group":
        bad = [g for g in args if not GROUP_NAME.fullmatch(g)]
        if not args or bad:
            raise RuleError(
                "Group expects group names (letters, digits, _ . + -)"
                + (f", not {bad[0]!r}" if bad else "")
            )
        return Rule(text, conditions, Action.GROUP, groups=tuple(args))
    if name == "deny":
        if len(args) > 1:
            raise RuleError("Deny takes at most one message, in double quotes")
        message = args[0] if args else ""
        if len(message) > MAX_MESSAGE or not message.isprintable():
            raise RuleError(f"the Deny message must be one line of at most {MAX_MESSAGE} "
                            "characters")  # fmt: skip
        return Rule(text, conditions, Action.DENY, message=message)
    if name == "patronid":
        if len(args) != 1:
            raise RuleError("PatronId expects one attribute name")
        return Rule(text, conditions, Action.PATRON_ID, attribute=_attribute(args[0]))
    raise RuleError(f"expects an action (Group, Deny or PatronId), got {words[0]!r}")


def parse_rule(line: str) -> Rule:
    """One rule from its line; ``RuleError`` says what is wrong."""
    words = _tokens(line)
    if not words:
        raise RuleError("is empty")
    if _keyword(words[0]) != "if":
        return _action(line.strip(), (), words)
    if None not in words:
        raise RuleError("expects ';' between the conditions and the action")
    split = words.index(None)
    conditions: list[Condition] = []
    current: list[str | None] = []
    for word in [*words[1:split], "and"]:  # a last "and" closes the last condition
        if _keyword(word) == "and":
            conditions.append(_condition(current))
            current = []
        else:
            current.append(word)
    return _action(line.strip(), tuple(conditions), words[split + 1 :])


def rule_problem(line: str) -> str | None:
    """Why ``line`` is not a rule, or None (the configuration's check of each rule)."""
    try:
        parse_rule(line)
    except RuleError as exc:
        return str(exc)
    return None


def parse_rules(lines: list[str]) -> tuple[Rule, ...]:
    """Every rule of a provider, in order; ``RuleError`` for the first bad one, its message
    starting with the line's index (``[2] ...``)."""
    rules = []
    for index, line in enumerate(lines):
        try:
            rules.append(parse_rule(line))
        except RuleError as exc:
            raise RuleError(f"[{index}] {exc}") from None
    return tuple(rules)


@dataclass(frozen=True)
class Policy:
    """What a provider's configuration says about its attributes."""

    patron_id_attribute: str
    """Where the patron id comes from unless a ``PatronId`` rule says otherwise."""
    groups_attribute: str
    """An attribute whose values are groups as they are; empty: every patron is in Default."""
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What the rules made of a provider's attributes."""

    patron_id: str
    """Empty when no attribute gave one (the sign-in is then refused)."""
    patron_id_from: str
    """The attribute the patron id was taken from."""
    groups: frozenset[str]
    denied: bool
    message: str
    """The matching ``Deny`` rule's message (may be empty)."""
    matched: tuple[int, ...]
    """The indexes of the rules that applied, in order (the console's trace)."""


def _first(attributes: Attributes, name: str) -> str:
    return next((v for v in attributes.get(name, ()) if v.strip()), "")


def decide(policy: Policy, attributes: Attributes) -> Outcome:
    """Apply ``policy`` to ``attributes``: the configured patron id and groups first, then
    every rule in order (a ``Deny`` stops)."""
    source = policy.patron_id_attribute
    patron_id = _first(attributes, source)
    if policy.groups_attribute:
        values = attributes.get(policy.groups_attribute, ())
        groups = {v for v in values if GROUP_NAME.fullmatch(v)}
    else:
        groups = set(DEFAULT_GROUPS)
    matched: list[int] = []
    for index, rule in enumerate(policy.rules):
        if not all(c.holds(attributes) for c in rule.conditions):
            continue
        if rule.action is Action.PATRON_ID:
            value = _first(attributes, rule.attribute)
            if not value:
                continue
            patron_id, source = value, rule.attribute
        matched.append(index)
        if rule.action is Action.DENY:
            return Outcome("", "", frozenset(), True, rule.message, tuple(matched))
        groups.update(rule.groups)
    kept = frozenset(sorted(groups)[:MAX_GROUPS])
    return Outcome(patron_id, source if patron_id else "", kept, False, "", tuple(matched))
