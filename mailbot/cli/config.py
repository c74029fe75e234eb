"""`mailbot config check FILE`: load a configuration and say what it holds, or what is wrong.

Exit 0 when it loads and nothing refuses it (warnings are printed to stderr, e.g. a
password variable not set in this shell); 2 on an error or a refusal, and with `--strict`
on a warning too (for a deployment check run in the daemon's environment)."""

from __future__ import annotations

import argparse
import re
import sys

from sqlalchemy.engine import make_url

from ..config import Config, load_config
from ..config.advice import refusals, warnings
from .options import Commands


def register(commands: Commands) -> None:
    config = commands.add_parser("config", help="check configuration files")
    sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="load FILE and report errors (exit 2) or a summary")
    check.add_argument("file", metavar="FILE", help="the configuration (TOML)")
    check.add_argument("--strict", action="store_true",
                       help="warnings are errors (exit 2): run it where the daemon runs")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    refused = refusals(config)
    warned = warnings(config)
    for text in warned:
        # Every warning names the file (those of a loaded value already do).
        named = text if text.startswith(f"{args.file}:") else f"{args.file}: {text}"
        print(f"mailbot config: warning: {named}", file=sys.stderr)
    for text in refused:
        print(f"mailbot config: {args.file}: {text}", file=sys.stderr)
    if refused or (args.strict and warned):
        return 2
    print(f"{args.file}: ok" + (f" ({len(warned)} warning(s))" if warned else ""))
    print(f"  store: {shown_url(config.store_url)}")
    contractor = config.contractor
    if contractor is not None:
        print(f"  contractor: {contractor.name} <{contractor.from_addr}>; staff "
              f"{', '.join(contractor.staff)}; reminder after {contractor.remind_after_days} "
              "business days")
    for key, policy in config.issuers.items():
        aliases = f" (aliases: {', '.join(policy.aliases)})" if policy.aliases else ""
        print(f"  issuer {key}: {policy.name}{aliases}; rules: {', '.join(policy.chain)}")
        rule = config.submissions.get(key)
        if rule is None:
            continue
        addresses = ", ".join([*(f"{k} → {a}" for k, a in rule.to_by_kind),
                               *([f"otherwise → {rule.to}"] if rule.to else [])])
        subjects = "; ".join([*(f"{k}: {t}" for k, t in rule.subject_by_kind),
                              f"otherwise: {rule.subject}"])
        hours = (f"{rule.window.start:%H:%M}–{rule.window.end:%H:%M}" if rule.window
                 else "the default window")
        print(f"    submission: {addresses}\n    subject {subjects}\n"
              f"    body lines {' / '.join(rule.fields)}; {rule.charset}; {hours}"
              + (f"; files {', '.join(f.name for f in rule.attachments)}"
                 if rule.attachments else ""))
    for number, project in enumerate(config.projects, 1):
        print(f"  project rule {number} {project.name}: /{project.pattern.pattern}/"
              + (f" → {project.issuer}" if project.issuer else "")
              + (f", 工事番号 {project.project_no}" if project.project_no else ""))
    for mailbox in config.mailboxes:
        where = (f"{mailbox.user}@{mailbox.host}:{mailbox.port}/{mailbox.folder}"
                 if mailbox.kind == "imap" else f"{mailbox.listen_host}:{mailbox.listen_port}")
        print(f"  mailbox {mailbox.name}: {mailbox.kind} {where}, role {mailbox.role}"
              + (f", issuer {mailbox.issuer}" if mailbox.issuer else ""))
    for number, route in enumerate(config.routes, 1):
        print(f"  route {number} {route.name}" + (" (stop)" if route.stop else ""))
    print(f"  spool: {config.spool_dir}")
    print("  " + auth_line(config))
    smtp, window = config.smtp, config.send_window
    print(f"  relay: {smtp.host}:{smtp.port} ({smtp.tls})" + (f" as {smtp.user}" if smtp.user else ""))
    days = ",".join("月火水木金土日"[d] for d in window.weekdays)
    print(f"  send window: {days} {window.start:%H:%M}–{window.end:%H:%M} Asia/Tokyo"
          + (", not on national holidays" if window.skip_holidays else "")
          + (", not 12/29–1/3" if window.year_end_closed else "")
          + (f"; at any hour: {', '.join(window.immediate)}" if window.immediate else ""))
    return 0


def auth_line(config: Config) -> str:
    """What `[auth]` says, in one line: the requirement, whose results are believed, the
    DNS it asks, and every per-counterpart override."""
    auth = config.auth
    trusted = (f"Authentication-Results of {', '.join(auth.authserv_ids)}, else self-verified"
               if auth.authserv_ids else "self-verified (no authserv_ids: no MTA results "
               "believed)")
    dns = ", ".join(auth.resolvers) or "/etc/resolv.conf"
    overrides = "".join(
        f"; issuers.{issuer}{'.submission' if side == 'contractor' else ''} {requirement}"
        for (issuer, side), requirement in sorted(config.auth_overrides.items()))
    return (f"auth: require {auth.require}; {trusted}; DNS {dns}, {auth.timeout_seconds:g} s, "
            f"temperror retried {auth.retries}× every {auth.retry_seconds} s{overrides}")


def shown_url(url: str | None) -> str:
    """The store URL as printed: never its password."""
    if not url:
        return "(default: --store, MAILBOT_STORE_URL, ./mailbot.db)"
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 — not a URL SQLAlchemy reads: hide what may be a password
        return re.sub(r"(://[^/@]*:)[^/@]*@", r"\1***@", url)
