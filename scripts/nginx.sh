# shellcheck shell=bash
# Sourced by scripts/test: makes sure an nginx binary exists for the agent's end-to-end test,
# installing Debian's nginx-light when it is missing (see scripts/apt.sh).
# shellcheck source=scripts/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

nginx_ensure() {
    apt_ensure nginx nginx-light
}

# Postfix (with its PostgreSQL maps), Dovecot (with PostgreSQL auth and LMTP), and OpenDKIM
# for the mail servers' contract tests.
mail_servers_ensure() {
    apt_ensure postmap postfix postfix-pgsql &&
        apt_ensure doveadm dovecot-core dovecot-pgsql dovecot-lmtpd &&
        apt_ensure opendkim opendkim opendkim-tools libopendbx1-pgsql &&
        apt_ensure miltertest miltertest &&
        apt_ensure sievec dovecot-sieve &&
        { [ -x /usr/lib/dovecot/imap ] || apt_ensure hostplane-needs-dovecot-imapd dovecot-imapd; }
}

# Headless Chromium and its WebDriver for the console's browser tests.
browser_ensure() {
    apt_ensure chromium chromium &&
        apt_ensure chromedriver chromium-driver
}

# PowerDNS with its generic PostgreSQL backend, and dig, for the DNS contract tests.
dns_servers_ensure() {
    apt_ensure pdns_server pdns-server &&
        apt_ensure dig bind9-dnsutils &&
        { compgen -G '/usr/lib/*/pdns/libgpgsqlbackend.so' >/dev/null ||
            apt_ensure hostplane-needs-pdns-backend-pgsql pdns-backend-pgsql; }
}

# Pebble, Let's Encrypt's ACME test server with its test CA, for the certificates' end-to-end test.
acme_server_ensure() {
    apt_ensure pebble pebble
}
