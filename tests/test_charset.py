"""Decoding Japanese mail text whatever its charset label says."""

from parsers.charset import decode_bytes

TEXT = "㈱〇〇建設の①です。保証契約番号：35075-00001M ｶﾅ"


def to_jis(text: str) -> bytes:
    """ISO-2022-JP with cp932 extensions, as Windows mailers write it (test-side encoder)."""
    data, out, mode = text.encode("cp932"), bytearray(), "ascii"
    i = 0
    while i < len(data):
        byte = data[i]
        if byte < 0x80:
            if mode != "ascii":
                out += b"\x1b(B"
                mode = "ascii"
            out.append(byte)
            i += 1
        elif 0xA1 <= byte <= 0xDF:
            if mode != "kana":
                out += b"\x1b(I"
                mode = "kana"
            out.append(byte - 0x80)
            i += 1
        else:
            if mode != "kanji":
                out += b"\x1b$B"
                mode = "kanji"
            s1, s2 = byte, data[i + 1]
            j1 = (s1 - (0x70 if s1 <= 0x9F else 0xB0)) * 2
            if s2 < 0x9F:
                j1 -= 1
                j2 = s2 - (0x20 if s2 >= 0x80 else 0x1F)
            else:
                j2 = s2 - 0x7E
            out += bytes((j1, j2))
            i += 2
    if mode != "ascii":
        out += b"\x1b(B"
    return bytes(out)


def test_iso2022jp_with_nec_specials():
    decoded = decode_bytes(to_jis(TEXT), "ISO-2022-JP")
    assert decoded.text == TEXT and not decoded.lossy


def test_shift_jis_label_means_cp932():
    decoded = decode_bytes(TEXT.encode("cp932"), "Shift_JIS")
    assert decoded.text == TEXT and decoded.charset == "cp932"


def test_euc_jp_with_nec_special():
    text = "①保証契約番号"
    decoded = decode_bytes(text.encode("euc_jis_2004"), "EUC-JP")
    assert decoded.text == text


def test_wrong_latin_label_on_utf8():
    assert decode_bytes(TEXT.encode("utf-8"), "iso-8859-1").text == TEXT


def test_missing_label_guesses_jis_before_utf8():
    assert decode_bytes(to_jis("保証契約番号"), None).text == "保証契約番号"


def test_undecodable_bytes_are_flagged_lossy():
    decoded = decode_bytes(b"\x82\xa0\xff\xfe\x80\x81", "shift_jis")
    assert decoded.lossy
