#!/usr/bin/env bash
# Installs the rsyslog peer of the shipper benchmark from Debian: rsyslogd with imfile (in the
# rsyslog package) and omkafka (rsyslog-kafka, linked against Debian's librdkafka). Idempotent: when
# both packages are installed, it touches nothing and does not call apt.
#
#   bash bench/peers/rsyslog/install.sh          (as root, or with sudo available)
#
# The benchmark runs its own rsyslogd (`rsyslogd -n -f <conf> -i <pidfile>`), never the system
# service. On a host with systemd, installing the package also enables and starts the system
# rsyslog; it is unrelated to the benchmark (stop it with `systemctl disable --now rsyslog` if it is
# not wanted).
set -euo pipefail

PACKAGES=(rsyslog rsyslog-kafka)

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "install.sh: apt-get not found; install ${missing[*]} (rsyslog with omkafka) with this system's package manager" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install.sh: run as root (or install sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  echo "install.sh: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

RSYSLOGD="$(command -v rsyslogd || echo /usr/sbin/rsyslogd)"
[ -x "$RSYSLOGD" ] || { echo "install.sh: rsyslogd not found after installing ${PACKAGES[*]}" >&2; exit 1; }
MODDIR="$(dpkg -L rsyslog-kafka | grep -m1 '/omkafka\.so$' || true)"
[ -n "$MODDIR" ] || { echo "install.sh: omkafka.so not found in rsyslog-kafka's files" >&2; exit 1; }

# What the benchmark reads: the daemon, its version, the module folder (for module(load=...)).
echo "rsyslogd=$RSYSLOGD"
echo "version=$(dpkg-query -W -f='${Version}' rsyslog)"
echo "librdkafka=$(dpkg-query -W -f='${Version}' 'librdkafka1' 2>/dev/null || echo unknown)"
echo "moddir=$(dirname "$MODDIR")"
