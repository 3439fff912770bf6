# shellcheck shell=bash
# Sourced by scripts/test: makes sure an nginx binary exists for the agent's end-to-end test,
# installing Debian's nginx-light when it is missing. The package's init script is kept from
# starting a system nginx (the tests run their own, unprivileged, on a loopback port).

nginx_ensure() {
    if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
        return 0
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        printf '[nginx] nginx is missing and cannot be installed here; install the nginx-light package\n' >&2
        return 1
    fi
    printf '[nginx] installing nginx-light with apt-get\n' >&2
    local policy=/usr/sbin/policy-rc.d created=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created=1
    fi
    local ok=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; } ||
        ok=1
    [ -n "$created" ] && rm -f "$policy"
    return "$ok"
}
