# Redis Sentinel for bin/services (sourced): `bin/services up|down|status --redis-sentinel`.
#
# The other supported Redis layout for the cache store: a master, one replica and three
# sentinels (Debian's redis-server, `--sentinel`) on loopback, master name
# $REDIS_SENTINEL_MASTER. The product finds the master through REDIS_SENTINELS
# (core.clients); tests/deploy/test_redis_sentinel.py fails it over mid-consume.

REDIS_SENTINEL_DIR=${REDIS_SENTINEL_DIR:-$VAR_DIR/redis-sentinel}
# master, replica, then the three sentinels
read -r -a REDIS_SENTINEL_PORTS <<<"${REDIS_SENTINEL_PORTS:-7101 7102 7111 7112 7113}"
REDIS_SENTINEL_MASTER=${REDIS_SENTINEL_MASTER:-kc-cache}

redis_sentinel_up() {
  command -v redis-server >/dev/null || apt_install redis-server
  local master=${REDIS_SENTINEL_PORTS[0]} replica=${REDIS_SENTINEL_PORTS[1]} p dir
  for p in "$master" "$replica"; do
    dir=$REDIS_SENTINEL_DIR/$p; mkdir -p "$dir"
    pid_alive "$dir/redis.pid" && continue
    port_open 127.0.0.1 "$p" && die "127.0.0.1:$p is taken (redis sentinel layout)"
    local extra=()
    [ "$p" = "$replica" ] && [ ! -f "$dir/started" ] && extra=(--replicaof 127.0.0.1 "$master")
    redis-server --bind 127.0.0.1 --port "$p" --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" \
      --logfile "$dir/redis.log" --appendonly yes --appendfsync everysec --save "" "${extra[@]}"
    touch "$dir/started"  # a restarted node keeps the role sentinel gave it (its config is rewritten)
  done
  for p in "${REDIS_SENTINEL_PORTS[@]:2}"; do
    dir=$REDIS_SENTINEL_DIR/$p; mkdir -p "$dir"
    pid_alive "$dir/redis.pid" && continue
    port_open 127.0.0.1 "$p" && die "127.0.0.1:$p is taken (redis sentinel)"
    [ -f "$dir/sentinel.conf" ] || cat >"$dir/sentinel.conf" <<CONF
bind 127.0.0.1
port $p
dir $dir
sentinel monitor $REDIS_SENTINEL_MASTER 127.0.0.1 $master 2
sentinel down-after-milliseconds $REDIS_SENTINEL_MASTER 2000
sentinel failover-timeout $REDIS_SENTINEL_MASTER 10000
sentinel parallel-syncs $REDIS_SENTINEL_MASTER 1
CONF
    redis-server "$dir/sentinel.conf" --sentinel --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  done
  for p in "${REDIS_SENTINEL_PORTS[@]}"; do wait_port 127.0.0.1 "$p" 20 "redis sentinel layout node $p"; done
}

redis_sentinel_down() {
  local p dir pid
  for p in "${REDIS_SENTINEL_PORTS[@]}"; do
    dir=$REDIS_SENTINEL_DIR/$p
    if pid_alive "$dir/redis.pid"; then
      pid=$(cat "$dir/redis.pid"); kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -f "$dir/redis.pid"
  done
}

redis_sentinel_status() {
  local p
  for p in "${REDIS_SENTINEL_PORTS[@]}"; do status_line "rs-$p" 127.0.0.1 "$p" "$REDIS_SENTINEL_DIR/$p/redis.pid"; done
}
