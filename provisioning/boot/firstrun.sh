#!/bin/sh
# thanthien on Raspberry Pi OS Bookworm: run once from cmdline.txt (systemd.run=), as
# Raspberry Pi Imager's firstrun.sh is; sets the name, clock zone and network, then runs
# thanthien/firstboot.sh, then takes itself off the card and out of cmdline.txt.
set +e
ROOT="${THANTHIEN_ROOT:-}"
BOOT="${THANTHIEN_BOOT:-/boot/firmware}"
. "$BOOT/thanthien/device.env"

OLD=$(tr -d ' \t\n\r' <"$ROOT/etc/hostname" 2>/dev/null)
echo "$DEVICE_ID" >"$ROOT/etc/hostname"
if [ -n "$OLD" ] && [ -f "$ROOT/etc/hosts" ]; then
    sed -i "s/127\.0\.1\.1.*$OLD/127.0.1.1\t$DEVICE_ID/" "$ROOT/etc/hosts"
fi
ln -sf "/usr/share/zoneinfo/$TIMEZONE" "$ROOT/etc/localtime"
echo "$TIMEZONE" >"$ROOT/etc/timezone"

# Raspberry Pi OS keeps Wi-Fi blocked until a country is set.
for f in "$ROOT"/var/lib/systemd/rfkill/*:wlan; do
    [ -f "$f" ] && echo 0 >"$f"
done
if [ -z "$ROOT" ]; then
    command -v raspi-config >/dev/null && raspi-config nonint do_wifi_country "$WIFI_COUNTRY"
    command -v rfkill >/dev/null && rfkill unblock wifi
fi

if [ -n "$ADMIN_USER" ] && [ -z "$ROOT" ]; then
    id "$ADMIN_USER" >/dev/null 2>&1 || useradd -m -G sudo,adm -s /bin/bash "$ADMIN_USER"
    if [ -s "$BOOT/thanthien/authorized_keys" ]; then
        install -d -m 0700 -o "$ADMIN_USER" "/home/$ADMIN_USER/.ssh"
        install -m 0600 -o "$ADMIN_USER" "$BOOT/thanthien/authorized_keys" \
            "/home/$ADMIN_USER/.ssh/authorized_keys"
        systemctl enable ssh
    fi
    systemctl disable userconfig 2>/dev/null
    rm -f /etc/ssh/sshd_config.d/rename_user.conf
fi

THANTHIEN_ROOT="$ROOT" THANTHIEN_BOOT="$BOOT" sh "$BOOT/thanthien/firstboot.sh"
# Always 0: the card must go on to boot normally; the log says what failed.
sed -i 's| systemd.run[^ ]*||g; s| systemd.unit=kernel-command-line.target||' "$BOOT/cmdline.txt"
rm -f "$BOOT/firstrun.sh"
exit 0
