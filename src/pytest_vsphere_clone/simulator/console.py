"""A VM's console as a PNG: what CreateScreenshot_Task saves (text mode, a login prompt).

Drawn with a built-in 5x7 bitmap font and written with zlib and struct (no imaging library):
the picture a test's failure evidence shows, with the guest's hostname and address on it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

#: Console size in pixels (the VGA text mode a Linux console boots in: 80x25 cells of 9x16).
WIDTH, HEIGHT = 720, 400
_CELL_W, _CELL_H = 9, 16
_SCALE_Y = 2  # the 7-row glyphs drawn twice as tall: a 9x16 cell holds a 5x14 glyph
_FOREGROUND = (0xAA, 0xAA, 0xAA)  # VGA light grey on black
_BACKGROUND = (0x00, 0x00, 0x00)
_B32 = "0123456789ABCDEFGHIJKLMNOPQRSTUV"

# ASCII 0x20-0x7E: 7 rows per glyph, each row's 5 pixels (leftmost = 16) as one base-32 digit.
_GLYPHS = (
    "0000000 4444404 AA00000 AAVAVAA 4FKE5U4 OP248J3 CIK8LID 4400000 2488842 8422248 04LEL40 044V440 0000C48 "
    "000V000 00000CC 01248G0 EHJLPHE 4C4444E EH1248V V2421HE 26AIV22 VGU11HE 68GUHHE V124888 EHHEHHE EHHF12C "
    "0CC0CC0 0CC0C48 248G842 00V0V00 8421248 EH12404 EH1DLLE EHHVHHH UHHUHHU EHGGGHE SIHHHIS VGGUGGV VGGUGGG "
    "EHGNHHF HHHVHHH E44444E 72222IC HIKOKIH GGGGGGV HRLLHHH HHPLJHH EHHHHHE UHHUGGG EHHHLID UHHUKIH FGGE11U "
    "V444444 HHHHHHE HHHHHA4 HHHLLLA HHA4AHH HHA4444 V1248GV E88888E 0G84210 E22222E 4AH0000 000000V 8400000 "
    "00E1FHF GGMPHHU 00EGGHE 11DJHHF 00EHVGE 698S888 0FHHF1E GGMPHHH 40C444E 20622IC GGIKOKI C44444E 00QLLHH "
    "00MPHHH 00EHHHE 00UHUGG 00DJF11 00MPGGG 00EGE1U 88S8896 00HHHJD 00HHHA4 00HHLLA 00HA4AH 00HHF1E 00V248V "
    "2448442 4444444 8442448 008L200 "
)
_FONT = {chr(0x20 + i): tuple(_B32.index(c) for c in glyph) for i, glyph in enumerate(_GLYPHS.split())}
#: A character the font lacks is drawn as a box.
_MISSING = (0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F)


def login_screen(family: str, hostname: str, address: str | None, os_name: str = "") -> list[str]:
    """The text a freshly booted guest's console shows: banner, address and a login prompt."""
    if family == "windows":
        return [os_name or "Windows Server", "", f"Computer name: {hostname}",
                f"IPv4 Address: {address or '(none)'}", "", "Press Ctrl+Alt+Delete to sign in."]
    # Ubuntu's /etc/issue: "Ubuntu 24.04 LTS \n \l", then the address line \4 expands to.
    return [f"{os_name or 'Ubuntu 24.04 LTS'} {hostname} tty1", "",
            f"IPv4 address for eth0: {address or '(none)'}", "", f"{hostname} login: _"]


def render(lines: Sequence[str], width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """A PNG of ``lines`` drawn as a text console, one line per row of cells from the top left."""
    row_bytes = width * 3
    pixels = bytearray(bytes(_BACKGROUND) * width * height)
    foreground = bytes(_FOREGROUND)
    for row, text in enumerate(lines):
        top = 8 + row * _CELL_H
        if top + 7 * _SCALE_Y > height:
            break
        for col, char in enumerate(text):
            left = 8 + col * _CELL_W
            if left + 5 > width:
                break
            for y, bits in enumerate(_FONT.get(char, _MISSING)):
                for x in range(5):
                    if bits & (0x10 >> x):
                        for dy in range(_SCALE_Y):
                            at = (top + y * _SCALE_Y + dy) * row_bytes + (left + x) * 3
                            pixels[at:at + 3] = foreground
    return encode_png(width, height, bytes(pixels))


def encode_png(width: int, height: int, rgb: bytes) -> bytes:
    """An 8-bit RGB PNG of ``rgb`` (rows top to bottom, no padding): signature, IHDR, IDAT, IEND."""
    row_bytes = width * 3
    # Each scanline starts with its filter type (0: none).
    raw = b"".join(b"\x00" + rgb[y * row_bytes:(y + 1) * row_bytes] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # depth 8, colour type 2 (RGB)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))
