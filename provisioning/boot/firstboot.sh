#!/bin/sh
# thanthien first boot: install the node from this card and move its secrets off the card.
#
# Run once, as root: by cloud-init's runcmd (Raspberry Pi OS Trixie) or by firstrun.sh
# from cmdline.txt (Bookworm). Written by thanthien-provision; see docs/provisioning.md.
# THANTHIEN_ROOT and THANTHIEN_BOOT point it at another root and boot folder (the tests);
# THANTHIEN_PYTHON, THANTHIEN_APT_GET and THANTHIEN_SYSTEMCTL replace the tools it runs.
set -eu
ROOT="${THANTHIEN_ROOT:-}"
BOOT="${THANTHIEN_BOOT:-/boot/firmware}"
CARD="$BOOT/thanthien"
PYTHON="${THANTHIEN_PYTHON:-python3}"
APT_GET="${THANTHIEN_APT_GET:-apt-get}"
SYSTEMCTL="${THANTHIEN_SYSTEMCTL:-systemctl}"
. "$CARD/device.env"   # DEVICE_ID ROLE NTP_SERVERS APT_PACKAGES PYTHON_VERSION (no secret)

mkdir -p "$ROOT/var/log"
LOG="$ROOT/var/log/thanthien-firstboot.log"
exec >>"$LOG" 2>&1
echo "== thanthien first boot of $DEVICE_ID ($ROLE), $(date -Is)"
umask 077

# Overwrite a file with zeros where it lies, then delete it: on the FAT boot partition a
# plain rm leaves the bytes readable in the freed clusters.
scrub() {
    for f in "$@"; do
        [ -f "$f" ] || continue
        size=$(wc -c <"$f")
        dd if=/dev/zero of="$f" bs=1 count="$size" conv=notrunc,fsync 2>/dev/null || true
        rm -f "$f"
        echo "removed $f from the card"
    done
}

# 1. Secrets first, so they leave the card even if the install below fails.
install -d -m 0700 "$ROOT/etc/thanthien" "$ROOT/var/lib/thanthien"
if [ -f "$CARD/node.toml" ]; then
    install -m 0600 "$CARD/node.toml" "$ROOT/etc/thanthien/node.toml"
fi
if [ -f "$CARD/camera.key" ]; then
    install -m 0600 "$CARD/camera.key" "$ROOT/var/lib/thanthien/camera.key"
fi
if [ -f "$CARD/ca.crt" ]; then
    install -m 0644 "$CARD/ca.crt" "$ROOT/etc/thanthien/ca.crt"
fi
install -d -m 0700 "$ROOT/etc/NetworkManager/system-connections"
for f in "$CARD"/network/*.nmconnection; do
    [ -f "$f" ] && install -m 0600 "$f" "$ROOT/etc/NetworkManager/system-connections/"
done
if [ -f "$BOOT/network-config" ]; then
    # cloud-init has written the links into /etc by now; keep it from reading this file
    # again, then replace the file, which holds the Wi-Fi key.
    install -d -m 0755 "$ROOT/etc/cloud/cloud.cfg.d"
    printf 'network: {config: disabled}\n' >"$ROOT/etc/cloud/cloud.cfg.d/99-thanthien.cfg"
    scrub "$BOOT/network-config"
    printf '# thanthien: applied at first boot; the Wi-Fi key was removed from the card.\n' \
        >"$BOOT/network-config"
fi
scrub "$CARD/node.toml" "$CARD/camera.key" "$CARD"/network/*.nmconnection
sync

# 2. Clock: the commune's NTP servers (systemd-timesyncd, on both releases).
install -d -m 0755 "$ROOT/etc/systemd/timesyncd.conf.d"
printf '[Time]\nNTP=%s\n' "$NTP_SERVERS" >"$ROOT/etc/systemd/timesyncd.conf.d/thanthien.conf"
chmod 0644 "$ROOT/etc/systemd/timesyncd.conf.d/thanthien.conf"

# 3. What Raspberry Pi OS packages itself (picamera2, PyAudio, lgpio), when online; if not,
#    thanthien-apt.service tries again at every boot until it succeeds.
umask 022
if [ -n "$APT_PACKAGES" ]; then
    printf '%s\n' "$APT_PACKAGES" >"$ROOT/etc/thanthien/apt-pending"
    # shellcheck disable=SC2086
    if "$APT_GET" install -y --no-install-recommends $APT_PACKAGES; then
        rm -f "$ROOT/etc/thanthien/apt-pending"
    else
        echo "apt packages not installed now (offline?): $APT_PACKAGES; retried at boot"
    fi
fi

# 4. The node's software, from the wheelhouse on the card: no network needed.
found=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ -n "$PYTHON_VERSION" ] && [ "$found" != "$PYTHON_VERSION" ]; then
    echo "ERROR: the card's wheels are for Python $PYTHON_VERSION, this system has $found:"
    echo "make the bundle again for this release (thanthien-provision bundle --os ...)"
    exit 1
fi
VENV="$ROOT/opt/thanthien/.venv"
"$PYTHON" -m venv --system-site-packages "$VENV"
"$VENV/bin/python" -m pip install -q --no-index --find-links "$CARD/wheels" \
    -r "$CARD/wheels/requirements.txt"
"$VENV/bin/python" -m pip install -q --no-index --no-deps --find-links "$CARD/wheels" thanthien
"$VENV/bin/thanthien-$ROLE" --help >/dev/null

# 5. The units, enabled (started at the next boot, or now by cloud-init's caller).
install -d -m 0755 "$ROOT/etc/systemd/system" "$ROOT/opt/thanthien"
install -m 0644 "$CARD/systemd/thanthien-node@.service" "$CARD/systemd/thanthien-apt.service" \
    "$ROOT/etc/systemd/system/"
install -m 0755 "$CARD/apt-retry.sh" "$ROOT/opt/thanthien/apt-retry.sh"
if [ -n "$ROOT" ]; then
    "$SYSTEMCTL" --root="$ROOT" enable "thanthien-node@$ROLE.service" thanthien-apt.service
else
    "$SYSTEMCTL" daemon-reload
    "$SYSTEMCTL" enable "thanthien-node@$ROLE.service" thanthien-apt.service
    "$SYSTEMCTL" start --no-block "thanthien-node@$ROLE.service" || true
fi
date -Is >"$ROOT/var/lib/thanthien/firstboot.done"
echo "== done: thanthien-node@$ROLE enabled"
