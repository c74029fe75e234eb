"""The mail-safety rules, one per module (see `mailbot.pipeline.safety.rule`)."""

from .answerable import Answerable
from .auto_submitted import AutoSubmitted
from .issuer_domain import IssuerDomain
from .list_precedence import ListPrecedence
from .mailing_list import MailingList
from .no_sender import NoSender
from .null_sender import NullSender
from .own_address import OwnAddress
from .robot_sender import RobotSender
from .unambiguous import Unambiguous

__all__ = [
    "Answerable", "AutoSubmitted", "IssuerDomain", "ListPrecedence", "MailingList", "NoSender",
    "NullSender", "OwnAddress", "RobotSender", "Unambiguous",
]
