"""The sample record, the expected-result helpers and the pools of fictional values.

``expected`` follows the ``mailbot parse --json`` contract (docs/contracts.md) minus ``source``
and problem ``detail``. It is always derived from the values put into a sample, never from
running a reader.
"""

from __future__ import annotations

import random
import string
import unicodedata
from dataclasses import dataclass
from typing import Any

from mailbot.samples.mails import Envelope, address
from mailbot.samples.notice_pdf import NoticeFields
from parsers.model import KINDS

ISSUER_ADDRESS = "keiyaku@issuer.example.jp"
EJCS = "東日本建設業保証株式会社"
WJCS = "西日本建設業保証株式会社"
HOKKAIDO = "北海道建設業信用保証株式会社"


@dataclass
class Sample:
    """One generated file: its name, file name, bytes and the truth a reader must output."""

    name: str
    filename: str
    data: bytes
    expected: dict[str, Any]


def norm_text(text: str) -> str:
    """NFKC, runs of white space collapsed to one space, trimmed (the reader's convention)."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def notice(
    fields: NoticeFields,
    origin: str,
    *,
    details: bool = True,
    surety: bool = True,
) -> dict[str, Any]:
    """The expected notice dict for ``fields``, keys in contract order.

    ``details=False`` is a notice typed in a body with only number and key.
    """
    return {
        "guarantee_number": fields.guarantee_number,
        "auth_key": fields.auth_key,
        "kind": fields.kind if details else None,
        "project_name": norm_text(fields.project_name) if details else None,
        "contractor": norm_text(fields.contractor) if details else None,
        "surety": fields.surety if details and surety else None,
        "origin": origin,
    }


def problem(code: str, origin: str) -> dict[str, str]:
    return {"code": code, "origin": origin}


def expected(
    notices: list[dict[str, Any]] | None = None, problems: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {"notices": list(notices or []), "problems": list(problems or [])}


def page(prefix: str, n: int = 1) -> str:
    """Origin of page ``n`` of a PDF whose origin prefix is ``prefix``."""
    return f"{prefix}#page={n}"


# --- fictional value pools -------------------------------------------------------------------

PROJECTS = (
    "〇〇浄水場△△修繕工事",
    "△△配水池耐震補強工事",
    "〇〇川護岸改修工事（その２）",
    "市道〇〇線舗装補修工事",
    "△△小学校屋内運動場改修工事",
    "〇〇ポンプ場電気設備更新工事",
    "長坂配水池改良工事",
    "西〇〇浄化センター設備改修工事",
    "〇〇地区配水管布設替工事",
    "△△橋りょう補修工事",
)

#: contractor display name (as printed, with ideographic spaces) → (sender address, person)
CONTRACTORS: dict[str, tuple[str, str]] = {
    "〇〇建設　株式会社": ("info@maru-kensetsu.example.jp", "〇〇建設　工事部　山田"),
    "△△工業　株式会社": ("keiyaku@sankaku-kogyo.example.jp", "△△工業　業務課　佐藤"),
    "株式会社　□□組": ("jimu@shikaku-gumi.example.jp", "□□組　総務部　鈴木"),
    "〇△建設工業　株式会社": ("eigyo@maru-sankaku.example.jp", "〇△建設工業　高橋"),
    "〇〇・△△特定建設工事共同企業体": ("jv@maru-kensetsu.example.jp", "〇〇・△△JV　田中"),
}

SURETIES = (EJCS, WJCS, HOKKAIDO)
_PREFIXES = {EJCS: ("35075", "35012", "35140"), WJCS: ("50113", "52008"), HOKKAIDO: ("30072",)}
_KEY_ALPHABET = string.ascii_letters + string.digits
_CONFUSABLE = "O0l1I"


def sender_of(contractor: str) -> tuple[str, str]:
    """(address, display name) of the person who sends a contractor's mails."""
    return CONTRACTORS.get(contractor, ("info@maru-kensetsu.example.jp", "〇〇建設　山田"))


def random_key(rng: random.Random) -> str:
    """12 ASCII letters/digits, mixed case, with at least one O/0/l/1/I look-alike."""
    while True:
        chars = [rng.choice(_KEY_ALPHABET) for _ in range(12)]
        chars[rng.randrange(12)] = rng.choice(_CONFUSABLE)
        key = "".join(chars)
        if (
            any(c.isupper() for c in key)
            and any(c.islower() for c in key)
            and any(c.isdigit() for c in key)
        ):
            return key


def random_number(rng: random.Random, surety: str) -> str:
    """A guarantee number in one of the formats seen (5+5+letter, or 5+7 digits)."""
    prefix = rng.choice(_PREFIXES[surety])
    if prefix.startswith("30"):
        return f"{prefix}-{rng.randrange(1, 10**7):07d}"
    return f"{prefix}-{rng.randrange(1, 10**5):05d}{rng.choice('ABCDEFGHJKMNPRSTW')}"


def random_fields(rng: random.Random, *, surety: str | None = None) -> NoticeFields:
    """A fictional notice with varied values."""
    surety = surety or rng.choice(SURETIES)
    return NoticeFields(
        guarantee_number=random_number(rng, surety),
        auth_key=random_key(rng),
        kind=rng.choice(KINDS),
        project_name=rng.choice(PROJECTS),
        contractor=rng.choice(list(CONTRACTORS)),
        surety=surety,
        issuer=rng.choice(("〇〇市水道局", "△△県企業庁", "〇〇町")),
        amount=rng.randrange(10, 500) * 100_000,
    )


# --- what every variant builder receives -------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """Inputs of one variant builder: the sample name, two notices' values and an index.

    ``b`` is only used by variants that carry a second notice. ``index`` varies the date and
    Message-ID so that every generated mail is distinct.
    """

    name: str
    a: NoticeFields
    b: NoticeFields
    index: int = 0


def envelope(case: Case, subject: str, *, subject_charset: str = "UTF-8") -> Envelope:
    """Headers of a contractor's submission mail for ``case``."""
    addr, person = sender_of(case.a.contractor)
    day = 1 + case.index % 28
    minute = case.index % 60
    return Envelope(
        sender=address(person, addr, subject_charset),
        to=ISSUER_ADDRESS,
        subject=subject,
        date=f"{_weekday(day)}, {day:02d} Apr 2026 09:{minute:02d}:00 +0900",
        message_id=f"<{case.name}.{case.index}@{addr.split('@')[1]}>",
        subject_charset=subject_charset,
    )


def _weekday(day: int) -> str:
    # 2026-04-01 is a Wednesday.
    return ("Wed", "Thu", "Fri", "Sat", "Sun", "Mon", "Tue")[(day - 1) % 7]


DEFAULT_WHAT = "電子保証の認証キーのお知らせ（PDF）を添付にてお送りします。"


def greeting(case: Case, what: str = DEFAULT_WHAT) -> str:
    """A polite submission body that names no number or key."""
    _addr, person = sender_of(case.a.contractor)
    issuer = case.a.issuer or "〇〇市水道局"
    return (
        f"{issuer}\n契約担当 御中\n\n"
        "いつもお世話になっております。\n"
        f"{norm_text(case.a.contractor)}の{person.split('　')[-1]}です。\n\n"
        f"「{case.a.project_name}」につきまして、\n{what}\n"
        "ご確認のほどよろしくお願いいたします。\n\n"
        f"--\n{case.a.contractor}\n{person}\nTEL 000-0000-0000\n"
    )
