"""mailbot.toml text for tests and benches: one 〇〇市 issuer and one mailbox of it; the
[contractor] table of 〇〇建設 for the contractor side."""

from __future__ import annotations


def issuer_config(store_url: str, spool: object = "spool", *, imap_port: int | None = None,
                  user: str = "keiyaku@issuer.example.jp",
                  password_env: str = "MAILBOT_TEST_IMAP_PASSWORD", extra: str = "") -> str:
    """An IMAP mailbox on 127.0.0.1:`imap_port` (no TLS), else an LMTP listener."""
    if imap_port is not None:
        source = (f'kind = "imap"\nhost = "127.0.0.1"\nport = {imap_port}\ntls = "none"\n'
                  f'user = "{user}"\npassword_env = "{password_env}"\npoll_seconds = 1\n')
    else:
        source = 'kind = "lmtp"\nlisten = "127.0.0.1:0"\naddresses = ["keiyaku@issuer.example.jp"]\n'
    return (
        f'[store]\nurl = "{store_url}"\n[spool]\ndir = "{spool}"\n'
        '[issuers.maru]\nname = "〇〇市"\n'
        '[[mailboxes]]\nname = "keiyaku"\nrole = "issuer"\nissuer = "maru"\n'
        f"{source}{extra}"
    )


# Who submits on the contractor side (a [contractor] table; its staff hear what needs a person).
CONTRACTOR = """[contractor]
name = "〇〇建設株式会社"
from = "denshi@maru.example.jp"
person = "工務部 〇〇"
contact = "03-0000-0000"
staff = ["jimu@maru.example.jp"]
"""


def smtp_config(port: object, *, sender: str = "keiyaku@issuer.example.jp", extra: str = "",
                digest: bool = False) -> str:
    """[smtp] on 127.0.0.1:`port` from `sender` (`extra`: more [smtp] keys), and a send
    window that answers at once, since tests run at any hour; no daily digest unless
    `digest`. `port` may be a ``{placeholder}`` for a later `str.format`."""
    return (f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nfrom = "{sender}"\n{extra}'
            '[send_window]\nimmediate = ["confirmation", "discrepancy"]\n'
            + ("" if digest else "[digest]\nenabled = false\n"))


def submitting_issuer(key: str, name: str, *, issuer: str = "", submission: str = "") -> str:
    """An [issuers.`key`] table named `name` (`issuer`: more of its keys) whose
    submissions go to keiyaku@city.example.jp with the project name in the subject
    (`submission`: more keys of its [issuers.`key`.submission]). Braces are doubled for a
    later `str.format`."""
    return (f'[issuers.{key}]\nname = "{name}"\n{issuer}'
            f'[issuers.{key}.submission]\nto = "keiyaku@city.example.jp"\n'
            'subject = "【電子保証】{{{{ project_name }}}}"\n' + submission)


def store_and_relay(url: str, port: object, sender: str = "keiyaku@city.example.jp") -> str:
    """[store] at `url` and [smtp] to the test relay on 127.0.0.1:`port`, from `sender`."""
    return (f'[store]\nurl = "{url}"\n[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
            f'from = "{sender}"\n')


def imap_issuer(password_env: str, issuer_keys: str = "") -> str:
    """〇〇市 (`issuer_keys`: more of its keys) with an IMAP mailbox on 127.0.0.1 whose
    password is in the variable `password_env`."""
    return (f'[issuers.maru]\nname = "〇〇市"\n{issuer_keys}[[mailboxes]]\nname = "keiyaku"\n'
            'role = "issuer"\nissuer = "maru"\nkind = "imap"\nhost = "127.0.0.1"\n'
            f'user = "keiyaku@issuer.example.jp"\npassword_env = "{password_env}"\n')


def lmtp_mailbox(issuer: str) -> str:
    """An LMTP mailbox of the issuer role named like its [issuers.`issuer`]."""
    return (f'[[mailboxes]]\nname = "{issuer}"\nrole = "issuer"\nissuer = "{issuer}"\n'
            'kind = "lmtp"\nlisten = "127.0.0.1:0"\n')
