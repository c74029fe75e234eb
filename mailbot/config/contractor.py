"""`[contractor]`, `[issuers.ID.submission]` and `[[projects]]`: the contractor side.

`[contractor]` says who submits (company, person in charge and contact, sender address,
the staff who hear about what mailbot cannot do, reminder delay). Each issuer's
`submission` table is its form: address (per kind), subject rule (a jinja2 line per kind),
required body lines, extra files, charset and send window. `[[projects]]` are ordered
rules on 工事名 (a regular expression): they name the issuer when nothing else does, the
工事番号 (fixed, or a `(?P<project_no>…)` group) and extra files for that project.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from parsers.model import KINDS

from .outbound import WindowConfig, read_window
from .reader import TomlReader

# Body lines an issuer may require, in the order it lists them.
FIELDS = ("受注者", "担当者氏名・連絡先", "担当者氏名", "連絡先", "工事名", "工事番号", "保証名称",
          "保証契約番号", "保証事業会社", "発注者")
DEFAULT_FIELDS = ("受注者", "担当者氏名・連絡先", "工事名", "保証名称")
# What a subject rule may use.
SUBJECT_NAMES = frozenset({"project_no", "project_name", "kind", "guarantee_number",
                           "contractor", "issuer", "department", "surety"})
SUBMISSION_KEYS = ("to", "to_by_kind", "subject", "subject_by_kind", "body_template", "fields",
                   "attachments", "charset", "window", "answer_from")
CONTRACTOR_KEYS = ("name", "person", "contact", "from", "from_name", "staff",
                   "remind_after_days", "signature", "template_set")
PROJECT_KEYS = ("name", "project", "issuer", "project_no", "attachments")

SUBJECT_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_ADDRESS = re.compile(r"[^@\s,<>]+@[A-Za-z0-9.-]+")


@dataclass(frozen=True)
class ContractorConfig:
    name: str  # 受注者: 〇〇建設株式会社
    from_addr: str  # submissions go out from here; the issuers answer to it
    staff: tuple[str, ...]  # told about unroutable notices, discrepancies, reminders
    person: str | None = None  # 担当者氏名
    contact: str | None = None  # 連絡先 (telephone, address)
    from_name: str | None = None
    remind_after_days: int = 3  # business days without an answer
    signature: str = ""
    template_set: str = "default"


@dataclass(frozen=True)
class SubmissionRule:
    """One issuer's required form for a submission."""

    issuer: str  # the [issuers.ID] key
    to: str | None = None
    to_by_kind: tuple[tuple[str, str], ...] = ()
    subject: str = "【電子保証】{{ project_name }}"
    subject_by_kind: tuple[tuple[str, str], ...] = ()
    body_template: str = "submission"
    fields: tuple[str, ...] = DEFAULT_FIELDS
    attachments: tuple[Path, ...] = ()
    charset: str = "utf-8"
    window: WindowConfig | None = None  # None: the global [send_window]
    answer_from: tuple[str, ...] = ()  # extra addresses or domains the issuer answers from

    def address_for(self, kind: str | None) -> str | None:
        return dict(self.to_by_kind).get(kind or "") or self.to

    def subject_for(self, kind: str | None) -> str:
        return dict(self.subject_by_kind).get(kind or "") or self.subject

    def answer_domains(self) -> frozenset[str]:
        """Domains an answer from this issuer may come from (its addresses' and any named)."""
        addresses = [self.to or "", *(a for _k, a in self.to_by_kind), *self.answer_from]
        return frozenset(a.rsplit("@", 1)[-1].lower() for a in addresses if a)


@dataclass(frozen=True)
class ProjectRule:
    name: str
    pattern: re.Pattern[str]  # searched in the notice's 工事名
    issuer: str | None = None
    project_no: str | None = None
    attachments: tuple[Path, ...] = ()


def read_contractor(r: TomlReader, data: dict[str, Any]) -> ContractorConfig:
    where = "contractor"
    r.no_extra(data, CONTRACTOR_KEYS, where)
    staff = r.strings(data, "staff", where) or ()
    if not staff:
        raise r.fail(f"{where}.staff", "name at least one address: unroutable notices and "
                     "discrepancies go there")
    for address in (*staff, data.get("from", "")):
        if not _ADDRESS.fullmatch(str(address)):
            raise r.fail(where, f"{address!r} is not an e-mail address")
    return ContractorConfig(
        name=_one_line(r, data, "name", where, optional=False) or "",
        from_addr=r.string(data, "from", where) or "",
        staff=staff,
        person=_one_line(r, data, "person", where),
        contact=_one_line(r, data, "contact", where),
        from_name=_one_line(r, data, "from_name", where),
        remind_after_days=r.count(data, "remind_after_days", where, 3),
        signature=str(data.get("signature", "")),
        template_set=r.string(data, "template_set", where, True, "default") or "default",
    )


def read_submission(r: TomlReader, data: dict[str, Any], issuer: str) -> SubmissionRule:
    where = f"issuers.{issuer}.submission"
    r.no_extra(data, SUBMISSION_KEYS, where)
    to = r.string(data, "to", where, optional=True)
    to_by_kind = _by_kind(r, data, "to_by_kind", where)
    for address in (to, *dict(to_by_kind).values()):
        if address is not None and not _ADDRESS.fullmatch(address):
            raise r.fail(where, f"{address!r} is not an e-mail address")
    if to is None and not to_by_kind:
        raise r.fail(f"{where}.to", "needs an address (to, or to_by_kind for every kind)")
    subject = r.string(data, "subject", where, True, SubmissionRule.subject) or ""
    subject_by_kind = _by_kind(r, data, "subject_by_kind", where)
    _check_subject(r, subject, f"{where}.subject")
    for kind, text in subject_by_kind:
        _check_subject(r, text, f"{where}.subject_by_kind.{kind}")
    fields = r.strings(data, "fields", where) or DEFAULT_FIELDS
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise r.fail(f"{where}.fields", f"unknown body line {unknown[0]!r} (one of "
                     f"{', '.join(FIELDS)})")
    window = r.table(data, "window", where, optional=True)
    return SubmissionRule(
        issuer=issuer,
        to=to,
        to_by_kind=to_by_kind,
        subject=subject,
        subject_by_kind=subject_by_kind,
        body_template=r.string(data, "body_template", where, True, "submission")
        or "submission",
        fields=fields,
        attachments=_files(r, data, where),
        charset=r.choice(data, "charset", where, ("utf-8", "iso-2022-jp")),
        window=read_window(r, window, f"{where}.window") if window else None,
        answer_from=tuple(a.lower() for a in r.strings(data, "answer_from", where) or ()),
    )


def read_project(r: TomlReader, data: dict[str, Any], index: int, issuers: set[str]
                 ) -> ProjectRule:
    name = str(data.get("name") or f"project {index + 1}")
    where = f"projects.{name}"
    r.no_extra(data, PROJECT_KEYS, where)
    source = r.string(data, "project", where) or ""
    try:
        pattern = re.compile(source)
    except re.error as exc:
        raise r.fail(f"{where}.project", f"not a valid regular expression ({exc})") from None
    issuer = r.string(data, "issuer", where, optional=True)
    if issuer is not None and issuer not in issuers:
        raise r.fail(f"{where}.issuer", f"no [issuers.{issuer}] table")
    return ProjectRule(
        name=name,
        pattern=pattern,
        issuer=issuer,
        project_no=r.string(data, "project_no", where, optional=True),
        attachments=_files(r, data, where),
    )


def _by_kind(r: TomlReader, data: dict[str, Any], key: str, where: str
             ) -> tuple[tuple[str, str], ...]:
    table = r.table(data, key, where, optional=True)
    for kind, value in table.items():
        if kind not in KINDS:
            raise r.fail(f"{where}.{key}.{kind}", f"unknown kind (one of {', '.join(KINDS)})")
        if not isinstance(value, str) or not value.strip():
            raise r.fail(f"{where}.{key}.{kind}", "must be a non-empty string")
    return tuple(sorted(table.items()))


def _check_subject(r: TomlReader, text: str, where: str) -> None:
    try:
        names = meta.find_undeclared_variables(SUBJECT_ENV.parse(text))
    except TemplateSyntaxError as exc:
        raise r.fail(where, f"not a valid jinja2 template ({exc.message})") from None
    unknown = sorted(names - SUBJECT_NAMES)
    if unknown:
        raise r.fail(where, f"unknown name {unknown[0]!r} (one of "
                     f"{', '.join(sorted(SUBJECT_NAMES))})")
    try:  # a filter called wrongly fails only when rendered: render it once now
        SUBJECT_ENV.from_string(text).render({name: "〇〇" for name in SUBJECT_NAMES})
    except Exception as exc:  # noqa: BLE001 — any failure is a config error to report
        raise r.fail(where, f"cannot be rendered ({type(exc).__name__}: {exc})") from None


def _one_line(r: TomlReader, data: dict[str, Any], key: str, where: str,
              optional: bool = True) -> str | None:
    """A value that goes into a header or one body line: no control characters."""
    value = r.string(data, key, where, optional=optional)
    if value is not None and any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise r.fail(f"{where}.{key}", "must be one line without control characters")
    return value


def _files(r: TomlReader, data: dict[str, Any], where: str) -> tuple[Path, ...]:
    files = []
    for name in r.strings(data, "attachments", where) or ():
        path = Path(name) if Path(name).is_absolute() else r.file.parent / name
        if not path.is_file():
            raise r.fail(f"{where}.attachments", f"no such file: {path}")
        files.append(path)
    return tuple(files)
