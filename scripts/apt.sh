# shellcheck shell=bash
# Sourced by scripts/test: installs Debian packages a test needs when a tool is missing.
# Packaged daemons are kept from starting system instances (the tests run their own, private
# ones), and Postfix is installed without a system configuration.

# apt_ensure TOOL PACKAGE...: installs the packages unless TOOL is already on the machine.
apt_ensure() {
    local tool=$1
    shift
    if command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ]; then
        return 0
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        printf '[apt] %s is missing and cannot be installed here; install: %s\n' "$tool" "$*" >&2
        return 1
    fi
    printf '[apt] installing %s with apt-get\n' "$*" >&2
    local policy=/usr/sbin/policy-rc.d created=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created=1
    fi
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
    local ok=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; } ||
        ok=1
    [ -n "$created" ] && rm -f "$policy"
    return "$ok"
}
