# A 3-broker KRaft cluster for bin/services (sourced): `bin/services up|down|status --cluster`,
# `bin/services kafka-node-down|kafka-node-up --cluster N` (fault tests).
#
# The same jars as the single broker; three combined broker+controller nodes on loopback
# (a three-voter quorum survives one node down), with replication 3 and
# min.insync.replicas=2 as the defaults: with the producer's acks=all, a message is
# acknowledged only once two replicas hold it, so one broker lost loses nothing.

CLUSTER_DIR=${CLUSTER_DIR:-$VAR_DIR/cluster}
read -r -a CLUSTER_PORTS <<<"${CLUSTER_KAFKA_PORTS:-9292 9293 9294}"
read -r -a CLUSTER_CONTROLLER_PORTS <<<"${CLUSTER_CONTROLLER_PORTS:-9295 9296 9297}"

cluster_voters() {
  local i out=""
  for i in 0 1 2; do out+="${out:+,}$((i + 1))@127.0.0.1:${CLUSTER_CONTROLLER_PORTS[$i]}"; done
  echo "$out"
}

cluster_bootstrap() {
  local i out=""
  for i in 0 1 2; do out+="${out:+,}127.0.0.1:${CLUSTER_PORTS[$i]}"; done
  echo "$out"
}

cluster_node_config() { # index
  local i=$1 dir=$CLUSTER_DIR/node$(($1 + 1))
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$((i + 1))
controller.quorum.voters=$(cluster_voters)
listeners=PLAINTEXT://127.0.0.1:${CLUSTER_PORTS[$i]},CONTROLLER://127.0.0.1:${CLUSTER_CONTROLLER_PORTS[$i]}
advertised.listeners=PLAINTEXT://127.0.0.1:${CLUSTER_PORTS[$i]}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=6
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
auto.create.topics.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
# Fail over fast on loopback: a dead broker is out of the ISR within 10 s.
replica.lag.time.max.ms=10000
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
log.segment.bytes=67108864
EOF
  kafka_log4j "$dir"
}

cluster_node_up() { # index
  local i=$1 dir=$CLUSTER_DIR/node$(($1 + 1)) cp
  if pid_alive "$dir/kafka.pid"; then return 0; fi
  port_open 127.0.0.1 "${CLUSTER_PORTS[$i]}" && die "127.0.0.1:${CLUSTER_PORTS[$i]} is taken (cluster node $((i + 1)))"
  cp=$(kafka_classpath)
  log "starting cluster node $((i + 1)) on 127.0.0.1:${CLUSTER_PORTS[$i]}"
  nohup java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/kafka.pid"
}

cluster_node_down() { # index [signal]
  local dir=$CLUSTER_DIR/node$(($1 + 1)) pid
  if pid_alive "$dir/kafka.pid"; then
    pid=$(cat "$dir/kafka.pid")
    log "stopping cluster node $(($1 + 1)) (pid $pid, SIG${2:-TERM})"
    kill "-${2:-TERM}" "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/kafka.pid"
}

cluster_up() {
  local i cluster_id
  kafka_classpath >/dev/null # resolved once, before the formats run at once
  mkdir -p "$CLUSTER_DIR"
  [ -s "$CLUSTER_DIR/cluster.id" ] || kafka_cluster_id >"$CLUSTER_DIR/cluster.id"
  cluster_id=$(cat "$CLUSTER_DIR/cluster.id")
  # The three formats at once: each is a JVM start of its own.
  local formats=()
  for i in 0 1 2; do
    cluster_node_config "$i"
    local dir=$CLUSTER_DIR/node$((i + 1))
    if [ ! -f "$dir/data/meta.properties" ]; then
      kafka_format "$dir" "$cluster_id" &
      formats[i]=$!
    fi
  done
  for i in "${!formats[@]}"; do
    wait "${formats[i]}" || { cat "$CLUSTER_DIR/node$((i + 1))/format.log" >&2; die "cluster node $((i + 1)) storage format failed"; }
  done
  for i in 0 1 2; do cluster_node_up "$i"; done
  for i in 0 1 2; do wait_port 127.0.0.1 "${CLUSTER_PORTS[$i]}" 90 "cluster node $((i + 1))"; done
  cluster_wait_brokers 3
  log "3-broker cluster: KAFKA_BOOTSTRAP_SERVERS=$(cluster_bootstrap) KAFKA_TOPIC_REPLICATION=3"
}

# Wait until the cluster's metadata lists this many brokers.
cluster_wait_brokers() {
  [ -x "$PY" ] || return 0
  "$PY" - "$(cluster_bootstrap)" "$1" <<'EOF' || die "the cluster did not list its brokers"
import sys, time
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
deadline = time.monotonic() + 90
while True:
    try:
        if len(admin.list_topics(timeout=5).brokers) >= int(sys.argv[2]):
            break
    except Exception as exc:
        if time.monotonic() > deadline:
            raise SystemExit(f"cluster metadata: {exc}")
    if time.monotonic() > deadline:
        raise SystemExit("cluster: brokers missing")
    time.sleep(0.5)
EOF
}

any_alive() { # pid...
  local pid
  for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 0; done
  return 1
}

cluster_down() {
  # All nodes at once: one by one, the last ones wait out their shutdown timeout for a
  # quorum that has already gone. Survivors of 15 s are killed.
  local i pids=()
  for i in 0 1 2; do
    if pid_alive "$CLUSTER_DIR/node$((i + 1))/kafka.pid"; then pids+=("$(cat "$CLUSTER_DIR/node$((i + 1))/kafka.pid")"); fi
  done
  if [ ${#pids[@]} -gt 0 ]; then
    log "stopping cluster nodes (pids ${pids[*]}, SIGTERM)"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 75); do any_alive "${pids[@]}" || break; sleep 0.2; done
    kill -9 "${pids[@]}" 2>/dev/null || true
  fi
  for i in 0 1 2; do rm -f "$CLUSTER_DIR/node$((i + 1))/kafka.pid"; done
}

cluster_status() {
  local i
  for i in 0 1 2; do
    status_line "node$((i + 1))" 127.0.0.1 "${CLUSTER_PORTS[$i]}" "$CLUSTER_DIR/node$((i + 1))/kafka.pid"
  done
}
