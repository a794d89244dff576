"""Attribute rules, the pure core: lines parsed (and refused with a reason), and what a provider's
attributes become under them (groups, patron id, denied, the rules that matched)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.auth.attribute_rules import (
    MAX_PATTERN,
    Outcome,
    Policy,
    RuleError,
    decide,
    parse_rule,
    parse_rules,
)

LICENSED = [
    'If eduPersonAffiliation equals alumni; Deny "Alumni: ask the library about a card"',
    'If eduPersonAffiliation matches "member|student|staff|faculty"; Group Licensed',
    "If eduPersonPrincipalName present; PatronId eduPersonPrincipalName",
]


def outcome(rules: list[str], groups_attribute: str = "", **attributes: tuple[str, ...]) -> Outcome:
    """What ``rules`` make of ``attributes`` (patron id from ``sub``)."""
    return decide(Policy("sub", groups_attribute, parse_rules(rules)), attributes)


CONDITIONS = [
    # condition, values of "a", holds
    ("a equals student", ("student",), True),
    ("a equals student", ("Student",), True),  # equals ignores case
    ("a equals student", ("students",), False),
    ("a equals student", ("x", "student"), True),  # some value
    ("a equals student", (), False),
    ('a equals "two words"', ("two words",), True),
    ('a equals "semi;colon"', ("semi;colon",), True),
    (r'a equals "quote\"d"', ('quote"d',), True),
    ("a contains @campus.edu", ("Ann@CAMPUS.edu",), True),
    ("a contains @campus.edu", ("ann@campus.edu.evil",), True),
    ("a contains @campus.edu", ("ann@other.edu",), False),
    ("a matches student|staff", ("staff",), True),
    ("a matches student|staff", ("staffer",), False),  # a full match
    ("a matches student", ("Student",), False),  # matches keeps case
    ('a matches "(?i)student"', ("Student",), True),
    (r'a matches ".*@campus\.edu"', ("ann@campus.edu",), True),
    (r'a matches ".*@campus\.edu"', ("ann@campus.edu.evil",), False),
    ("a present", ("x",), True),
    ("a present", ("",), False),  # an empty value is no value
    ("a present", (), False),
    ("not a present", (), True),
    ("not a equals alumni", ("alumni",), False),
    ("not a equals alumni", ("member", "alumni"), False),  # no value may be alumni
    ("not a equals alumni", ("member",), True),
    ("NOT a EQUALS student", ("student",), False),  # the words ignore case
]


@pytest.mark.parametrize(("condition", "values", "holds"), CONDITIONS)
def test_a_condition_holds_when_some_value_does(
    condition: str, values: tuple[str, ...], holds: bool
) -> None:
    got = outcome([f"If {condition}; Group G"], a=values)
    assert ("G" in got.groups) is holds


def test_attribute_names_keep_their_case() -> None:
    assert "G" not in outcome(["If A present; Group G"], a=("x",)).groups


def test_conditions_joined_by_and_all_hold() -> None:
    rules = ["If a equals x and b equals y; Group G"]
    assert "G" in outcome(rules, a=("x",), b=("y",)).groups
    assert "G" not in outcome(rules, a=("x",), b=("z",)).groups


def test_a_quoted_and_is_a_text_not_a_keyword() -> None:
    assert "G" in outcome(['If a equals "and"; Group G'], a=("and",)).groups


def test_licensed_users_only() -> None:
    student = outcome(LICENSED, eduPersonAffiliation=("member", "student"), sub=("s1",))
    assert student.groups == {"Default", "Licensed"} and not student.denied
    assert student.patron_id == "s1" and student.patron_id_from == "sub"
    assert student.matched == (1,)
    alumna = outcome(LICENSED, eduPersonAffiliation=("alumni", "member"), sub=("s2",))
    assert alumna.denied and alumna.message == "Alumni: ask the library about a card"
    assert alumna.matched == (0,) and alumna.groups == frozenset() and alumna.patron_id == ""
    walk_in = outcome(LICENSED, eduPersonAffiliation=("library-walk-in",), sub=("s3",))
    assert walk_in.groups == {"Default"} and walk_in.matched == ()


def test_patron_id_picked_by_a_rule_and_the_last_one_wins() -> None:
    rules = ["PatronId mail", "If eppn present; PatronId eppn", "PatronId nothing"]
    got = outcome(rules, sub=("s",), mail=("m@x",), eppn=("e@x",))
    assert (got.patron_id, got.patron_id_from, got.matched) == ("e@x", "eppn", (0, 1))
    assert outcome(rules, mail=("m@x",)).patron_id == "m@x"
    assert outcome(rules).patron_id == ""  # no id at all: the sign-in will be refused


def test_rules_add_to_the_groups_attribute() -> None:
    got = outcome(["Group Extra"], "groups", groups=("Licensed", "bad name,x"))
    assert got.groups == {"Licensed", "Extra"}  # no Default: the provider names the groups


def test_deny_stops_at_once() -> None:
    got = outcome(["Group A", "If a present; Deny", "Group B"], a=("x",))
    assert got.denied and got.message == "" and got.matched == (0, 1)


BAD = [
    ("", "is empty"),
    ("Frobnicate x", "expects an action (Group, Deny or PatronId), got 'Frobnicate'"),
    ("If a equals x Group G", "expects ';' between the conditions and the action"),
    ("If a equals x;", "expects an action"),
    ("If a equals x; Group G; Deny", "expects one ';'"),
    ("If ; Group G", "a condition is"),
    ("If a equals; Group G", "'equals' expects one text"),
    ("If a is x; Group G", "expects equals, contains, matches or present after a, got 'is'"),
    ("If a equals x y; Group G", "'equals' expects one text"),
    ("If a present x; Group G", "'present' takes nothing after it"),
    ('If a matches "("; Group G', "the regular expression does not compile"),
    (f'If a matches "{"x" * (MAX_PATTERN + 1)}"; Group G', "longer than 500 characters"),
    ('If a equals "open; Group G', "an unclosed quote"),
    ("If a;b equals x; Group G", "a condition is"),
    ("If a! equals x; Group G", "expects an attribute name, got 'a!'"),
    ("If a equals x; Group", "Group expects group names"),
    ("If a equals x; Group a,b", "not 'a,b'"),
    ('Deny "one" "two"', "at most one message"),
    ("PatronId", "PatronId expects one attribute name"),
    ("PatronId a b", "PatronId expects one attribute name"),
]


@pytest.mark.parametrize(("line", "problem"), BAD)
def test_a_bad_rule_says_what_is_wrong(line: str, problem: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(line)
    assert problem in str(caught.value)


def test_a_bad_rule_in_a_list_names_its_index() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rules(["Group A", "Group B", "If x; Group C"])
    assert str(caught.value).startswith("[2] ")


@given(
    st.lists(st.sampled_from(["student", "alumni", "staff", "member", "other"]), max_size=4),
    st.lists(st.sampled_from([*LICENSED, "Group Extra", "If mail present; PatronId mail"])),
)
def test_any_rule_list_either_denies_with_nothing_or_keeps_default(
    affiliations: list[str], rules: list[str]
) -> None:
    got = outcome(rules, eduPersonAffiliation=tuple(affiliations), sub=("s",))
    matched = [rules[i] for i in got.matched]
    if got.denied:
        assert "alumni" in affiliations and not got.groups and not got.patron_id
        assert "Deny" in matched[-1]
    else:
        assert "Default" in got.groups and got.patron_id == "s"
        assert ("Licensed" in got.groups) == any("Licensed" in rule for rule in matched)
    assert list(got.matched) == sorted(set(got.matched))


@given(st.text(max_size=40))
def test_parsing_any_text_gives_a_rule_or_a_rule_error(line: str) -> None:
    try:
        rule = parse_rule(line)
    except RuleError:
        return
    assert rule.text == line.strip()
