"""What a verified clip becomes: an MP4 a browser plays, and an archive to export.

The MP4 is the segments' H.264 copied as it is into one MP4 (``movflags=faststart``,
so a browser starts playing before it has the whole file): no re-encoding, so no
frame differs from what the camera signed. PyAV is imported only here.

The archive (``clip-<hold>.tar``) holds the clip as the camera's verifier reads it:
the segments, ``manifest.jsonl``, ``camera.pub``, and ``VERIFY.txt`` saying, in
Vietnamese and English, how to check it. It is written once, at verification,
and streamed from disk when downloaded.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import pathlib
import tarfile
from typing import Any
from zoneinfo import ZoneInfo

from controller.broadcasts.schedule import TIMEZONE
from controller.errors import InvalidRequest, _t
from wire.footage import CLIP_MANIFEST, PARTIAL_SUFFIX, PUBLIC_KEY_FILE, VERIFY_NOTE

VIDEO = "clip.mp4"
ARCHIVE = "archive.tar"


def archive_name(hold_id: str) -> str:
    """The archive's name when downloaded."""
    return f"clip-{hold_id}.tar"


def remux(folder: pathlib.Path, names: list[str], target: pathlib.Path) -> None:
    """Copy the video of the segments ``names`` (in order) into one MP4 at ``target``.

    Timestamps are kept as the camera wrote them (a dropped frame stays a gap),
    shifted so the clip starts at zero; a segment whose timestamps do not follow the
    one before (the camera restarted, the 90 kHz clock wrapped) is moved to follow it.
    """
    import av  # noqa: PLC0415 (heavy: only when a clip is verified)

    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    try:
        with av.open(str(partial), "w", format="mp4",
                     options={"movflags": "faststart"}) as output:
            out_stream = None
            origin: int | None = None
            last: int | None = None
            for name in names:
                with av.open(str(folder / name)) as source:
                    if not source.streams.video:
                        raise InvalidRequest(_t("segment {name} holds no video"), name=name)
                    stream = source.streams.video[0]
                    if stream.codec_context.name != "h264":
                        raise InvalidRequest(_t("segment {name}: {codec} video, expected "
                                                "H.264"), name=name,
                                             codec=stream.codec_context.name)
                    if out_stream is None:
                        out_stream = output.add_stream_from_template(stream)
                    shift: int | None = None
                    for packet in source.demux(stream):
                        if packet.dts is None or packet.pts is None:
                            continue  # the demuxer's flush packet
                        if origin is None:
                            origin = packet.dts
                        if shift is None:
                            follows = last is None or packet.dts - origin > last
                            shift = 0 if follows else (last or 0) + 1 - (packet.dts - origin)
                        packet.dts -= origin - shift
                        packet.pts -= origin - shift
                        last = packet.dts
                        packet.stream = out_stream
                        output.mux(packet)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def write_archive(folder: pathlib.Path, names: list[str], target: pathlib.Path, top: str,
                  note: str) -> None:
    """The export: every file of the clip under one folder ``top`` (``clip-<hold>``), and
    the instructions. Written beside ``target`` and renamed when whole."""
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    try:
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in (CLIP_MANIFEST, PUBLIC_KEY_FILE, *names):
                tar.add(folder / name, arcname=f"{top}/{name}", recursive=False)
            data = note.encode()
            info = tarfile.TarInfo(f"{top}/{VERIFY_NOTE}")
            info.size, info.mtime, info.mode = len(data), int(os.path.getmtime(
                folder / CLIP_MANIFEST)), 0o644
            tar.addfile(info, io.BytesIO(data))
        with open(partial, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def verify_note(hold: dict[str, Any], clip_file: str, public_key: str, fingerprint: str,
                segments: int) -> str:
    """VERIFY.txt: what the clip is and how to check it, in Vietnamese then English."""
    zone = ZoneInfo(TIMEZONE)

    def local(ts: float) -> str:
        return dt.datetime.fromtimestamp(ts, zone).strftime("%H:%M:%S %d/%m/%Y")

    start, end, now = local(hold["start"]), local(hold["end"]), local(dt.datetime.now(
        dt.UTC).timestamp())
    desk = hold.get("desk") or "—"
    return f"""KIỂM TRA ĐOẠN GHI HÌNH
=====================

Đoạn ghi hình của camera {hold['camera']} (quầy {desk}), từ {start} đến {end}
(giờ Việt Nam), lý do giữ: {hold['reason']}.
Máy chủ của xã đã kiểm tra lúc {now}: {segments} đoạn, chuỗi mã băm và chữ ký
đều hợp lệ, ký bằng khóa của camera (dấu khóa {fingerprint}).

Để tự kiểm tra lại tệp này, chạy:

    thanthien-camera verify {clip_file}

hoặc, để chắc chắn chữ ký là của đúng khóa mà máy chủ đã ghi nhận cho camera:

    thanthien-camera verify --public-key {public_key} {clip_file}

Kết quả "OK" nghĩa là không đoạn nào bị sửa, xóa, thêm hay đổi thứ tự kể từ khi
camera ghi. Hình ảnh là dữ liệu cá nhân: chỉ dùng để xem xét phản ánh về thái độ
phục vụ, không chia sẻ ra ngoài.

VERIFYING THIS CLIP
===================

Footage of camera {hold['camera']} (desk {desk}), from {start} to {end}
(Vietnam time), held because: {hold['reason']}.
The commune's controller checked it at {now}: {segments} segments, the hash chain
and every signature valid, signed with the camera's key (fingerprint {fingerprint}).

To check this file yourself, run:

    thanthien-camera verify {clip_file}

or, to be sure it was signed with the key the controller registered for the camera:

    thanthien-camera verify --public-key {public_key} {clip_file}

"OK" means no segment was altered, removed, added or reordered since the camera
recorded it. Images of people are personal data: use them only to look into a
complaint about service, and do not share them.
"""
