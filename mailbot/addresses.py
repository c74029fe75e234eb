"""Can an address taken from a mail be written to? A strict RFC 5322 / RFC 5321 check.

A header address is the sender's bytes: it may carry control characters, an encoded word
that was never decoded, a `|` in its domain or a 300-character label. Such an address gets
no reply, and the decision records why (the `answerable` rule of `mailbot.pipeline.safety`).

The syntax is checked by `email-validator` (syntax only: no DNS, no deliverability probe).
It implements the RFC 5322 dot-atom and quoted-string local parts, the RFC 5321 length
limits, hostnames of LDH labels and IDNA 2008 (with UTS #46 mapping, through `idna`), and it
says in one sentence what is wrong, which is what the decision record needs; a hand-written
regex gets IDN and the length rules wrong. On top of it, this module decides:

- No control characters (C0, DEL, C1), no U+FFFD and no lone surrogates (bytes that did not
  decode), no ``=?`` (an RFC 2047 encoded word left undecoded: RFC 2047 §5 allows none in an
  addr-spec, so one there means the header was broken or decoded wrongly).
- The local part is ASCII: replies are sent without SMTPUTF8 (RFC 6531), so a ``田中@…``
  cannot be answered. A quoted local part is accepted when the quotes hold only letters,
  digits, atext symbols, dots and spaces — what the legacy addresses of Japanese mobile
  carriers need (``"taro..yamada"@docomo.ne.jp``); a backslash, a quote or one of
  ``( ) < > [ ] : ; @ ,`` inside the quotes is refused: that is how one address is made to
  mean another to different parsers and relays. The unquoted ``taro..yamada@…`` is invalid
  RFC 5322 and gets no reply.
- The domain is a hostname with a real top-level domain (not numeric, not special-use such
  as ``.test``, ``.local``, ``.invalid``, ``.onion``), each label at most 63 octets, the
  address at most 254 (RFC 5321 §4.5.3.1). An internationalised domain (``例え.jp``) is
  accepted when IDNA encodes it, and the reply goes to its A-label form (``xn--…``), which
  every relay delivers. A domain literal (``[192.0.2.1]``) is valid RFC 5322 but refused:
  no contractor writes from one, and a reply to an IP address is a way to make our relay
  reach hosts it should not.

The small helpers below take an address apart (`local_part`, `domain_of`) and compare
addresses (`same_address`, `in_domains`) for every module that needs it, on top of
`email.headerregistry.Address`; they never raise, whatever bytes a sender wrote.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.headerregistry import Address

from email_validator import EmailNotValidError, validate_email

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffd]")
_QUOTED_LOCAL = re.compile(r"\"[A-Za-z0-9!#$%&'*+/=?^_`{|}~. -]+\"")
_MAX_INPUT = 1000  # longer than any valid address: refused before the library works on it


class Unanswerable(ValueError):
    """The address cannot be written to; ``str()`` says why, for the decision record."""


def reply_address(address: str | None) -> str:
    """`address` as an SMTP recipient: ASCII, domain in lower case, IDN as A-labels.

    Raises `Unanswerable` saying why when it is not a valid RFC 5322 mailbox we can send to.
    """
    if not address:
        raise Unanswerable("no address")
    bad = _CONTROL.search(address)
    if bad:
        raise Unanswerable(f"a control character or an undecodable byte (U+{ord(bad.group()):04X})")
    if "=?" in address:
        raise Unanswerable("an RFC 2047 encoded word left undecoded (=?…?=)")
    if len(address) > _MAX_INPUT:
        raise Unanswerable(f"{len(address)} characters, far over the 254 of RFC 5321")
    try:
        valid = validate_email(
            address, check_deliverability=False, allow_smtputf8=False,
            allow_quoted_local=True, allow_domain_literal=True, globally_deliverable=True,
            strict=True)
    except EmailNotValidError as exc:
        raise Unanswerable(str(exc)) from None
    except Exception as exc:  # a library fault on hostile input: refusing is the safe answer
        raise Unanswerable(f"the address could not be checked ({exc!r:.100})") from None
    if getattr(valid, "domain_address", None) is not None:  # set only for a domain literal
        raise Unanswerable("a domain literal (an IP address): replies go to host names only")
    local, domain = valid.ascii_local_part, valid.ascii_domain
    if local is None or domain is None:  # allow_smtputf8=False: both are set when valid
        raise Unanswerable("no ASCII form")
    if local.startswith('"') and not _QUOTED_LOCAL.fullmatch(local):
        raise Unanswerable("a quoted local part holding a backslash, a quote or one of "
                           "( ) < > [ ] : ; @ ,")
    result = f"{local}@{domain}"
    # RFC 5321 §4.5.3.1, checked on what is sent (the library checks it too).
    if len(local) > 64 or len(result) > 254 or any(len(x) > 63 for x in domain.split(".")):
        raise Unanswerable("longer than RFC 5321 allows")
    return result


def _parts(address: str) -> tuple[str, str]:
    """(local part, domain) of an addr-spec holding an "@", as `Address` reads it (quotes
    removed: ``"postmaster"@x`` is postmaster); when it cannot, split at the last "@"."""
    try:
        parsed = Address(addr_spec=address)
        return parsed.username, parsed.domain
    except Exception:  # noqa: BLE001 — a hostile address still has a last "@"
        local, _, domain = address.rpartition("@")
        return local, domain


def local_part(address: str | None) -> str | None:
    """The local part of `address` (the whole text when it holds no "@"), or None."""
    if not address:
        return None
    return _parts(address)[0] if "@" in address else address


def domain_of(address: str | None) -> str | None:
    """The domain of `address`, lower-case, or None when it holds no "@"."""
    if not address or "@" not in address:
        return None
    return _parts(address)[1].lower()


def same_address(one: str | None, other: str | None) -> bool:
    """Whether two addresses are the same, ignoring case (as mailbot stores them)."""
    return bool(one) and bool(other) and (one or "").lower() == (other or "").lower()


def in_domains(domain: str | None, domains: Iterable[str]) -> bool:
    """`domain` is one of `domains` or a subdomain of one (mail.city.example.jp)."""
    if not domain:
        return False
    domain = domain.lower()
    return any(domain == d or domain.endswith("." + d) for d in domains)


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# Our own sender (`[smtp] from`, an issuer's `reply_from`, the contractor's `from`): a plain
# ASCII dot-atom @ host, a host without a dot included (the default mailbot@localhost). It
# comes from the admin's configuration, so it is not held to the rule for others' addresses.
_OWN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")


def is_own_address(address: str) -> bool:
    """Whether `address` may be our own sender (see `_OWN_ADDRESS`): checked when the
    configuration is loaded and again when a mail is written."""
    return _OWN_ADDRESS.fullmatch(address) is not None
