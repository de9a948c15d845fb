# MariaDB for bin/services (sourced): `bin/services up|down|status --mariadb`.
#
# A second real SQL engine for the SQL source (core.sources, docs/sources.md): Debian's
# mariadb-server on loopback, port $MARIADB_PORT, data, socket, pid file and log under
# $VAR_DIR/mariadb. It holds a system of record the tests make themselves (the `ods`
# tables and their triggers); the product's own database stays PostgreSQL.
# tests/kafkacache/test_sql_sources.py starts one on a free port and stops it.

MARIADB_PORT=${MARIADB_PORT:-3307}
MARIADB_USER=${MARIADB_USER:-kafkacache}
MARIADB_PASSWORD=${MARIADB_PASSWORD:-kafkacache}
MARIADB_DIR=$VAR_DIR/mariadb

# The server runs as the `mysql` user when we are root (mariadbd refuses root otherwise):
# that user must be able to enter the data directory's parents. A checkout of mode 700
# (or a test's mkdtemp) is not enterable, so the data goes to a directory of its own
# under $MARIADB_DATA_ROOT, with a `.location` file beside the wanted path saying where:
# bin/services' service_dir_for, as for PostgreSQL's data directory.
mariadb_bin() { # program
  command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || return 1
}

mariadb_dir() { # where the data is (after an up, possibly moved)
  if [ -f "$MARIADB_DIR.location" ]; then cat "$MARIADB_DIR.location"; else echo "$MARIADB_DIR"; fi
}

mariadb_up() {
  mariadb_bin mariadbd >/dev/null || apt_install mariadb-server
  local server install client dir
  server=$(mariadb_bin mariadbd) || die "mariadbd not found after installing mariadb-server"
  install=$(mariadb_bin mariadb-install-db) || die "mariadb-install-db not found"
  client=$(mariadb_bin mariadb) || die "the mariadb client not found"
  dir=$(service_dir_for mysql "$MARIADB_DIR" "${MARIADB_DATA_ROOT:-/var/lib/kafkacache}") || exit 1
  [ "$dir" = "$MARIADB_DIR" ] || log "mariadb data in $dir: the mysql user cannot enter $(dirname "$MARIADB_DIR")"
  if pid_alive "$dir/mariadb.pid"; then log "mariadb already running (pid $(cat "$dir/mariadb.pid"))"; return 0; fi
  if port_open 127.0.0.1 "$MARIADB_PORT"; then log "mariadb: 127.0.0.1:$MARIADB_PORT already answers; not starting ours"; return 0; fi
  local as_user=()
  [ "$(id -u)" = 0 ] && as_user=(--user=mysql)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown mysql "$dir"
  if [ ! -d "$dir/data/mysql" ]; then
    log "mariadb-install-db $dir/data"
    "$install" --no-defaults --datadir="$dir/data" "${as_user[@]}" --auth-root-authentication-method=socket \
      --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; die "mariadb-install-db failed"; }
  fi
  log "starting mariadb on 127.0.0.1:$MARIADB_PORT"
  # Durability traded for speed (a test and demo server): the log flushed once a second.
  nohup "$server" --no-defaults --datadir="$dir/data" "${as_user[@]}" --bind-address=127.0.0.1 \
    --port="$MARIADB_PORT" --socket="$dir/mariadb.sock" --pid-file="$dir/mariadb.pid" \
    --log-error="$dir/mariadb.log" --skip-name-resolve --innodb-buffer-pool-size=64M \
    --innodb-flush-log-at-trx-commit=2 --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
    >/dev/null 2>&1 &
  local i
  for ((i = 0; i < 300; i++)); do
    [ -S "$dir/mariadb.sock" ] && port_open 127.0.0.1 "$MARIADB_PORT" && break
    sleep 0.2
  done
  port_open 127.0.0.1 "$MARIADB_PORT" || { tail -n 20 "$dir/mariadb.log" >&2 2>/dev/null; die "mariadb did not start (log: $dir/mariadb.log)"; }
  # The source's user, allowed to make the databases the tests and the demo use.
  "$client" --no-defaults --socket="$dir/mariadb.sock" -u root <<SQL || die "could not create the mariadb user"
CREATE USER IF NOT EXISTS '$MARIADB_USER'@'127.0.0.1' IDENTIFIED BY '$MARIADB_PASSWORD';
CREATE USER IF NOT EXISTS '$MARIADB_USER'@'localhost' IDENTIFIED BY '$MARIADB_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$MARIADB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$MARIADB_USER'@'localhost';
SQL
}

mariadb_down() {
  local dir pid
  dir=$(mariadb_dir)
  if pid_alive "$dir/mariadb.pid"; then
    pid=$(cat "$dir/mariadb.pid")
    log "stopping mariadb (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/mariadb.pid"
}

mariadb_status() {
  status_line mariadb 127.0.0.1 "$MARIADB_PORT" "$(mariadb_dir)/mariadb.pid"
}
