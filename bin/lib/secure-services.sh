# Secured services for bin/services (sourced): `bin/services up|down|status --secure`.
#
# The same Kafka jars, Redis and PostgreSQL binaries as the plaintext services, on
# other loopback ports so both run side by side:
#   Kafka      SASL_SSL + SCRAM-SHA-512 on $SECURE_KAFKA_PORT (users made at format time by
#              kafka.tools.StorageTool --add-scram), SSL with client certificates required
#              (mutual TLS) on $SECURE_KAFKA_MTLS_PORT; the controller listener stays on loopback.
#   Redis      TLS only (no plaintext port) on $SECURE_REDIS_PORT, ACL users from users.acl:
#              `kafkacache` (the cache: kc:* keys, the commands the product runs) and
#              `kafkacache-celery` (the Celery broker: kombu's keys); `default` is off.
#   PostgreSQL its own cluster (initdb under $SECURE_DIR) with ssl=on, hostssl +
#              scram-sha-256 only: plain TCP is refused, clients use sslmode=verify-full.
# Certificates (a CA, a server certificate for DNS:localhost, a client certificate for
# mutual TLS) and passwords are made on first start under $SECURE_DIR/tls and
# $SECURE_DIR/secrets.env; $SECURE_DIR/product.env holds the product's settings for them.

SECURE_DIR=${SECURE_DIR:-$VAR_DIR/secure}
SECURE_KAFKA_PORT=${SECURE_KAFKA_PORT:-9192}
SECURE_KAFKA_MTLS_PORT=${SECURE_KAFKA_MTLS_PORT:-9193}
SECURE_KAFKA_CONTROLLER_PORT=${SECURE_KAFKA_CONTROLLER_PORT:-9194}
SECURE_REDIS_PORT=${SECURE_REDIS_PORT:-6380}
SECURE_PG_PORT=${SECURE_PG_PORT:-5433}
TLS_DIR=$SECURE_DIR/tls

# What the product's Redis user may run, and nothing else (README "Running in production").
REDIS_APP_COMMANDS="+ping +auth +hello +select +get +set +del +exists +hget +hmget +hgetall +hset +hdel +hincrby +hincrbyfloat +sadd +srem +smembers +scard +sscan +scan +expire +pexpire +ttl +pttl +eval +evalsha +script|load +script|exists"
# The Celery broker (kombu's Redis transport): lists, sets, sorted sets, hashes, pub/sub
# and transactions on kombu's own keys; no admin or dangerous commands.
REDIS_CELERY_COMMANDS="+@connection +@list +@set +@sortedset +@hash +@string +@pubsub +@transaction +@scripting +del +exists +expire +pexpire +ttl +pttl +type +scan +time -@admin -@dangerous"
REDIS_CELERY_KEYS="~_kombu.* ~unacked* ~consume* ~loads* ~reconcile* ~alerts* ~celery*"

secure_tls() {
  [ -s "$TLS_DIR/server.pem" ] && return 0
  command -v openssl >/dev/null || apt_install openssl
  mkdir -p "$TLS_DIR"
  log "making a CA, a server certificate (DNS:localhost) and a client certificate in $TLS_DIR"
  (
    cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=kafkacache local CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -extfile server.ext \
      -out server.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kafkacache" -keyout client.key -out client.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -extfile client.ext \
      -out client.pem 2>/dev/null
    rm -f ./*.csr ./*.ext
    chmod 600 ./*.key
  )
}

secure_secrets() {
  local f=$SECURE_DIR/secrets.env
  if [ ! -s "$f" ]; then
    mkdir -p "$SECURE_DIR"
    rnd() { openssl rand -hex 16; }
    umask 077
    cat >"$f" <<EOF
KAFKA_ADMIN_PASSWORD=$(rnd)
KAFKA_APP_PASSWORD=$(rnd)
REDIS_ADMIN_PASSWORD=$(rnd)
REDIS_APP_PASSWORD=$(rnd)
REDIS_CELERY_PASSWORD=$(rnd)
PG_APP_PASSWORD=$(rnd)
KEYSTORE_PASSWORD=$(rnd)
EOF
    umask 022
  fi
  # shellcheck disable=SC1090
  . "$f"
}

# The product's settings for the secured services, for `set -a; . product.env`, systemd
# EnvironmentFile= or the tests.
secure_product_env() {
  umask 077
  cat >"$SECURE_DIR/product.env" <<EOF
DATABASE_URL='postgres://kafkacache:$PG_APP_PASSWORD@localhost:$SECURE_PG_PORT/kafkacache?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.pem'
REDIS_URL='rediss://kafkacache:$REDIS_APP_PASSWORD@localhost:$SECURE_REDIS_PORT/0?ssl_cert_reqs=required&ssl_ca_certs=$TLS_DIR/ca.pem&ssl_check_hostname=true'
CELERY_BROKER_URL='rediss://kafkacache-celery:$REDIS_CELERY_PASSWORD@localhost:$SECURE_REDIS_PORT/1?ssl_cert_reqs=required&ssl_ca_certs=$TLS_DIR/ca.pem'
KAFKA_BOOTSTRAP_SERVERS='localhost:$SECURE_KAFKA_PORT'
KAFKA_CLIENT_CONFIG='{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "kafkacache", "sasl.password": "$KAFKA_APP_PASSWORD", "ssl.ca.location": "$TLS_DIR/ca.pem", "ssl.endpoint.identification.algorithm": "https"}'
# Mutual TLS instead of SCRAM: KAFKA_BOOTSTRAP_SERVERS=localhost:$SECURE_KAFKA_MTLS_PORT and
KAFKA_CLIENT_CONFIG_MTLS='{"security.protocol": "SSL", "ssl.ca.location": "$TLS_DIR/ca.pem", "ssl.certificate.location": "$TLS_DIR/client.pem", "ssl.key.location": "$TLS_DIR/client.key", "ssl.endpoint.identification.algorithm": "https"}'
EOF
  umask 022
}

secure_kafka_start() {
  local dir=$SECURE_DIR/kafka
  mkdir -p "$dir"
  if pid_alive "$dir/kafka.pid"; then log "secure kafka already running"; return 0; fi
  port_open 127.0.0.1 "$SECURE_KAFKA_PORT" && die "127.0.0.1:$SECURE_KAFKA_PORT is taken (secure kafka)"
  local cp; cp=$(kafka_classpath)
  command -v keytool >/dev/null || apt_install openjdk-17-jre-headless
  if [ ! -s "$dir/server.p12" ]; then
    openssl pkcs12 -export -in "$TLS_DIR/server.pem" -inkey "$TLS_DIR/server.key" -certfile "$TLS_DIR/ca.pem" \
      -name server -out "$dir/server.p12" -passout "pass:$KEYSTORE_PASSWORD"
    # The truststore the broker checks client certificates (mutual TLS) and itself against.
    keytool -importcert -noprompt -alias ca -file "$TLS_DIR/ca.pem" -keystore "$dir/truststore.p12" \
      -storetype PKCS12 -storepass "$KEYSTORE_PASSWORD" >/dev/null 2>&1
  fi
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$SECURE_KAFKA_CONTROLLER_PORT
listeners=SASL_SSL://127.0.0.1:$SECURE_KAFKA_PORT,SSL://127.0.0.1:$SECURE_KAFKA_MTLS_PORT,CONTROLLER://127.0.0.1:$SECURE_KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_SSL://localhost:$SECURE_KAFKA_PORT,SSL://localhost:$SECURE_KAFKA_MTLS_PORT,CONTROLLER://127.0.0.1:$SECURE_KAFKA_CONTROLLER_PORT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$KAFKA_ADMIN_PASSWORD";
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/server.p12
ssl.keystore.password=$KEYSTORE_PASSWORD
ssl.truststore.type=PKCS12
ssl.truststore.location=$dir/truststore.p12
ssl.truststore.password=$KEYSTORE_PASSWORD
ssl.endpoint.identification.algorithm=https
listener.name.ssl.ssl.client.auth=required
ssl.enabled.protocols=TLSv1.3,TLSv1.2
log.dirs=$dir/data
num.partitions=2
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  chmod 600 "$dir/server.properties"
  kafka_log4j "$dir"
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$(kafka_cluster_id)
    log "formatting secure kafka (SCRAM-SHA-512 users admin and kafkacache)"
    kafka_format "$dir" "$cluster_id" --standalone \
      --add-scram "SCRAM-SHA-512=[name=admin,password=$KAFKA_ADMIN_PASSWORD]" \
      --add-scram "SCRAM-SHA-512=[name=kafkacache,password=$KAFKA_APP_PASSWORD]" \
      || { cat "$dir/format.log" >&2; die "secure kafka storage format failed"; }
  fi
  log "starting secure kafka: SASL_SSL localhost:$SECURE_KAFKA_PORT, mutual TLS localhost:$SECURE_KAFKA_MTLS_PORT"
  nohup java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/kafka.pid"
}

secure_redis_up() {
  local dir=$SECURE_DIR/redis
  mkdir -p "$dir"
  if pid_alive "$dir/redis.pid"; then log "secure redis already running"; return 0; fi
  port_open 127.0.0.1 "$SECURE_REDIS_PORT" && die "127.0.0.1:$SECURE_REDIS_PORT is taken (secure redis)"
  command -v redis-server >/dev/null || apt_install redis-server
  umask 077
  cat >"$dir/users.acl" <<EOF
user default off
user admin on >$REDIS_ADMIN_PASSWORD ~* &* +@all
user kafkacache on >$REDIS_APP_PASSWORD resetkeys ~kc:* resetchannels -@all $REDIS_APP_COMMANDS
user kafkacache-celery on >$REDIS_CELERY_PASSWORD resetkeys $REDIS_CELERY_KEYS &* -@all $REDIS_CELERY_COMMANDS
EOF
  umask 022
  log "starting secure redis: TLS only on localhost:$SECURE_REDIS_PORT, ACL users"
  # tls-auth-clients optional: a client certificate is checked when one is given (mutual TLS as an option).
  redis-server --bind 127.0.0.1 --port 0 --tls-port "$SECURE_REDIS_PORT" \
    --tls-cert-file "$TLS_DIR/server.pem" --tls-key-file "$TLS_DIR/server.key" --tls-ca-cert-file "$TLS_DIR/ca.pem" \
    --tls-auth-clients optional --aclfile "$dir/users.acl" --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --appendonly yes --save ""
  wait_port 127.0.0.1 "$SECURE_REDIS_PORT" 20 "secure redis"
}

# The secure cluster's data directory, wherever pg_dir_for (bin/services) put it.
secure_pg_dir() {
  if [ -f "$SECURE_DIR/postgres.location" ]; then cat "$SECURE_DIR/postgres.location"; else echo "$SECURE_DIR/postgres"; fi
}

secure_pg_up() {
  local dir bin
  dir=$(secure_pg_dir)
  if [ -f "$dir/data/postmaster.pid" ] && kill -0 "$(head -n1 "$dir/data/postmaster.pid")" 2>/dev/null; then
    log "secure postgres already running"; return 0
  fi
  port_open 127.0.0.1 "$SECURE_PG_PORT" && die "127.0.0.1:$SECURE_PG_PORT is taken (secure postgres)"
  bin=$(pg_bin) || { apt_install postgresql; bin=$(pg_bin) || die "postgresql binaries not found"; }
  dir=$(pg_dir_for "$SECURE_DIR/postgres") || exit 1
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    log "initdb $dir/data (ssl=on, hostssl + scram-sha-256 only)"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=reject -E UTF8 --locale=C.UTF-8 \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    cp "$TLS_DIR/server.pem" "$TLS_DIR/server.key" "$TLS_DIR/ca.pem" "$dir/data/"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/data/server.pem" "$dir/data/server.key" "$dir/data/ca.pem"
    chmod 600 "$dir/data/server.key"
    # Only the local superuser socket (in a directory only postgres may enter) and TLS connections.
    as_pg sh -c "cat >'$dir/data/pg_hba.conf'" <<EOF
local   all  postgres                 trust
hostssl all  all       127.0.0.1/32   scram-sha-256
EOF
  fi
  log "starting secure postgres on localhost:$SECURE_PG_PORT"
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $SECURE_PG_PORT -k $dir -c ssl=on -c ssl_cert_file=server.pem -c ssl_key_file=server.key -c ssl_ca_file=ca.pem -c ssl_min_protocol_version=TLSv1.2 -c password_encryption=scram-sha-256 -c fsync=off -c log_min_messages=warning" >/dev/null
  chmod 700 "$dir"
  as_pg "$bin/psql" -h "$dir" -p "$SECURE_PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<EOF
SELECT 'CREATE ROLE kafkacache LOGIN CREATEDB'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kafkacache')\gexec
ALTER ROLE kafkacache PASSWORD '$PG_APP_PASSWORD';
SELECT 'CREATE DATABASE kafkacache OWNER kafkacache'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'kafkacache')\gexec
EOF
}

secure_up() {
  secure_tls
  secure_secrets
  secure_kafka_start # the broker's JVM boots while PostgreSQL and Redis start
  secure_pg_up
  secure_redis_up
  wait_port 127.0.0.1 "$SECURE_KAFKA_PORT" 90 "secure kafka"
  secure_product_env
  log "product settings for the secured services: $SECURE_DIR/product.env"
}

secure_down() {
  local pid bin
  for f in "$SECURE_DIR/kafka/kafka.pid" "$SECURE_DIR/redis/redis.pid"; do
    if pid_alive "$f"; then
      pid=$(cat "$f"); log "stopping pid $pid ($f)"; kill "$pid"
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  if bin=$(pg_bin) && [ -f "$(secure_pg_dir)/data/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$(secure_pg_dir)/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

secure_status() {
  status_line "kafka-sasl" 127.0.0.1 "$SECURE_KAFKA_PORT" "$SECURE_DIR/kafka/kafka.pid"
  status_line "kafka-mtls" 127.0.0.1 "$SECURE_KAFKA_MTLS_PORT" "$SECURE_DIR/kafka/kafka.pid"
  status_line "redis-tls" 127.0.0.1 "$SECURE_REDIS_PORT" "$SECURE_DIR/redis/redis.pid"
  status_line "pg-ssl" 127.0.0.1 "$SECURE_PG_PORT" "$(secure_pg_dir)/data/postmaster.pid"
}
