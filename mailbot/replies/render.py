"""Reply and staff mail: a template name plus plain context in, RFC 5322 bytes out.

Templates are data (``templates/<set>/<name>.txt.j2``, jinja2, plain Japanese text) and
subject lines live beside them in ``subjects.toml``. A per-issuer set is a folder next to
``default/``; any file it lacks comes from ``default/``. Every folder in
``ReplySettings.template_dirs`` is searched, first for the set, then for ``default``.

Replies (``confirmation``, ``discrepancy``) take the context that
``mailbot.pipeline.decide._reply_context`` builds::

    {"in_reply_to": str | None, "references": str | None, "subject": str | None,
     "issuer": str | None, "department": str | None, "template_set": str | None,
     "notices": [{"guarantee_number", "auth_key_masked", "outcomes": [code], "reasons": [ja]}],
     "problems": [{"code", "origin"}]}

The context's ``template_set``, when set, wins over ``ReplySettings.template_set``. Any
context (reply or staff) that carries a clear ``auth_key`` anywhere is refused (docs/security.md).

Staff mail (``digest``, ``alert``) takes::

    digest: {"issuer": str | None,
             "period_start": ISO str, "period_end": ISO str,
             "counts": {status: n},       # e.g. verified / discrepancy / recorded / quarantined
             "needs_review": [{"received_at": ISO str, "sender": str, "subject": str | None,
                               "outcomes": [code], "problems": [code]}],
             "quarantined": [{"id": str | int, "received_at": ISO str, "sender": str,
                              "subject": str | None}],
             "failed_replies": [{"to": str, "subject": str | None, "error": str,
                                 "failed_at": ISO str}]}
    alert:  {"issuer": str | None, "what": short Japanese title, "details": [line, ...]}

Every template also sees ``signature``, ``from_name``, ``from_addr`` (from the settings) and
``now`` (the aware datetime given), and the filters ``datetime_ja`` (ISO str or datetime →
``2026年7月1日 09:00`` in Asia/Tokyo) and ``origin_ja`` (a problem's origin → 添付ファイル「…」).

Subjects: ``subjects.toml`` has one table per template with ``subject`` and optionally
``fallback`` (used when the original mail had no subject). Placeholders: ``{subject}`` (the
original subject without its Re:/RE:/返信: prefixes, so replies never read ``Re: Re:``),
``{date}`` (today in Asia/Tokyo) and any top-level string of the context (``{issuer}``,
``{what}`` …).

Every string of a context is cleaned first (`safe.safe_context`: no lone surrogates, NUL or
other controls), so no value from a mail can make rendering or serialising fail.

Encoding: headers are RFC 2047 (UTF-8) words written by `safe` (printable ASCII that fits a
line stays as is); recipients must be plain ``local@domain``; a UTF-8 body goes out base64,
an ISO-2022-JP body 7bit after characters JIS X 0208 lacks are mapped to readable
equivalents (① → (1), ㈱ → (株), ～ → 〜, 髙 → 高; anything else → 〓), so every receiver
decodes it with a plain ISO-2022-JP decoder.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import tomllib
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from parsers.headers import clean_body_text

from .safe import safe_context, set_address, set_list, set_recipients, set_text


def _our_templates() -> Path:
    """Our default templates: `mailbot/templates/` in an installed wheel (setup.py maps the
    repository's `templates/` there), the repository's `templates/` in a source checkout."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


REPO_TEMPLATES = _our_templates()
TOKYO = ZoneInfo("Asia/Tokyo")
REPLY_TEMPLATES = ("confirmation", "discrepancy")
STAFF_TEMPLATES = ("digest", "alert", "contractor_alert", "reminder", "contractor_digest")
MAX_REFERENCES = 20

# In-Reply-To/References are set raw: the stdlib RFC 2047-encodes a msg-id longer than a
# line instead of leaving it alone; with refold_source="none" it writes them as given.
_POLICY = email_policy.SMTP.clone(refold_source="none")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_MSG_ID = re.compile(r"<[\x21-\x3b\x3d\x3f\x41-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_RE_PREFIX = re.compile(
    r"^\s*(?:re|ｒｅ|返信)\s*(?:\[\d+\]|\(\d+\)|［\d+］)?\s*[:：]\s*", re.IGNORECASE
)


@dataclass(frozen=True)
class ReplySettings:
    from_addr: str  # e.g. keiyaku@issuer.example.jp
    from_name: str | None = None  # e.g. 〇〇市 契約検査課
    charset: str = "utf-8"  # "utf-8" | "iso-2022-jp"
    signature: str = ""  # the issuer's signature block, placed at the end by the templates
    template_set: str = "default"
    template_dirs: tuple[Path, ...] = (REPO_TEMPLATES,)  # searched in order


def template_dirs(own: Path | None) -> tuple[Path, ...]:
    """Where templates are looked up: the admin's folder (`[templates] dir`), then ours."""
    return (own, REPO_TEMPLATES) if own is not None else (REPO_TEMPLATES,)


def new_message_id(domain: str) -> str:
    """A fresh, unique ``<…@domain>`` for one outgoing mail."""
    if not _DOMAIN.fullmatch(domain or ""):
        raise ValueError(f"not a usable Message-ID domain: {domain!r}")
    return f"<{time.time_ns() // 1_000_000:x}.{secrets.token_hex(12)}@{domain}>"


def run_message_id(domain: str, run: str, part: str) -> str:
    """The ``<…@domain>`` of mail `part` (its recipients, say) of scheduled run `run` ("digest
    d2026-12-03"): the same for the same run, so a run taken over by another cluster node
    queues again only what its first node had not (the outbox keeps one row per
    Message-ID)."""
    if not _DOMAIN.fullmatch(domain or ""):
        raise ValueError(f"not a usable Message-ID domain: {domain!r}")
    digest = hashlib.sha256(f"{run}\0{part}".encode("utf-8", "replace")).hexdigest()
    return f"<run.{digest[:32]}@{domain}>"


def render_reply(template: str, context: dict[str, Any], to_addr: str, settings: ReplySettings,
                 message_id: str, now: datetime) -> bytes:
    """A confirmation or discrepancy reply to ``to_addr``, threaded on the original mail."""
    if template not in REPLY_TEMPLATES:
        raise ValueError(f"unknown reply template {template!r} (one of {REPLY_TEMPLATES})")
    _refuse_clear_keys(context)
    context = safe_context(context)
    threading: list[tuple[str, str]] = []
    parent = _msg_ids(context.get("in_reply_to"))
    if parent:
        threading.append(("In-Reply-To", parent[-1]))
    refs = list(dict.fromkeys(_msg_ids(context.get("references")) + parent))  # order kept
    if len(refs) > MAX_REFERENCES:  # keep the thread's root and the newest ones
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1):]
    if refs:
        threading.append(("References", "\n ".join(refs)))
    msg = _message(
        template, context, [to_addr], settings, message_id, now, "auto-replied", threading
    )
    set_list(msg, RESULT_HEADER, result_header(template, context).split("; "), ";")
    return msg.as_bytes()


RESULT_HEADER = "X-Mailbot-Result"
_CODE = re.compile(r"[a-z_]{1,40}")
_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}")


def result_header(template: str, context: dict[str, Any]) -> str:
    """The verdict in a form a contractor's mailbot reads back without guessing from prose:
    ``discrepancy; 35075-00001M=key_mismatch; problem=encrypted_zip``."""
    parts = ["verified" if template == "confirmation" else "discrepancy"]
    for notice in context.get("notices") or ():
        number = str(notice.get("guarantee_number", ""))
        codes = [c for c in notice.get("outcomes") or () if _CODE.fullmatch(str(c))]
        if _NUMBER.fullmatch(number):
            parts.append(f"{number}={'+'.join(codes) or 'unknown'}")
    for problem in context.get("problems") or ():
        if _CODE.fullmatch(str(problem.get("code", ""))):
            parts.append(f"problem={problem['code']}")
    return "; ".join(parts)


def render_staff(template: str, context: dict[str, Any], to_addrs: list[str],
                 settings: ReplySettings, message_id: str, now: datetime) -> bytes:
    """A digest or alert for the issuer's staff."""
    if template not in STAFF_TEMPLATES:
        raise ValueError(f"unknown staff template {template!r} (one of {STAFF_TEMPLATES})")
    if not to_addrs:
        raise ValueError("a staff mail needs at least one recipient")
    _refuse_clear_keys(context)
    msg = _message(template, safe_context(context), to_addrs, settings, message_id, now,
                   "auto-generated")
    return msg.as_bytes()


def _message(template: str, context: dict[str, Any], to_addrs: list[str],
             settings: ReplySettings, message_id: str, now: datetime, auto_submitted: str,
             threading: list[tuple[str, str]] | None = None) -> EmailMessage:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    if not _MSG_ID.fullmatch(message_id or ""):
        raise ValueError(f"not a Message-ID: {message_id!r}")
    charset = settings.charset.lower()
    if charset not in ("utf-8", "iso-2022-jp"):
        raise ValueError(f"unsupported reply charset {settings.charset!r}")
    set_name = context.get("template_set") or settings.template_set
    env = _environment(tuple(Path(d) for d in settings.template_dirs), set_name)
    full = {
        **context,
        "signature": settings.signature,
        "from_name": settings.from_name,
        "from_addr": settings.from_addr,
        "now": now,
    }
    body = _tidy(clean_body_text(env.get_template(f"{template}.txt.j2").render(full)))
    subject = _subject(
        _subjects(tuple(Path(d) for d in settings.template_dirs), set_name), template, full, now
    )

    msg = EmailMessage(policy=_POLICY)
    set_address(msg, "From", settings.from_name, settings.from_addr)
    set_recipients(msg, "To", to_addrs)
    set_text(msg, "Subject", subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    for name, value in threading or ():
        msg.set_raw(name, value)  # msg-ids only, checked by _MSG_ID, folded between ids
    msg["Auto-Submitted"] = auto_submitted  # RFC 3834: nobody auto-answers this
    msg["X-Auto-Response-Suppress"] = "All"  # Exchange: no out-of-office back to us
    if charset == "iso-2022-jp":
        msg.set_content(jis_safe(body), charset="iso-2022-jp", cte="7bit")
    else:
        msg.set_content(body, charset="utf-8", cte="base64")
    return msg


def _refuse_clear_keys(value: Any) -> None:
    """Fail loudly if a context carries an ``auth_key`` (only masked keys may go out)."""
    if isinstance(value, dict):
        if "auth_key" in value:
            raise ValueError("a mail context must carry only auth_key_masked, never auth_key")
        for item in value.values():
            _refuse_clear_keys(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_clear_keys(item)


def _msg_ids(value: Any) -> list[str]:
    return _MSG_ID.findall(value) if isinstance(value, str) else []


def _tidy(text: str) -> str:
    """No trailing blanks, at most one empty line in a row, exactly one final newline."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).rstrip("\n") + "\n"


# --- templates --------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _environment(dirs: tuple[Path, ...], set_name: str) -> ImmutableSandboxedEnvironment:
    folders = _folders(dirs, set_name)
    env = ImmutableSandboxedEnvironment(
        loader=ChoiceLoader([FileSystemLoader([str(f) for f in group]) for group in folders]),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["datetime_ja"] = datetime_ja
    env.filters["origin_ja"] = origin_ja
    return env


def _folders(dirs: tuple[Path, ...], set_name: str) -> list[list[Path]]:
    if not _NAME.fullmatch(set_name or "") or set_name == "..":
        raise ValueError(f"not a template set name: {set_name!r}")
    groups = [[d / set_name for d in dirs]]
    if set_name != "default":
        groups.append([d / "default" for d in dirs])
    return groups


def _subjects(dirs: tuple[Path, ...], set_name: str) -> dict[str, dict[str, str]]:
    """subjects.toml per template, the set's entries over default's (lowest priority first)."""
    merged: dict[str, dict[str, str]] = {}
    for folder in reversed([f for group in _folders(dirs, set_name) for f in group]):
        path = folder / "subjects.toml"
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise ValueError(f"{path}: {exc}") from exc
            for name, entry in data.items():
                merged[name] = {**merged.get(name, {}), **entry}
    return merged


def _subject(
    subjects: dict[str, dict[str, str]], template: str, context: dict[str, Any], now: datetime
) -> str:
    entry = subjects.get(template)
    if not entry or "subject" not in entry:
        raise ValueError(f"subjects.toml has no subject for template {template!r}")
    original = strip_reply_prefixes(str(context.get("subject") or ""))
    pattern = entry["subject"]
    if not original and "{subject}" in pattern:
        pattern = entry.get("fallback") or pattern
    values = {k: _one_line(v) for k, v in context.items() if isinstance(v, str)}
    values.update({"subject": original, "date": f"{now.astimezone(TOKYO):%Y-%m-%d}"})
    values.update({k: "" for k, v in context.items() if v is None})
    try:
        text = pattern.format_map(values)
    except Exception as exc:  # noqa: BLE001 — {x.y}, {x[0]}, {x:spec}: the admin's pattern
        raise ValueError(f"subjects.toml [{template}]: bad placeholder in {pattern!r} "
                         f"({type(exc).__name__}: {exc})") from None
    return " ".join(text.split())


def strip_reply_prefixes(subject: str) -> str:
    """``RE: Re[2]: 返信: 件名`` → ``件名`` (and white space folded to single spaces)."""
    text = _one_line(subject)
    while True:
        shorter = _RE_PREFIX.sub("", text, count=1)
        if shorter == text:
            return text
        text = shorter


def _one_line(text: str) -> str:
    return " ".join(text.split())


def datetime_ja(value: Any) -> str:
    """An ISO string or datetime as ``2026年7月1日 09:00`` (Asia/Tokyo); other text as is."""
    if value is None or value == "":
        return ""
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(when, datetime):
        if when.tzinfo is not None:
            try:
                when = when.astimezone(TOKYO)
            except (OverflowError, ValueError):  # 0001-01-01T00:00+14:00 has no JST
                return str(value)
        return f"{when.year}年{when.month}月{when.day}日 {when:%H:%M}"
    if isinstance(when, date):
        return f"{when.year}年{when.month}月{when.day}日"
    return str(value)


def origin_ja(origin: Any) -> str:
    """``attachment:書類.zip/お知らせ.pdf#page=1`` → ``添付ファイル「書類.zip/お知らせ.pdf」（1ページ目）``."""
    text = _one_line(str(origin or ""))
    if text in ("", "message"):
        return ""
    if text == "body":
        return "メール本文"
    page = ""
    match = re.search(r"#page=(\d+)$", text)
    if match:
        text, page = text[: match.start()], f"（{match.group(1)}ページ目）"
    text = re.sub(r"(^|/)attachment:", r"\1", text).strip("/")
    return f"添付ファイル「{text}」{page}" if text else "添付ファイル"


# --- ISO-2022-JP --------------------------------------------------------------------------

_JIS_MAP = {
    "～": "〜", "－": "−", "∥": "‖", "￠": "¢", "￡": "£", "￢": "¬", "—": "―", "¦": "|",
    "髙": "高", "﨑": "崎", "德": "徳", "濵": "濱", "塚": "塚", "𠮷": "吉", "栁": "柳",
    **{chr(0x2460 + i): f"({i + 1})" for i in range(20)},  # ①..⑳
}
GETA = "〓"  # JIS's own mark for a character that cannot be shown


def jis_safe(text: str) -> str:
    """Text every character of which ISO-2022-JP (JIS X 0208 + ASCII) can write."""
    # NFC first: a decomposed ダ (タ + U+3099, as Mac file names come) is one JIS character.
    return "".join(_jis_char(c) for c in unicodedata.normalize("NFC", text))


def _jis_char(char: str) -> str:
    if _encodable(char):
        return char
    if char in _JIS_MAP:
        return _JIS_MAP[char]
    folded = unicodedata.normalize("NFKC", char)
    if folded != char and all(_encodable(c) for c in folded):
        return folded
    return GETA


@lru_cache(maxsize=4096)
def _encodable(char: str) -> bool:
    try:
        char.encode("iso-2022-jp")
    except UnicodeEncodeError:
        return False
    return True


# Shared with the contractor side's submission mail (mailbot.submit.render).
MAIL_POLICY = _POLICY
template_environment = _environment
tidy = _tidy
is_message_id = _MSG_ID.fullmatch
