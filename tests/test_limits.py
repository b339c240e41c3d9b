"""The controller's resources stay bounded under load: a real server in its own process,
real sockets on loopback, its open files and memory read from /proc.

Regression: every HTTP connection opened a SQLite reader that was never closed
(1,500 requests left ~3,000 more open files and 200 MB), slow clients held a
thread each forever, files were served from memory and uploads held whole.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
import wave

import pytest
import requests

from conftest import CONTROLLER_PASSWORD, DEVICE_PASSWORD, wait_for
from controller.access.tokens import create_token
from controller.broker import free_port
from controller.db.writer import open_writer
from controller.fleet.registry import Registry


class ControllerProcess:
    """``thanthien-controller serve`` as a child process on the test broker."""

    def __init__(self, tmp_path: pathlib.Path, broker, *extra: str):
        self.data = tmp_path / "data"
        with open_writer(self.data / "controller.db") as writer:
            self.token = writer.call(lambda db: create_token(db, "limits"))
            Registry(writer).add("spk-lim-1", "speaker")
        broker.add_device("spk-lim-1")
        self.port = free_port()
        self.log = open(tmp_path / "controller.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "--data", str(self.data), "--log-level",
             "WARNING", "serve", "--mqtt-port", str(broker.port), "--http-port", str(self.port),
             "--broker-passwd", str(broker.config.passwd), *extra],
            env={**os.environ, "THANTHIEN_MQTT_PASSWORD": CONTROLLER_PASSWORD},
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(self._healthy, timeout=30)

    def _healthy(self) -> bool:
        try:
            return requests.get(self.url + "/api/v1/health", timeout=2).status_code == 200
        except requests.ConnectionError:
            assert self.proc.poll() is None, "the controller exited"
            return False

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def status(self, key: str) -> int:
        """A /proc/PID/status figure in kB (VmRSS, VmHWM)."""
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def reset_peak(self) -> None:
        """Make VmHWM start again from the current RSS (Linux clear_refs)."""
        pathlib.Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        finally:
            self.log.close()


@pytest.fixture
def served(tmp_path, broker):
    made: list[ControllerProcess] = []

    def make(*extra: str) -> ControllerProcess:
        made.append(ControllerProcess(tmp_path, broker, *extra))
        return made[-1]

    yield make
    for ctl in made:
        ctl.stop()


def _mixed_request(ctl: ControllerProcess, n: int) -> int:
    """One of five kinds of request, each on a new connection."""
    kind = n % 5
    if kind == 0:
        return requests.get(ctl.url + "/api/v1/devices", headers=ctl.auth(), timeout=10).status_code
    if kind == 1:
        return requests.get(ctl.url + "/api/v1/ratings?limit=100", timeout=10).status_code
    if kind == 2:
        return requests.get(ctl.url + "/api/v1/devices",
                            headers={"Authorization": "Bearer tt_wrong"}, timeout=10).status_code
    if kind == 3:
        return requests.post(ctl.url + "/api/v1/devices", json={"id": "x"}, timeout=10).status_code
    return requests.get(ctl.url + "/api/v1/ratings?limit=100", headers=ctl.auth(),
                        timeout=10).status_code


def test_controller_open_files_and_memory_stay_flat_over_2000_requests(served):
    ctl = served()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: _mixed_request(ctl, n), range(300)))  # warm up
        time.sleep(0.5)
        files, rss = ctl.open_files(), ctl.status("VmRSS")
        codes = list(pool.map(lambda n: _mixed_request(ctl, n), range(2000)))
    assert sorted(set(codes)) == [200, 401]
    time.sleep(0.5)
    assert ctl.open_files() - files < 50
    assert (ctl.status("VmRSS") - rss) / 1024 < 30


def _stalled(ctl: ControllerProcess, n: int) -> socket.socket:
    """A client that never finishes: half a request head, or a body that never comes."""
    sock = socket.create_connection(("127.0.0.1", ctl.port))
    if n % 2:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
    else:
        sock.sendall(b"PUT /api/v1/alerts/rules HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n"
                     b"Authorization: Bearer " + ctl.token.encode() + b"\r\n\r\n{\"window_s\"")
    return sock


def test_sixty_never_finished_requests_do_not_delay_health_and_are_closed(served):
    ctl = served("--http-header-timeout", "3", "--http-body-timeout", "3")
    files = ctl.open_files()
    stalled = [_stalled(ctl, n) for n in range(60)]
    try:
        time.sleep(0.3)
        started = time.monotonic()
        assert requests.get(ctl.url + "/api/v1/health", timeout=5).json()["status"] == "ok"
        assert time.monotonic() - started < 1.0
        for sock in stalled:  # closed: heads after 3 s, bodies with a 408 after 3 s
            answer = _read_all(sock, 20)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
    finally:
        for sock in stalled:
            sock.close()
    wait_for(lambda: ctl.open_files() - files < 10, timeout=10)


def _read_all(sock: socket.socket, timeout: float = 5) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    return answer


def _write_wav(path: pathlib.Path, seconds: int) -> str:
    """A 48 kHz mono 16-bit WAV of a tone, written in chunks; its sha256."""
    import numpy as np
    digest = hashlib.sha256()
    t = np.arange(48_000) / 48_000
    second = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48_000)
        for _ in range(seconds):
            w.writeframes(second)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_200_concurrent_downloads_of_a_30_minute_rendition_stream_from_disk(served, tmp_path):
    ctl = served()
    audio = ctl.data / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "long.wav"
    sha = _write_wav(source, 30 * 60)
    source.rename(audio / f"{sha}.wav")
    url = f"{ctl.url}/api/v1/audio/files/{sha}"
    rss = ctl.status("VmRSS")
    peak = [rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], ctl.status("VmRSS"))

    def fetch(_: int) -> str:
        digest = hashlib.sha256()
        with requests.get(url, auth=("spk-lim-1", DEVICE_PASSWORD), stream=True,
                          timeout=120) as resp:
            resp.raise_for_status()
            for chunk in resp.iter_content(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(200) as pool:
            digests = list(pool.map(fetch, range(200)))
    finally:
        done.set()
        sampler.join()
    assert digests == [sha] * 200
    assert (peak[0] - rss) / 1024 < 100


def test_interrupted_download_resumes_with_range(served, tmp_path):
    ctl = served()
    audio = ctl.data / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "bulletin.wav"
    sha = _write_wav(source, 120)
    source.rename(audio / f"{sha}.wav")
    url = f"{ctl.url}/api/v1/audio/files/{sha}"
    got = bytearray()
    with requests.get(url, auth=("spk-lim-1", DEVICE_PASSWORD), stream=True, timeout=30) as resp:
        for chunk in resp.iter_content(1 << 16):
            got += chunk
            if len(got) > 3_000_000:
                break  # the link drops
    rest = requests.get(url, auth=("spk-lim-1", DEVICE_PASSWORD), timeout=30,
                        headers={"Range": f"bytes={len(got)}-"})
    assert rest.status_code == 206
    assert rest.headers["Content-Range"].startswith(f"bytes {len(got)}-")
    assert hashlib.sha256(bytes(got) + rest.content).hexdigest() == sha
    beyond = requests.get(url, auth=("spk-lim-1", DEVICE_PASSWORD), timeout=30,
                          headers={"Range": "bytes=999999999-"})
    assert beyond.status_code == 416


def test_200_mb_upload_never_appears_whole_in_memory(served, tmp_path):
    ctl = served()
    source = tmp_path / "long.wav"
    _write_wav(source, 2080)  # 34 min 40 s: 199.7 MB
    assert source.stat().st_size > 199_000_000
    boundary = "thanthien-limits"

    def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n"
               f"Bản tin dài\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
               f"filename=\"long.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
        with open(source, "rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    time.sleep(0.5)
    rss = ctl.status("VmRSS")
    ctl.reset_peak()
    resp = requests.post(ctl.url + "/api/v1/audio", data=body(), timeout=600,
                         headers={**ctl.auth(),
                                  "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["source_bytes"] == source.stat().st_size
    assert (ctl.status("VmHWM") - rss) / 1024 < 150


def test_upload_without_token_is_refused_before_its_body_is_read(served):
    ctl = served()
    with socket.create_connection(("127.0.0.1", ctl.port)) as sock:
        sock.sendall(b"POST /api/v1/audio HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 401") and b"Bearer" in answer


def test_body_over_the_limit_is_refused_before_it_is_read(served):
    ctl = served()
    with socket.create_connection(("127.0.0.1", ctl.port)) as sock:
        sock.sendall(b"PUT /api/v1/alerts/rules HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n"
                     b"Authorization: Bearer " + ctl.token.encode() + b"\r\n\r\n")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413") and b"limit is 1048576" in answer


def test_100_concurrent_readers_all_answered_by_8_pooled_connections(served):
    """Regression: a read connection held by a yield-dependency was given back on another
    worker thread; with every worker waiting for a connection, none came back (503 after
    30 s for everyone)."""
    ctl = served()
    barrier = threading.Barrier(100)

    def read(n: int) -> int:
        barrier.wait()
        path = "/api/v1/devices" if n % 2 else "/api/v1/ratings?limit=100"
        return requests.get(ctl.url + path, headers=ctl.auth(), timeout=60).status_code

    with concurrent.futures.ThreadPoolExecutor(100) as pool:
        for _ in range(3):
            assert list(pool.map(read, range(100))) == [200] * 100


def test_controller_killed_mid_upload_loses_nothing_else_and_its_leftovers_are_removed(
        served, tmp_path):
    """SIGKILL while an upload streams in: after a restart the library works, no half
    record exists, and the orphaned temporary files go once nobody has touched them."""
    ctl = served()
    source = tmp_path / "long.wav"
    _write_wav(source, 600)
    sock = socket.create_connection(("127.0.0.1", ctl.port))
    head = (f"POST /api/v1/audio HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ctl.token}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {source.stat().st_size + 200}\r\n\r\n--b\r\n"
            'Content-Disposition: form-data; name="file"; filename="long.wav"\r\n\r\n')
    sock.sendall(head.encode() + source.read_bytes()[:20_000_000])
    audio = ctl.data / "audio"
    wait_for(lambda: any(p.name.startswith(".upload-") for p in audio.iterdir()))
    ctl.proc.kill()
    ctl.proc.wait()
    sock.close()
    leftovers = [p for p in audio.iterdir() if p.name.startswith(".upload-")]
    assert leftovers
    for path in leftovers:
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    again = served()
    assert not any(p.name.startswith(".upload-") for p in audio.iterdir())
    assert requests.get(again.url + "/api/v1/audio", headers=again.auth(), timeout=10).json() == []
    small = tmp_path / "short.wav"
    _write_wav(small, 3)
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="s.wav"\r\n\r\n'
            + small.read_bytes() + b"\r\n--b--\r\n")
    resp = requests.post(again.url + "/api/v1/audio", data=body, timeout=60, headers={
        **again.auth(), "Content-Type": "multipart/form-data; boundary=b"})
    assert resp.status_code == 201, resp.text
