"""The node's audio cache against a real HTTP server that misbehaves on purpose."""

from __future__ import annotations

import hashlib
import mmap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from speaker_node.cache import AudioCache
from speaker_node.errors import CacheError, CorruptAudio
from wire.speaker import AUDIO_FILE_PATH

GOOD = bytes(range(256)) * 400  # 100 KiB
SHA = hashlib.sha256(GOOD).hexdigest()


class FlakyServer:
    """Serves ``GOOD`` under its sha256; ``script`` says what each request gets:
    ``corrupt`` (a flipped byte), ``cut`` (half the body, then the connection drops),
    ``ok`` (honours Range)."""

    def __init__(self, script: list[str]):
        self.script = list(script)
        self.requests: list[dict[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append({"path": self.path, "range": self.headers.get("Range"),
                                        "auth": self.headers.get("Authorization")})
                mode = server.script.pop(0) if server.script else "ok"
                body, status = GOOD, 200
                rng = self.headers.get("Range")
                if rng and mode == "ok":
                    first = int(rng.split("=")[1].split("-")[0])
                    body, status = GOOD[first:], 206
                if mode == "corrupt":
                    body = GOOD[:10] + bytes([GOOD[10] ^ 0xFF]) + GOOD[11:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {first}-{len(GOOD) - 1}/{len(GOOD)}")
                self.end_headers()
                if mode == "cut":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def serve():
    made: list[FlakyServer] = []

    def make(script: list[str]) -> FlakyServer:
        made.append(FlakyServer(script))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_cache_rejects_corrupt_download_and_fetches_again(serve, tmp_path):
    server = serve(["corrupt", "ok"])
    cache = AudioCache(tmp_path / "audio", server.url, auth=("spk-1", "pw"), backoff=0.01)
    path = cache.fetch(SHA, len(GOOD))
    assert path.read_bytes() == GOOD
    assert len(server.requests) == 2 and cache.rejected == 1
    assert server.requests[0]["path"] == AUDIO_FILE_PATH.format(sha256=SHA)
    assert server.requests[0]["auth"].startswith("Basic ")
    cache.close()


def test_cache_resumes_an_interrupted_download_with_range(serve, tmp_path):
    server = serve(["cut", "ok"])
    cache = AudioCache(tmp_path / "audio", server.url, backoff=0.01)
    assert cache.fetch(SHA, len(GOOD)).read_bytes() == GOOD
    assert server.requests[0]["range"] is None
    resumed_from = int(server.requests[1]["range"].removeprefix("bytes=").rstrip("-"))
    assert len(GOOD) // 4 <= resumed_from <= len(GOOD) // 2  # what arrived was kept
    cache.close()


def test_cache_gives_up_after_retries_with_a_clear_error(serve, tmp_path):
    server = serve(["corrupt"] * 3)
    cache = AudioCache(tmp_path / "audio", server.url, attempts=3, backoff=0.01)
    with pytest.raises(CacheError, match="could not fetch audio"):
        cache.fetch(SHA, len(GOOD))
    assert not cache.has(SHA)
    assert list((tmp_path / "audio" / "partial").iterdir()) == []
    cache.close()


def test_cache_deletes_a_file_corrupted_on_disk_when_loading_it(serve, tmp_path):
    server = serve([])
    cache = AudioCache(tmp_path / "audio", server.url)
    cache.fetch(SHA, len(GOOD))
    path = cache.path(SHA)
    path.write_bytes(b"\0" * len(GOOD))  # an SD card fault
    with pytest.raises(CorruptAudio):
        cache.load(SHA)
    assert not path.exists()
    assert cache.load(SHA) if cache.fetch(SHA, len(GOOD)) else False
    cache.close()


def test_cache_is_bounded_and_evicts_files_no_longer_needed(tmp_path):
    cache = AudioCache(tmp_path / "audio", None, max_bytes=250_000)
    olds = []
    for n in range(3):
        data = bytes([n]) * 100_000
        sha = hashlib.sha256(data).hexdigest()
        cache.path(sha).write_bytes(data)
        olds.append(sha)
    assert cache.evict(keep=olds[1:]) == [olds[0]]
    with pytest.raises(CacheError, match="cache full"):
        cache._make_room(100_000, keep=set(olds[1:]))  # both still needed: refuse, keep them
    assert cache.has(olds[1]) and cache.has(olds[2])
    cache._make_room(100_000, keep={olds[2]})  # olds[1] no longer needed: evicted for room
    assert not cache.has(olds[1]) and cache.has(olds[2])


def test_rendition_is_played_from_disk_not_read_into_memory(tmp_path):
    """A half-hour programme is 173 MB of PCM: the node maps the verified WAV instead."""
    import numpy as np

    from controller.broadcasts.audio_library import wav_bytes
    from speaker_node.pcm import decode_pcm, wav_samples
    data = wav_bytes(np.sin(np.arange(48000) / 10) * 0.3)
    sha = hashlib.sha256(data).hexdigest()
    cache = AudioCache(tmp_path / "audio", None)
    cache.path(sha).write_bytes(data)
    samples = wav_samples(cache.verified_path(sha))
    assert samples is not None and len(samples) == 48000
    assert all(isinstance(s.obj, mmap.mmap) for s in samples.segments)
    assert samples.tobytes() == decode_pcm(data).tobytes()
    cache.path(sha).write_bytes(data[:-2] + b"\\0\\1")
    with pytest.raises(CorruptAudio):
        cache.verified_path(sha)
    assert not cache.has(sha)


@pytest.mark.parametrize("name", ["../../etc/passwd", "../" + "a" * 61, "A" * 64, "a" * 63,
                                  "g" * 64, "a" * 63 + "/"])
def test_cache_refuses_names_that_are_not_64_hex_digits(tmp_path, name):
    """Regression: a pushed schedule item whose sha256 was any 64 characters reached the
    cache as a path, and ``../`` could make it delete a file outside the cache."""
    outside = tmp_path / "passwd"
    outside.write_text("keep me")
    cache = AudioCache(tmp_path / "audio", "http://127.0.0.1:9", backoff=0.01)
    for call in (cache.has, cache.load, cache.verified_path):
        with pytest.raises(CacheError, match="expected 64 hex digits"):
            call(name)
    with pytest.raises(CacheError):
        cache.fetch(name, 10)
    assert outside.read_text() == "keep me"
    cache.close()


def test_cache_stops_a_download_at_its_declared_size(serve, tmp_path):
    """A server (or a man in the middle) sending more than the schedule declared must not
    fill the card: the download stops at the size and is discarded."""
    server = serve(["ok"] * 10)
    cache = AudioCache(tmp_path / "audio", server.url, backoff=0.01, attempts=2)
    with pytest.raises(CacheError):
        cache.fetch(SHA, len(GOOD) // 2)
    part = tmp_path / "audio" / "partial" / f"{SHA}.part"
    assert not part.exists() or part.stat().st_size <= len(GOOD) // 2
    assert not (tmp_path / "audio" / SHA).exists()
    cache.close()
