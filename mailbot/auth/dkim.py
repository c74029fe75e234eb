"""DKIM (RFC 6376) verified by mailbot itself with dkimpy, keys fetched through `Lookup`.

Every `DKIM-Signature` up to `MAX_SIGNATURES` (topmost first) is checked and gives one
`DkimCheck`: `pass`; `fail` (the signature does not verify: body or signed headers altered,
wrong key); `permerror` (the signature or its key record is malformed, the key is absent or
revoked, or the library tripped over the message); `temperror` (the key lookup timed out); `policy` (it verifies, but leaves a field mailbot
decides on unsigned, or the body's tail: `covers`).
A sender who piles up signatures costs at most `MAX_SIGNATURES` key lookups.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import dkim
from dkim.util import parse_tag_value

from .dmarc import aligned
from .dns import Lookup, TempError
from .verdict import DkimCheck, Result

MAX_SIGNATURES = 5
MIN_KEY_BITS = 1024
# Fields mailbot decides on (who wrote it, where replies go, which submission it answers,
# what it says). A signature that leaves one instance of them
# unsigned, or signs only the first `l=` bytes of the body, proves nothing about the mail
# as mailbot reads it: an extra Subject or In-Reply-To written on top (the first instance is
# the one read, DKIM signs from the bottom), or text appended to a genuine answer, would
# ride on the signer's name. Such a signature is `policy` (RFC 8601: not accepted locally).
COVERED = (b"from", b"reply-to", b"subject", b"in-reply-to", b"references",
           b"x-mailbot-result")

_quiet = logging.getLogger("mailbot.auth.dkimpy")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False  # dkimpy logs message text at ERROR; mailbot logs no mail content


def dnsfunc(lookup: Lookup) -> Callable[..., bytes | None]:
    """dkimpy's TXT lookup (name as bytes → the first record, or None) over `lookup`; a
    temporary DNS failure is dkimpy's `DnsTimeoutError`."""
    def get_txt(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            records = lookup.txt(name.decode("ascii"))
        except UnicodeDecodeError:
            return None
        except TempError as exc:
            raise dkim.DnsTimeoutError(str(exc)) from None
        return records[0] if records else None
    return get_txt


def _tags(value: bytes) -> dict[bytes, bytes]:
    try:
        return parse_tag_value(b"".join(value.split()))
    except Exception:  # noqa: BLE001 — an unparsable signature has no tags
        return {}


def _text(value: bytes | None) -> str | None:
    if not value:
        return None
    return value.decode("ascii", "replace").lower()[:253]


def covers(header_names: list[bytes], signature: bytes) -> bool:
    """Does the DKIM-Signature `signature` sign every instance of the `COVERED` fields among
    `header_names` (the mail's field names, any case) and the whole body (no `l=`)?"""
    tags = _tags(signature)
    if not tags or b"l" in tags:
        return False
    signed = [n.strip().lower() for n in tags.get(b"h", b"").split(b":")]
    names = [n.strip().lower() for n in header_names]
    return all(names.count(n) <= signed.count(n) for n in COVERED)


def _key_problem(lookup: Lookup, domain: str, selector: str | None) -> str | None:
    """`temperror` or `permerror` when the signature's key cannot be had, else None. (dkimpy
    reads a missing key and a DNS timeout both as a plain failure; asked here first, the
    answer is cached for its own lookup.)"""
    if not domain or not selector:
        return Result.PERMERROR
    name = f"{selector}._domainkey.{domain}"
    try:
        records = lookup.txt(name)
    except TempError:
        return Result.TEMPERROR
    if not records:
        return Result.PERMERROR  # no key published under the selector
    try:
        dkim.evaluate_pk(name.encode(), records[0])
    except Exception:  # noqa: BLE001 — revoked (p=), not a key, unknown algorithm
        return Result.PERMERROR
    return None


def check_dkim(raw: bytes, lookup: Lookup, from_domain: str | None) -> tuple[DkimCheck, ...]:
    """One `DkimCheck` per signature checked (see the module docstring); () when unsigned."""
    try:
        verifier = dkim.DKIM(raw, logger=_quiet, minkey=MIN_KEY_BITS)
        signatures = [value for name, value in verifier.headers
                      if name.lower() == b"dkim-signature"]
    except Exception:  # noqa: BLE001 — a message dkimpy cannot split has no checkable signature
        return ()
    checks = []
    get_txt = dnsfunc(lookup)
    for index, value in enumerate(signatures[:MAX_SIGNATURES]):
        tags = _tags(value)
        domain = _text(tags.get(b"d")) or ""
        selector = _text(tags.get(b"s"))
        key_problem = _key_problem(lookup, domain, selector)
        if key_problem is not None:
            checks.append(DkimCheck(domain, key_problem, selector, aligned(domain, from_domain)))
            continue
        try:
            result = Result.PASS if verifier.verify(index, dnsfunc=get_txt) else Result.FAIL
            if result == Result.PASS and not covers([n for n, _v in verifier.headers], value):
                result = Result.POLICY
        except dkim.DnsTimeoutError:
            result = Result.TEMPERROR
        except dkim.KeyFormatError:
            result = Result.PERMERROR  # no key, revoked, or not a key
        except dkim.ValidationError as exc:
            # the body was altered after signing; else a malformed or expired signature
            result = Result.FAIL if "body hash" in str(exc) else Result.PERMERROR
        except dkim.DKIMException:
            result = Result.PERMERROR
        except Exception:  # noqa: BLE001 — the library's fault on hostile input
            result = Result.PERMERROR
        checks.append(DkimCheck(domain, result, selector, aligned(domain, from_domain)))
    return tuple(checks)
