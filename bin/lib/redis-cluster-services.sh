# Redis Cluster for bin/services (sourced): `bin/services up|down|status --redis-cluster`.
#
# Six Debian redis-server nodes in cluster mode on loopback (3 masters, 3 replicas,
# `redis-cli --cluster create ... --cluster-replicas 1`), AOF on: the cache store's
# cluster layout (REDIS_CLUSTER_NODES), tested through tests/deploy/redis_cluster.py.

REDIS_CLUSTER_DIR=${REDIS_CLUSTER_DIR:-$VAR_DIR/redis-cluster}
read -r -a REDIS_CLUSTER_PORTS <<<"${REDIS_CLUSTER_PORTS:-7001 7002 7003 7004 7005 7006}"

redis_cluster_node_up() { # port
  local dir=$REDIS_CLUSTER_DIR/$1
  mkdir -p "$dir"
  pid_alive "$dir/redis.pid" && return 0
  port_open 127.0.0.1 "$1" && die "127.0.0.1:$1 is taken (redis cluster node)"
  redis-server --bind 127.0.0.1 --port "$1" --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
    --cluster-node-timeout 3000 --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" \
    --logfile "$dir/redis.log" --appendonly yes --appendfsync everysec --save ""
}

redis_cluster_up() {
  command -v redis-server >/dev/null || apt_install redis-server
  local p hosts=()
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do redis_cluster_node_up "$p"; hosts+=("127.0.0.1:$p"); done
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do wait_port 127.0.0.1 "$p" 20 "redis cluster node $p"; done
  if ! redis-cli -p "${REDIS_CLUSTER_PORTS[0]}" cluster info | grep -q "cluster_state:ok"; then
    log "creating the redis cluster (3 masters, 3 replicas) on ${hosts[*]}"
    redis-cli --cluster create "${hosts[@]}" --cluster-replicas 1 --cluster-yes >"$REDIS_CLUSTER_DIR/create.log" 2>&1 \
      || { cat "$REDIS_CLUSTER_DIR/create.log" >&2; die "redis cluster create failed"; }
  fi
  for _ in $(seq 1 100); do
    redis-cli -p "${REDIS_CLUSTER_PORTS[0]}" cluster info | grep -q "cluster_state:ok" && return 0
    sleep 0.2
  done
  die "redis cluster did not reach cluster_state:ok"
}

redis_cluster_down() {
  local p dir pids=()
  # All nodes asked at once, then waited for: one by one, each shutdown's AOF flush adds up.
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    dir=$REDIS_CLUSTER_DIR/$p
    if pid_alive "$dir/redis.pid"; then pids+=("$(cat "$dir/redis.pid")"); kill "${pids[-1]}"; fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  done
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do rm -f "$REDIS_CLUSTER_DIR/$p/redis.pid"; done
}

redis_cluster_status() {
  local p
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do status_line "rc-$p" 127.0.0.1 "$p" "$REDIS_CLUSTER_DIR/$p/redis.pid"; done
}
