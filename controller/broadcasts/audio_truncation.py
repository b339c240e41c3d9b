"""Is an MP3 or Ogg upload cut off? Pure parsing of the bytes given, no I/O.

A decoder plays as much of a cut-off file as it can and says nothing, so a
bulletin missing its last sentences would go out to every hamlet. WAV and
FLAC declare their length in a header; MP3 and Ogg do not, so these checks
walk the stream's own framing instead:

- MP3: after any ID3v2 tag, MPEG audio frame headers follow each other back
  to back, each giving its frame's length. A frame that runs past the end of
  the file, or into the ID3v1/APE tags appended to it, was cut. A cut
  exactly between two frames leaves nothing broken, but a Xing/Info (LAME,
  FFmpeg, libsndfile) or VBRI (Fraunhofer) header in the first frame
  declares how many frames and bytes the stream has.
- Ogg: pages follow each other, each giving its length; each logical stream
  ends with a page flagged end-of-stream. A page that runs past the end of
  the file, or a stream whose last page lacks the flag, was cut.

Each function returns what is wrong, in words, or None. They only claim a
cut they can see; a file they cannot follow (free-format MP3, data that is
neither a frame nor a known tag) is left to the decoder.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Bit rates in kbit/s by (MPEG-1?, layer) and the header's 4-bit index
# (ISO/IEC 11172-3 and 13818-3); index 0 is "free format", 15 is invalid.
_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
# Sample rates by the header's 2-bit version field: 0 MPEG-2.5, 2 MPEG-2, 3 MPEG-1.
_SAMPLE_RATES = {0: (11025, 12000, 8000), 2: (22050, 24000, 16000), 3: (44100, 48000, 32000)}
_VERSION_NAMES = {0: "MPEG-2.5", 2: "MPEG-2", 3: "MPEG-1"}


@dataclass(frozen=True)
class MpegFrame:
    """One MPEG audio frame header, decoded."""

    version: int  # the header's field: 0 MPEG-2.5, 2 MPEG-2, 3 MPEG-1
    layer: int  # 1, 2 or 3
    bitrate: int  # bit/s; 0 for free format, whose length the header does not give
    sample_rate: int
    padding: bool
    mono: bool

    @property
    def length(self) -> int:
        """Bytes in the frame, header included (0 for free format)."""
        if self.layer == 1:
            return (12 * self.bitrate // self.sample_rate + self.padding) * 4
        per_byte = 72 if self.layer == 3 and self.version != 3 else 144
        return per_byte * self.bitrate // self.sample_rate + self.padding

    @property
    def samples(self) -> int:
        """Samples per channel the frame decodes to."""
        if self.layer == 1:
            return 384
        return 576 if self.layer == 3 and self.version != 3 else 1152

    @property
    def name(self) -> str:
        return f"{_VERSION_NAMES[self.version]} layer {'I' * self.layer}"


def mpeg_frame(data: bytes, pos: int) -> MpegFrame | None:
    """The frame header at ``pos``, or None if the four bytes there are not one."""
    if pos + 4 > len(data):
        return None
    (word,) = struct.unpack_from(">I", data, pos)
    if word >> 21 != 0x7FF:
        return None
    version, layer_bits = (word >> 19) & 3, (word >> 17) & 3
    rate_index, bitrate_index = (word >> 10) & 3, (word >> 12) & 15
    if version == 1 or layer_bits == 0 or rate_index == 3 or bitrate_index == 15:
        return None
    layer = 4 - layer_bits
    kbps = _BITRATES[version == 3, layer][bitrate_index]
    return MpegFrame(version, layer, kbps * 1000, _SAMPLE_RATES[version][rate_index],
                     bool(word >> 9 & 1), (word >> 6) & 3 == 3)


def id3v2_end(data: bytes) -> int:
    """Where the audio starts: past any ID3v2 tags at the front (0 if none).

    The tag's size is four 7-bit bytes ("syncsafe", so no 0xFF byte appears
    that a decoder could take for a frame sync) and excludes the 10-byte
    header and the 10-byte footer that flag 0x10 announces.
    """
    pos = 0
    while data[pos:pos + 3] == b"ID3" and len(data) >= pos + 10:
        size = 0
        for byte in data[pos + 6:pos + 10]:
            size = size << 7 | (byte & 0x7F)
        pos += 10 + size + (10 if data[pos + 5] & 0x10 else 0)
    return pos


def audio_end(data: bytes) -> int:
    """Where the audio ends: before any tags appended to the file.

    Taggers append an ID3v1 tag (``TAG``, 128 bytes, last), an APEv2 tag
    (a 32-byte ``APETAGEX`` footer whose size covers the items and footer,
    plus a 32-byte header if flagged) and Lyrics3v2 (``LYRICS200`` after a
    six-digit size), in some order. They are found from the end, the way
    tag readers find them.
    """
    end = len(data)
    while True:
        if end >= 128 and data[end - 128:end - 125] == b"TAG":
            start = end - 128
        elif end >= 32 and data[end - 32:end - 24] == b"APETAGEX":
            size, flags = struct.unpack_from("<I4xI", data, end - 20)
            start = end - size - (32 if flags & 0x80000000 else 0)
        elif data[end - 9:end] == b"LYRICS200" and data[end - 15:end - 9].isdigit():
            start = end - int(data[end - 15:end - 9]) - 15
        else:
            return end
        if start < 0:
            return end
        end = start


@dataclass(frozen=True)
class VbrHeader:
    """What a Xing/Info or VBRI header in the first frame declares (0: not declared)."""

    kind: str
    frames: int
    bytes: int


def vbr_header(data: bytes, pos: int, frame: MpegFrame) -> VbrHeader | None:
    """The Xing/Info or VBRI header in the frame at ``pos``, if it carries one.

    Xing/Info sits after the side information (17 or 32 bytes in MPEG-1,
    9 or 17 in MPEG-2 and 2.5, mono or not): flags, then the frame count
    (flag 1) and the byte count (flag 2). VBRI sits 32 bytes after the
    header: version, delay, quality, then bytes and frames. Both count the
    stream from this frame on, ID3 tags excluded.
    """
    side = (17 if frame.mono else 32) if frame.version == 3 else (9 if frame.mono else 17)
    xing = pos + 4 + side
    if data[xing:xing + 4] in (b"Xing", b"Info") and xing + 8 <= len(data):
        (flags,) = struct.unpack_from(">I", data, xing + 4)
        fields = xing + 8
        frames = bytes_ = 0
        if flags & 1 and fields + 4 <= len(data):
            (frames,) = struct.unpack_from(">I", data, fields)
            fields += 4
        if flags & 2 and fields + 4 <= len(data):
            (bytes_,) = struct.unpack_from(">I", data, fields)
        return VbrHeader(data[xing:xing + 4].decode(), frames, bytes_)
    vbri = pos + 36
    if data[vbri:vbri + 4] == b"VBRI" and vbri + 18 <= len(data):
        bytes_, frames = struct.unpack_from(">II", data, vbri + 10)
        return VbrHeader("VBRI", frames, bytes_)
    return None


def _first_frame(data: bytes, pos: int) -> tuple[int, MpegFrame] | None:
    """The first frame at or after ``pos`` that the next frame's header confirms.

    Encoders and taggers sometimes leave padding between the ID3v2 tag and
    the audio; a lone 0xFFE.. in it is not a frame unless another follows
    (or the file ends before the next header could).
    """
    while 0 <= pos < len(data):
        frame = mpeg_frame(data, pos)
        if frame is not None and frame.length:
            after = pos + frame.length
            if after + 4 > len(data) or mpeg_frame(data, after) is not None:
                return pos, frame
        pos = data.find(b"\xff", pos + 1)
    return None


def mp3_truncation(data: bytes) -> str | None:
    """What shows an MP3 file was cut off, in words, or None if nothing does."""
    start = id3v2_end(data)
    if start > len(data):
        return f"its ID3 tag declares {start} bytes but the file has {len(data)}"
    found, end = _first_frame(data, start), audio_end(data)
    if found is None or found[0] >= end:
        return None
    first, head = found
    pos, frames = first, 0
    while pos < end:
        frame = mpeg_frame(data, pos)
        if frame is None:
            if len(data) - pos < 4 and data[pos] == 0xFF:
                return f"it ends inside the header of the frame at byte {pos}"
            return None  # not a frame, not a known tag: leave it to the decoder
        if not frame.length:
            return None  # free format: the header does not say where the frame ends
        if pos + frame.length > end:
            after = "remain" if end == len(data) else "come before the tags at its end"
            return (f"its last {frame.name} frame (at byte {pos}) needs {frame.length} "
                    f"bytes but only {end - pos} {after}")
        pos, frames = pos + frame.length, frames + 1
    declared = vbr_header(data, first, head)
    if declared is None:
        return None
    return _short_of_declared(declared, frames - 1, end - first, head)


def _short_of_declared(declared: VbrHeader, frames: int, stream_bytes: int,
                       head: MpegFrame) -> str | None:
    """Whether the frames and bytes found fall short of what the VBR header declares.

    ``frames`` and ``stream_bytes`` are what follows the header's own frame
    and what runs from it to the tags at the end. LAME and FFmpeg count
    frames the same way; one more is allowed for encoders that count the
    header's frame too. Byte counts include it and exclude ID3 tags.
    """
    if declared.frames and frames + 1 < declared.frames:
        seconds = head.samples / head.sample_rate
        return (f"its {declared.kind} header declares {declared.frames} frames "
                f"({declared.frames * seconds:.2f} s) but it holds {frames} "
                f"({frames * seconds:.2f} s)")
    if declared.bytes and stream_bytes < declared.bytes:
        return (f"its {declared.kind} header declares {declared.bytes} bytes of audio "
                f"but the file holds {stream_bytes}")
    return None


def ogg_truncation(data: bytes) -> str | None:
    """What shows an Ogg file was cut off, in words, or None if nothing does.

    A page is a 27-byte header (``OggS``, version, header type, granule
    position, stream serial, page number, CRC, segment count), the segment
    table, and the segments, whose lengths the table gives. Header type
    0x04 marks a logical stream's last page.
    """
    pos = 0
    open_streams: dict[int, int] = {}  # serial → offset of its latest page
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS":
            if len(data) - pos < 4 and b"OggS".startswith(data[pos:]):
                return f"it ends inside the header of the page at byte {pos}"
            return None  # not a page: leave it to the decoder
        if pos + 27 > len(data) or pos + 27 + data[pos + 26] > len(data):
            return f"it ends inside the header of the page at byte {pos}"
        segments = data[pos + 27:pos + 27 + data[pos + 26]]
        length = 27 + len(segments) + sum(segments)
        if pos + length > len(data):
            return (f"its last page (at byte {pos}) needs {length} bytes "
                    f"but only {len(data) - pos} remain")
        (serial,) = struct.unpack_from("<I", data, pos + 14)
        if data[pos + 5] & 0x04:
            open_streams.pop(serial, None)
        else:
            open_streams[serial] = pos
        pos += length
    if open_streams:
        last = max(open_streams.values())
        return f"its last page (at byte {last}) lacks the end-of-stream flag"
    return None
