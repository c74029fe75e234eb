"""Mail safety: may a mail cause an automatic mail? One rule per module, two chains.

Both sides ask it: the issuer side before it answers a sender (`REPLY_CHAIN`), the contractor
side before a mail may cause a submission (`SUBMIT_CHAIN`). The rules are shared; where the
sides differ, they differ by which rules their chain holds and how they are set up.
"""

from .chain import BOUNCE, BOUNCE_CHAIN, REPLY_CHAIN, SUBMIT_CHAIN, first_reason, is_bounce
from .rule import BOUNCE_LOCALPARTS, LIST_PRECEDENCE, ROBOT_LOCALPARTS, Context, SafetyRule

__all__ = [
    "BOUNCE", "BOUNCE_CHAIN", "BOUNCE_LOCALPARTS", "LIST_PRECEDENCE", "REPLY_CHAIN",
    "ROBOT_LOCALPARTS", "SUBMIT_CHAIN", "Context", "SafetyRule", "first_reason", "is_bounce",
]
