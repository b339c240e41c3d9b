"""The wheelhouse a card carries: the node's software, installable with no network.

Prepared once per role and target (the Pi's CPU and Python) on a machine that
reaches PyPI, cached, then copied onto every card of that role:

- binary wheels of the role's requirements for the target (``pip download
  --only-binary :all: --platform ... --python-version ...``);
- the project's own wheel (pure Python, built from this checkout);
- ``requirements.txt``, the exact versions, which the first boot installs with
  ``pip install --no-index``.

What Raspberry Pi OS packages itself is left to its apt repository (installed
when the device is online): picamera2 and libcamera, PyAudio (no ARM wheel on
PyPI), lgpio. The venv on the device sees them (``--system-site-packages``).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile

#: Per role: Debian packages from Raspberry Pi OS's repository, and the requirements they
#: stand for (not downloaded from PyPI).
APT_PACKAGES = {
    "speaker": ("python3-pyaudio", "python3-lgpio"),
    "kiosk": ("python3-lgpio",),
    "camera": ("python3-picamera2",),
}
FROM_APT = {"pyaudio"}

#: The targets a commune's boards run: Raspberry Pi OS 64-bit (aarch64).
TARGETS = {
    "trixie": ("aarch64", "3.13"),
    "bookworm": ("aarch64", "3.11"),
}


@dataclasses.dataclass(frozen=True)
class Target:
    machine: str  # aarch64, x86_64
    python: str  # "3.13"

    @property
    def name(self) -> str:
        return f"{self.machine}-py{self.python.replace('.', '')}"

    @classmethod
    def host(cls) -> Target:
        """This machine (the tests install a card's wheelhouse into a fake root here)."""
        return cls(sysconfig.get_platform().rsplit("-", 1)[-1],
                   f"{sys.version_info.major}.{sys.version_info.minor}")


def requirements(role: str, target: Target) -> list[str]:
    """The role's requirements from the installed project's metadata, minus what apt
    provides, with environment markers evaluated for ``target``."""
    if role not in APT_PACKAGES:
        raise ValueError(f"role {role!r}: expected one of {', '.join(APT_PACKAGES)}")
    wanted = []
    for line in importlib.metadata.requires("thanthien") or []:
        spec, _, marker = line.partition(";")
        extras = re.findall(r'extra == "([^"]+)"', marker)
        if extras and role not in extras:
            continue
        version = re.search(r'python_version >= "([\d.]+)"', marker)
        if version and _tuple(target.python) < _tuple(version.group(1)):
            continue
        name = re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0]
        if name.lower() not in FROM_APT:
            wanted.append(spec.strip())
    return wanted


def _tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _platforms(machine: str) -> list[str]:
    return [f"manylinux_2_{n}_{machine}" for n in (36, 35, 34, 31, 28, 27, 17)] + [
        f"manylinux2014_{machine}", f"linux_{machine}"]


def prepare(role: str, target: Target, cache: pathlib.Path, *,
            project: pathlib.Path | None = None, refresh: bool = False) -> pathlib.Path:
    """The cached wheelhouse for ``role`` on ``target`` (made if missing: needs PyPI).
    The project's own wheel is built again whenever its sources changed."""
    folder = cache / f"{role}-{target.name}"
    project = project or pathlib.Path(__file__).resolve().parent.parent
    digest = _source_digest(project)
    stamp_file = folder / "wheelhouse.json"
    try:
        stamp = json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        stamp = {}
    if refresh or stamp.get("role") != role or not (folder / "requirements.txt").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
        download = [*pip, "download", "--only-binary", ":all:", "--dest", str(folder),
                    "--python-version", target.python, "--implementation", "cp"]
        for platform in _platforms(target.machine):
            download += ["--platform", platform]
        _run([*download, *requirements(role, target)],
             f"downloading the {role}'s wheels for {target.name}")
        stamp = {"role": role, "machine": target.machine, "python": target.python,
                 "apt": list(APT_PACKAGES[role])}
    if stamp.get("source") != digest or not any(folder.glob("thanthien-*.whl")):
        _build_own(project, folder)
        stamp["source"] = digest
    (folder / "requirements.txt").write_text("\n".join(sorted(_pinned(folder))) + "\n")
    stamp["thanthien"] = importlib.metadata.version("thanthien")
    stamp_file.write_text(json.dumps(stamp, indent=2) + "\n")
    return folder


def _build_own(project: pathlib.Path, folder: pathlib.Path) -> None:
    for old in folder.glob("thanthien-*.whl"):
        old.unlink()
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    with tempfile.TemporaryDirectory() as tmp:  # a build leaves build/ in its source folder
        source = pathlib.Path(tmp) / "src"
        shutil.copytree(project, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
        _run([*pip, "wheel", "--no-deps", "--wheel-dir", str(folder), str(source)],
             "building thanthien's own wheel")


_NOT_SOURCE = (".*", "node_modules", "build", "*.egg-info", "__pycache__", "tests", "docs",
               "bench", "vendor")


def _source_digest(project: pathlib.Path) -> str:
    """A digest of what goes into the project's wheel (its packages and pyproject)."""
    import hashlib
    h = hashlib.sha256()
    files = [project / "pyproject.toml"] + sorted(
        p for package in ("wire", "node_runtime", "provisioning", "kiosk", "speaker_node",
                          "camera_node", "controller", "sim")
        for p in (project / package).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and "vendor" not in p.parts)
    for path in files:
        h.update(str(path.relative_to(project)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _pinned(folder: pathlib.Path) -> list[str]:
    """``name==version`` of every wheel but the project's own."""
    pins = []
    for wheel in folder.glob("*.whl"):
        name, version = wheel.name.split("-")[:2]
        if name.lower() != "thanthien":
            pins.append(f"{name}=={version}")
    return pins


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{what} failed: " + " / ".join(tail))


def stamp_of(folder: pathlib.Path, role: str) -> dict:
    """The prepared wheelhouse's description; ValueError if ``folder`` is not one for
    ``role``."""
    try:
        stamp = json.loads((folder / "wheelhouse.json").read_text())
    except (OSError, ValueError):
        raise ValueError(f"{folder}: not a prepared wheelhouse (thanthien-provision "
                         "wheelhouse makes one)") from None
    if stamp.get("role") != role:
        raise ValueError(f"{folder}: a wheelhouse for {stamp.get('role')!r}, not {role!r}")
    return stamp
