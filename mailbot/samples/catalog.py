"""The named samples with their fixed values, and a corpus of varied mails for benchmarks.

``all_samples()`` is the golden set (one sample per variant, values fixed below, so the
files never change); ``corpus()`` cycles over the mail variants with seeded random values.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from mailbot.samples import variants_attach as va
from mailbot.samples import variants_body as vb
from mailbot.samples import variants_geometry as vg
from mailbot.samples.base import (
    EJCS,
    HOKKAIDO,
    WJCS,
    Case,
    Sample,
    random_fields,
)
from mailbot.samples.notice_pdf import NoticeFields
from parsers.model import KINDS

Builder = Callable[[Case], Sample]

#: Every variant, in catalogue order (name → builder).
VARIANTS: dict[str, Builder] = {
    "ejcs_cid": va.ejcs_cid,
    "ejcs_ttf_letterspaced": va.ejcs_ttf_letterspaced,
    "wjcs_table": va.wjcs_table,
    "generic_header_table": va.generic_header_table,
    "fake_bold": va.fake_bold,
    "kangxi_radicals": va.kangxi_radicals,
    "fullwidth_values": va.fullwidth_values,
    "two_pages": va.two_pages,
    "two_pdfs": va.two_pdfs,
    "encrypted_pdf": va.encrypted_pdf,
    "owner_password_pdf": va.owner_password_pdf,
    "image_only": va.image_only,
    "unmapped_glyphs": va.unmapped_glyphs,
    "zip_cp932": va.zip_cp932,
    "zip_encrypted": va.zip_encrypted,
    "zip_bomb": va.zip_bomb,
    "forwarded": va.forwarded,
    "octet_stream": va.octet_stream,
    "html_only": vb.html_only,
    "body_iso2022jp_cp932": vb.body_iso2022jp_cp932,
    "body_shift_jis": vb.body_shift_jis,
    "body_euc_jp": vb.body_euc_jp,
    "body_wrong_label": vb.body_wrong_label,
    "outlook_rfc2047_filename": va.outlook_rfc2047_filename,
    "mac_name_filename_star": va.mac_name_filename_star,
    "incomplete_body": vb.incomplete_body,
    "no_notice": va.no_notice,
    "corrupt_pdf": va.corrupt_pdf,
    "too_many_parts": va.too_many_parts,
    "bare_pdf": va.bare_pdf,
    "pdf_bomb": va.pdf_bomb,
    "slow_pdf": va.slow_pdf,
    "body_and_pdf_same": vb.body_and_pdf_same,
    "body_two_notices": vb.body_two_notices,
    "prose_only": vb.prose_only,
    "owner_password_cid": va.owner_password_cid,
    "office_beside_pdf": va.office_beside_pdf,
    "damaged_office_beside_pdf": va.damaged_office_beside_pdf,
    "rotate_90": vg.rotate_90,
    "rotate_180": vg.rotate_180,
    "rotate_270": vg.rotate_270,
    "rotate_inherited": vg.rotate_inherited,
    "text_matrix_rotated": vg.text_matrix_rotated,
    "flipped_ctm": vg.flipped_ctm,
    "mirrored_text": vg.mirrored_text,
    "scan_sideways": vg.scan_sideways,
    "spaced_values_tc_cid": vg.spaced_values_tc_cid,
    "spaced_values_tc_ttf": vg.spaced_values_tc_ttf,
    "spaced_values_tw_ttf": vg.spaced_values_tw_ttf,
    "spaced_values_tj_cid": vg.spaced_values_tj_cid,
    "spaced_values_positioned_ttf": vg.spaced_values_positioned_ttf,
    "spaced_table_cells": vg.spaced_table_cells,
    "spaced_wjcs_table": vg.spaced_wjcs_table,
    "spaced_words_beside_key": vg.spaced_words_beside_key,
    "rotated_and_spaced": vg.rotated_and_spaced,
}

#: Variants that attack the reader (bombs, timeouts): left out of the corpus by default.
HOSTILE = frozenset({"zip_bomb", "pdf_bomb", "slow_pdf"})
#: Variants that are not mails.
NOT_MAIL = frozenset({"bare_pdf"})
#: The surety whose layout a variant draws (default: EJCS).
SURETY_OF = {
    "wjcs_table": WJCS,
    "generic_header_table": HOKKAIDO,
    "rotate_180": WJCS,
    "rotate_270": HOKKAIDO,
    "spaced_table_cells": HOKKAIDO,
    "spaced_wjcs_table": WJCS,
}
#: Variants that embed the IPAex TrueType font (need fonts-ipaexfont-gothic installed).
TTF_VARIANTS = frozenset(
    {"ejcs_ttf_letterspaced", "wjcs_table", "kangxi_radicals", "owner_password_pdf",
     "rotate_180", "rotate_inherited", "flipped_ctm", "spaced_values_tc_ttf",
     "spaced_values_tw_ttf", "spaced_values_positioned_ttf", "spaced_wjcs_table",
     "rotated_and_spaced"}
)
#: Variants whose second notice (``Case.b``) is used.
TWO_NOTICES = frozenset({"two_pages", "two_pdfs", "body_two_notices", "rotate_inherited"})

_C1 = "〇〇建設　株式会社"
_C2 = "△△工業　株式会社"
_C3 = "株式会社　□□組"
_C4 = "〇△建設工業　株式会社"
_JV = "〇〇・△△特定建設工事共同企業体"
_P1 = "〇〇浄水場△△修繕工事"
_P2 = "△△配水池耐震補強工事"
_P3 = "〇〇川護岸改修工事（その２）"
_P4 = "市道〇〇線舗装補修工事"
_P5 = "△△小学校屋内運動場改修工事"
_P6 = "長坂配水池改良工事"
_P7 = "〇〇ポンプ場電気設備更新工事"
_P8 = "〇〇地区配水管布設替工事"
_P9 = "△△橋りょう補修工事"
_P10 = "西〇〇浄化センター設備改修工事"
_ADV, _MID, _CON = KINDS

# name → (number, key, kind, project, contractor) for notice a, optionally b.
_FIXED: dict[str, list[tuple[str, str, str, str, str]]] = {
    "ejcs_cid": [("35075-00001M", "Z28YUEAJ38ux", _ADV, _P1, _C1)],
    "ejcs_ttf_letterspaced": [("35075-00102K", "k7QmO0x2Lp1a", _CON, _P2, _C2)],
    "wjcs_table": [("50113-00417A", "Wn4lI1oO9sQe", _ADV, _P3, _C3)],
    "generic_header_table": [("30072-0000001", "hT3v0OqZ8m1L", _MID, _P4, _C4)],
    "fake_bold": [("35012-00077B", "Pq9Xl1cV4bO0", _ADV, _P5, _C1)],
    "kangxi_radicals": [("35140-00008C", "rU5eN2wY0Olk", _ADV, _P6, _C2)],
    "fullwidth_values": [("35075-00215D", "G6yH1lT8dO0s", _CON, _P7, _C1)],
    "two_pages": [
        ("35075-00301E", "Mb2Nq7Rz0OiL", _ADV, _P8, _JV),
        ("35075-00302E", "c8Vx1LkW3pQo", _CON, _P8, _JV),
    ],
    "two_pdfs": [
        ("35012-01001F", "Jd4Kf6Hs8Ll1", _ADV, _P9, _C3),
        ("35012-01002F", "yT0O2uI9eR5w", _CON, _P9, _C3),
    ],
    "encrypted_pdf": [("35075-00410G", "Qe3Rt5Yu7Io0", _ADV, _P1, _C1)],
    "owner_password_pdf": [("35075-00411G", "aS2dF4gH6jl1", _CON, _P1, _C1)],
    "image_only": [("35075-00512H", "Zx1Cv3Bn5Ml0", _ADV, _P2, _C2)],
    "unmapped_glyphs": [("35140-00613J", "oP0iU9yT8rE1", _ADV, _P7, _C4)],
    "zip_cp932": [("35075-00714K", "Lk2Jh4Gf6Ds0", _ADV, _P1, _C1)],
    "zip_encrypted": [("35075-00715K", "Ws9Ed8Rf7Tg1", _CON, _P1, _C1)],
    "zip_bomb": [("35075-00716K", "Yh6Uj5Ik4Ol3", _ADV, _P1, _C1)],
    "forwarded": [("35075-00817M", "Pl1Ok2Ij3Uh4", _MID, _P10, _C3)],
    "octet_stream": [("35075-00918N", "Nb7Vc6Xz5Lq0", _ADV, _P9, _C2)],
    "html_only": [("35075-00003M", "Ab3dEf7hJk9m", _ADV, _P1, _C1)],
    "body_iso2022jp_cp932": [("35075-01020P", "Qw2Er4Ty6Ui0", _ADV, _P1, _C1)],
    "body_shift_jis": [("35012-01121R", "As1Df3Gh5Jl7", _CON, _P4, _C2)],
    "body_euc_jp": [("30072-0001022", "Zx9Cv7Bn5Ml3", _CON, _P3, _C4)],
    "body_wrong_label": [("35075-01223S", "OIl0Qa1Zx9Wk", _ADV, _P1, _C1)],
    "outlook_rfc2047_filename": [("35075-01324T", "Er5Tg6Yh7Uj0", _ADV, _P1, _C2)],
    "mac_name_filename_star": [("35075-01425U", "Rt6Yh7Uj8Ik1", _CON, _P2, _C3)],
    "incomplete_body": [("35075-01526W", "Ty7Ui8Op9As0", _ADV, _P1, _C1)],
    "no_notice": [("35075-01627X", "Ui8Op9As0Df1", _ADV, _P1, _C1)],
    "corrupt_pdf": [("35075-01727A", "Op9As0Df1Gh2", _ADV, _P1, _C4)],
    "too_many_parts": [("35075-01828B", "Df1Gh2Jk3Ll4", _ADV, _P1, _C1)],
    "bare_pdf": [("35075-01929C", "Gh2Jk3Ll4Zx5", _ADV, _P1, _C1)],
    "pdf_bomb": [("35075-02000D", "Jk3Ll4Zx5Cv6", _ADV, _P1, _C1)],
    "slow_pdf": [("35075-02001D", "Ll4Zx5Cv6Bn7", _ADV, _P1, _C1)],
    "body_and_pdf_same": [("35075-02030D", "Hn8Jm9Kl0Op1", _ADV, _P5, _C2)],
    "body_two_notices": [
        ("35012-02131E", "Zq8Wx7Ec6Rv0", _ADV, _P8, _C3),
        ("35012-02132E", "Bt5Yn4Um3Il1", _CON, _P8, _C3),
    ],
    "prose_only": [("35075-02233F", "Mk2Nj3Bh4Vg5", _ADV, _P1, _C1)],
    "owner_password_cid": [("35075-02334G", "Vg5Cf6Xd7Zs0", _ADV, _P1, _C1)],
    "office_beside_pdf": [("35075-02435H", "Xc4Vb5Nm6Lk7", _ADV, _P2, _C2)],
    "damaged_office_beside_pdf": [("35075-02536J", "Qa7Ws8Ed9Rf0", _CON, _P5, _C1)],
    "rotate_90": [("35075-02637K", "Rq2Tw4Ye6Ua8", _ADV, _P1, _C1)],
    "rotate_180": [("50113-02738L", "pL0oK9iJ8uH7", _CON, _P3, _C3)],
    "rotate_270": [("30072-0002839", "Mn3Bv5Cx7Za9", _MID, _P4, _C4)],
    "rotate_inherited": [
        ("35075-02940M", "Gt5Fr4De3Sw2", _ADV, _P8, _JV),
        ("35075-02941M", "hY6jU7kI8lO9", _CON, _P8, _JV),
    ],
    "text_matrix_rotated": [("35012-03042N", "Xs1Cd2Vf3Bg4", _ADV, _P9, _C2)],
    "flipped_ctm": [("35140-03143P", "Nh5Mj6Lk7Ip8", _CON, _P6, _C1)],
    "mirrored_text": [("35075-03244R", "Zl0Om9In8Ub7", _ADV, _P2, _C3)],
    "scan_sideways": [("35075-03345S", "Qz1Wx2Ec3Rv4", _ADV, _P1, _C1)],
    "spaced_values_tc_cid": [("35075-03446T", "Tb5Yn6Um7Il8", _ADV, _P1, _C1)],
    "spaced_values_tc_ttf": [("35012-03547U", "o0O1l1I0Ok9j", _CON, _P5, _C2)],
    "spaced_values_tw_ttf": [("35075-03648W", "Wm2Qn3Er4Tb5", _ADV, _P7, _C4)],
    "spaced_values_tj_cid": [("35140-03749X", "aB3cD5eF7gH9", _MID, _P10, _C3)],
    "spaced_values_positioned_ttf": [("35075-03850A", "Mw1Il2Mw3Il4", _ADV, _P2, _C1)],
    "spaced_table_cells": [("30072-0003951", "Kk8Jj7Hh6Gg5", _ADV, _P4, _C4)],
    "spaced_wjcs_table": [("52008-04052B", "Lm4Np6Qr8St0", _CON, _P3, _C3)],
    "spaced_words_beside_key": [("35075-04153C", "Vx9Wy8Xz7Aa6", _ADV, _P1, _C2)],
    "rotated_and_spaced": [("35012-04254D", "Ee1Ff2Gg3Hh4", _CON, _P9, _C1)],
}


def _fields(name: str, row: tuple[str, str, str, str, str]) -> NoticeFields:
    number, key, kind, project, contractor = row
    return NoticeFields(
        number,
        key,
        kind,
        project,
        contractor,
        SURETY_OF.get(name, EJCS),
        issuer="〇〇市水道局",
        amount=12_000_000,
    )


def fixed_case(name: str, index: int = 0) -> Case:
    """The catalogue's fixed inputs for variant ``name``."""
    rows = _FIXED[name]
    a = _fields(name, rows[0])
    b = _fields(name, rows[1]) if len(rows) > 1 else a
    return Case(name, a, b, index)


def all_samples(names: Iterable[str] | None = None) -> list[Sample]:
    """One sample per variant with the fixed values above, in catalogue order.

    ``names`` restricts the set (e.g. leave out ``TTF_VARIANTS`` where the font is missing).
    """
    wanted = set(VARIANTS if names is None else names)
    unknown = wanted - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown sample names: {sorted(unknown)}")
    return [
        builder(fixed_case(name, i))
        for i, (name, builder) in enumerate(VARIANTS.items())
        if name in wanted
    ]


def write_samples(directory: str | Path) -> list[Path]:
    """Write every sample as ``NAME.eml`` / ``NAME.pdf`` into ``directory``; return the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for sample in all_samples():
        path = out / sample.filename
        path.write_bytes(sample.data)
        paths.append(path)
    return paths


def expected_lines(samples: list[Sample]) -> list[str]:
    """One JSON object per sample: name, file and the expected notices and problems."""
    return [
        json.dumps({"name": s.name, "file": s.filename, **s.expected}, ensure_ascii=False)
        for s in samples
    ]


def _corpus_case(name: str, i: int, rng: random.Random) -> Case:
    surety = SURETY_OF.get(name, EJCS)
    a = random_fields(rng, surety=surety)
    if name == "kangxi_radicals":
        a = replace(a, project_name=rng.choice((_P6, _P10)))
    b = random_fields(rng, surety=surety)
    if name in TWO_NOTICES:
        a = replace(a, kind=_ADV)
        b = replace(
            b,
            kind=rng.choice([k for k in KINDS if k != a.kind]),
            project_name=a.project_name,
            contractor=a.contractor,
        )
    return Case(f"c{i:05d}_{name}", a, b, i)


def corpus(n: int, seed: int = 0, *, hostile: bool = False) -> Iterator[Sample]:
    """``n`` mails cycling over the mail variants with varied, seeded values (for benchmarks).

    The hostile variants (bombs, slow PDF) are left out unless ``hostile=True``.
    """
    names = [v for v in VARIANTS if v not in NOT_MAIL and (hostile or v not in HOSTILE)]
    rng = random.Random(seed)
    for i in range(n):
        name = names[i % len(names)]
        yield VARIANTS[name](_corpus_case(name, i, rng))
