"""`mailbot store …`: import surety exports, issue, show, amend and cancel guarantees.

`issue` and `amend --new-key` are for sureties, the demo and tests: they generate a
12-character key with a CSPRNG, print it once (it is never stored in clear) and render the
notice PDF with the sample renderer. `show` prints a guarantee's history, never a key.
"""

from __future__ import annotations

import argparse
import secrets
import string
import sys
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from parsers.normalize import canonical_number, clean_value

from ..config import load_config
from ..errors import UsageError
from ..store import GuaranteeEvent, Store, StoreError, Version
from ..store.schema import utc
from .options import Commands, add_action, existing_file, open_store, parse_date_arg

TOKYO = ZoneInfo("Asia/Tokyo")
NUMBER_HELP = "保証契約番号, e.g. 35075-00001M"

KEY_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 12
ANALYZE_AFTER = 10_000  # rows; refresh planner statistics after an import this large
FIELD_OPTIONS = {
    "kind": "kind", "issuer": "issuer", "contractor": "contractor", "project": "project_name",
    "jv": "jv_name", "surety": "surety", "bank": "bank",
}
AMOUNT_OPTIONS = {"contract_amount": "contract_amount", "amount": "guaranteed_amount"}
DATE_OPTIONS = {
    "term_start": "term_start", "term_end": "term_end", "expires_on": "expires_on",
    "contract_date": "contract_date", "awarded_on": "awarded_on",
}


def new_key() -> str:
    """A 12-character key with at least one upper, one lower letter and one digit."""
    while True:
        key = "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))
        if any(c.isupper() for c in key) and any(c.islower() for c in key) and any(
            c.isdigit() for c in key
        ):
            return key


def register(commands: Commands) -> None:
    store = commands.add_parser("store", help="the guarantee store")
    sub = store.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    action = partial(add_action, sub, config_required=False)  # a clerk's terminal

    imp = action("import", "import a surety export (CSV or JSON Lines)", run_import)
    imp.add_argument("file", metavar="FILE", help="the export: .csv or .jsonl (docs/contracts.md)")

    issue = action("issue", "register a new guarantee and print its key once", run_issue)
    issue.add_argument("number", metavar="NUMBER", help=NUMBER_HELP)
    _field_options(issue, required=True)
    issue.add_argument("--pdf", metavar="OUT", help="write the notice PDF here (default NUMBER.pdf)")

    show = action("show", "a guarantee's history (never the key)", run_show)
    show.add_argument("number", metavar="NUMBER", help=NUMBER_HELP)

    amend = action("amend", "record a change (変更) or correction (訂正)", run_amend)
    amend.add_argument("number", metavar="NUMBER", help=NUMBER_HELP)
    amend.add_argument("--correction", action="store_true", help="訂正 instead of 変更")
    amend.add_argument("--change-no", type=int, help="変更番号")
    amend.add_argument("--new-key", action="store_true", help="issue a new key (printed once)")
    amend.add_argument("--pdf", metavar="OUT", help="with --new-key: write the new notice PDF")
    _field_options(amend, required=False)

    cancel = action("cancel", "record a cancellation (取消)", run_cancel)
    cancel.add_argument("number", metavar="NUMBER", help=NUMBER_HELP)


# The notice's fields as options: what each one is on the notice.
FIELD_HELP = {
    "kind": "商品（保証区分）: 前払金保証, 中間前払金保証 or 契約保証",
    "issuer": "発注者名", "contractor": "受注者名", "project": "工事名", "jv": "JV名",
    "surety": "保証会社", "bank": "預託金融機関 (前払金)",
    "contract_amount": "請負金額 in yen", "amount": "保証金額 in yen",
    "term_start": "保証期間の始期", "term_end": "保証期間の終期", "expires_on": "保証期限",
    "contract_date": "契約日", "awarded_on": "落札日",
}


def _field_options(parser: argparse.ArgumentParser, required: bool) -> None:
    for option in ("kind", "issuer", "contractor", "project"):
        parser.add_argument(f"--{option}", required=required, help=FIELD_HELP[option])
    for option in ("jv", "surety", "bank"):
        parser.add_argument(f"--{option}", help=FIELD_HELP[option])
    for option in AMOUNT_OPTIONS:
        parser.add_argument(f"--{option.replace('_', '-')}", dest=option, metavar="YEN",
                            help=FIELD_HELP[option])
    for option in DATE_OPTIONS:
        parser.add_argument(f"--{option.replace('_', '-')}", dest=option, metavar="DATE",
                            help=FIELD_HELP[option] + " (ISO, 2026/07/01 or 和暦)")


def _open(args: argparse.Namespace) -> Store:
    config = load_config(args.config)
    return open_store(args, config)


def _number(text: str) -> str:
    number = canonical_number(text)
    if number is None:
        raise UsageError(f"NUMBER: {text!r} is not a guarantee number (like 35075-00001M)")
    return number


def _event(args: argparse.Namespace, number: str, event: str, key: str | None,
           change_no: int | None = None) -> GuaranteeEvent:
    """The `issue` or `amend` event the field options describe; a bad value is a usage error."""
    from parsers.values import parse_amount

    def given(option: str) -> str | None:
        value: str | None = getattr(args, option, None)
        return value or None

    def amount(option: str, text: str) -> int:
        try:
            return parse_amount(text)
        except ValueError as exc:
            raise UsageError(f"--{option.replace('_', '-')}: {exc}") from None

    texts = {name: clean_value(text) for option, name in FIELD_OPTIONS.items()
             if (text := given(option))}
    amounts = {name: amount(option, text) for option, name in AMOUNT_OPTIONS.items()
               if (text := given(option))}
    dates = {name: parse_date_arg(text, f"--{option.replace('_', '-')}")
             for option, name in DATE_OPTIONS.items() if (text := given(option))}
    kind = texts.get("kind")
    if kind is not None and kind not in ("前払金保証", "中間前払金保証", "契約保証"):
        raise UsageError(f"--kind: {kind!r} is not 前払金保証, 中間前払金保証 or 契約保証")
    return GuaranteeEvent(
        number, event, key, kind=kind, issuer=texts.get("issuer"),
        contractor=texts.get("contractor"), project_name=texts.get("project_name"),
        jv_name=texts.get("jv_name"), surety=texts.get("surety"), bank=texts.get("bank"),
        contract_amount=amounts.get("contract_amount"),
        guaranteed_amount=amounts.get("guaranteed_amount"),
        term_start=dates.get("term_start"), term_end=dates.get("term_end"),
        expires_on=dates.get("expires_on"), contract_date=dates.get("contract_date"),
        awarded_on=dates.get("awarded_on"), change_no=change_no, source="cli",
    )


def _apply(store: Store, event: GuaranteeEvent) -> None:
    try:
        store.apply([event])
    except StoreError as exc:
        raise UsageError(exc.errors[0]) from None


def _write_notice(store: Store, number: str, key: str, out: str | None) -> Path:
    from ..samples.notice_pdf import NoticeFields, render_notice_pdf

    latest = store.versions(number)[-1]
    fields = NoticeFields(
        guarantee_number=number, auth_key=key, kind=latest.kind or "",
        project_name=latest.project_name or "", contractor=latest.contractor or "",
        surety=latest.surety or "東日本建設業保証株式会社",
    )
    path = Path(out or f"{number}.pdf")
    path.write_bytes(render_notice_pdf(fields))
    return path


def _record(args: argparse.Namespace, event: GuaranteeEvent, key: str | None = None,
            pdf: str | None = None) -> Path | None:
    """Apply one event; with a new key, also write its notice PDF. Returns the PDF's path."""
    store = _open(args)
    try:
        _apply(store, event)
        return _write_notice(store, event.guarantee_number, key, pdf) if key else None
    finally:
        store.close()


def run_issue(args: argparse.Namespace) -> int:
    number = _number(args.number)
    key = new_key()
    pdf = _record(args, _event(args, number, "new", key), key, args.pdf)
    print(f"issued {number}; 認証キー {key} (shown once, not stored in clear)")
    print(f"notice PDF: {pdf}")
    return 0


def run_amend(args: argparse.Namespace) -> int:
    number = _number(args.number)
    key = new_key() if args.new_key else None
    event = "correction" if args.correction else "amendment"
    pdf = _record(args, _event(args, number, event, key, args.change_no), key, args.pdf)
    print(f"recorded {'訂正' if args.correction else '変更'} of {number}")
    if key:
        print(f"new 認証キー {key} (shown once); notice PDF: {pdf}")
    return 0


def _history(args: argparse.Namespace) -> tuple[str, list[Version]]:
    """The guarantee number of `args` and its versions in the store, oldest first."""
    number = _number(args.number)
    store = _open(args)
    try:
        return number, store.versions(number)
    finally:
        store.close()


def run_cancel(args: argparse.Namespace) -> int:
    number, history = _history(args)
    if history and history[-1].event == "cancellation":
        print(f"mailbot store: {number} is already cancelled (v{history[-1].version}); "
              "nothing recorded", file=sys.stderr)
        return 1
    _record(args, GuaranteeEvent(number, "cancellation", source="cli"))
    print(f"recorded 取消 of {number}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    number, history = _history(args)
    if not history:
        print(f"mailbot store: {number}: not in the store", file=sys.stderr)
        return 1
    for v in history:
        recorded = (f" recorded {utc(v.recorded_at).astimezone(TOKYO):%Y-%m-%d %H:%M} JST"
                    if v.recorded_at else "")
        print(f"{number} v{v.version} {v.event}" + (f" 変更番号{v.change_no}" if v.change_no else "")
              + recorded)
        for name in ("kind", "issuer", "contractor", "jv_name", "project_name", "contract_amount",
                     "guaranteed_amount", "bank", "term_start", "term_end", "expires_on",
                     "contract_date", "awarded_on", "surety", "issued_at", "low_bid"):
            value = getattr(v, name)
            if value not in (None, False):
                print(f"  {name}: {value}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..store.importfile import ImportFileError, read_import_file

    path = existing_file(args.file)
    store = _open(args)  # a config or secret mistake is reported before any reading
    try:
        # disable=None: bars only when stderr is a terminal, never in logs or CI.
        with tqdm(total=path.stat().st_size, unit="B", unit_scale=True, disable=None,
                  desc=f"reading {path.name}", file=sys.stderr) as bar:
            def read_to(done: int) -> None:
                bar.update(done - bar.n)

            events = read_import_file(path, progress=read_to)
        with tqdm(total=len(events), unit="row", disable=None, desc="writing",
                  file=sys.stderr) as bar:
            def wrote(rows: int) -> None:
                bar.update(rows)

            report = store.apply(events, progress=wrote)
        if report.added >= ANALYZE_AFTER:
            store.analyze()
    except (ImportFileError, StoreError) as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print(f"{path}: nothing imported", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"{path}: {report.added} events imported, {report.skipped} already in the store")
    return 0
