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
from typing import Any, cast

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mailbot.addresses import domain_of
from parsers.model import KINDS

from .outbound import WindowConfig
from .reader import Item, TomlReader, build, key
from .values import (
    any_text,
    check_recipient,
    choice,
    count,
    files,
    known_issuer,
    lower_strings,
    one_line,
    own_address,
    recipient,
    recipients,
    regex,
    section,
    strings,
    text,
)

# Body lines an issuer may require, in the order it lists them.
FIELDS = ("受注者", "担当者氏名・連絡先", "担当者氏名", "連絡先", "工事名", "工事番号", "保証名称",
          "保証契約番号", "保証事業会社", "発注者")
DEFAULT_FIELDS = ("受注者", "担当者氏名・連絡先", "工事名", "保証名称")
# What a subject rule may use.
SUBJECT_NAMES = frozenset({"project_no", "project_name", "kind", "guarantee_number",
                           "contractor", "issuer", "department", "surety"})
SUBJECT_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def _staff(item: Item) -> tuple[str, ...]:
    staff: tuple[str, ...] = recipients(item)
    if not staff:
        raise item.fail("name at least one address: unroutable notices and discrepancies go "
                        "there")
    return staff


def _bounce_address(item: Item) -> str | None:
    address = cast("str | None", own_address(item))
    if address is not None and "+" in address.rpartition("@")[0]:
        raise item.fail(f"{address!r}: the local part must not hold '+' (mailbot adds "
                        "+TOKEN to it for each submission)")
    return address.lower() if address is not None else None


def _to(item: Item) -> str | None:
    to = cast("str | None", recipient(item))
    if to is None and not item.value("to_by_kind"):
        raise item.fail("needs an address (to, or to_by_kind for every kind)")
    return to


def _by_kind(item: Item) -> tuple[tuple[str, str], ...]:
    table = item.r.table(item.data, item.key, item.where, optional=True)
    for kind, value in table.items():
        if kind not in KINDS:
            raise item.fail(f"unknown kind (one of {', '.join(KINDS)})", f"{item.path}.{kind}")
        if not isinstance(value, str) or not value.strip():
            raise item.fail("must be a non-empty string", f"{item.path}.{kind}")
    return tuple(sorted(table.items()))


def _addresses_by_kind(item: Item) -> tuple[tuple[str, str], ...]:
    by_kind = _by_kind(item)
    for kind, address in by_kind:
        check_recipient(item, address, f"{item.path}.{kind}")
    return by_kind


def _subject(item: Item) -> str:
    subject = str(text(item))
    _check_subject(item, subject, item.path)
    return subject


def _subjects_by_kind(item: Item) -> tuple[tuple[str, str], ...]:
    by_kind = _by_kind(item)
    for kind, subject in by_kind:
        _check_subject(item, subject, f"{item.path}.{kind}")
    return by_kind


def _fields(item: Item) -> tuple[str, ...]:
    fields: tuple[str, ...] = strings(item)
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise item.fail(f"unknown body line {unknown[0]!r} (one of {', '.join(FIELDS)})")
    return fields


def _check_subject(item: Item, text: str, where: str) -> None:
    try:
        names = meta.find_undeclared_variables(SUBJECT_ENV.parse(text))
    except TemplateSyntaxError as exc:
        raise item.fail(f"not a valid jinja2 template ({exc.message})", where) from None
    unknown = sorted(names - SUBJECT_NAMES)
    if unknown:
        raise item.fail(f"unknown name {unknown[0]!r} (one of "
                        f"{', '.join(sorted(SUBJECT_NAMES))})", where)
    try:  # a filter called wrongly fails only when rendered: render it once now
        SUBJECT_ENV.from_string(text).render({name: "〇〇" for name in SUBJECT_NAMES})
    except Exception as exc:  # noqa: BLE001 — any failure is a config error to report
        raise item.fail(f"cannot be rendered ({type(exc).__name__}: {exc})", where) from None


@dataclass(frozen=True)
class ContractorConfig:
    name: str = key(one_line)  # 受注者: 〇〇建設株式会社
    # submissions go out from here; the issuers answer to it
    from_addr: str = key(own_address, "from")
    # told about unroutable notices, discrepancies, reminders
    staff: tuple[str, ...] = key(_staff)
    person: str | None = key(one_line, default=None)  # 担当者氏名
    contact: str | None = key(one_line, default=None)  # 連絡先 (telephone, address)
    from_name: str | None = key(one_line, default=None)
    remind_after_days: int = key(count, default=3)  # business days without an answer
    signature: str = key(any_text, default="")
    template_set: str = key(text, default="default")
    # submissions go out with the envelope sender local+TOKEN@domain of this address (a
    # bounce fails a submission only through it); None: bounces only alert the staff
    bounce_address: str | None = key(_bounce_address, default=None)


@dataclass(frozen=True)
class SubmissionRule:
    """One issuer's required form for a submission."""

    issuer: str = key(text)  # the [issuers.ID] key
    to: str | None = key(_to, default=None)
    to_by_kind: tuple[tuple[str, str], ...] = key(_addresses_by_kind, default=())
    subject: str = key(_subject, default="【電子保証】{{ project_name }}")
    subject_by_kind: tuple[tuple[str, str], ...] = key(_subjects_by_kind, default=())
    body_template: str = key(text, default="submission")
    fields: tuple[str, ...] = key(_fields, default=DEFAULT_FIELDS)
    attachments: tuple[Path, ...] = key(files, default=())
    charset: str = key(choice("utf-8", "iso-2022-jp"), default="utf-8")
    # None: the global [send_window]
    window: WindowConfig | None = key(section(WindowConfig, optional_none=True), default=None)
    # extra addresses or domains the issuer answers from
    answer_from: tuple[str, ...] = key(lower_strings, default=())

    def address_for(self, kind: str | None) -> str | None:
        return dict(self.to_by_kind).get(kind or "") or self.to

    def subject_for(self, kind: str | None) -> str:
        return dict(self.subject_by_kind).get(kind or "") or self.subject

    def answer_domains(self) -> frozenset[str]:
        """Domains an answer from this issuer may come from (its addresses' and any named)."""
        addresses = [self.to or "", *(a for _k, a in self.to_by_kind), *self.answer_from]
        return frozenset(domain_of(a) or a.lower() for a in addresses if a)


@dataclass(frozen=True)
class ProjectRule:
    name: str = key(text)
    pattern: re.Pattern[str] = key(regex, "project")  # searched in the notice's 工事名
    issuer: str | None = key(known_issuer, default=None)
    project_no: str | None = key(text, default=None)
    attachments: tuple[Path, ...] = key(files, default=())


def read_contractor(r: TomlReader, data: dict[str, Any]) -> ContractorConfig:
    return build(r, ContractorConfig, data, "contractor")


def read_submission(r: TomlReader, data: dict[str, Any], issuer: str) -> SubmissionRule:
    # `auth` is read by `mailbot.config.auth.read_overrides`
    return build(r, SubmissionRule, data, f"issuers.{issuer}.submission",
                 given={"issuer": issuer}, extra=("auth",))


def read_project(r: TomlReader, data: dict[str, Any], index: int, issuers: set[str]
                 ) -> ProjectRule:
    name = str(data.get("name") or f"project {index + 1}")
    return build(r, ProjectRule, data, f"projects.{name}", given={"name": name},
                 context={"issuers": issuers})
