"""The codes a decision can carry — verification outcomes (`mailbot.verify.OUTCOMES`) and
reading problems (`parsers.PROBLEM_CODES`) — with the short Japanese label each has in the
replies (`templates/default/_explanations.j2`, its `labels`), so the console names a code
with the words the contractor read."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, FileSystemLoader

from mailbot.replies.render import REPO_TEMPLATES
from mailbot.verify import OUTCOMES
from parsers import PROBLEM_CODES

CODES: tuple[str, ...] = (*OUTCOMES, *PROBLEM_CODES)


@cache
def _labels() -> dict[str, str]:
    env = Environment(loader=FileSystemLoader(str(REPO_TEMPLATES / "default")), autoescape=False)
    labels = getattr(env.get_template("_explanations.j2").module, "labels", {})
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def code_ja(code: str) -> str:
    """`key_mismatch` → 認証キーが一致しません; a code without a label is shown as it is."""
    return _labels().get(code, code)


def code_choices() -> list[tuple[str, str]]:
    """(code, label) of every code, outcomes first, for a filter's options."""
    return [(code, code_ja(code)) for code in CODES]
