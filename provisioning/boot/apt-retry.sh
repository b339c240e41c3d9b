#!/bin/sh
# thanthien-apt.service: install what the first boot could not fetch (it was offline).
set -eu
PENDING=/etc/thanthien/apt-pending
[ -f "$PENDING" ] || exit 0
# shellcheck disable=SC2046
apt-get update -q && apt-get install -y --no-install-recommends $(cat "$PENDING")
rm -f "$PENDING"
systemctl try-restart 'thanthien-node@*.service'
