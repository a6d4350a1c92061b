"""Turning the bytes of a mail into text whatever its charset label says."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import charset_normalizer

# Labels seen in the wild mapped to the Python codec that decodes what senders really
# meant: mail clients label GBK/GB18030 text "gb2312", HKSCS text "big5" and CP949 text
# "ks_c_5601-1987"; each superset decodes the subset unchanged.
_SUPERSETS: dict[str, str] = {
    "gb2312": "gb18030",
    "gb_2312": "gb18030",
    "gb_2312-80": "gb18030",
    "csgb2312": "gb18030",
    "euc-cn": "gb18030",
    "euccn": "gb18030",
    "x-euc-cn": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "chinese": "gb18030",
    "iso-ir-58": "gb18030",
    "gb18030": "gb18030",
    "big5": "big5hkscs",
    "big-5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "csbig5": "big5hkscs",
    "cp950": "big5hkscs",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ks_c_5601-1989": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "csksc56011987": "cp949",
    "iso-ir-149": "cp949",
    "korean": "cp949",
    "euc-kr": "cp949",
    "euckr": "cp949",
    "windows-949": "cp949",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode20utf7": "utf-7",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "euc-jp": "euc_jis_2004",
    # WHATWG: "latin1" and "us-ascii" mean windows-1252 in practice.
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ansi_x3.4-1968": "cp1252",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
}

# Labels under which text that is valid UTF-8 is better read as UTF-8 (a common mislabel).
_SINGLE_BYTE_LEGACY = frozenset({"cp1252", "cp1254", "cp874"})

_ISO2022_JP = re.compile(r"^(cs)?iso-?2022-?jp(-.*)?$")
_DETECTION_SAMPLE = 64 * 1024
_CHAOS_TOLERANCE = 0.1
_PREFERRED_DETECTIONS = frozenset({"utf_8", "gb18030", "big5", "big5hkscs", "cp950", "gb2312"})
_ESC = 0x1B


@dataclass(frozen=True, slots=True)
class Decoded:
    """Text decoded from bytes, and whether its charset had to be guessed."""

    text: str
    guessed: bool


def codec_for(label: str | None) -> str | None:
    """The Python codec for a MIME charset label, or None when unknown or missing."""
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower()
    if not name:
        return None
    if name in _SUPERSETS:
        return _SUPERSETS[name]
    if _ISO2022_JP.match(name):
        return "iso2022_jp_2"
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError):
        return None
    # A Python alias can hide a subset codec (e.g. "euc_cn" → gb2312): map once more.
    return _SUPERSETS.get(codec.replace("_", "-"), codec)


def decode_bytes(data: bytes, label: str | None, *, fallback: str | None = None) -> Decoded:
    """Decode ``data`` labelled ``label``; never raises.

    A known label that decodes cleanly wins; a missing, unknown or wrong label falls back to
    ``fallback`` (e.g. the body charset for 8-bit headers), UTF-8, then charset detection.
    Bytes nothing can decode become U+FFFD.
    """
    if not data:
        return Decoded("", False)
    codec = codec_for(label)
    if codec is not None:
        text = _strict(data, codec)
        if text is not None:
            if codec in _SINGLE_BYTE_LEGACY and not data.isascii():
                as_utf8 = _strict(data, "utf-8")
                if as_utf8 is not None:
                    return Decoded(as_utf8, True)
            return Decoded(text, False)
        if codec.startswith("iso2022_jp"):
            return Decoded(_iso2022jp_via_cp932(data), False)
    if data.isascii() and b"+" not in data and _ESC not in data:
        return Decoded(data.decode("ascii"), False)
    return Decoded(_guess(data, fallback), True)


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None
    except Exception:  # third-party codecs may raise anything on garbage
        return None


def _guess(data: bytes, fallback: str | None) -> str:
    for codec in (codec_for(fallback), "utf-8"):
        if codec is not None:
            text = _strict(data, codec)
            if text is not None:
                return text
    if _ESC in data:
        text = _strict(data, "iso2022_jp_2")
        if text is not None:
            return text
    codec = _detect(data[:_DETECTION_SAMPLE])
    try:
        return data.decode(codec or "utf-8", errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _detect(sample: bytes) -> str | None:
    """Best codec for ``sample`` by charset-normalizer, nudged towards Chinese.

    This service's mail is mostly Chinese or English; on short samples the detector ranks
    Big5 text as CP932 about as likely, so a Chinese reading that is nearly as clean wins.
    """
    try:
        matches = list(charset_normalizer.from_bytes(sample))
    except Exception:  # a detector bug must not cost the mail; UTF-8 with U+FFFD then
        return None
    if not matches:
        return None
    best = matches[0]
    for match in matches:
        if match.chaos > best.chaos + _CHAOS_TOLERANCE:
            break
        if match.encoding in _PREFERRED_DETECTIONS:
            return codec_for(match.encoding)
    return codec_for(best.encoding)


def _iso2022jp_via_cp932(data: bytes) -> str:
    """Decode ISO-2022-JP with vendor (NEC/IBM) characters by re-encoding to Shift_JIS.

    Python's ISO-2022-JP codecs reject row 13 (①, ㈱ …) and the IBM rows that Windows
    clients send; CP932 knows them, so JIS X 0208 pairs are mapped to Shift_JIS first.
    """
    out = bytearray()
    mode = "ascii"
    i = 0
    n = len(data)
    while i < n:
        byte = data[i]
        if byte == _ESC:
            seq = data[i + 1 : i + 3]
            if seq in (b"(B", b"(J"):
                mode, i = "ascii", i + 3
                continue
            if seq == b"(I":
                mode, i = "kana", i + 3
                continue
            if seq in (b"$@", b"$B"):
                mode, i = "jis", i + 3
                continue
            if data[i + 1 : i + 4] in (b"$(D", b"$(Q", b"$(O"):
                mode, i = "unknown", i + 4
                continue
            if seq[:1] in (b"$", b"(", b".", b"N"):
                mode, i = "unknown", i + 3
                continue
            out.append(byte)
            i += 1
            continue
        if byte in (0x0A, 0x0D):
            out.append(byte)
            i += 1
            continue
        if mode == "jis" and 0x21 <= byte <= 0x7E and i + 1 < n and 0x21 <= data[i + 1] <= 0x7E:
            out += _jis_to_sjis(byte, data[i + 1])
            i += 2
            continue
        if mode == "kana" and 0x21 <= byte <= 0x5F:
            out.append(byte + 0x80)
        elif mode == "unknown":
            out += b"?"
        else:
            out.append(byte)
        i += 1
    return bytes(out).decode("cp932", errors="replace")


def _jis_to_sjis(j1: int, j2: int) -> bytes:
    s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
    if j1 % 2:
        s2 = j2 + 0x1F
        if s2 >= 0x7F:
            s2 += 1
    else:
        s2 = j2 + 0x7E
    return bytes((s1, s2))
