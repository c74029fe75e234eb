"""Reading library: e-mails and notice PDFs in, guarantee numbers and keys out.

Imports nothing from `mailbot` (docs/architecture.md). Entry points: `Reader` (with a `PdfPool` for
untrusted input), the plain data of `model`, and the `Limits` that bound the work.
"""

from .limits import Limits
from .model import KINDS, PROBLEM_CODES, Notice, ParseResult, Problem, ProblemCode
from .reader import Reader
from .sandbox import InlineRunner, PdfPool

__all__ = [
    "KINDS",
    "PROBLEM_CODES",
    "ProblemCode",
    "InlineRunner",
    "Limits",
    "Notice",
    "ParseResult",
    "PdfPool",
    "Problem",
    "Reader",
]
