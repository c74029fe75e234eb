"""Which issuer a notice goes to, and the project facts its form needs.

Three sources, in this order, each recorded in the trail so staff can see why:
1. the guarantee store: the latest version of the number names its issuer;
2. the mail's own text (subject and body): exactly one configured issuer's name or alias;
3. `[[projects]]` rules: the first whose pattern is found in the notice's 工事名.
A project rule that matches also gives the 工事番号 (fixed, or its `project_no` group) and
extra files, whichever way the issuer was found (a rule naming another issuer is skipped).
Names compare after full NFKC, without white space and with (株) = 株式会社 (docs/reading.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mailbot.config import Config
from mailbot.store import Store
from parsers.model import Notice
from parsers.normalize import name_key


@dataclass
class IssuerChoice:
    issuer: str | None  # the [issuers.ID] key
    found_by: str | None  # store | text | project
    trail: list[str] = field(default_factory=list)  # one line per source, in Japanese
    project_no: str | None = None
    attachments: tuple[Path, ...] = ()
    store_issuer: str | None = None  # the issuer's name as the store has it
    problem: str | None = None  # why no issuer could be chosen (Japanese, for staff)


def issuer_key(config: Config, name: str) -> str | None:
    """The [issuers.ID] whose name or alias is `name` (compared as names are)."""
    wanted = name_key(name)
    for key, policy in config.issuers.items():
        if any(name_key(n) == wanted for n in policy.names):
            return key
    return None


def issuers_named_in(config: Config, text: str) -> list[str]:
    """Configured issuers whose name or an alias occurs in `text`."""
    haystack = name_key(text)
    return [key for key, policy in config.issuers.items()
            if any(name_key(n) and name_key(n) in haystack for n in policy.names)]


def choose_issuer(notice: Notice, texts: list[str], config: Config, store: Store
                  ) -> IssuerChoice:
    choice = IssuerChoice(None, None)
    versions = store.versions(notice.guarantee_number)
    if versions and versions[-1].issuer:
        name = versions[-1].issuer
        choice.store_issuer = name
        key = issuer_key(config, name)
        choice.trail.append(f"保証データ: 発注者「{name}」" + ("" if key else "（設定にない発注者）"))
        if key:
            choice.issuer, choice.found_by = key, "store"
    elif versions:
        choice.trail.append("保証データ: 発注者の記載なし")
    else:
        choice.trail.append("保証データ: この保証契約番号の登録なし")
    if choice.issuer is None and choice.store_issuer is None:
        named = issuers_named_in(config, "\n".join(texts))
        if len(named) == 1:
            choice.issuer, choice.found_by = named[0], "text"
            choice.trail.append(f"メール本文・件名: 「{config.issuers[named[0]].name}」")
        elif named:
            names = "、".join(f"「{config.issuers[k].name}」" for k in named)
            choice.trail.append(f"メール本文・件名: 複数の発注者名 {names}")
        else:
            choice.trail.append("メール本文・件名: 発注者名なし")
    _apply_projects(notice, config, choice)
    if choice.issuer is None:
        choice.problem = (
            f"保証データの発注者「{choice.store_issuer}」に対応する提出先が設定されていません"
            if choice.store_issuer else "提出先の発注者を特定できませんでした")
    return choice


def _apply_projects(notice: Notice, config: Config, choice: IssuerChoice) -> None:
    project = notice.project_name or ""
    for rule in config.projects:
        if rule.issuer and choice.issuer and rule.issuer != choice.issuer:
            continue
        if rule.issuer and choice.issuer is None and choice.store_issuer is not None:
            continue  # the store names an issuer we do not know: a pattern must not override
        match = rule.pattern.search(project) if project else None
        if match is None:
            continue
        choice.trail.append(f"工事名の規則「{rule.name}」に該当")
        if choice.issuer is None and rule.issuer:
            choice.issuer, choice.found_by = rule.issuer, "project"
        group = match.groupdict().get("project_no")
        choice.project_no = rule.project_no or group or choice.project_no
        choice.attachments = rule.attachments
        return
    if config.projects:
        choice.trail.append("工事名の規則: 該当なし")
