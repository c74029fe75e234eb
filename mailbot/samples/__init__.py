"""Fictional 電子保証 notice PDFs and contractor mails for golden tests, the demo and benchmarks.

``all_samples()`` returns every named variant with the result a correct reader must give
(``Sample.expected``); ``corpus(n)`` yields varied mails; ``render_notice_pdf`` draws one
notice. All data is fictional and all output is deterministic.
"""

from mailbot.samples.base import Sample
from mailbot.samples.catalog import VARIANTS, all_samples, corpus, write_samples
from mailbot.samples.notice_pdf import FontNotFoundError, NoticeFields, render_notice_pdf
from mailbot.samples.special_pdfs import (
    render_decompression_bomb_pdf,
    render_image_only_pdf,
    render_other_document_pdf,
    render_slow_pdf,
    render_unmapped_glyph_pdf,
)

__all__ = [
    "VARIANTS",
    "FontNotFoundError",
    "NoticeFields",
    "Sample",
    "all_samples",
    "corpus",
    "render_decompression_bomb_pdf",
    "render_image_only_pdf",
    "render_notice_pdf",
    "render_other_document_pdf",
    "render_slow_pdf",
    "render_unmapped_glyph_pdf",
    "write_samples",
]
