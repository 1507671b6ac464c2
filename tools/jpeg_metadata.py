"""Remove JPEG metadata segments (EXIF, XMP, ICC, comments) losslessly: the compressed image data is untouched."""

# Kept: APP0 (JFIF header) and APP14 (Adobe colour transform), which decoders read to interpret the pixels.
# Dropped: APP1-APP13, APP15 (EXIF, XMP, ICC, vendor data) and COM (comments): they can carry the scanner,
# the source file name or other hints that correlate with the label.
_KEPT_APP = {0xE0, 0xEE}
_STANDALONE = {0x01} | set(range(0xD0, 0xD8))  # TEM and RSTn carry no length field


def strip_metadata(data: bytes) -> bytes:
    """The same JPEG without metadata segments; raises ValueError when the marker structure is broken."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no SOI marker)")
    out, position = bytearray(data[:2]), 2
    while position < len(data):
        if data[position] != 0xFF:
            raise ValueError(f"expected a marker at byte {position}")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _STANDALONE:
            out += data[position:position + 2]
            position += 2
            continue
        if marker == 0xDA:  # start of scan: the rest is entropy-coded data up to EOI, copied as is
            out += data[position:]
            return bytes(out)
        length = int.from_bytes(data[position + 2:position + 4], "big")
        segment = data[position:position + 2 + length]
        if length < 2 or len(segment) != 2 + length:
            raise ValueError(f"truncated segment 0x{marker:02X} at byte {position}")
        if not ((0xE0 <= marker <= 0xEF and marker not in _KEPT_APP) or marker == 0xFE):
            out += segment
        position += 2 + length
    raise ValueError("no start-of-scan marker")
