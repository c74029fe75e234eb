"""Verification rules: each has a passing and a failing case, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest

from mailbot.store import GuaranteeEvent
from mailbot.verify import OUTCOMES, AmountLimits, Claim, IssuerPolicy, ThrottleLimits, verify
from mailbot.verify.rules import RULES

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks

KEY = "Z28YUEAJ38ux"
ON = date(2026, 8, 1)
BASE = dict(
    kind="前払金保証", issuer="神奈川県内広域水道企業団", contractor="〇〇建設 株式会社",
    project_name="〇〇浄水場△△修繕工事", contract_amount=50_000_000,
    guaranteed_amount=20_000_000, expires_on=date(2027, 3, 31), awarded_on=date(2026, 7, 10),
)
KWSA = IssuerPolicy(
    name="神奈川県内広域水道企業団", aliases=("神奈川県内広域水道企業団 企業長",),
    awarded_on_or_after=date(2026, 7, 1),
)


def new(number="35075-00001M", key=KEY, **fields):
    return GuaranteeEvent(number, "new", key, **{**BASE, **fields}, source="t")


def check(store, key=KEY, number="35075-00001M", policy=KWSA, **claims):
    return verify(store, Claim(number, key, claims.pop("on", ON), **claims), policy)


def test_all_rules_are_in_the_default_chain_and_outcomes_are_closed(store):
    assert set(KWSA.chain) == set(RULES)
    store.apply([new()])
    result = check(store, kind="前払金保証", project_name="〇〇浄水場 △△修繕工事",
                   contractor="〇〇建設㈱".replace("㈱", " 株式会社"))
    assert result.outcomes == ["verified"] and result.verified
    # The throttle runs only for a claim whose number or key failed.
    assert [r["rule"] for r in result.rules] == [n for n in KWSA.chain if n != "throttle"]
    assert not any(r["hit"] for r in result.rules)
    assert set(result.outcomes) <= set(OUTCOMES)


def test_unknown_number_stops_the_chain(store):
    result = check(store, number="35075-09999M")
    assert result.outcomes == ["unknown_number"]
    # Nothing after the number runs but the throttle (for a failing claim, under its limit).
    assert result.rules == [{"rule": "number_exists", "hit": True},
                            {"rule": "throttle", "hit": False}]
    assert "35075-09999M" in result.reasons[0]


def test_key_mismatch_says_nothing_more(store):
    store.apply([new()])
    result = check(store, key="Z28YUEAJ38uX", project_name="違う工事")  # case matters
    assert result.outcomes == ["key_mismatch"]
    assert [r["rule"] for r in result.rules] == ["number_exists", "key_matches", "throttle"]


def test_superseded_key(store):
    store.apply([new(), GuaranteeEvent("35075-00001M", "amendment", "aB3dEf7hJk9m",
                                       guaranteed_amount=19_000_000, source="t")])
    assert check(store).outcomes == ["superseded"]
    assert check(store, key="aB3dEf7hJk9m").outcomes == ["verified"]


def test_cancelled(store):
    store.apply([new(), GuaranteeEvent("35075-00001M", "cancellation", source="t")])
    assert check(store).outcomes == ["cancelled"]


def test_issuer_aliases_and_mismatch(store):
    store.apply([new(issuer="神奈川県内広域水道企業団 企業長")])
    assert check(store).outcomes == ["verified"]
    other = IssuerPolicy(name="〇〇市")
    result = check(store, policy=other)
    assert result.outcomes == ["issuer_mismatch"]
    assert "神奈川" not in result.reasons[0]  # the store's issuer is not revealed
    assert result.differences[0].store == "神奈川県内広域水道企業団 企業長"


def test_kind_mismatch(store):
    store.apply([new()])
    assert check(store, kind="契約保証").outcomes == ["kind_mismatch"]
    assert check(store, kind="前払金保証").outcomes == ["verified"]


def test_project_mismatch_after_normalisation(store):
    store.apply([new()])
    assert check(store, project_name="〇〇浄水場\u3000△△修繕工事").outcomes == ["verified"]
    result = check(store, project_name="〇〇浄水場××修繕工事")
    assert result.outcomes == ["project_mismatch"]
    assert "〇〇浄水場△△修繕工事" not in result.reasons[0]


def test_contractor_matches_company_form_and_jv(store):
    store.apply([new(contractor="〇〇建設 株式会社", jv_name="〇〇・△△特定建設工事共同企業体")])
    assert check(store, contractor="〇〇建設(株)").outcomes == ["verified"]
    assert check(store, contractor="〇〇・△△特定建設工事共同企業体").outcomes == ["verified"]
    assert check(store, contractor="△△工業 株式会社").outcomes == ["contractor_mismatch"]


def test_expired_on_the_submission_date(store):
    store.apply([new()])
    assert check(store, on=date(2027, 3, 31)).outcomes == ["verified"]
    assert check(store, on=date(2027, 4, 1)).outcomes == ["expired"]


def test_eligibility_by_award_date_and_kind(store):
    store.apply([new(), new("35075-00002M", awarded_on=date(2026, 6, 30))])
    assert check(store).outcomes == ["verified"]
    result = check(store, number="35075-00002M")
    assert result.outcomes == ["not_eligible"] and "2026年7月1日" in result.reasons[0]
    advance_only = IssuerPolicy(name=KWSA.name, accepted_kinds=("契約保証",))
    refused = check(store, policy=advance_only)
    assert refused.outcomes == ["not_eligible"] and "前払金" not in refused.reasons[0]


@pytest.mark.parametrize(
    ("kind", "amount", "low_bid", "ok"),
    [
        ("前払金保証", 20_000_000, False, True), ("前払金保証", 20_000_001, False, False),
        ("契約保証", 5_000_000, False, True), ("契約保証", 4_999_999, False, False),
        ("契約保証", 14_999_999, True, False), ("契約保証", 15_000_000, True, True),
    ],
)
def test_amount_ratios(store, kind, amount, low_bid, ok):
    store.apply([new(kind=kind, guaranteed_amount=amount, low_bid=low_bid)])
    assert check(store).outcomes == (["verified"] if ok else ["amount_rule"])


def test_intermediate_advance_counts_the_other_advances_of_the_contract(store):
    big = dict(contract_amount=100_000_000)
    store.apply([
        new("35075-00001M", guaranteed_amount=40_000_000, **big),
        new("35075-00002M", key="Qw2Er4Ty6Ui0", kind="中間前払金保証", guaranteed_amount=20_000_000,
            **big),
        # Another contract's advances do not count.
        new("35075-00003M", key="As1Df3Gh5Jl7", guaranteed_amount=40_000_000,
            project_name="別の工事", **big),
    ])
    assert check(store, number="35075-00002M", key="Qw2Er4Ty6Ui0").verified  # 4 + 2 = 6 tenths
    strict = IssuerPolicy(name=KWSA.name, amounts=AmountLimits(
        intermediate_max=Fraction(3, 10), advances_total_max=Fraction(5, 10)))
    result = check(store, number="35075-00002M", key="Qw2Er4Ty6Ui0", policy=strict,
                   kind="中間前払金保証")
    assert result.outcomes == ["amount_rule"] and "合計" in result.reasons[0]
    # Without the kind in the submission the reason does not name the stored kind.
    unstated = check(store, number="35075-00002M", key="Qw2Er4Ty6Ui0", policy=strict)
    assert unstated.outcomes == ["amount_rule"] and "中間前払金" not in unstated.reasons[0]
    assert "40,000,000" not in result.reasons[0] and "40000000" not in result.reasons[0]
    too_much = new("35075-00004M", key="Zx9Cv7Bn5Ml3", kind="中間前払金保証",
                   guaranteed_amount=20_000_001, **big)
    store.apply([too_much])
    assert check(store, number="35075-00004M", key="Zx9Cv7Bn5Ml3").outcomes == ["amount_rule"]


def test_throttle_per_sender_and_per_number(store):
    store.apply([new(), new("35075-00002M", key="Qw2Er4Ty6Ui0")])
    policy = IssuerPolicy(name=KWSA.name, throttle=ThrottleLimits(per_sender=3, per_number=5))
    start = datetime(2026, 8, 1, 10, 0, tzinfo=UTC)

    def attempt(key, number="35075-00001M", sender="x@example.jp", minutes=0):
        sub = Claim(number, key, ON, sender=sender, at=start + timedelta(minutes=minutes))
        return verify(store, sub, policy).outcomes

    for i in range(3):
        assert attempt(f"Wrong{i}Key1234") == ["key_mismatch"]
    assert attempt(KEY) == ["verified"]  # the right key is never refused
    # A wrong guess over the sender's limit is throttled, an unknown number alike (the
    # outcome and the reason do not tell which it was); both count (x: 5, the number: 4).
    wrong_key = verify(store, Claim("35075-00001M", "Wrong3Key1234", ON, sender="x@example.jp",
                                    at=start), policy)
    unknown = verify(store, Claim("35075-09999M", "Wrong4Key1234", ON, sender="x@example.jp",
                                  at=start), policy)
    assert wrong_key.outcomes == unknown.outcomes == ["throttled"]
    assert wrong_key.reasons == unknown.reasons and not wrong_key.differences
    assert (wrong_key.throttled_by, wrong_key.throttle_first) == ("sender", True)
    assert (unknown.throttled_by, unknown.throttle_first) == ("sender", False)  # said once
    assert attempt(KEY, sender="y@example.jp") == ["verified"]
    assert attempt("Wrong5Key1234", minutes=61) == ["key_mismatch"]  # sender window passed
    assert attempt(KEY, minutes=61) == ["verified"]
    # 5 failures on the number now (3 + 1 throttled + 1 after the window): other senders'
    # wrong guesses for it are throttled, the right key is still verified.
    assert attempt("Other0Key1234", sender="z0@example.jp", minutes=62) == ["throttled"]
    assert attempt(KEY, sender="new@example.jp", minutes=62) == ["verified"]
    assert attempt("Qw2Er4Ty6Ui0", number="35075-00002M", sender="new@example.jp") == ["verified"]


@pytest.mark.parametrize(
    ("chain", "why"),
    [
        (("throttle", "number_exists", "project_matches", "not_cancelled"), "key_matches"),
        (("number_exists", "project_matches", "key_matches"), "'project_matches' must come after"),
        (("key_matches", "number_exists"), "'number_exists' must come before"),
    ],
)
def test_a_chain_that_could_verify_a_wrong_key_is_refused(chain, why):
    from mailbot.errors import UsageError
    from mailbot.verify.chain import check_chain

    with pytest.raises(UsageError, match=why):
        check_chain(chain)


@pytest.mark.parametrize("chain", [("throttle", "number_exists", "key_matches"),
                                   ("number_exists", "key_matches", "throttle")])
def test_the_throttle_may_stand_anywhere_it_never_runs_before_the_key(store, chain):
    """Where an admin's chain names the throttle (older configs name it first) changes
    nothing: a right key verifies over any number of failures."""
    store.apply([new()])
    policy = IssuerPolicy(name=KWSA.name, chain=chain,
                          throttle=ThrottleLimits(per_sender=1, per_number=1))
    at = datetime(2026, 8, 1, 10, 0, tzinfo=UTC)
    first = verify(store, Claim("35075-00001M", "Wrong0Key1234", ON, sender="x", at=at), policy)
    again = verify(store, Claim("35075-00001M", "Wrong1Key1234", ON, sender="x", at=at), policy)
    right = verify(store, Claim("35075-00001M", KEY, ON, sender="x", at=at), policy)
    assert (first.outcomes, again.outcomes, right.outcomes) == (
        ["key_mismatch"], ["throttled"], ["verified"])
    assert [r["rule"] for r in right.rules] == ["number_exists", "key_matches"]


def test_names_compare_after_full_nfkc(store):
    store.apply([new(project_name="〇〇線道路改良工事（その①）第Ⅱ期")])
    assert check(store, project_name="〇〇線道路改良工事(その1)第II期").outcomes == ["verified"]


def test_one_contract_whatever_the_company_form(store):
    big = dict(contract_amount=100_000_000)
    store.apply([
        new("35075-00001M", guaranteed_amount=40_000_000, contractor="〇〇建設(株)", **big),
        new("35075-00002M", key="Qw2Er4Ty6Ui0", kind="中間前払金保証", guaranteed_amount=20_000_000,
            contractor="〇〇建設株式会社", **big),
    ])
    strict = IssuerPolicy(name=KWSA.name, amounts=AmountLimits(advances_total_max=Fraction(5, 10)))
    result = check(store, number="35075-00002M", key="Qw2Er4Ty6Ui0", policy=strict)
    assert result.outcomes == ["amount_rule"]  # 4 + 2 tenths of one contract
