"""Property test: no string from a mail can make a reply, a staff mail or a submission fail
to render, fail to serialise, or add a header.

Random Unicode (lone surrogates, NUL, CR/LF, other controls, emoji, NEC specials, raw encoded
words, undecodable bytes as the stdlib's parsers keep them) goes into every string of the
contexts of confirmation, discrepancy, digest, alert and the contractor's templates, and into
every notice value and file name of a submission. Each result must be bytes that parse back,
carry only the headers mailbot writes, decode to text without control characters, and keep
every line within SMTP's limit. Example counts are bounded so the file runs in seconds.
"""

from __future__ import annotations

import os
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.config import ContractorConfig, SubmissionRule
from mailbot.replies import ReplySettings, render_reply, render_staff
from mailbot.replies.render import REPO_TEMPLATES
from mailbot.submit.files import File
from mailbot.submit.render import SubmissionError, render_submission, submission_context
from parsers.headers import clean_header_text
from parsers.model import Notice

JST = timezone(timedelta(hours=9))
NOW = datetime(2026, 7, 1, 10, 30, tzinfo=JST)
MESSAGE_ID = "<fuzz.1@city.example.jp>"
# FUZZ_N=1500 runs a longer campaign by hand (40 examples keep CI fast).
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_N", "40")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SPECIALS = ["\x00", "\r\n", "\r", "\n", "\t", "\x1b$B", "\x7f", "\x85", "\u2028", "\ufeff",
            "\ud800", "\udcff", "😀", "①㈱", "〇〇建設", "=?Shift_JIS?B?gXmTZI5x?=",
            "=?UTF-8?B?", "?=", "Bcc: evil@attacker.example.jp", ";", ",", "<", ">", '"', "\\",
            "{subject}", "{{ x }}", "%s", " " * 80, "x" * 120]
undecodable = st.binary(max_size=24).map(lambda b: b.decode("ascii", "surrogateescape"))
hostile = st.lists(
    st.one_of(st.text(st.characters(exclude_categories=()), max_size=30),
              st.sampled_from(SPECIALS), undecodable),
    max_size=8,
).map("".join)

CODES = st.one_of(st.sampled_from(["verified", "key_mismatch", "unknown_number",
                                   "encrypted_pdf", "no_notice_found"]), hostile)
SETTINGS = ReplySettings(from_addr="keiyaku@city.example.jp", from_name="〇〇市 契約検査課",
                         signature="〇〇市 契約検査課")
STAFF_HEADERS = {"from", "to", "subject", "date", "message-id", "auto-submitted",
                 "x-auto-response-suppress", "mime-version", "content-type",
                 "content-transfer-encoding"}
REPLY_HEADERS = STAFF_HEADERS | {"in-reply-to", "references", "x-mailbot-result"}
SUBMISSION_HEADERS = (STAFF_HEADERS - {"auto-submitted", "x-auto-response-suppress"}) | {
    "x-mailbot-submission"}


def check(raw: bytes, headers: set[str]) -> object:
    """The common property of every rendered mail; returns the parsed message."""
    assert isinstance(raw, bytes) and raw.isascii()  # 8-bit only inside base64/encoded words
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    message = message_from_bytes(raw, policy=policy.default)
    assert {k.lower() for k in message.keys()} <= headers
    for name, value in message.items():
        text = str(value)
        assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in text), name
    for part in message.walk():
        if not part.is_multipart():
            content = part.get_content()
            if isinstance(content, str):
                content.encode("utf-8")
                assert "\x00" not in content
    return message


def notice_strategy() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({
        "guarantee_number": st.one_of(st.just("35075-00001M"), hostile),
        "auth_key_masked": st.one_of(st.just("Z28Y********"), hostile),
        "outcomes": st.lists(CODES, max_size=3),
        "reasons": st.lists(hostile, max_size=3),
    })


reply_context = st.fixed_dictionaries({
    "in_reply_to": st.one_of(st.none(), hostile, st.just("<a@maru.example.jp>")),
    "references": st.one_of(st.none(), hostile),
    "subject": st.one_of(st.none(), hostile),
    "issuer": st.one_of(st.none(), hostile),
    "department": st.one_of(st.none(), hostile),
    "template_set": st.none(),  # from the config, never from a mail
    "notices": st.lists(notice_strategy(), max_size=3),
    "problems": st.lists(st.fixed_dictionaries({"code": CODES, "origin": hostile}), max_size=3),
})


@FUZZ
@given(template=st.sampled_from(["confirmation", "discrepancy"]), context=reply_context,
       charset=st.sampled_from(["utf-8", "iso-2022-jp"]))
def test_any_reply_renders(template, context, charset):
    settings_ = ReplySettings(**{**SETTINGS.__dict__, "charset": charset})
    raw = render_reply(template, context, "tanto@maru.example.jp", settings_, MESSAGE_ID, NOW)
    message = check(raw, REPLY_HEADERS)
    assert str(message["Subject"]).startswith("Re: ") or not clean_header_text(
        context["subject"] or "")


def iso_time() -> st.SearchStrategy[str]:
    return st.one_of(st.just(NOW.isoformat()), st.just("0001-01-01T00:00:00+14:00"), hostile)


def item(**fields: st.SearchStrategy) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(fields)


digest_context = st.fixed_dictionaries({
    "issuer": st.one_of(st.none(), hostile),
    "period_start": iso_time(), "period_end": iso_time(),
    "counts": st.dictionaries(st.one_of(st.sampled_from(["verified", "quarantined"]), hostile),
                              st.integers(0, 99), max_size=4),
    "needs_review": st.lists(item(received_at=iso_time(), sender=hostile,
                                  subject=st.one_of(st.none(), hostile),
                                  outcomes=st.lists(CODES, max_size=2),
                                  problems=st.lists(CODES, max_size=2)), max_size=3),
    "quarantined": st.lists(item(id=st.one_of(st.integers(), hostile), received_at=iso_time(),
                                 sender=hostile, subject=st.one_of(st.none(), hostile)),
                            max_size=3),
    "failed_replies": st.lists(item(to=hostile, subject=st.one_of(st.none(), hostile),
                                    error=hostile, failed_at=iso_time()), max_size=3),
})
alert_context = st.fixed_dictionaries({"issuer": st.one_of(st.none(), hostile),
                                       "what": hostile, "details": st.lists(hostile, max_size=4)})
contractor_alert_context = st.fixed_dictionaries({
    "what": hostile, "details": st.lists(hostile, max_size=4),
    "problems": st.lists(st.fixed_dictionaries({"code": CODES, "origin": hostile}), max_size=2),
    "excerpt": st.lists(hostile, max_size=3), "contractor": hostile,
})
reminder_context = st.fixed_dictionaries({
    "days": st.integers(1, 30), "contractor": hostile,
    "submissions": st.lists(item(guarantee_number=hostile, issuer=hostile, to=hostile,
                                 subject=hostile, sent_at=iso_time()), max_size=3),
})
row = item(guarantee_number=hostile, issuer=hostile, state=hostile, state_ja=hostile,
           since=iso_time(), reason=hostile)
contractor_digest_context = st.fixed_dictionaries({
    "period_start": iso_time(), "period_end": iso_time(), "contractor": hostile,
    "open": st.lists(row, max_size=2), "answered": st.lists(row, max_size=2),
    "needs_action": st.lists(row, max_size=2),
})


@FUZZ
@given(case=st.one_of(
    st.tuples(st.just("digest"), digest_context),
    st.tuples(st.just("alert"), alert_context),
    st.tuples(st.just("contractor_alert"), contractor_alert_context),
    st.tuples(st.just("reminder"), reminder_context),
    st.tuples(st.just("contractor_digest"), contractor_digest_context),
), charset=st.sampled_from(["utf-8", "iso-2022-jp"]))
def test_any_staff_mail_renders(case, charset):
    template, context = case
    settings_ = ReplySettings(**{**SETTINGS.__dict__, "charset": charset})
    raw = render_staff(template, context, ["kensa@city.example.jp", "jimu@maru.example.jp"],
                       settings_, MESSAGE_ID, NOW)
    check(raw, STAFF_HEADERS)


@FUZZ
@given(names=st.lists(hostile, min_size=1, max_size=3), settings_name=hostile)
def test_any_sender_name_renders(names, settings_name):
    """The display names come from the config, but nothing in them may break a mail."""
    settings_ = ReplySettings(**{**SETTINGS.__dict__, "from_name": settings_name})
    raw = render_staff("alert", {"issuer": None, "what": names[0], "details": names},
                       ["kensa@city.example.jp"], settings_, MESSAGE_ID, NOW)
    message = check(raw, STAFF_HEADERS)
    assert message["From"].addresses[0].addr_spec == "keiyaku@city.example.jp"
    # The stdlib's address parser keeps the folding white space between two encoded words
    # of a display name (RFC 2047 §6.2 says to drop it): compare without white space.
    shown = message["From"].addresses[0].display_name
    assert "".join(shown.split()) == "".join(clean_header_text(settings_name).split())


RULES = [
    SubmissionRule("city"),
    SubmissionRule("town", subject="電子保証認証キー:{{ project_name }} {{ guarantee_number }}",
                   fields=("工事名", "受注者", "保証契約番号"), charset="iso-2022-jp"),
]
NEEDS = {"city": ("project", "kind"), "town": ("project", "number")}  # body lines, subject
CONTRACTOR = ContractorConfig(name="〇〇建設株式会社", from_addr="denshi@maru.example.jp",
                              staff=("jimu@maru.example.jp",), person="工務部 〇〇",
                              contact="03-0000-0000")


@FUZZ
@given(rule=st.sampled_from(RULES), number=hostile, kind=st.one_of(st.none(), hostile),
       project=hostile, contractor=st.one_of(st.none(), hostile),
       surety=st.one_of(st.none(), hostile), filenames=st.lists(hostile, min_size=1, max_size=3),
       issuer=hostile)
def test_any_submission_renders(rule, number, kind, project, contractor, surety, filenames,
                                issuer):
    notice = Notice(number, "Z28YUEAJ38ux", kind, project, contractor, surety)
    files = [File(name, b"%PDF-1.4 " + name.encode("utf-8", "surrogatepass"))
             for name in filenames]
    try:
        context = submission_context(notice, rule, CONTRACTOR, issuer, None, "R8-015")
        raw, subject = render_submission(context, rule, CONTRACTOR, "keiyaku@city.example.jp",
                                         files, MESSAGE_ID, NOW, (REPO_TEMPLATES,))
    except SubmissionError as exc:
        # Only a value the form needs and nobody knows (empty once cleaned) is a reason.
        assert "分かりません" in str(exc), exc
        needed = {"project": project, "kind": kind, "number": number}
        assert not all(clean_header_text(needed[n] or "") for n in NEEDS[rule.issuer])
        return
    message = check(raw, SUBMISSION_HEADERS)
    assert str(message["Subject"]) == subject
    if rule.charset == "iso-2022-jp":  # the issuer reads ISO-2022-JP headers only
        assert b"=?utf-8?" not in raw.split(b"\r\n\r\n", 1)[0].lower()
    attached = [p for p in message.iter_attachments()]
    assert len(attached) == len(files)
    for part, file in zip(attached, files, strict=True):
        assert part.get_content() == file.data
        assert part.get_filename() is not None


def test_a_notice_that_cannot_be_written_is_a_reason_not_a_crash(tmp_path: Path):
    """A body template that raises: the staff get the notice with the reason."""
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "submission.txt.j2").write_text("{{ 1 // 0 }}", encoding="utf-8")
    notice = Notice("35075-00001M", "Z28YUEAJ38ux", "前払金保証", "〇〇工事", None, None)
    context = submission_context(notice, RULES[0], CONTRACTOR, "〇〇市", None, "R8-015")
    try:
        render_submission(context, RULES[0], CONTRACTOR, "keiyaku@city.example.jp",
                          [File("a.pdf", b"%PDF")], MESSAGE_ID, datetime.now(UTC),
                          (tmp_path, REPO_TEMPLATES))
    except SubmissionError as exc:
        assert "提出メールを作成できません" in str(exc) and "ZeroDivisionError" in str(exc)
    else:
        raise AssertionError("the template raised, the renderer did not say so")
