# Shared helpers for scripts/test and scripts/bench-*: make sure the services the tests and
# benchmarks need are installed and running. Every function is safe to call twice.

GARAGE_VERSION=2.5.0

log() { printf '\033[1m[rempart]\033[0m %s\n' "$*" >&2; }

# PostgreSQL and MariaDB run before every session and CI; start them again if one is down.
ensure_databases() {
    if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
        log "PostgreSQL is down: starting it"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
        for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
    fi
    if ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
        log "MariaDB is down: starting it"
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
        for _ in $(seq 1 30); do mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 1; done
    fi
}

# Garage is built from crates.io once (about 8 minutes on 2 cores) and kept in ~/.cargo/bin.
ensure_garage_binary() {
    export PATH="$HOME/.cargo/bin:$PATH"
    if command -v garage >/dev/null && garage --version 2>/dev/null | grep -q "$GARAGE_VERSION"; then
        return 0
    fi
    log "installing Garage $GARAGE_VERSION (cargo install, about 8 minutes)"
    cargo install garage --locked --version "$GARAGE_VERSION"
}

# start_garage DIR: a single-node Garage on loopback with its data in DIR; writes DIR/s3.env
# with the AWS_* settings and the bucket name. Blocks are not compressed by Garage: rempart's
# objects are already compressed and encrypted.
start_garage() {
    local dir="$1"
    stop_garage "$dir"
    rm -rf "$dir"
    mkdir -p "$dir/meta" "$dir/data"
    cat > "$dir/garage.toml" <<CONF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
compression_level = "none"
rpc_bind_addr = "127.0.0.1:3901"
rpc_public_addr = "127.0.0.1:3901"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:3900"
[admin]
api_bind_addr = "127.0.0.1:3903"
CONF
    local g="garage -c $dir/garage.toml"
    nohup garage -c "$dir/garage.toml" server > "$dir/server.log" 2>&1 &
    echo $! > "$dir/pid"
    local id=""
    for _ in $(seq 1 60); do
        id=$($g node id -q 2>/dev/null | cut -d@ -f1) && [ -n "$id" ] && break
        sleep 0.5
    done
    [ -n "$id" ] || { cat "$dir/server.log" >&2; return 1; }
    [ "$id" = "$(od -An -tx1 "$dir/meta/node_key.pub" | tr -d ' \n' | cut -c1-${#id})" ] || {
        log "Garage answered with another node's id ($id): an old server is still running"
        return 1
    }
    $g layout assign -z dc1 -c 10G "$id" >/dev/null
    $g layout apply --version 1 >/dev/null
    local key_id="GK$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    local secret="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    $g key import --yes -n rempart "$key_id" "$secret" >/dev/null
    for b in rempart-test rempart-bench; do
        $g bucket create "$b" >/dev/null
        $g bucket allow --read --write --owner "$b" --key "$key_id" >/dev/null
    done
    cat > "$dir/s3.env" <<ENV
AWS_ACCESS_KEY_ID=$key_id
AWS_SECRET_ACCESS_KEY=$secret
AWS_ENDPOINT_URL=http://127.0.0.1:3900
AWS_REGION=garage
AWS_ALLOW_HTTP=true
ENV
    # Wait until the S3 endpoint answers.
    for _ in $(seq 1 60); do
        curl -s -o /dev/null http://127.0.0.1:3900/ && break
        sleep 0.5
    done
    log "Garage is running on 127.0.0.1:3900 (settings in $dir/s3.env)"
}

stop_garage() {
    local dir="$1"
    if [ -f "$dir/pid" ]; then
        kill "$(cat "$dir/pid")" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$(cat "$dir/pid")" 2>/dev/null || break; sleep 0.25; done
        rm -f "$dir/pid"
    fi
    # A Garage left by an earlier run that was killed holds the ports: stop it too.
    pkill -f "garage -c $dir/garage.toml server" 2>/dev/null || true
    if ss -ltn 2>/dev/null | grep -q '127.0.0.1:3900 '; then
        pkill -f "garage -c .*rempart-garage.*/garage.toml server" 2>/dev/null || true
    fi
    # Wait until the old server has let go of its ports: a dying server still answering RPC
    # would take the new one's layout commands (seen: a fresh Garage without a layout, 403 on
    # every request).
    for _ in $(seq 1 60); do
        ss -ltn 2>/dev/null | grep -qE '127.0.0.1:390[013] ' || break
        sleep 0.25
    done
}

# start_garage_cluster DIR: a 3-node Garage cluster with replication factor 3, node N on
# 127.0.0.N (S3 on port 3910, RPC on 3911, admin on 3913), one zone per node, so any one node
# can die and writes still reach a quorum of two. Writes DIR/s3.env (the endpoint of node 1),
# DIR/endpoints (one S3 address per line, for a client-side balancer) and, per node,
# DIR/nodeN/garage.toml and DIR/nodeN/pid: tests kill and restart nodes with these.
start_garage_cluster() {
    local dir="$1" secret n
    stop_garage_cluster "$dir"
    # The ports belong to the test cluster: a node of another cluster folder (an earlier run
    # elsewhere) would take this one's commands or make its nodes fail to bind.
    if ss -ltn 2>/dev/null | grep -qE '127.0.0.[123]:391[013] '; then
        pkill -f "garage -c .*/node[123]/garage.toml server" 2>/dev/null || true
        for _ in $(seq 1 60); do
            ss -ltn 2>/dev/null | grep -qE '127.0.0.[123]:391[013] ' || break
            sleep 0.25
        done
    fi
    if ss -ltn 2>/dev/null | grep -qE '127.0.0.[123]:391[013] '; then
        log "ports 3910-3913 on 127.0.0.1-3 are held by another program: cannot start the cluster"
        return 1
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    secret="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    : > "$dir/endpoints"
    for n in 1 2 3; do
        mkdir -p "$dir/node$n/meta" "$dir/node$n/data"
        cat > "$dir/node$n/garage.toml" <<CONF
metadata_dir = "$dir/node$n/meta"
data_dir = "$dir/node$n/data"
db_engine = "sqlite"
replication_factor = 3
compression_level = "none"
rpc_bind_addr = "127.0.0.$n:3911"
rpc_public_addr = "127.0.0.$n:3911"
rpc_secret = "$secret"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.$n:3910"
[admin]
api_bind_addr = "127.0.0.$n:3913"
CONF
        start_garage_node "$dir" "$n"
        echo "127.0.0.$n:3910" >> "$dir/endpoints"
    done
    local g="garage -c $dir/node1/garage.toml" ids=() id
    for n in 1 2 3; do
        id=""
        for _ in $(seq 1 60); do
            id=$(garage -c "$dir/node$n/garage.toml" node id -q 2>/dev/null) && [ -n "$id" ] && break
            sleep 0.5
        done
        [ -n "$id" ] || { cat "$dir/node$n/server.log" >&2; return 1; }
        # The id must be this node's own (its key file), and the node must still run.
        local short="${id%%@*}"
        [ "$short" = "$(od -An -tx1 "$dir/node$n/meta/node_key.pub" | tr -d ' \n' | cut -c1-${#short})" ] &&
            kill -0 "$(cat "$dir/node$n/pid")" 2>/dev/null || {
            log "node $n of the cluster did not start (another server holds its ports?):"
            tail -5 "$dir/node$n/server.log" >&2
            return 1
        }
        ids+=("$id")
    done
    $g node connect "${ids[1]}" >/dev/null || return 1
    $g node connect "${ids[2]}" >/dev/null || return 1
    for n in 1 2 3; do
        $g layout assign -z "zone$n" -c 10G "${ids[$((n - 1))]%%@*}" >/dev/null || return 1
    done
    $g layout apply --version 1 >/dev/null || return 1
    local key_id="GK$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    local key_secret="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    # The layout reaches every node before the key and the buckets are made.
    local imported=""
    for _ in $(seq 1 60); do
        $g key import --yes -n rempart "$key_id" "$key_secret" >/dev/null 2>&1 && imported=1 && break
        sleep 0.5
    done
    [ -n "$imported" ] || { log "the cluster did not take its key"; return 1; }
    for b in rempart-fleet rempart-fleet-scale; do
        $g bucket create "$b" >/dev/null || return 1
        $g bucket allow --read --write --owner "$b" --key "$key_id" >/dev/null || return 1
    done
    cat > "$dir/s3.env" <<ENV
AWS_ACCESS_KEY_ID=$key_id
AWS_SECRET_ACCESS_KEY=$key_secret
AWS_ENDPOINT_URL=http://127.0.0.1:3910
AWS_REGION=garage
AWS_ALLOW_HTTP=true
ENV
    for n in 1 2 3; do
        for _ in $(seq 1 60); do
            curl -s -o /dev/null "http://127.0.0.$n:3910/" && break
            sleep 0.5
        done
    done
    log "a 3-node Garage cluster is running on 127.0.0.1-3:3910 (settings in $dir/s3.env)"
}

# clean_test_hosts: removes the network namespaces and veth links that a killed fleet test
# left (named rpf*), and their proxies.
clean_test_hosts() {
    local ns link
    pkill -f "tests/fault_proxy.py --listen 10\." 2>/dev/null || true
    for ns in $(ip netns list 2>/dev/null | awk '/^rpf/ {print $1}'); do
        ip netns del "$ns" 2>/dev/null || true
    done
    for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^rpf'); do
        ip link del "$link" 2>/dev/null || true
    done
}

# start_garage_node DIR N: (re)starts node N of the cluster in DIR with its data as it was.
start_garage_node() {
    local dir="$1" n="$2"
    nohup garage -c "$dir/node$n/garage.toml" server > "$dir/node$n/server.log" 2>&1 &
    echo $! > "$dir/node$n/pid"
}

stop_garage_cluster() {
    local dir="$1" n
    for n in 1 2 3; do
        if [ -f "$dir/node$n/pid" ]; then
            kill "$(cat "$dir/node$n/pid")" 2>/dev/null || true
            rm -f "$dir/node$n/pid"
        fi
        pkill -f "garage -c $dir/node$n/garage.toml server" 2>/dev/null || true
    done
    for _ in $(seq 1 60); do
        ss -ltn 2>/dev/null | grep -qE '127.0.0.[123]:391[013] ' || break
        sleep 0.25
    done
}

# restic (Debian's package): the retention tests compare rempart's decisions with restic's.
ensure_restic() {
    if ! command -v restic >/dev/null; then
        log "installing restic (Debian package)"
        apt-get update -q >/dev/null && apt-get install -y -q restic >/dev/null
    fi
}

# moto's standalone S3 server (PyPI) with boto3: the Object Lock tests need a server that
# enforces locks and keeps versions, which Garage does not. tests/moto_server.py runs it with
# the one rule of AWS it lacks (a COMPLIANCE lock cannot be shortened); docs/copies.md says
# what is moto's and what is that rule.
ensure_moto() {
    if ! python3 -c "import moto.server, boto3, flask" 2>/dev/null; then
        log "installing moto's S3 server (PyPI)"
        python3 -m pip install -q 'moto[server]' boto3 >/dev/null 2>&1 || pip install -q 'moto[server]' boto3
    fi
}

# Starts it on 127.0.0.1:PORT (its state is in memory: a restart starts empty). Writes the
# AWS_* settings for it to FILE. Stops any one left on that port first.
start_moto() {
    local port="$1" file="$2"
    pkill -f "moto_server.py -H 127.0.0.1 -p $port" 2>/dev/null || true
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
        sleep 0.1
    done
    nohup python3 tests/moto_server.py -H 127.0.0.1 -p "$port" >"${file%.env}.log" 2>&1 &
    echo $! >"${file%.env}.pid"
    for _ in $(seq 100); do
        if curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1; then
            printf 'AWS_ENDPOINT_URL=http://127.0.0.1:%s\nAWS_ACCESS_KEY_ID=moto-test-key\nAWS_SECRET_ACCESS_KEY=moto-test-secret\nAWS_REGION=us-east-1\nAWS_ALLOW_HTTP=true\n' "$port" >"$file"
            return 0
        fi
        sleep 0.2
    done
    log "moto did not start (see ${file%.env}.log)"
    return 1
}

stop_moto() {
    local file="$1"
    if [ -f "${file%.env}.pid" ]; then
        kill "$(cat "${file%.env}.pid")" 2>/dev/null || true
        rm -f "${file%.env}.pid"
    fi
}

# Python's jsonschema: the report test validates the JSON report against its schema.
ensure_jsonschema() {
    if ! python3 -c "import jsonschema" 2>/dev/null; then
        log "installing the jsonschema Python package"
        python3 -m pip install -q jsonschema >/dev/null 2>&1 || pip install -q jsonschema
    fi
}

# promtool (Debian's prometheus package): the daemon test checks /metrics with it.
ensure_promtool() {
    if ! command -v promtool >/dev/null; then
        log "installing promtool (Debian's prometheus package)"
        apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends prometheus >/dev/null
        # Only the tool is wanted: the server the package starts is not.
        (systemctl stop prometheus || service prometheus stop || pkill -x prometheus) >/dev/null 2>&1 || true
    fi
}

# FUSE for the mount tests: the kernel's /dev/fuse and Debian's fuse3 (fusermount3).
ensure_fuse() {
    if ! command -v fusermount3 >/dev/null; then
        log "installing fuse3 (Debian package)"
        apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends fuse3 >/dev/null
    fi
    [ -e /dev/fuse ] || modprobe fuse 2>/dev/null || log "no /dev/fuse: the mount test will fail"
}

# cargo-deb (the Debian package) and lintian (its checks).
ensure_cargo_deb() {
    if ! command -v cargo-deb >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo-deb" ]; then
        log "installing cargo-deb"
        cargo install cargo-deb --locked --quiet >&2
    fi
}

ensure_lintian() {
    if ! command -v lintian >/dev/null; then
        log "installing lintian (Debian package)"
        apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends lintian >/dev/null
    fi
}

# Headless Chromium for the report and dashboard tests.
ensure_chromium() {
    if ! command -v chromium >/dev/null; then
        log "installing Chromium (Debian package)"
        apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null
    fi
}
