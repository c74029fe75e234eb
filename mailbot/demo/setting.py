"""The demo's world: the issuer and contractor, the sample mails and notifications it sends,
what it expects of each, the daemon's config, and the guarantees it registers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from mailbot.samples.base import EJCS, Sample
from mailbot.samples.notice_pdf import NoticeFields, render_notice_pdf
from mailbot.store import GuaranteeEvent, Store

ISSUER = "〇〇市"
INBOX = "keiyaku@city.example.jp"
CONTRACTOR = "〇〇建設株式会社"
CONTRACTOR_ADDR = "denshi@maru-kensetsu.example.jp"
STAFF = "jimu@maru-kensetsu.example.jp"
SURETY_ADDR = "info@hosho.example.jp"
SECRET = b"demo-secret-not-for-production-0123"
# (sample, what it shows, how its guarantees are registered). All render with the CID font
# reportlab carries, so the demo needs no font package.
CASES = (
    ("ejcs_cid", "all valid", "as sent"),
    ("fullwidth_values", "wrong key", "other key"),
    ("generic_header_table", "unknown number", "not registered"),
    ("forwarded", "wrong issuer", "other issuer"),
    ("zip_encrypted", "password-protected zip", "as sent"),
    ("two_pdfs", "two notices in one mail", "as sent"),
    ("body_shift_jis", "typed in the body", "as sent"),
)


@dataclass(frozen=True)
class Notification:
    """A surety's notice arriving in the contractor's queue, and what the demo expects."""

    name: str
    shows: str
    fields: NoticeFields
    registered_key: str | None  # None: the number is not in the store
    expected: str  # the submission's final state


# The contractor side. Numbers, keys and projects are the demo's own (no sample uses them).
NOTIFICATIONS = (
    Notification("surety_valid", "registered, same key", NoticeFields(
        "36201-00101A", "Dm4Kp7Rw2Xz9", "前払金保証", "〇〇公園整備工事", CONTRACTOR, EJCS),
        "Dm4Kp7Rw2Xz9", "confirmed"),
    Notification("surety_wrong_key", "registered, other key", NoticeFields(
        "36201-00102B", "Hn3Vt8Qy5Lc6", "契約保証", "〇〇公園整備工事", CONTRACTOR, EJCS),
        "Hn3Vt8Qy5Lc7", "discrepancy"),
    Notification("surety_unroutable", "unknown number, no rule", NoticeFields(
        "36201-00103C", "Wb6Js1Mf9Ge2", "前払金保証", "△△地区排水路改修工事", CONTRACTOR, EJCS),
        None, "unroutable"),
)
FINAL = ("confirmed", "discrepancy", "answered", "unroutable", "failed", "cancelled")

CONFIG = """
[store]
url = "sqlite:///{db}"
[spool]
dir = "{spool}"
[smtp]
host = "127.0.0.1"
port = {sink_port}
from = "{inbox}"
[send_window]
# The demo runs at any hour: replies go out at once. A real config keeps the window.
immediate = ["confirmation", "discrepancy"]
[digest]
enabled = false
[issuers.city]
name = "{issuer}"
reply_from = "{inbox}"
reply_name = "{issuer} 契約検査課"
staff = ["kensa@city.example.jp"]

# The contractor side: how {issuer} wants guarantees submitted.
[issuers.city.submission]
to = "{inbox}"
# The demo runs both sides on one machine and no MTA signs its mail: the contractor side
# takes this issuer's answers as they are (`config check` warns). A real config keeps the
# default, an aligned DMARC pass (docs/authentication.md).
auth = "none"
subject = "【電子保証】{{{{ project_no }}}} {{{{ project_name }}}}"
subject_by_kind = {{ "前払金保証" = "【前払金書類】{{{{ project_no }}}}" }}
fields = ["受注者", "担当者氏名・連絡先", "工事名", "工事番号", "保証名称"]
[issuers.city.submission.window]
# The demo runs at any hour, so submissions may go out at any hour too. A real config keeps
# the issuer's office hours (the default: weekdays 09:00-17:00, closed on national holidays
# and 12/29-1/3), or leaves this table out to use [send_window].
start = "00:00"
end = "23:59:59"
weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
skip_holidays = false
year_end_closed = false

[contractor]
name = "{contractor}"
from = "{contractor_addr}"
person = "工事部 〇〇"
contact = "000-0000-0000"
staff = ["{staff}"]

[[projects]]
name = "〇〇公園"
project = "〇〇公園整備工事"
issuer = "city"
project_no = "R8-0412"

[[mailboxes]]
name = "keiyaku"
role = "issuer"
issuer = "city"
kind = "lmtp"
listen = "127.0.0.1:0"
addresses = ["{inbox}"]

# The contractor's notification queue, on the same listener.
[[mailboxes]]
name = "denshi"
role = "contractor"
kind = "lmtp"
listen = "127.0.0.1:0"
addresses = ["{contractor_addr}"]
"""



def _register(store: Store, samples: dict[str, Sample]) -> None:
    # One store serves both sides here: the issuer verifies against it and the contractor
    # finds the issuer of a number in it. Real deployments have one store per organisation.
    events = []
    for name, _what, how in CASES:
        for notice in samples[name].expected["notices"]:
            if how == "not registered":
                continue
            key = "Wr0ngKeyDemo" if how == "other key" else notice["auth_key"]
            issuer = "△△町" if how == "other issuer" else ISSUER
            events.append(GuaranteeEvent(
                notice["guarantee_number"], "new", key, kind=notice["kind"], issuer=issuer,
                contractor=notice["contractor"], project_name=notice["project_name"],
                source=f"demo:{name}"))
    for case in NOTIFICATIONS:
        if case.registered_key is not None:
            f = case.fields
            events.append(GuaranteeEvent(
                f.guarantee_number, "new", case.registered_key, kind=f.kind, issuer=ISSUER,
                contractor=f.contractor, project_name=f.project_name, source=f"demo:{case.name}"))
    store.apply(events)


def _notification_mail(case: Notification) -> bytes:
    """The surety's 「電子保証（認証キー）発行完了のお知らせ」 with the notice PDF attached.
    The text names no issuer: the contractor side must find it by other means."""
    f = case.fields
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = f"保証事業会社（デモ） <{SURETY_ADDR}>"
    msg["To"] = CONTRACTOR_ADDR
    msg["Subject"] = "電子保証（認証キー）発行完了のお知らせ"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(case.name, "hosho.example.jp")
    msg.set_content(f"{f.contractor} 御中\n\n電子保証を発行しました。\n工事名：{f.project_name}\n"
                    "添付の「認証キー」のお知らせをご確認ください。\n")
    msg.add_attachment(render_notice_pdf(f, font="cid"), maintype="application",
                       subtype="pdf", filename="電子保証にかかる「認証キー」のお知らせ.pdf")
    return msg.as_bytes()

