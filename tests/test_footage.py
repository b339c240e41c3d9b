"""Tamper evidence: a camera's footage folder and its exported clips verify, and every
kind of tampering is caught and named (wire.footage, camera_node.store, the verify CLI)."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import stat
import tarfile
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from camera_node import verify_cli
from camera_node.errors import ExportError, KeyMismatch
from camera_node.keys import load_or_create_key, public_key_hex
from camera_node.segments import Segmenter
from camera_node.store import SegmentStore
from camera_node.synthetic import SyntheticSource
from wire.footage import (
    FootageError,
    entry_chain,
    key_fingerprint,
    manifest_line,
    sign_entry,
    verify,
)

SEGMENTS = 6


class Pristine:
    """A camera's footage folder as recorded, and what the controller knows of it."""

    def __init__(self, folder: pathlib.Path, key: Ed25519PrivateKey):
        self.folder, self.key = folder, key
        self.public_key = public_key_hex(key)
        store = SegmentStore(folder, key)
        self.heads: dict[int, str] = {}
        segmenter = Segmenter(store, segment_s=0.5,
                              on_segment=lambda s: self.heads.update({s.seq: s.chain}))
        SyntheticSource([segmenter], width=160, height=120, fps=30, keyframe_interval_s=0.5,
                        realtime=False).encode_frames(SEGMENTS * 15)
        segmenter.close()
        self.names = [s.name for s in store.segments()]
        assert len(self.names) == SEGMENTS


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return Pristine(tmp_path_factory.mktemp("camera") / "footage",
                    Ed25519PrivateKey.generate())


@pytest.fixture
def footage(pristine: Pristine, tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the pristine footage, to tamper with."""
    return pathlib.Path(shutil.copytree(pristine.folder, tmp_path / "footage"))


def manifest_of(folder: pathlib.Path) -> pathlib.Path:
    (path,) = folder.glob("manifest-*.jsonl")
    return path


def lines_of(folder: pathlib.Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in manifest_of(folder).read_text().splitlines()]


def write_lines(folder: pathlib.Path, entries: list[dict[str, Any]]) -> None:
    manifest_of(folder).write_bytes(b"".join(manifest_line(e) for e in entries))


def flip_byte(path: pathlib.Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


# -- a store folder ------------------------------------------------------------------------


def test_verify_intact_footage(pristine: Pristine) -> None:
    result = verify(pristine.folder, public_key_hex=pristine.public_key,
                    expected_heads=pristine.heads)
    assert result.ok and result.problems == []
    assert (result.segments, result.first, result.last) == (SEGMENTS, 1, SEGMENTS)
    assert result.kind == "store" and result.fingerprint == key_fingerprint(pristine.public_key)
    assert result.first_time is not None and result.last_time is not None
    assert result.last_time - result.first_time == pytest.approx(SEGMENTS * 0.5, abs=0.05)


def test_verify_flipped_byte_names_the_segment_altered(footage: pathlib.Path,
                                                       pristine: Pristine) -> None:
    flip_byte(footage / pristine.names[2], 5000)
    result = verify(footage)
    assert not result.ok
    assert result.problems == [f"{pristine.names[2]} (seq 3): altered: its sha256 differs "
                               "from the manifest"]


def test_verify_deleted_segment_is_missing(footage: pathlib.Path, pristine: Pristine) -> None:
    (footage / pristine.names[1]).unlink()
    result = verify(footage)
    assert result.problems == [f"{pristine.names[1]} (seq 2): missing: deleted without a "
                               "retirement record"]


def test_verify_accepts_retired_segments(footage: pathlib.Path, pristine: Pristine) -> None:
    """Footage deleted by retention, with its record, is a legitimate gap."""
    store = SegmentStore(footage, pristine.key)
    store.retire(store.segments()[:2], "age")
    result = verify(footage, public_key_hex=pristine.public_key,
                    expected_heads=pristine.heads)
    assert result.ok, result.problems
    assert (result.segments, result.retired, result.first) == (SEGMENTS - 2, 2, 3)


def test_verify_swapped_segments_are_reordered(footage: pathlib.Path,
                                               pristine: Pristine) -> None:
    a, b = footage / pristine.names[1], footage / pristine.names[3]
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    result = verify(footage)
    assert result.problems == [
        f"{pristine.names[1]} (seq 2): reordered: the file holds the footage of "
        f"{pristine.names[3]} (seq 4)",
        f"{pristine.names[3]} (seq 4): reordered: the file holds the footage of "
        f"{pristine.names[1]} (seq 2)",
    ]


def test_verify_edited_manifest_line_breaks_the_chain(footage: pathlib.Path,
                                                      pristine: Pristine) -> None:
    entries = lines_of(footage)
    entries[2]["start"] -= 600  # the footage claimed to be ten minutes earlier
    write_lines(footage, entries)
    result = verify(footage)
    assert not result.ok
    assert result.problems[0].startswith(f"{pristine.names[2]} (seq 3): chain broken: the "
                                         "manifest entry was edited")


def test_verify_reordered_manifest_lines(footage: pathlib.Path, pristine: Pristine) -> None:
    entries = lines_of(footage)
    entries[2], entries[3] = entries[3], entries[2]
    write_lines(footage, entries)
    result = verify(footage)
    assert not result.ok
    assert result.problems[0].startswith(f"{pristine.names[3]} (seq 4): reordered")


def test_verify_removed_manifest_line_and_file(footage: pathlib.Path,
                                              pristine: Pristine) -> None:
    entries = lines_of(footage)
    del entries[3]
    write_lines(footage, entries)
    (footage / pristine.names[3]).unlink()
    result = verify(footage)
    assert result.problems[0].startswith(f"{pristine.names[4]} (seq 5): chain broken: it "
                                         "does not follow the entry before it")
    result = verify(footage, expected_heads=pristine.heads)
    assert "seq 4: missing: the controller recorded it" in result.problems[-1]


def test_verify_bad_signature(footage: pathlib.Path, pristine: Pristine) -> None:
    entries = lines_of(footage)
    entries[4]["sig"] = Ed25519PrivateKey.generate().sign(bytes.fromhex(
        entries[4]["chain"])).hex()
    write_lines(footage, entries)
    assert verify(footage).problems == [f"{pristine.names[4]} (seq 5): bad signature"]


def _forge(folder: pathlib.Path, seq: int) -> None:
    """What a forger with the files but not the camera's key does: alter a segment, then
    rebuild the whole manifest chain with a key of their own, and its camera.pub."""
    forger = Ed25519PrivateKey.generate()
    prev, forged = "", []
    for entry in lines_of(folder):
        if entry["seq"] == seq:
            path = folder / entry["name"]
            flip_byte(path, 3000)
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        signed = sign_entry(forger, prev, entry)
        forged.append(signed)
        prev = signed["chain"]
    write_lines(folder, forged)
    (folder / "camera.pub").write_text(public_key_hex(forger) + "\n")


def test_verify_resigned_manifest_caught_by_registered_key(footage: pathlib.Path,
                                                           pristine: Pristine) -> None:
    _forge(footage, 3)
    assert verify(footage).ok  # consistent with itself: why the registered key matters
    result = verify(footage, public_key_hex=pristine.public_key)
    assert not result.ok
    assert result.problems[0].startswith("signed with another key")
    assert key_fingerprint(pristine.public_key) in result.problems[0]


def test_verify_resigned_manifest_caught_by_controller_heads(footage: pathlib.Path,
                                                             pristine: Pristine) -> None:
    _forge(footage, 3)
    result = verify(footage, expected_heads=pristine.heads)
    assert not result.ok
    assert result.problems[0] == (f"{pristine.names[2]} (seq 3): chain broken: differs from "
                                  "the chain the controller recorded (footage or manifest "
                                  "rewritten)")


def test_verify_unlisted_file(footage: pathlib.Path, pristine: Pristine) -> None:
    planted = footage / pristine.names[0].split("/")[0] / "235959-00000042.ts"
    shutil.copy(footage / pristine.names[0], planted)
    result = verify(footage)
    assert result.problems == [f"{planted.relative_to(footage).as_posix()}: unlisted: a file "
                               "the manifest does not list"]


def test_chain_is_sha256_of_prev_and_canonical_entry(pristine: Pristine) -> None:
    first, second = lines_of(pristine.folder)[:2]
    assert first["prev"] == "" and second["prev"] == first["chain"]
    body = {k: v for k, v in second.items() if k not in ("prev", "chain", "sig")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False).encode()
    assert second["chain"] == hashlib.sha256(bytes.fromhex(first["chain"]) + canonical
                                             ).hexdigest() == entry_chain(first["chain"], body)
    assert set(second) == {"kind", "seq", "name", "start", "end", "frames", "size", "sha256",
                           "pts", "prev", "chain", "sig"}


def test_store_refuses_footage_signed_by_another_key(footage: pathlib.Path) -> None:
    with pytest.raises(KeyMismatch, match="signed by key"):
        SegmentStore(footage, Ed25519PrivateKey.generate())


# -- clips ---------------------------------------------------------------------------------


class Clip:
    """A clip of seqs 5-7 exported from the footage; a retirement line lies inside its run
    (retention ran between seqs 6 and 7)."""

    def __init__(self, footage: pathlib.Path, key: Ed25519PrivateKey, dest: pathlib.Path):
        store = SegmentStore(footage, key)
        store.retire(store.segments()[:1], "quota")
        self.heads = {s.seq: s.chain for s in store.segments()}
        segmenter = Segmenter(store, segment_s=0.5,
                              on_segment=lambda s: self.heads.update({s.seq: s.chain}))
        SyntheticSource([segmenter], width=160, height=120, fps=30, keyframe_interval_s=0.5,
                        realtime=False).encode_frames(15)
        segmenter.close()
        self.segments = [s for s in store.segments() if s.seq in (5, 6, 7)]
        self.names = [s.name for s in self.segments]
        self.path = store.export(self.segments, dest)
        self.top = "clip-00000005-00000007"


@pytest.fixture
def clip(footage: pathlib.Path, pristine: Pristine, tmp_path: pathlib.Path) -> Clip:
    return Clip(footage, pristine.key, tmp_path)


def test_clip_verifies(clip: Clip, pristine: Pristine) -> None:
    assert clip.path.name == f"{clip.top}.tar"
    result = verify(clip.path, public_key_hex=pristine.public_key, expected_heads=clip.heads)
    assert result.ok, result.problems
    assert (result.kind, result.segments, result.first, result.last) == ("clip", 3, 5, 7)
    with tarfile.open(clip.path) as tar:
        names = sorted(tar.getnames())
        note = tar.extractfile(f"{clip.top}/VERIFY.txt")
        assert note is not None
        text = note.read().decode()
        manifest = tar.extractfile(f"{clip.top}/manifest.jsonl")
        assert manifest is not None
        kinds = [json.loads(line)["kind"] for line in manifest.read().splitlines()]
    assert names == sorted(f"{clip.top}/{n}" for n in [
        "manifest.jsonl", "camera.pub", "VERIFY.txt", *clip.names])
    assert kinds == ["segment", "segment", "retired", "segment"]
    assert "thanthien-camera verify" in text and "Tiếng Việt" in text and "English" in text


def test_clip_unpacked_verifies(clip: Clip, tmp_path: pathlib.Path) -> None:
    with tarfile.open(clip.path) as tar:
        tar.extractall(tmp_path / "out", filter="data")
    assert verify(tmp_path / "out" / clip.top, expected_heads=clip.heads).ok


def test_clip_with_a_byte_changed_is_rejected(clip: Clip) -> None:
    with tarfile.open(clip.path) as tar:
        member = tar.getmember(f"{clip.top}/{clip.names[1]}")
    flip_byte(clip.path, member.offset_data + 2000)
    result = verify(clip.path)
    assert result.problems == [f"{clip.names[1]} (seq 6): altered: its sha256 differs "
                               "from the manifest"]


def test_clip_entries_match_the_controllers_heads(clip: Clip) -> None:
    wrong = {**clip.heads, 6: "00" * 32}
    result = verify(clip.path, expected_heads=wrong)
    assert result.problems == [f"{clip.names[1]} (seq 6): chain broken: differs from the "
                               "chain the controller recorded (footage or manifest rewritten)"]


def test_clip_entries_are_the_run_with_original_signatures(footage: pathlib.Path,
                                                           pristine: Pristine) -> None:
    store = SegmentStore(footage, pristine.key)
    entries = store.entries(store.segments()[2:4])
    assert entries == lines_of(footage)[2:4]


def test_export_refuses_a_run_with_a_gap(footage: pathlib.Path, pristine: Pristine,
                                         tmp_path: pathlib.Path) -> None:
    store = SegmentStore(footage, pristine.key)
    segments = store.segments()
    store.retire([segments[2]], "quota")
    with pytest.raises(ExportError, match="seq 3"):
        store.export([segments[1], segments[3]], tmp_path)
    assert not list(tmp_path.glob("*.tar*"))


def test_verify_path_that_is_not_footage(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError):
        verify(tmp_path / "nowhere")
    with pytest.raises(FootageError, match="not a camera's footage folder"):
        verify(tmp_path)


# -- the verify command --------------------------------------------------------------------


def test_verify_cli_exit_codes(footage: pathlib.Path, clip: Clip, pristine: Pristine,
                               tmp_path: pathlib.Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_cli.main([str(clip.path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 3 segments, ") and " – " in out
    assert out.rstrip().endswith(f"signed by {key_fingerprint(pristine.public_key)}")
    assert verify_cli.main([str(footage), "--public-key", pristine.public_key]) == 0
    capsys.readouterr()
    assert verify_cli.main([str(footage), "--public-key", public_key_hex(
        Ed25519PrivateKey.generate())]) == 1
    assert "signed with another key" in capsys.readouterr().out
    flip_byte(footage / clip.names[0], 1000)
    assert verify_cli.main([str(footage)]) == 1
    assert f"{clip.names[0]} (seq 5): altered" in capsys.readouterr().out
    assert verify_cli.main([str(tmp_path / "missing.tar")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert verify_cli.main([str(tmp_path / "empty")]) == 2
    assert verify_cli.main([str(footage), "--public-key", "xyz"]) == 2
    assert "expected 64 hex digits" in capsys.readouterr().err


# -- the key -------------------------------------------------------------------------------


def test_key_created_private_then_loaded(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "keys" / "camera.key"
    key = load_or_create_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert public_key_hex(load_or_create_key(path)) == public_key_hex(key)
    raw = tmp_path / "raw.key"
    raw.write_bytes(key.private_bytes(serialization.Encoding.Raw,
                                      serialization.PrivateFormat.Raw,
                                      serialization.NoEncryption()))
    assert public_key_hex(load_or_create_key(raw)) == public_key_hex(key)
