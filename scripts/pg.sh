# shellcheck shell=bash
# Sourced by scripts/run and scripts/test: prepares a project-local PostgreSQL cluster and starts
# it on demand. Installs the server with apt when its binaries are missing. PostgreSQL refuses
# to run as root, so as root the cluster runs as the unprivileged `postgres` user (created when
# missing). It listens on 127.0.0.1 on the first free port from $HOSTPLANE_PG_PORT (default 54329),
# chosen when the cluster is created and kept in $PG_DIR/port, and on a socket that only its owner
# may use; the app connects over TCP with a generated password kept in the cluster folder.
#
# Reads: HOSTPLANE_PG_PORT, HOSTPLANE_PG_DIR (default var/pg in the project).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

pg_log() { printf '[pg] %s\n' "$*" >&2; }

pg_find_bin() {
    local d best=""
    # The newest version installed, sorted as versions (9.6 before 15).
    while read -r d; do
        if [ -x "$d/initdb" ]; then best=$d; fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    printf '%s' "$best"
}

pg_install_if_missing() {
    PGBIN=$(pg_find_bin)
    [ -n "$PGBIN" ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        pg_log "PostgreSQL server not found; installing it with apt-get"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        PGBIN=$(pg_find_bin)
    fi
    if [ -z "$PGBIN" ]; then
        pg_log "PostgreSQL server binaries not found: install the postgresql package (or set DATABASE_URL)"
        return 1
    fi
}

# Runs a command as the cluster's owner.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_OWNER" -- "$@"
    else
        "$@"
    fi
}

pg_choose_dir() {
    if [ "$(id -u)" = 0 ]; then
        PG_OWNER=postgres
        if ! id "$PG_OWNER" >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OWNER"
        fi
    else
        PG_OWNER=$(id -un)
    fi
    PG_DIR=${HOSTPLANE_PG_DIR:-$ROOT/var/pg}
    mkdir -p "$PG_DIR"
    chmod 755 "$PG_DIR"
    # The owner must be able to reach the folder; a clone under /root is not reachable for it.
    if [ "$(id -u)" = 0 ] && ! runuser -u "$PG_OWNER" -- test -x "$PG_DIR"; then
        PG_DIR=/var/tmp/hostplane-pg-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)
        pg_log "the project folder is not reachable by $PG_OWNER; using $PG_DIR"
        mkdir -p "$PG_DIR"
        chmod 755 "$PG_DIR"
    fi
    PGDATA_DIR=$PG_DIR/data
    PG_SOCKET_DIR=$PG_DIR/run
    PG_PASSWORD_FILE=$PG_DIR/password
    PG_PORT=$(cat "$PG_DIR/port" 2>/dev/null || true)
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pg_pick_port() {
    local p=${HOSTPLANE_PG_PORT:-54329}
    while port_in_use "$p"; do
        p=$((p + 1))
    done
    printf '%s' "$p"
}

pg_init_if_needed() {
    [ -f "$PGDATA_DIR/PG_VERSION" ] && return 0
    PG_PORT=$(pg_pick_port)
    pg_log "creating a PostgreSQL cluster in $PGDATA_DIR (port $PG_PORT)"
    mkdir -p "$PGDATA_DIR" "$PG_SOCKET_DIR"
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PG_PASSWORD_FILE")
    local pwfile
    pwfile=$(mktemp)
    cp "$PG_PASSWORD_FILE" "$pwfile"
    if [ "$(id -u)" = 0 ]; then
        chown "$PG_OWNER" "$PGDATA_DIR" "$PG_SOCKET_DIR" "$pwfile"
    fi
    chmod 700 "$PGDATA_DIR" "$PG_SOCKET_DIR"
    as_pg "$PGBIN/initdb" -D "$PGDATA_DIR" -U hostplane --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 ||
        { cat "$PG_DIR/initdb.log" >&2; rm -f "$pwfile"; return 1; }
    rm -f "$pwfile"
    printf '%s' "$PG_PORT" >"$PG_DIR/port"
    cat >>"$PGDATA_DIR/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET_DIR'
unix_socket_permissions = 0700
max_connections = 300
shared_buffers = 256MB
CONF
}

pg_start_if_needed() {
    if as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
        return 0
    fi
    # The cluster is down but its port is taken (another checkout's cluster, say): move to a
    # free one (the last `port` line of postgresql.conf wins).
    if port_in_use "$PG_PORT"; then
        local taken=$PG_PORT
        PG_PORT=$(pg_pick_port)
        pg_log "port $taken is taken; this cluster moves to $PG_PORT"
        printf 'port = %s\n' "$PG_PORT" >>"$PGDATA_DIR/postgresql.conf"
        printf '%s' "$PG_PORT" >"$PG_DIR/port"
    fi
    pg_log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    touch "$PG_DIR/server.log"
    [ "$(id -u)" = 0 ] && chown "$PG_OWNER" "$PG_DIR/server.log"
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_DIR/server.log" -w -t 60 start >/dev/null ||
        { tail -20 "$PG_DIR/server.log" >&2; return 1; }
}

# Runs psql as the cluster owner over its private socket.
pg_psql() {
    as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U hostplane -d postgres "$@"
}

# Stops the cluster (used by tests that restart the database).
pg_stop() {
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null
}

# Stops the local cluster when it runs; starts and creates nothing.
pg_shutdown() {
    PGBIN=$(pg_find_bin)
    [ -n "$PGBIN" ] || return 0
    pg_choose_dir
    [ -f "$PGDATA_DIR/PG_VERSION" ] || return 0
    if as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
        pg_stop
    fi
}

# Makes sure the cluster runs; sets PGBIN, PG_DIR, PG_OWNER and friends.
pg_ensure() {
    pg_install_if_missing
    pg_choose_dir
    pg_init_if_needed
    pg_start_if_needed
}

# The URL of database $1 on the local cluster.
pg_url() {
    printf 'postgres://hostplane:%s@127.0.0.1:%s/%s' "$(cat "$PG_PASSWORD_FILE")" "$PG_PORT" "$1"
}

pg_create_db() {
    if ! pg_psql -tAc "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1; then
        pg_psql -c "CREATE DATABASE \"$1\""
    fi
}
