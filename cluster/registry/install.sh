#!/usr/bin/env bash
# Debian's docker-registry (the CNCF Distribution server) for the registry tests, installed with
# its Debian service neither started nor enabled: the tests run their own instance by PID.
set -euo pipefail
if ! dpkg -s docker-registry >/dev/null 2>&1; then
  echo "==> docker-registry: installing Debian's package without starting its service"
  saved=""
  if [ -e /usr/sbin/policy-rc.d ]; then
    saved=$(mktemp) && cp -p /usr/sbin/policy-rc.d "$saved"
  fi
  # shellcheck disable=SC2064
  trap "if [ -n '$saved' ]; then mv '$saved' /usr/sbin/policy-rc.d; else rm -f /usr/sbin/policy-rc.d; fi" EXIT
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends \
    docker-registry >/dev/null
fi
# the package enables its service for the next boot; nothing here serves a registry by default
update-rc.d docker-registry disable >/dev/null 2>&1 || true
deb-systemd-helper disable docker-registry.service >/dev/null 2>&1 || true
echo "==> docker-registry: $(dpkg-query -W -f '${Version}' docker-registry), service disabled"
