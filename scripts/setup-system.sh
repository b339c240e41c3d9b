#!/usr/bin/env bash
# Install the Debian packages the project needs, only those missing.
# Used by `make setup` (and so by `make demo`, `make test`, CI).
set -euo pipefail
packages=(
  mosquitto mosquitto-clients   # the broker, for the demo and the tests
  xvfb xauth                    # a real X display for the Kivy kiosk under test
  portaudio19-dev alsa-utils    # PyAudio builds against PortAudio; ALSA file devices
  libmtdev1 libgl1 libegl1      # Kivy's SDL2 window
  libgl1-mesa-dri               # software OpenGL (llvmpipe) for Kivy under Xvfb
  xdotool x11-utils             # real clicks and keys into the kiosk window under test
  chromium fonts-dejavu-core    # the console's browser tests (Playwright drives Debian's Chromium)
  ffmpeg                        # ffprobe reads the cameras' segments back in the tests
  cloud-init                    # its schema check validates the cards' user-data
  zbar-tools poppler-utils      # the labels' QR codes read back (zbarimg), PDFs rendered
  python3-pyaudio               # a card's first boot under test: what apt gives a Pi's speaker
)
# npm installs the pinned web assets the controller serves (package-lock.json);
# a machine that already has Node.js keeps its own.
command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# cloud-init is here for its schema check only: it must never configure this machine.
$SUDO mkdir -p /etc/cloud && $SUDO touch /etc/cloud/cloud-init.disabled
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a system-wide mosquitto on port 1883; the project runs its own.
if command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
  $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi
