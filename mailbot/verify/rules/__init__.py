"""The verification rules, one per module, registered by name for the issuer's chain."""

from ..rule import Rule
from .amount_rules import AmountRules
from .contractor_matches import ContractorMatches
from .eligibility import Eligibility
from .issuer_matches import IssuerMatches
from .key_matches import KeyMatches
from .kind_matches import KindMatches
from .not_cancelled import NotCancelled
from .not_expired import NotExpired
from .number_exists import NumberExists
from .project_matches import ProjectMatches
from .throttle import Throttle

RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Throttle(),
        NumberExists(),
        KeyMatches(),
        NotCancelled(),
        IssuerMatches(),
        KindMatches(),
        ProjectMatches(),
        ContractorMatches(),
        NotExpired(),
        Eligibility(),
        AmountRules(),
    )
}
