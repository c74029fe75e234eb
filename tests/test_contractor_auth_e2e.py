"""Both sides through Dovecot, with real DKIM and DMARC: only the signed issuer settles.

The issuer's outgoing MTA is the relay here: it DKIM-signs (dkimpy) every mail from
issuer.example.jp, whose key and `p=reject` DMARC record a real DNS server on loopback
publishes (tests/dns_server.py); the contractor's daemon verifies with that resolver.
A forged 確認しました with a forged `X-Mailbot-Result`, delivered straight into the
contractor's mailbox, leaves the submission `sent` and tells the staff; so does a forged
bounce; the issuer's signed answer then confirms it. A real bounce to the submission's
tokened envelope sender, naming its Message-ID, fails it.
"""

from __future__ import annotations

from email.utils import make_msgid

import pytest

from mailbot.config import load_config
from mailbot.store.schema import ledger, submissions

from .conftest import CONTRACTOR_ADDRESS, ISSUER_ADDRESS
from .dkim_keys import publish, sign
from .dns_server import dns_server
from .test_contractor_auth import dsn
from .test_contractor_e2e import STAFF, Relay, rows, surety_mail
from .test_daemon import Running, wait_for

pytestmark = pytest.mark.clock

ISSUER_DOMAIN = ISSUER_ADDRESS.split("@")[1]
BOUNCE = "bounce@maru.example.jp"


class SigningRelay(Relay):
    """The relay, signing what the issuer sends as its outgoing MTA would."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        raw = envelope.original_content or envelope.content
        head = raw.split(b"\n\n", 1)[0].lower()
        if f"from: {ISSUER_ADDRESS}".encode() in head or f"<{ISSUER_ADDRESS}>".encode() in head:
            signed = sign(raw, ISSUER_DOMAIN)
            envelope.original_content = envelope.content = signed
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def world(dovecot, tmp_path, monkeypatch):
    from aiosmtpd.controller import Controller

    from .servers import free_port
    from .test_contractor_e2e import _configs

    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", "secret")
    relay = SigningRelay(dovecot)
    controller = Controller(relay, hostname="127.0.0.1", port=free_port())
    controller.start()
    relay.port = controller.port
    with dns_server() as dns:
        publish(dns, ISSUER_DOMAIN)
        dns.txt(f"_dmarc.{ISSUER_DOMAIN}", "v=DMARC1; p=reject")
        issuer_store, contractor_store = _configs(tmp_path, dovecot, relay, dns.address)
        path = tmp_path / "contractor.toml"
        text = path.read_text(encoding="utf-8").replace(
            f'[auth]\nrequire = "none"\nresolvers = ["{dns.address}"]\n', "")
        text = text.replace(f'staff = ["{STAFF}"]\n',
                            f'staff = ["{STAFF}"]\nbounce_address = "{BOUNCE}"\n', 1)
        path.write_text(text + f'[auth]\nresolvers = ["{dns.address}"]\ntimeout_seconds = 2\n',
                        encoding="utf-8")
        try:
            yield relay, issuer_store, contractor_store
        finally:
            issuer_store.close()
            contractor_store.close()
            controller.stop()


def forged(message_id: str, text: str, result: str | None = None) -> bytes:
    """A mail claiming to be the issuer's answer, written by someone else (no signature)."""
    extra = f"X-Mailbot-Result: {result}\n" if result else ""
    return (f"From: {ISSUER_ADDRESS}\nTo: {CONTRACTOR_ADDRESS}\n"
            f"Subject: Re: 【電子保証】\nMessage-ID: {make_msgid(domain='attacker.example.jp')}\n"
            f"In-Reply-To: {message_id}\n{extra}MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
            f"{text}\n").encode()


def decided(store) -> int:  # noqa: ANN001
    return sum(1 for r in rows(store, ledger) if r.state not in ("received", "processing"))


def test_forgeries_change_nothing_and_the_signed_answer_confirms(world, dovecot, tmp_path):
    relay, issuer_store, contractor_store = world
    dovecot.deliver(CONTRACTOR_ADDRESS, surety_mail("35075-00001M", "Z28YUEAJ38ux",
                                                    "〇〇浄水場△△修繕工事"))
    contractor = load_config(tmp_path / "contractor.toml")
    with Running(contractor, contractor_store):
        wait_for(lambda: [r.state for r in rows(contractor_store, submissions)] == ["sent"],
                 90, "the submission sent")
        [sub] = rows(contractor_store, submissions)
        dovecot.deliver(CONTRACTOR_ADDRESS, forged(sub.message_id, "確認しました。",
                                                   "verified; 35075-00001M=verified"))
        dovecot.deliver(CONTRACTOR_ADDRESS, dsn(CONTRACTOR_ADDRESS, sub.message_id),
                        sender="")
        wait_for(lambda: decided(contractor_store) == 3, 60, "both forgeries decided")
        assert rows(contractor_store, submissions)[0].state == "sent"
        wait_for(lambda: len(relay.to(STAFF)) == 2, 30, "two staff alerts")
        texts = [m.get_body(("plain",)).get_content() for m in relay.to(STAFF)]
        assert any("発注者からの返信か確認できないメール" in t and "電話" in t for t in texts)
        assert any("配送エラーらしきメール" in t for t in texts)
        with Running(load_config(tmp_path / "issuer.toml"), issuer_store):
            wait_for(lambda: rows(contractor_store, submissions)[0].state == "confirmed",
                     120, "the issuer's signed answer confirms it")


def test_a_real_bounce_to_the_tokened_address_fails_the_submission(world, dovecot, tmp_path):
    relay, _issuer_store, contractor_store = world
    dovecot.deliver(CONTRACTOR_ADDRESS, surety_mail("35075-00001M", "Z28YUEAJ38ux",
                                                    "〇〇浄水場△△修繕工事"))
    with Running(load_config(tmp_path / "contractor.toml"), contractor_store):
        wait_for(lambda: [r.state for r in rows(contractor_store, submissions)] == ["sent"],
                 90, "the submission sent")
        [sub] = rows(contractor_store, submissions)
        [envelope] = [sender for sender, rcpts, _raw in relay.accepted
                      if ISSUER_ADDRESS in rcpts]
        local, _, domain = envelope.partition("@")
        assert local.startswith("bounce+") and domain == "maru.example.jp"
        # The admin's MTA routes bounce+*@maru.example.jp into the contractor's mailbox.
        dovecot.deliver(CONTRACTOR_ADDRESS, dsn(envelope, sub.message_id), sender="")
        wait_for(lambda: rows(contractor_store, submissions)[0].state == "failed", 60,
                 "the bounce fails the submission")
