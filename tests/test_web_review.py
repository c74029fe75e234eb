"""A hostile review of the console's pages (要対応, 提出状況, 稼働状況, the app): what an
attacker, a careless clerk or a hostile mail could do, each a regression test against a real
uvicorn (`tests/web_console.py`)."""

from __future__ import annotations

import email
from email import policy

import pytest

from .test_submission_forms import mail
from .test_web_actions import decide, items, quarantine, register, web  # noqa: F401

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _japanese_error(answer, status: int) -> None:
    assert answer.status_code == status, answer.text[:500]
    assert "<html lang=\"ja\">" in answer.text and "Traceback" not in answer.text


def test_a_non_ascii_digit_id_is_a_400_not_a_500(web):  # noqa: F811
    # "²".isdigit() is True but int("²") raises: a crafted POST or a pasted URL was a 500.
    held = quarantine(web, "maru", "35075-00003M")
    clerk = web.login("maru-clerk")
    for typed in ("²", "1²", "١"):
        _japanese_error(clerk.post("/attention/act", {"kind": "quarantine", "id": typed,
                                                      "action": "retry"},
                                   token_page="/attention"), 400)
    assert web.ledger.get(held).state == "quarantined"
    contractor = web.login("contractor")
    for typed in ("²", "1²", "١٢"):
        answer = contractor.get("/submissions", params={"before": typed})
        assert answer.status_code == 200, answer.text[:500]  # ignored, as any other garbage


def test_an_error_page_carries_the_security_headers_too(web, monkeypatch):  # noqa: F811
    # An unexpected exception is answered by Starlette's outermost ServerErrorMiddleware,
    # outside the middleware that added the headers: a 500 went out without CSP.
    from mailbot.web import health_view

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(health_view, "sources", broken)
    answer = web.login("maru-clerk").get("/health")
    _japanese_error(answer, 500)
    assert "frame-ancestors 'none'" in answer.headers.get("content-security-policy", "")
    assert answer.headers.get("x-content-type-options") == "nosniff"
    assert answer.headers.get("cache-control") == "no-store"


@pytest.mark.parametrize("invisible", ["\u200b", "\u00ad", "\u2060", "\u200d"])
def test_a_key_split_by_an_invisible_character_is_masked(web, invisible):  # noqa: F811
    # A contractor types another guarantee's key into a Subject with a zero-width space
    # (or a soft hyphen) inside it: the reader sees the key, the redactor saw two short runs.
    register(web, "35075-00001M", "〇〇市")  # the store's key Z28YUEAJ38ux
    message = email.message_from_bytes(mail("35075-00002M", "〇〇浄水場修繕工事"),
                                       policy=policy.default)
    del message["Subject"]
    message["Subject"] = f"別件 Z28Y{invisible}UEAJ38ux です"
    row = decide(web, "maru", message.as_bytes())
    page = web.login("maru-clerk").get("/attention").text
    assert f"review-{row}" in items(page)
    shown = page.replace(invisible, "").replace("&shy;", "")
    assert "Z28YUEAJ38ux" not in shown and "UEAJ38ux" not in shown
    assert "別件 Z28Y********" in shown


def test_a_body_without_its_length_is_refused_before_it_is_read(web):  # noqa: F811
    # read_form bounded the body by its Content-Length only: a chunked POST to /login (no
    # account needed) was parsed whole, its "file" parts spooled to disk without limit.
    sent: list[int] = []  # how much of it the server asked for

    def body():
        yield b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n"
        for _ in range(64):  # 8 MiB, more than MAX_FORM_BYTES
            sent.append(1)
            yield b"x" * (128 * 1024)
        yield b"\r\n--b--\r\n"

    client = web.client()
    client.get("/login")
    answer = client.http.post("/login", content=body(),
                              headers={"content-type": "multipart/form-data; boundary=b"})
    assert answer.status_code == 411, answer.status_code
    assert "<html lang=\"ja\">" in answer.text


def test_a_refused_retry_is_said_in_proper_japanese(web):  # noqa: F811
    # The refusal glued the button's noun to 「ことはできません」: 「再試行ことはできません」.
    from .test_web_actions import act, flash_after

    held = quarantine(web, "maru", "35075-00003M")
    clerk = web.login("maru-clerk")
    flash_after(clerk, act(clerk, "quarantine", held, "retry"))
    again = flash_after(clerk, act(clerk, "quarantine", held, "retry"))
    assert "再試行することはできません" in again, again
