"""No page of the console shows a key in clear (issue 16): every account crawls every page it
can reach from `/` (links, the search forms with every number, every filter the pages
offer), and no response holds any full key of the store, in any form, nor a key's hash; the
raw-mail download is the one place a key may be, and only for an operator.

The mails are hostile where it matters: a key typed into the Subject and the display name,
the key of *another* guarantee typed in a Subject (no notice of the mail names it, so only
`mailbot/web/redact.py` can catch it), full-width letters, and a quarantined row whose error
text quotes a key.
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from html import unescape
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import select

from mailbot.daemon import Pipeline
from mailbot.outgoing import Outgoing
from mailbot.store import GuaranteeEvent
from mailbot.store.schema import versions
from mailbot.web.redact import KeyRedactor
from parsers import Reader

from .test_submission_forms import mail
from .web_console import ACCOUNTS, console

pytestmark = pytest.mark.clock

MARU_OLD, MARU_NEW, BATSU, QUEUE = "Z28YUEAJ38ux", "Qm7Rt2Lp9Vx4", "Hb5Nc8Kd3Wy6", "Jt4Ps9Gm2Zq7"
STORED = (MARU_OLD, MARU_NEW, BATSU)  # the issuers' keys; QUEUE is only in a notice mail
KEYS = (*STORED, QUEUE)
MAX_PAGES = 400


def full_width(key: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) for c in key)


def typed(number: str, key: str, subject: str, sender_name: str = "〇〇建設 工務部") -> bytes:
    """A mail whose notice is in its body text and whose Subject carries what was typed."""
    message = EmailMessage()
    message["From"] = f"{sender_name} <tanto@maru.example.jp>"
    message["To"] = "keiyaku@maru.example.jp"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="maru.example.jp")
    message.set_content(f"保証契約番号 {number}\n認証キー {key}\nよろしくお願いします。\n")
    return message.as_bytes()


@pytest.fixture
def web(tmp_path):
    start = datetime.now(UTC).replace(microsecond=0)
    with console(tmp_path, clock=lambda: start) as running:
        running.store.apply([
            GuaranteeEvent("35075-00001M", "new", MARU_OLD, kind="前払金保証", issuer="〇〇市",
                           contractor="〇〇建設株式会社", project_name="〇〇浄水場修繕工事",
                           source="t"),
            GuaranteeEvent("35075-00001M", "amendment", MARU_NEW, change_no=1, source="t2"),
            GuaranteeEvent("35075-00002M", "new", BATSU, kind="前払金保証", issuer="△△町",
                           contractor="〇〇建設株式会社", project_name="△△橋補修工事",
                           source="t"),
        ])
        yield running


def deliver(web) -> dict[str, list[int]]:
    """Every kind of mail the console shows, decided by the real pipeline; ids by mailbox."""
    ids: dict[str, list[int]] = {"maru": [], "batsu": [], "queue": []}
    raws = [
        ("maru", mail("35075-00001M", "〇〇浄水場修繕工事", key=MARU_NEW)),
        ("maru", mail("35075-00001M", "〇〇浄水場修繕工事", key=MARU_OLD)),  # superseded
        ("maru", typed("35075-00001M", MARU_NEW, f"認証キー {MARU_NEW} 送付",
                       sender_name=f"キー{full_width(MARU_NEW)}")),
        # Another guarantee's key in the Subject: no notice of this mail names it.
        ("maru", typed("35075-00001M", MARU_NEW, f"参考 {BATSU} の件")),
        ("maru", typed("35075-00001M", MARU_NEW, f"全角 {full_width(MARU_OLD)}")),
        ("batsu", mail("35075-00002M", "△△橋補修工事", key=BATSU)),
        ("queue", mail("35075-00003M", "〇〇線道路改良工事", key=QUEUE)),
    ]
    for mailbox, raw in raws:
        ids[mailbox].append(web.ledger.receive(mailbox, raw, now=web.clock()).id)
    pipeline = Pipeline(web.config, web.store, web.ledger, Reader(), clock=web.clock)
    while pipeline.process_one():
        pass
    # Our bug, quoting a key in its error: the row ends quarantined.
    stuck = web.ledger.receive("maru", typed("35075-00001M", MARU_OLD, "隔離"),
                               now=web.clock()).id
    while True:
        entry = web.ledger.claim(now=web.clock() + timedelta(days=1))
        assert entry is not None and entry.id == stuck
        if web.ledger.fail(stuck, f"ValueError: bad key {MARU_OLD}") == "quarantined":
            break
    ids["maru"].append(stuck)
    Outgoing(web.config, web.store).queue(web.clock())  # the replies, rendered, as stored
    return ids


LINK = re.compile(r'\b(?:href|action)="([^"]*)"')


def forms_and_links(base: str, html: str) -> list[str]:
    """Every same-site GET target on the page: links, and each GET form with each of its
    select options (one at a time) and no text typed."""
    found = [unescape(u) for u in LINK.findall(html)]
    for form in re.findall(r'<form(?![^>]*method="post")[^>]*>.*?</form>', html, re.S | re.I):
        action = re.search(r'action="([^"]*)"', form)
        target = unescape(action.group(1)) if action else base
        for select_ in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form,
                                  re.S):
            name, options = select_
            for value in re.findall(r'<option[^>]*value="([^"]*)"', options):
                if value:
                    found.append(f"{target}?{name}={value}")
    return found


def crawl(client, extra: list[str]) -> dict[str, str]:
    """Path → HTML of every page reachable; the raw downloads are fetched but kept apart."""
    seen: dict[str, str] = {}
    queue = deque(["/", *extra])
    while queue and len(seen) < MAX_PAGES:
        path = queue.popleft()
        parts = urlsplit(path)
        if parts.scheme or parts.netloc or path in seen or path.startswith(("/static",
                                                                            "/logout")):
            continue
        answer = client.get(path)
        if answer.status_code in (301, 302, 303, 307):
            queue.append(answer.headers["location"])
            seen[path] = ""
            continue
        seen[path] = answer.text
        if path.endswith("/raw") or "html" not in answer.headers.get("content-type", ""):
            continue
        for target in forms_and_links(path, answer.text):
            queue.append(urljoin(path, target))
    return seen


def clear_forms(web) -> list[str]:
    forms = []
    for key in KEYS:
        forms += [key, key.lower(), key.upper(), full_width(key), web.store.hash_key(key)]
    with web.store.engine.connect() as conn:
        forms += list(conn.execute(select(versions.c.key_hash, versions.c.row_hash)).scalars())
    return forms


def test_no_page_of_any_account_shows_a_key(web):
    ids = deliver(web)
    forms = clear_forms(web)
    # A key of the store searched for is masked even in the search box; QUEUE is searched
    # for by no one (what a person types is echoed back to that person).
    searches = [f"/{page}?q={q}" for page in ("mails", "guarantees", "submissions")
                for q in ("35075-00001M", "35075-00002M", "35075-00003M", "〇〇", *STORED)]
    raw_seen = False
    for name, (role, _issuers, _contractor) in ACCOUNTS.items():
        client = web.login(name)
        pages = crawl(client, searches)
        assert len(pages) >= 5, (name, sorted(pages))
        for path, html in pages.items():
            if path.endswith("/raw"):
                raw_seen = True
                assert role != "viewer"
                continue
            folded = unicodedata.normalize("NFKC", unescape(html))
            for secret in forms:
                assert secret not in html and secret not in folded, (name, path, secret)
        if name == "admin":  # the admin sees every mail: each one's page was rendered
            for mailbox_ids in ids.values():
                for row in mailbox_ids:
                    assert f"/mails/{row}" in pages, (row, sorted(pages))
    assert raw_seen, "the crawl reached no raw download: the mail page offers none"


def test_a_key_of_the_store_in_a_page_is_masked_wherever_it_came_from(web):
    redactor = KeyRedactor(web.store)
    page = (f"<td>{BATSU}</td><td>x{BATSU}</td><td>{full_width(MARU_NEW)}</td>"
            f"<td>{MARU_OLD}a</td><td>NotAKey12345</td>")
    out = redactor.redact(page)
    assert BATSU not in out.replace(f"x{BATSU}", "")  # a run flush against others is kept
    assert "<td>Hb5N********</td>" in out and f"x{BATSU}" in out
    assert "<td>Qm7R********</td>" in out  # full-width: masked in its NFKC form
    assert f"<td>{MARU_OLD}a</td>" in out  # a longer run is no key
    assert "<td>NotAKey12345</td>" in out  # not a key of the store: unchanged


def test_what_no_decision_masked_has_every_key_like_word_masked():
    from mailbot.web.redact import mask_key_like

    shown = mask_key_like(f"件名 {full_width(MARU_NEW)} / KEY{BATSU} / utf8mb4 / abcdefghij / "
                          "20261201 / 〇〇建設")
    assert shown == ("件名 Qm7R******** / KEYH*********** / utf8mb4 / abcdefghij / "
                     "20261201 / 〇〇建設")
