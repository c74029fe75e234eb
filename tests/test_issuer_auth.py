"""Issuer side of sender authentication (issue 14): the throttle keys on the proven sender,
never refuses the right key, and forged mail is not answered.

- The throttle key (`mailbot/pipeline/sender_key.py`): an authenticated From domain, else a
  passing DKIM signature's domain, else the envelope sender, else From — never Reply-To.
- Verification: wrong guesses over the limit are `throttled` (an unknown number alike); a
  right key is verified over any number of failures, per sender and per number.
- The pipeline (the daemon's `Pipeline` on a real ledger and outbox, replies through a real
  relay): twenty guesses from twenty Reply-To addresses through one envelope sender are one
  sender; the throttled ones get no reply, go to review, and raise one staff alert; the
  rightful contractor's right key afterwards is confirmed. A forged mail (DMARC fails under
  p=reject) gets no reply, goes to review and counts towards no throttle; a mail from a
  domain without DMARC is answered as before. The verdict is in the decision record, the
  replay output and the digest.
- End to end through Dovecot and the daemon: the same twenty guesses; and, with the real
  authenticator and a real DNS server, a mail failing DMARC under p=reject gets no reply.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from mailbot.auth import (
    AuthVerdict,
    DkimCheck,
    DmarcCheck,
    Requirement,
)
from mailbot.config import load_config
from mailbot.daemon import Pipeline
from mailbot.ledger import Ledger, Spool
from mailbot.outgoing import Outgoing
from mailbot.pipeline.decide import decide
from mailbot.pipeline.facts import mail_facts
from mailbot.pipeline.sender_key import throttle_key
from mailbot.replies.digest import digest_context
from mailbot.store import GuaranteeEvent
from mailbot.store.schema import ledger, outbox
from mailbot.verify import Claim, IssuerPolicy, ThrottleLimits, verify
from parsers import Reader

from .configs import issuer_config, smtp_config
from .test_daemon import REVIEW, USER, wait_for

KEY = "Z28YUEAJ38ux"
NUMBER = "35075-00001M"
STAFF = "kensa@issuer.example.jp"
ENVELOPE = "bounce@mx.guess.example.jp"  # one envelope sender behind all the guesses
RIGHTFUL = "tanto@maru.example.jp"
STAFF_KEYS = f'staff = ["{STAFF}"]\n'


def notice(sender: str, *, reply_to: str | None = None, key: str = KEY,
           number: str = NUMBER, tag: str = "a", return_path: str | None = None) -> bytes:
    """A typed notice from `sender` (Reply-To and Return-Path as given)."""
    headers = [f"From: {sender}", f"To: {USER}", "Subject: 【電子保証】〇〇浄水場△△修繕工事",
               f"Message-ID: <{tag}.auth@maru.example.jp>", "MIME-Version: 1.0",
               "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    if reply_to:
        headers.insert(1, f"Reply-To: {reply_to}")
    if return_path:
        headers.insert(0, f"Return-Path: <{return_path}>")
    body = f"〇〇市 契約検査課 御中\r\n\r\n保証契約番号：{number}\r\n認証キー：{key}\r\n"
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def guess(i: int, *, return_path: str | None = ENVELOPE) -> bytes:
    """The i-th wrong key, from a fresh Reply-To address each time."""
    return notice(f"guess{i}@guess.example.jp", reply_to=f"reply{i}@elsewhere{i}.example.jp",
                  key=f"Wrong{i:02d}Key12"[:12], tag=f"g{i}", return_path=return_path)


def verdict(domain: str = "maru.example.jp", *, dmarc: str | None = "pass",
            policy_: str | None = "reject", dkim: tuple[DkimCheck, ...] = ()) -> AuthVerdict:
    return AuthVerdict(source="authres:mx.issuer.example.jp", from_domain=domain, dkim=dkim,
                       dmarc=None if dmarc is None else DmarcCheck(domain, dmarc, policy_))


# -- the throttle key --------------------------------------------------------------------

def facts_of(raw: bytes, auth: AuthVerdict | None = None):
    return replace(mail_facts(raw, "keiyaku"), auth=auth)


def test_the_throttle_key_is_the_proven_sender_never_reply_to():
    keys = {throttle_key(facts_of(guess(i)), Requirement.DMARC) for i in range(20)}
    assert keys == {f"addr:{ENVELOPE}"}  # twenty Reply-To addresses, one envelope sender
    assert facts_of(guess(1)).sender == "reply1@elsewhere1.example.jp"  # where replies go
    # No envelope sender: the From address (still not Reply-To).
    assert throttle_key(facts_of(guess(3, return_path=None)), Requirement.DMARC) == (
        "addr:guess3@guess.example.jp")
    # The envelope a trusted hop recorded wins over a Return-Path header.
    recorded = replace(verdict(dmarc="fail", policy_="none"), envelope_from="x@relay.example.jp")
    assert throttle_key(facts_of(guess(4), recorded), Requirement.DMARC) == (
        "addr:x@relay.example.jp")
    raw = notice(RIGHTFUL, reply_to="someone@elsewhere.example.jp", return_path=ENVELOPE)
    # Authenticated under the issuer's requirement: the From domain.
    assert throttle_key(facts_of(raw, verdict()), Requirement.DMARC) == "domain:maru.example.jp"
    aligned = (DkimCheck("maru.example.jp", "pass", "sel", aligned=True),)
    assert throttle_key(facts_of(raw, verdict(dmarc=None, dkim=aligned)), Requirement.DKIM) == (
        "domain:maru.example.jp")
    # Not authenticated, but a passing (unaligned) signature proves its own domain.
    other = (DkimCheck("esp.example.jp", "pass", "s1"),)
    assert throttle_key(facts_of(raw, verdict(dmarc="fail", policy_="none", dkim=other)),
                        Requirement.DMARC) == "domain:esp.example.jp"
    # `none` proves nothing: the From domain is not taken on its word.
    assert throttle_key(facts_of(raw, verdict(dmarc=None)), Requirement.NONE) == f"addr:{ENVELOPE}"


def test_the_clerks_sender_is_counted_as_the_pipeline_counts_it():
    from mailbot.cli.verify import _throttle_key

    assert _throttle_key(" X@Maru.example.jp") == "addr:x@maru.example.jp"
    assert _throttle_key("domain:maru.example.jp") == "domain:maru.example.jp"
    assert _throttle_key(None) is None


# -- verification ------------------------------------------------------------------------

def test_a_right_key_verifies_over_any_failures_per_sender_and_per_number(store):
    store.apply([GuaranteeEvent(NUMBER, "new", KEY, issuer="〇〇市", source="t")])
    policy = IssuerPolicy(name="〇〇市")  # 5 per sender an hour, 10 per number a day
    start = datetime.now(UTC)
    results = [verify(store, Claim(NUMBER, f"Wrong{i:02d}Key12", start.date(),
                                   sender=f"addr:{ENVELOPE}", at=start + timedelta(seconds=i)),
                      policy) for i in range(20)]
    assert [r.outcomes for r in results] == [["key_mismatch"]] * 5 + [["throttled"]] * 15
    assert [i for i, r in enumerate(results) if r.throttle_first] == [5]  # told once
    assert {r.throttled_by for r in results[5:]} == {"sender"}
    later = start + timedelta(seconds=30)
    # Over both limits (20 failures on the number): the right key still verifies.
    for sender in (f"addr:{ENVELOPE}", "domain:maru.example.jp"):
        assert verify(store, Claim(NUMBER, KEY, later.date(), sender=sender, at=later),
                      policy).outcomes == ["verified"]
    # Another sender's wrong guess is throttled by the number; it is not said which it was.
    other = verify(store, Claim(NUMBER, "WrongerKey12", later.date(), sender="addr:o@x.example.jp",
                                at=later), policy)
    assert (other.outcomes, other.throttled_by) == (["throttled"], "number")


def test_the_limits_still_count_within_their_windows(store):
    store.apply([GuaranteeEvent(NUMBER, "new", KEY, issuer="〇〇市", source="t")])
    policy = IssuerPolicy(name="〇〇市", throttle=ThrottleLimits(per_sender=2, per_number=50))
    start = datetime.now(UTC)

    def attempt(key: str, minutes: float) -> list[str]:
        at = start + timedelta(minutes=minutes)
        return verify(store, Claim(NUMBER, key, at.date(), sender="addr:a@b.example.jp", at=at),
                      policy).outcomes

    assert [attempt(f"Bad{i}KeyXXXXX", i) for i in range(3)] == [
        ["key_mismatch"], ["key_mismatch"], ["throttled"]]
    # The throttled guess counted too: an hour after the first two, one is still in the window.
    assert attempt("Bad3KeyXXXXX", 61) == ["throttled"]
    assert attempt("Bad4KeyXXXXX", 125) == ["key_mismatch"]


# -- the pipeline on a real ledger, outbox and relay --------------------------------------

@pytest.fixture
def world(sqlite_store, tmp_path, sink, monkeypatch):
    """〇〇市 with staff, an LMTP mailbox, the daemon's pipeline and the outgoing side on one
    SQLite database; replies go to the test relay."""
    url = str(sqlite_store.engine.url)
    text = issuer_config(url, tmp_path / "spool").replace(
        '[issuers.maru]\nname = "〇〇市"\n', '[issuers.maru]\nname = "〇〇市"\n' + STAFF_KEYS)
    path = tmp_path / "mailbot.toml"
    path.write_text(smtp_config(sink.settings.port) + text, encoding="utf-8")
    config = load_config(path)
    sqlite_store.apply([GuaranteeEvent(NUMBER, "new", KEY, issuer="〇〇市", source="t")])
    clock = {"now": datetime.now(UTC)}
    led = Ledger(sqlite_store.engine, Spool(tmp_path / "spool"))
    pipeline = Pipeline(config, sqlite_store, led, Reader(), clock=lambda: clock["now"])
    outgoing = Outgoing(config, sqlite_store)

    class World:
        store = sqlite_store

        def feed(self, raw: bytes) -> dict:
            clock["now"] += timedelta(seconds=1)
            entry = led.receive("keiyaku", raw, now=clock["now"]).id
            assert pipeline.process_one()
            outgoing.queue(clock["now"])
            outgoing.flush(clock["now"])
            got = led.get(entry)
            assert got is not None and got.record is not None, got
            return got.record

        def decide(self, raw: bytes, auth: AuthVerdict | None):
            mailbox = config.mailbox("keiyaku")
            facts = replace(mail_facts(raw, mailbox.name), auth=auth)
            clock["now"] += timedelta(seconds=1)
            return decide(raw, facts, mailbox, config, sqlite_store, Reader(), clock["now"])

        def store_decision(self, raw: bytes, auth: AuthVerdict | None) -> dict:
            """Decide `raw` with `auth` (what the daemon will set) and record it."""
            clock["now"] += timedelta(seconds=1)
            led.receive("keiyaku", raw, now=clock["now"])
            entry = led.claim(now=clock["now"])
            assert entry is not None
            made = self.decide(raw, auth)
            led.decide(entry.id, made.record, made.reply, made.action, now=clock["now"],
                       attempt=entry.attempts)
            return made.record

        def sent(self) -> list:
            return [message_from_bytes(raw, policy=policy.default)
                    for _from, _to, raw in sink.accepted]

        def digest(self) -> dict:
            return digest_context(outgoing.outbox, "〇〇市", {"keiyaku"},
                                  clock["now"] - timedelta(days=1), clock["now"])

    return World()


def test_twenty_reply_to_guesses_are_one_sender_and_the_right_key_is_confirmed(world):
    records = [world.feed(guess(i)) for i in range(20)]
    assert [r["outcomes"] for r in records] == [["key_mismatch"]] * 5 + [["throttled"]] * 15
    for record in records[5:]:
        assert record["reply"] is None and record["folder"] == "電子保証/要確認"
        assert record["reply_skipped"] == f"throttled: too many failed key checks from addr:{ENVELOPE}"
    sent = world.sent()
    replies = [m for m in sent if m["To"] != STAFF]
    assert sorted(m["To"] for m in replies) == sorted(
        f"reply{i}@elsewhere{i}.example.jp" for i in range(5))  # only the first five heard back
    alerts = [m for m in sent if m["To"] == STAFF]
    assert len(alerts) == 1, [m["Subject"] for m in alerts]  # once per sender and window
    body = alerts[0].get_body().get_content()
    assert f"addr:{ENVELOPE}" in body and NUMBER in body and KEY not in body
    with world.store.engine.connect() as conn:
        (alert_ledger,) = conn.execute(select(outbox.c.ledger_id).where(outbox.c.kind == "alert"))
        first_throttled = conn.execute(select(ledger.c.id).where(
            ledger.c.message_id == "<g5.auth@maru.example.jp>")).scalar_one()
    assert alert_ledger.ledger_id == first_throttled
    # The rightful contractor, through the very envelope sender the guesses used.
    record = world.feed(notice(RIGHTFUL, return_path=ENVELOPE, tag="right"))
    assert record["status"] == "verified" and record["reply"]["template"] == "confirmation"
    assert record["folder"] == "電子保証/処理済"
    confirmation = world.sent()[-1]
    assert confirmation["To"] == RIGHTFUL and "確認" in confirmation.get_body().get_content()
    # The digest lists the throttled mail as needing a person, with why it got no reply.
    digest = world.digest()
    withheld = [i for i in digest["needs_review"] if i["withheld"]]
    assert len(withheld) == 15 and all("返信していません" in i["withheld"] for i in withheld)


def test_forged_mail_gets_no_reply_goes_to_review_and_counts_for_no_throttle(world):
    forged = verdict(dmarc="fail", policy_="reject")
    for i in range(8):  # more than a sender's limit of wrong guesses
        decision = world.decide(notice(RIGHTFUL, key=f"Forged{i}Key12"[:12], tag=f"f{i}",
                                       return_path=ENVELOPE), forged)
        assert decision.outcomes == ["key_mismatch"]  # never throttled: nothing counted
        assert decision.reply is None and decision.alert is None
        assert decision.record["folder"] == "電子保証/要確認"
        assert decision.record["reply_skipped"] == (
            "forged: DMARC fails for a domain whose policy is p=reject")
        assert decision.record["authentication"] == forged.to_json_obj()
    # Even with the right key, forged mail is not answered.
    right = world.decide(notice(RIGHTFUL, tag="fr", return_path=ENVELOPE),
                         verdict(dmarc="fail", policy_="quarantine"))
    assert right.outcomes == ["verified"] and right.reply is None
    assert right.record["folder"] == "電子保証/要確認"
    # A forged mail through an envelope sender already over its limit: throttled like its
    # guesses, still unanswered for being forged, and no alert of its own.
    for i in range(5):  # the limit reached: the next failing mail would be the first over
        world.feed(guess(i))
    late = world.decide(guess(30), forged)
    assert late.outcomes == ["throttled"] and late.alert is None and late.reply is None
    assert late.record["reply_skipped"].startswith("forged:")
    assert world.store.key_failures_since(NUMBER, datetime.now(UTC) - timedelta(days=2),
                                          f"addr:{ENVELOPE}",
                                          datetime.now(UTC) - timedelta(days=2)) == (5, 5)


@pytest.mark.parametrize("auth", [
    verdict(dmarc=None),  # the domain publishes no DMARC
    verdict(dmarc="fail", policy_="none"),  # p=none: its owner asks nothing
    verdict(),  # an aligned pass
    None,  # nothing checked (replays)
], ids=["no-dmarc", "p-none", "pass", "unchecked"])
def test_mail_that_is_not_forged_is_answered_as_before(world, auth):
    decision = world.decide(notice(RIGHTFUL, tag="ok", return_path=ENVELOPE), auth)
    assert decision.status == "verified" and decision.reply is not None
    assert decision.reply.to_addr == RIGHTFUL and decision.record["reply_skipped"] is None
    assert decision.record["authentication"] == (auth.to_json_obj() if auth else None)
    wrong = world.decide(notice(RIGHTFUL, key="WrongKey1234", tag="bad", return_path=ENVELOPE),
                         auth)
    assert wrong.outcomes == ["key_mismatch"] and wrong.reply is not None
    assert wrong.reply.template == "discrepancy"


def test_the_digest_and_the_replay_view_show_the_verdict(world, capsys):
    from mailbot.cli.intake import _print_decision

    forged = verdict(dmarc="fail", policy_="reject")
    decision = world.decide(notice(RIGHTFUL, tag="fv", return_path=ENVELOPE), forged)
    _print_decision("x.eml", decision.record, as_json=False)
    assert "auth    dmarc=fail (p=reject) dkim=none spf=none [authres:mx.issuer.example.jp]" in (
        capsys.readouterr().out)
    _print_decision("x.eml", world.decide(notice(RIGHTFUL, tag="nv"), None).record, as_json=False)
    assert "auth    not checked" in capsys.readouterr().out
    # The digest reads the stored records: one forged (verified, but withheld), one
    # authenticated, one with no verdict.
    world.store_decision(notice(RIGHTFUL, tag="d1", return_path=ENVELOPE), forged)
    world.store_decision(notice(RIGHTFUL, tag="d2", return_path=ENVELOPE), verdict())
    world.store_decision(notice(RIGHTFUL, tag="d3", return_path=ENVELOPE), None)
    digest = world.digest()
    assert digest["auth_counts"] == {"なりすましの疑い（DMARC 不合格）": 1, "送信元認証済み": 1}
    (item,) = digest["needs_review"]
    assert item["authentication"] == "なりすましの疑い（DMARC 不合格）"
    assert "なりすまし" in item["withheld"]


# -- end to end: Dovecot, the daemon, the relay --------------------------------------------

def _replies_to(sink, address: str) -> int:
    """How many mails the relay accepted for `address` (or any address ending so)."""
    return sum(1 for _f, to, _r in sink.accepted if any(a.endswith(address) for a in to))


def test_e2e_guesses_through_one_envelope_then_the_right_key(dovecot, sink, tmp_path, monkeypatch):
    from .issuer_daemon import decision, issuer_daemon

    events = [GuaranteeEvent(NUMBER, "new", KEY, issuer="〇〇市", source="t")]
    with issuer_daemon(dovecot, sink, tmp_path, monkeypatch, events, issuer=STAFF_KEYS) as (
            _config, store, _daemon):
        for i in range(20):
            dovecot.deliver(USER, guess(i, return_path=None), sender=ENVELOPE)
        wait_for(lambda: _decided(store) == 20, 120, "the twenty guesses decided")
        dovecot.deliver(USER, notice(RIGHTFUL, tag="right"), sender=ENVELOPE)
        wait_for(lambda: _replies_to(sink, RIGHTFUL) == 1, 120, "the confirmation sent")
        record = decision(store, "<right.auth@maru.example.jp>")
        assert record["status"] == "verified" and record["reply"]["template"] == "confirmation"
        wait_for(lambda: _replies_to(sink, STAFF) == 1, 60, "the staff alert")
        records = [decision(store, f"<g{i}.auth@maru.example.jp>") for i in range(20)]
        # Two pipelines decide them in any order; each failure has its place in line, so
        # exactly five wrong keys are answered and exactly one alert raised.
        assert sorted(r["outcomes"] for r in records) == (
            [["key_mismatch"]] * 5 + [["throttled"]] * 15), [r["outcomes"] for r in records]
        throttled = [r for r in records if r["outcomes"] == ["throttled"]]
        assert {r["reply_skipped"] for r in throttled} == {
            f"throttled: too many failed key checks from addr:{ENVELOPE}"}
        assert {r["folder"] for r in throttled} == {REVIEW}
        assert sum(_replies_to(sink, f"elsewhere{i}.example.jp") for i in range(20)) == 5
        assert _replies_to(sink, STAFF) == 1


def _decided(store) -> int:
    with store.engine.connect() as conn:
        return len(conn.execute(select(ledger.c.id).where(
            ledger.c.state.in_(("decided", "replied")))).all())


def test_e2e_a_mail_failing_dmarc_under_p_reject_gets_no_reply(dovecot, sink, tmp_path,
                                                                monkeypatch):
    from .dns_server import dns_server
    from .issuer_daemon import decision, issuer_daemon

    events = [GuaranteeEvent(NUMBER, "new", KEY, issuer="〇〇市", source="t"),
              GuaranteeEvent("35075-00002M", "new", KEY, issuer="〇〇市", source="t")]
    with dns_server() as dns:
        dns.txt("_dmarc.maru.example.jp", "v=DMARC1; p=reject")
        dns.txt("maru.example.jp", "v=spf1 -all")
        dns.txt("_dmarc.nodmarc.example.jp", "")  # no DMARC record there
        auth = f'[auth]\nresolvers = ["{dns.address}"]\ntimeout_seconds = 2\n'
        with issuer_daemon(dovecot, sink, tmp_path, monkeypatch, events,
                           issuer=STAFF_KEYS, extra=auth) as (_config, store, _daemon):
            dovecot.deliver(USER, notice(RIGHTFUL, tag="forged"), sender=RIGHTFUL)
            dovecot.deliver(USER, notice("tanto@nodmarc.example.jp", tag="plain",
                                         number="35075-00002M"), sender="tanto@nodmarc.example.jp")
            wait_for(lambda: _replies_to(sink, "tanto@nodmarc.example.jp") == 1, 120,
                     "the reply to the DMARC-less domain")
            wait_for(lambda: _decided(store) == 2, 60, "both mails decided")
            record = decision(store, "<forged.auth@maru.example.jp>")
            assert record["reply"] is None and record["folder"] == REVIEW
            assert record["reply_skipped"].startswith("forged:")
            assert AuthVerdict.from_json_obj(record["authentication"]).forged
            assert _replies_to(sink, RIGHTFUL) == 0
