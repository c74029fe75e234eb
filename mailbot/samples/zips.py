"""Write zip archives the way Windows and PPAP tools write them, byte by byte.

Python's ``zipfile`` always marks non-ASCII names as UTF-8 (flag bit 11) and cannot encrypt,
so this small writer produces what real submissions contain: cp932 member names with the
UTF-8 flag clear (Explorer's "send to compressed folder"), traditional PKWARE (ZipCrypto)
encryption, and a deflate bomb whose one member inflates to 1 GiB. Deterministic: fixed
timestamps, and the encryption header comes from a seeded generator.
"""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass

from mailbot.samples.special_pdfs import GIB, raw_deflate_of_spaces

FLAG_ENCRYPTED = 0x0001
FLAG_UTF8 = 0x0800
METHOD_STORED = 0
METHOD_DEFLATED = 8
# 2026-04-01 09:00:00 in MS-DOS date/time fields.
DOS_TIME = (9 << 11) | (0 << 5) | 0
DOS_DATE = ((2026 - 1980) << 9) | (4 << 5) | 1


@dataclass
class Member:
    """One archive member: the raw name bytes and either content or a precompressed body."""

    name: bytes
    data: bytes = b""
    utf8_flag: bool = False
    precompressed: tuple[bytes, int, int] | None = None  # (raw deflate, crc32, file size)


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


class _ZipCrypto:
    """Traditional PKWARE encryption (what Windows and most PPAP tools call 'ZipCrypto')."""

    def __init__(self, password: bytes) -> None:
        self.keys = [0x12345678, 0x23456789, 0x34567890]
        for byte in password:
            self._update(byte)

    def _crc(self, crc: int, byte: int) -> int:
        return (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]

    def _update(self, byte: int) -> None:
        k0, k1, k2 = self.keys
        k0 = self._crc(k0, byte)
        k1 = (k1 + (k0 & 0xFF)) & 0xFFFFFFFF
        k1 = (k1 * 134775813 + 1) & 0xFFFFFFFF
        k2 = self._crc(k2, k1 >> 24)
        self.keys = [k0, k1, k2]

    def encrypt(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            temp = (self.keys[2] | 2) & 0xFFFF
            out.append(byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
            self._update(byte)
        return bytes(out)


def build_zip(members: list[Member], *, password: bytes | None = None, seed: int = 0) -> bytes:
    """Serialise ``members`` into a zip (deflated, optionally ZipCrypto-encrypted)."""
    rng = random.Random(seed)
    out = bytearray()
    central = bytearray()
    for m in members:
        if m.precompressed is not None:
            body, crc, size = m.precompressed
        else:
            crc, size = zlib.crc32(m.data), len(m.data)
            comp = zlib.compressobj(9, zlib.DEFLATED, -15)
            body = comp.compress(m.data) + comp.flush()
        flags = FLAG_UTF8 if m.utf8_flag else 0
        if password is not None:
            flags |= FLAG_ENCRYPTED
            header = bytes(rng.randrange(256) for _ in range(11)) + bytes([crc >> 24])
            body = _ZipCrypto(password).encrypt(header + body)
        fixed = struct.pack(
            "<HHHHHIII", 20, flags, METHOD_DEFLATED, DOS_TIME, DOS_DATE, crc, len(body), size
        )
        offset = len(out)
        out += b"PK\x03\x04" + fixed + struct.pack("<HH", len(m.name), 0) + m.name + body
        central += (
            b"PK\x01\x02"
            + struct.pack("<H", 20)  # version made by: MS-DOS / FAT
            + fixed
            + struct.pack("<HHHHHII", len(m.name), 0, 0, 0, 0, 0x20, offset)
            + m.name
        )
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0
    )
    return bytes(out + central + end)


def windows_zip(files: list[tuple[str, bytes]]) -> bytes:
    """A zip as Windows Explorer makes it: cp932 names, UTF-8 flag (bit 11) clear."""
    return build_zip([Member(name.encode("cp932"), data) for name, data in files])


def encrypted_zip(files: list[tuple[str, bytes]], password: str, *, seed: int = 0) -> bytes:
    """A ZipCrypto password-protected zip (the PPAP habit), cp932 names as Windows tools do."""
    members = [Member(name.encode("cp932"), data) for name, data in files]
    return build_zip(members, password=password.encode("ascii"), seed=seed)


def bomb_zip(member_name: str = "data.pdf", inflated: int = GIB) -> bytes:
    """A ~1 MB zip whose single member inflates to ``inflated`` bytes (1 GiB by default)."""
    raw, crc = raw_deflate_of_spaces(inflated)
    return build_zip([Member(member_name.encode("cp932"), precompressed=(raw, crc, inflated))])
