"""Hostile mails: the sample mails mutated the way broken mailers, filters and attackers do.

``hostile_mails(n, seed)`` yields ``n`` mutated mails, the same ones for the same seed (the
bounded fuzz test in CI and ``bench/bench_hostile.py`` use it). Each starts from one of the
sample mails of :func:`mailbot.samples.all_samples` (bombs and the slow PDF left out: they
test the reader's limits, not the daemon's robustness) and gets one to three mutations from
:data:`MUTATIONS`: NUL bytes in headers and bodies, broken RFC 2047 encoded words, nested
comments and control characters in addresses, byte flips, giant folded and unfolded
headers, 8-bit bytes in headers, CR without LF, bare LF, truncated MIME, UTF-8-encoded
surrogates, very long lines, duplicate and malformed headers, broken parameters.

A mutation is a function of the message bytes and a seeded ``random.Random``; it never
needs the message to be well formed (it is applied to already mutated mails).
"""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mailbot.samples.catalog import HOSTILE, NOT_MAIL, VARIANTS, all_samples

Mutation = Callable[[bytes, random.Random], bytes]
CRLF = b"\r\n"
_TOP_HEADERS = (b"From", b"To", b"Subject", b"Message-ID", b"Date", b"Content-Type",
                b"MIME-Version")


@dataclass(frozen=True)
class HostileMail:
    """One mutated mail: what it was made from, how, and its bytes."""

    name: str  # h00042_ejcs_cid
    base: str  # the sample variant it was made from
    mutations: tuple[str, ...]
    data: bytes


# -- helpers ---------------------------------------------------------------------------
def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """(header block, separator, body); a message without a blank line is all headers."""
    for sep in (b"\r\n\r\n", b"\n\n", b"\r\r"):
        head, found, body = raw.partition(sep)
        if found:
            return head, found, body
    return raw, b"", b""


def _eol(head: bytes) -> bytes:
    return b"\r\n" if b"\r\n" in head else (b"\n" if b"\n" in head else b"\r\n")


def _set_header(raw: bytes, name: bytes, value: bytes, rng: random.Random | None = None,
                *, add: bool = False) -> bytes:
    """Replace header `name` (with its folded lines) by `name: value`, or add it at a
    random place among the top headers (`add`, or when it is missing)."""
    head, sep, body = _split(raw)
    eol = _eol(head)
    lines = head.split(eol)
    out: list[bytes] = []
    replaced, skipping = False, False
    for line in lines:
        if skipping and line[:1] in (b" ", b"\t"):
            continue
        skipping = False
        if not add and not replaced and line.lower().startswith(name.lower() + b":"):
            out.append(name + b": " + value)
            replaced, skipping = True, True
            continue
        out.append(line)
    if not replaced:
        at = rng.randrange(len(out) + 1) if rng is not None else len(out)
        out.insert(at, name + b": " + value)
    return eol.join(out) + (sep or eol + eol) + body


def _header_lines(raw: bytes) -> tuple[list[bytes], bytes, bytes, bytes]:
    head, sep, body = _split(raw)
    eol = _eol(head)
    return head.split(eol), eol, sep, body


def _insert(data: bytes, piece: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + piece + data[at:]


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


# -- the mutations ---------------------------------------------------------------------
def nul_in_header(raw: bytes, rng: random.Random) -> bytes:
    """NUL bytes inside a header value (Subject, From, Message-ID …) or a header name."""
    lines, eol, sep, body = _header_lines(raw)
    candidates = [i for i, line in enumerate(lines) if b":" in line] or [0]
    for _ in range(rng.randint(1, 3)):
        i = rng.choice(candidates)
        line = lines[i]
        colon = line.find(b":")
        at = rng.randint(max(colon, 0), len(line)) if rng.random() < 0.85 else rng.randint(0, len(line))
        lines[i] = line[:at] + b"\x00" * rng.choice((1, 1, 2, 8)) + line[at:]
    return eol.join(lines) + (sep or eol + eol) + body


def nul_in_body(raw: bytes, rng: random.Random) -> bytes:
    head, sep, body = _split(raw)
    for _ in range(rng.randint(1, 6)):
        body = _insert(body, b"\x00" * rng.choice((1, 3, 100)), rng)
    return head + (sep or b"\r\n\r\n") + body


_BROKEN_WORDS = (
    b"=?UTF-8?B?44CQ6Zu7?= =?utf-8?b?!!!not*base64?=",
    b"=?x-unknown-charset?Q?abc=E3=81?=",
    b"=?ISO-2022-JP?B?GyRCJT8lJCVIJWsbKE?=",  # missing padding
    b"=?utf-8?q?=E3=81?= =?utf-8?q?=82?=",  # a character split across two words
    b"=?shift_jis?B?gqCCoo?=",
    b"=?UTF-8?B?44CQ6Zu75a2Q5L+d6Ki8",  # never closed
    b"=?UTF-8?B?" + _b64(b"a\x00b\x00c") + b"?=",  # NUL inside the encoded text
    b"=?utf-8?q?a=0D=0ABcc:_victim@example.jp?=",  # CR LF inside the encoded text
    b"=?utf-8?b?" + _b64(b"\xed\xa0\x80\xed\xbf\xbf") + b"?=",  # encoded surrogates
    b"=?utf-8?b?" + _b64("\U0001f600😀①㈱".encode()) + b"?=",
    b"=?Shift_JIS?B?" + _b64("①㈱〇〇建設".encode("cp932")) + b"?=",  # NEC specials
    b"=?iso-2022-jp?b?" + _b64(b"\x1b$B\xff\xfe\x1b(B") + b"?=",
    b"=?utf-8*ja?B?44GC?=",  # RFC 2231 language tag
    b"=?utf-8?X?abc?=",  # unknown encoding letter
    b"=??B?44GC?=",
    b"=?UTF-8?B?" + b"A" * 3000 + b"?=",
    b"=?utf-16?b?" + _b64("〇〇".encode("utf-16-le")) + b"?=",
    b"=?utf-8?b?" + _b64(b"\xff\xfe\xc0\xaf") + b"?=",
)


def broken_encoded_word(raw: bytes, rng: random.Random) -> bytes:
    """Broken RFC 2047 words in the Subject, a display name or a file name."""
    word = rng.choice(_BROKEN_WORDS)
    where = rng.random()
    if where < 0.5:
        return _set_header(raw, b"Subject", word + rng.choice((b"", b" tail", b" \xe5\xb7\xa5")), rng)
    if where < 0.8:
        return _set_header(raw, rng.choice((b"From", b"Reply-To")),
                           word + b" <tanto@maru-kensetsu.example.jp>", rng)
    return re.sub(rb'(name|filename)="[^"]*"', lambda m: m.group(1) + b'="' + word + b'"',
                  raw, count=1)


def _nested(depth: int, core: bytes) -> bytes:
    return b"(" * depth + core + b")" * depth


def nested_comments(raw: bytes, rng: random.Random) -> bytes:
    """Comments in address headers: deep, unbalanced, or hiding an address."""
    depth = rng.choice((3, 30, 300, 3000))
    addr = b"tanto@maru-kensetsu.example.jp"
    forms = (
        _nested(depth, b"x") + b" " + addr,
        b'"\xe5\xb7\xa5" ' + _nested(depth, b"<evil@attacker.example.jp>") + b" <" + addr + b">",
        b"(" * depth + b" <" + addr + b">",  # never closed
        b")" * depth + b" " + addr,
        b"<" + addr + b" " + _nested(depth, b"c") + b">",
        b"tanto" + _nested(depth, b"@evil.example.jp") + b"@maru-kensetsu.example.jp",
        b"(=?utf-8?b?44GC?= (\\) (\\\\)) <" + addr + b">",
        b'"unclosed <' + addr + b">",
        b"\\(" * depth + addr,
    )
    name = rng.choice((b"From", b"Reply-To", b"To", b"Cc", b"Return-Path"))
    return _set_header(raw, name, rng.choice(forms), rng)


_BAD_ADDRESSES = (
    b"tanto\x01@maru-kensetsu.example.jp",
    b"tanto@maru|kensetsu.example.jp",
    b"tanto@maru-kensetsu.example.jp\x7f",
    b"=?utf-8?b?dGFudG9AbWFydS5leGFtcGxlLmpw?=",
    b'"a@b"@maru-kensetsu.example.jp',
    b"<@route.example.jp:tanto@maru-kensetsu.example.jp>",
    b"tanto@[127.0.0.1]",
    b"undisclosed-recipients:;",
    b"\xe6\x8b\x85\xe5\xbd\x93@\xe5\xbb\xba\xe8\xa8\xad.example.jp",  # 8-bit local part and domain
    b"a" * 300 + b"@maru-kensetsu.example.jp",
    b"<>",
    b"tanto@maru-kensetsu.example.jp, evil@attacker.example.jp",
    b"tanto@@maru-kensetsu.example.jp",
    b"tanto@maru-kensetsu.example.jp\r",
    b"tanto@.example.jp",
    b"tanto@maru_kensetsu..example.jp",
    b"<tanto@maru-kensetsu.example.jp\nBcc: evil@attacker.example.jp>",
    b'"\xed\xa0\x80" <tanto@maru-kensetsu.example.jp>',
    b"tanto@xn--zckzah.example.jp",
    b"tanto@maru-kensetsu.example.jp <tanto@maru-kensetsu.example.jp>",
)


def address_garbage(raw: bytes, rng: random.Random) -> bytes:
    """Addresses no reply may go to: control characters, `|`, encoded words, groups …"""
    name = rng.choice((b"From", b"Reply-To", b"Reply-To", b"Sender", b"To"))
    return _set_header(raw, name, rng.choice(_BAD_ADDRESSES), rng)


def byte_flips(raw: bytes, rng: random.Random) -> bytes:
    """A few random bytes anywhere replaced by random values (a bad link, a bad disk)."""
    data = bytearray(raw)
    if not data:
        return raw
    head_len = len(_split(raw)[0])
    for _ in range(rng.randint(1, 24)):
        # Half of the flips land in the header block, where they do the most harm.
        top = head_len if rng.random() < 0.5 and head_len else len(data)
        at = rng.randrange(max(top, 1))
        data[at] = rng.randrange(256)
    return bytes(data)


def giant_header_folded(raw: bytes, rng: random.Random) -> bytes:
    """A header of hundreds of KiB folded over short lines, or thousands of headers."""
    if rng.random() < 0.5:
        words = b"\r\n ".join(b"=?UTF-8?B?" + _b64("〇〇建設工事".encode()) + b"?="
                              for _ in range(rng.choice((500, 5000))))
        return _set_header(raw, rng.choice((b"Subject", b"X-Giant", b"References")), words, rng)
    head, sep, body = _split(raw)
    many = b"".join(b"Received: from relay%d.example.jp by mx.example.jp;\r\n" % i
                    for i in range(rng.choice((500, 3000))))
    return many + head + (sep or b"\r\n\r\n") + body


def giant_header_unfolded(raw: bytes, rng: random.Random) -> bytes:
    """One header on one line: under the listener's line limit (10,000), or over it."""
    length = rng.choice((998, 5000, 9900, 20000))
    value = (b"\xe5\xb7\xa5" * (length // 3)) if rng.random() < 0.3 else b"x" * length
    return _set_header(raw, rng.choice((b"Subject", b"X-Long", b"From", b"Message-ID")),
                       value, rng)


def eight_bit_header(raw: bytes, rng: random.Random) -> bytes:
    """Raw 8-bit bytes in headers: UTF-8, Shift_JIS, EUC-JP, Latin-1, invalid."""
    text = "【電子保証】〇〇建設 ①㈱ 工事"
    value = rng.choice((text.encode("utf-8"), text.encode("cp932"),
                        text.replace("①", "").replace("㈱", "").encode("euc_jp"),
                        "Ünïcödé façade".encode("latin-1"), b"\xff\xfe\x80\x81\xc0\xc1",
                        b"\x1b$B%F%9%H\x1b(B"))
    name = rng.choice((b"Subject", b"Subject", b"From", b"To"))
    if name == b"From":
        value = b'"' + value + b'" <tanto@maru-kensetsu.example.jp>'
    return _set_header(raw, name, value, rng)


def cr_without_lf(raw: bytes, rng: random.Random) -> bytes:
    """Some or all line ends are a lone CR (old Macs), or stray CRs inside lines."""
    choice = rng.random()
    if choice < 0.3:
        return raw.replace(b"\r\n", b"\r")
    if choice < 0.6:
        head, sep, body = _split(raw)
        return head.replace(b"\r\n", b"\r") + sep + body
    data = raw
    for _ in range(rng.randint(1, 10)):
        data = _insert(data, b"\r", rng)
    return data


def bare_lf(raw: bytes, rng: random.Random) -> bytes:
    """LF line ends (a Unix mailer), everywhere or mixed with CRLF."""
    if rng.random() < 0.5:
        return raw.replace(b"\r\n", b"\n")
    lines = raw.split(b"\r\n")
    return b"".join(line + (b"\n" if rng.random() < 0.5 else b"\r\n") for line in lines)


def truncated_mime(raw: bytes, rng: random.Random) -> bytes:
    """Cut in mid-part, closing boundary gone, boundary parameter wrong or missing."""
    choice = rng.random()
    head, sep, body = _split(raw)
    if choice < 0.35 and body:
        return head + sep + body[: rng.randrange(len(body))]
    if choice < 0.6:
        return re.sub(rb"\r?\n--[^\r\n]*--\r?\n?$", b"", raw)
    if choice < 0.8:
        return re.sub(rb'boundary="[^"]*"',
                      rng.choice((b'boundary=""', b'boundary="nowhere"', b"boundary=",
                                  b'boundary="\x00"', b'boundary="' + b"b" * 200 + b'"')),
                      raw, count=1)
    return re.sub(rb';\s*boundary="[^"]*"', b"", raw, count=1)


def surrogates(raw: bytes, rng: random.Random) -> bytes:
    """UTF-8-encoded surrogate code points (CESU-8 style) in headers, bodies, file names."""
    lone = rng.choice((b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\xbd\xed\xb8\x80"))
    choice = rng.random()
    if choice < 0.3:
        return _set_header(raw, b"Subject", b"\xe3\x80\x90" + lone + b"\xe3\x80\x91", rng)
    if choice < 0.5:
        return _set_header(raw, b"From", b'"' + lone + b'" <tanto@maru-kensetsu.example.jp>', rng)
    if choice < 0.7:
        return re.sub(rb"filename\*=UTF-8''", b"filename*=UTF-8''%ED%A0%80", raw, count=1) \
            if b"filename*=UTF-8''" in raw else _set_header(raw, b"Subject", lone, rng)
    head, sep, body = _split(raw)
    for _ in range(rng.randint(1, 5)):
        body = _insert(body, lone, rng)
    return head + (sep or b"\r\n\r\n") + body


def long_lines(raw: bytes, rng: random.Random) -> bytes:
    """A body line just under the line limit, over it, or base64 joined into one line."""
    head, sep, body = _split(raw)
    if rng.random() < 0.5:
        line = rng.choice((b"A" * 9990, b"x" * 12000, "工".encode() * 3300))
        return head + (sep or b"\r\n\r\n") + _insert(body, b"\r\n" + line + b"\r\n", rng)
    # Join base64 runs: a whole attachment on one line (over the limit when it is big).
    return head + (sep or b"\r\n\r\n") + re.sub(rb"([A-Za-z0-9+/=]{60,})\r\n(?=[A-Za-z0-9+/])",
                                                 rb"\1", body)


def duplicate_headers(raw: bytes, rng: random.Random) -> bytes:
    """Two From, Subject, Message-ID, Content-Type … with different values."""
    out = raw
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(_TOP_HEADERS + (b"Reply-To", b"Content-Transfer-Encoding",
                                          b"Auto-Submitted"))
        value = rng.choice((b"tanto@maru-kensetsu.example.jp", b"<dup@maru-kensetsu.example.jp>",
                            b"=?UTF-8?B?44CQ6Zu75a2Q5L+d6Ki844CR?=", b"text/plain; charset=utf-8",
                            b"multipart/mixed; boundary=\"other\"", b"base64", b"no", b"",
                            b"1.0"))
        out = _set_header(out, name, value, rng, add=True)
    return out


def header_junk(raw: bytes, rng: random.Random) -> bytes:
    """Malformed header lines: no colon, continuation first, empty or 8-bit names."""
    junk = rng.choice((b"this line has no colon", b" continuation before any header",
                       b": value without a name", b"\xe4\xbb\xb6\xe5\x90\x8d: 8-bit name",
                       b"Subject", b"X-Tab\t: tab before the colon", b"From:",
                       b"Subject:   ", b"Content-Type:", b"=?utf-8?b?44GC?=: encoded name"))
    lines, eol, sep, body = _header_lines(raw)
    lines.insert(rng.randrange(len(lines) + 1), junk)
    return eol.join(lines) + (sep or eol + eol) + body


def bad_parameters(raw: bytes, rng: random.Random) -> bytes:
    """Content-Type and Content-Disposition parameters mailers and attackers get wrong."""
    forms = (
        (rb"charset=[\w\-]+", rng.choice((b'charset="\x00"', b"charset=utf-7",
                                          b"charset=unknown-8bit", b"charset=x-bogus",
                                          b'charset=""', b"charset=utf-8'ja'"))),
        (rb"Content-Transfer-Encoding: [\w\-]+", rng.choice((
            b"Content-Transfer-Encoding: x-uuencode", b"Content-Transfer-Encoding: base65",
            b"Content-Transfer-Encoding: quoted-printable", b"Content-Transfer-Encoding: 7bit"))),
        (rb"filename\*=UTF-8''[^\r\n;]*", rng.choice((
            b"filename*=UTF-8''%ZZ%E3%81.pdf", b"filename*=x-bogus''abc.pdf",
            b"filename*0*=UTF-8''%E3%81; filename*2=x.pdf", b"filename*=''", b"filename*=%00.pdf",
            b"filename*=UTF-8''" + b"%E5%B7%A5" * 2000 + b".pdf"))),
        (rb"application/pdf", rng.choice((b"application/pdf; name*0*=utf-8''%E3", b"application/",
                                          b"/pdf", b"application/pdf;;;;", b"multipart/mixed"))),
    )
    pattern, replacement = rng.choice(forms)
    return re.sub(pattern, lambda _m: replacement, raw, count=1)


def message_id_garbage(raw: bytes, rng: random.Random) -> bytes:
    """Message-ID, In-Reply-To and References that are empty, huge, NUL'd or many."""
    value = rng.choice((b"", b"<\x00@maru-kensetsu.example.jp>", b"<" + b"m" * 5000 + b"@x.jp>",
                        b"<a@b> <c@d>", b"no-angle-brackets", b"<\xe5\xb7\xa5@\xe5\xb7\xa5.jp>",
                        b"<unclosed@maru-kensetsu.example.jp", b"<a@b>" * 400,
                        b"<\xed\xa0\x80@x.example.jp>"))
    name = rng.choice((b"Message-ID", b"Message-ID", b"In-Reply-To", b"References"))
    return _set_header(raw, name, value, rng)


def dot_lines(raw: bytes, rng: random.Random) -> bytes:
    """Body lines that are only dots (SMTP transparency), also right before the end."""
    head, sep, body = _split(raw)
    piece = rng.choice((b"\r\n.\r\n", b"\r\n..\r\n", b"\r\n.\r", b"\n.\n", b"\r\n. \r\n"))
    return head + (sep or b"\r\n\r\n") + (_insert(body, piece, rng) if rng.random() < 0.6
                                          else body + piece)


#: Every mutation by name (a mail gets one to three of them).
MUTATIONS: dict[str, Mutation] = {
    "nul_in_header": nul_in_header,
    "nul_in_body": nul_in_body,
    "broken_encoded_word": broken_encoded_word,
    "nested_comments": nested_comments,
    "address_garbage": address_garbage,
    "byte_flips": byte_flips,
    "giant_header_folded": giant_header_folded,
    "giant_header_unfolded": giant_header_unfolded,
    "eight_bit_header": eight_bit_header,
    "cr_without_lf": cr_without_lf,
    "bare_lf": bare_lf,
    "truncated_mime": truncated_mime,
    "surrogates": surrogates,
    "long_lines": long_lines,
    "duplicate_headers": duplicate_headers,
    "header_junk": header_junk,
    "bad_parameters": bad_parameters,
    "message_id_garbage": message_id_garbage,
    "dot_lines": dot_lines,
}

_BASES = [name for name in VARIANTS if name not in NOT_MAIL | HOSTILE]


def base_mails(names: list[str] | None = None) -> dict[str, bytes]:
    """The sample mails mutations start from, by variant name."""
    return {s.name: s.data for s in all_samples(names or _BASES)}


def mutate(raw: bytes, rng: random.Random, names: tuple[str, ...]) -> bytes:
    for name in names:
        raw = MUTATIONS[name](raw, rng)
    return raw


def hostile_mails(n: int, seed: int = 0, *, run: int = 0, bases: dict[str, bytes] | None = None
                  ) -> Iterator[HostileMail]:
    """``n`` hostile mails, deterministic from ``seed``: every mutation is used in turn as the
    first one (so even a small ``n`` has each), then up to two more drawn at random.

    ``run`` > 0 makes the same campaign again as new mail (other Message-IDs and senders,
    the same mutations at the same places, for runs 1, 2 … alike): a second identical run
    is decided again instead of being recognised as the same messages."""
    rng = random.Random(seed)
    sources = bases if bases is not None else base_mails()
    base_names = sorted(sources)
    kinds = list(MUTATIONS)
    for i in range(n):
        tag = b"h%05d" % i if run == 0 else b"r%d%05d" % (run, i)
        base = base_names[rng.randrange(len(base_names))]
        first = kinds[i % len(kinds)]
        extra = rng.sample(kinds, rng.choice((0, 0, 1, 2)))
        names = (first, *(k for k in extra if k != first))
        # A unique Message-ID and sender per mail first, so that the copies of one sample
        # are not each other's duplicates and no reply is held back by the per-address
        # rate limit (a mutation may still break or replace them).
        raw = re.sub(rb"(?im)^(Message-ID: <)", b"\\1" + tag + b".", sources[base], count=1)
        raw = re.sub(rb"(?im)^(From:[^\r\n]*?<?)([\w.-]+)@", b"\\1\\2+" + tag + b"@", raw, count=1)
        yield HostileMail(f"{tag.decode()}_{base}", base, names, mutate(raw, rng, names))
