#!/usr/bin/env bash
# Provision the services the FitTracker gateway test suite talks to, on Debian 12 (bookworm), as root.
#
#   * PostgreSQL 15 with the TimescaleDB extension (Apache edition), built from Debian trixie's
#     source package against bookworm's PostgreSQL 15 (docs/provisioning.md explains why).
#   * a Mosquitto broker owned by this project (its own config, port 1884, set_tcp_nodelay true),
#     started beside any system broker;
#   * dbus-daemon, for the private "system bus" that carries the simulated BlueZ.
#   * a PostgreSQL role fittrack/fittrack (superuser: the tests create and drop databases).
#
# Idempotent: a second run checks and returns in seconds. It never adds trixie to the system's
# apt sources (trixie's deb-src lives in its own apt config under $CACHE) and never upgrades the
# installed PostgreSQL server.
set -euo pipefail

CACHE=${FITTRACK_CACHE:-/var/cache/fittrack}
STATE=${FITTRACK_STATE:-/var/lib/fittrack}
TSDB_VERSION=${TSDB_VERSION:-2.19.3+dfsg-1+deb13u1}
MQTT_PORT=${FITTRACK_MQTT_PORT:-1884}
PG_VER=15
export DEBIAN_FRONTEND=noninteractive

log() { printf '\033[1;34m[provision]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[provision] error:\033[0m %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo $0)"
[ -r /etc/debian_version ] || die "this script targets Debian 12; see docs/provisioning.md for other systems"

apt_updated=0
apt_update_once() { [ $apt_updated = 1 ] || { log "apt-get update"; apt-get update -qq; apt_updated=1; }; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
ensure_pkgs() {
  local missing=()
  for p in "$@"; do have_pkg "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt_update_once
    log "installing ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- base packages
ensure_pkgs ca-certificates postgresql-$PG_VER postgresql-client-$PG_VER mosquitto mosquitto-clients \
            dbus-daemon dbus-bin python3 python3-venv python3-dev gcc

# ---------------------------------------------------------------- PostgreSQL cluster
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -qx "$PG_VER/main"; then
  log "creating PostgreSQL $PG_VER cluster 'main'"
  pg_createcluster "$PG_VER" main >/dev/null
fi
PGCONF=/etc/postgresql/$PG_VER/main
pg_running() { pg_lsclusters -h | awk -v v="$PG_VER" '$1==v && $2=="main" {print $4}' | grep -q online; }
pg_start() { pg_ctlcluster --skip-systemctl-redirect "$PG_VER" main start; }
pg_restart() { pg_ctlcluster --skip-systemctl-redirect "$PG_VER" main restart; }
pg_running || { log "starting PostgreSQL"; pg_start; }
psql_su() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

# ---------------------------------------------------------------- TimescaleDB (built once, cached)
PGLIB=$(runuser -u postgres -- /usr/lib/postgresql/$PG_VER/bin/pg_config --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/$PG_VER/lib)
if ! ls "$PGLIB"/timescaledb-*.so >/dev/null 2>&1 || [ ! -f /usr/share/postgresql/$PG_VER/extension/timescaledb.control ]; then
  BUILD=$CACHE/timescaledb-build
  STAMP=$BUILD/.built-$TSDB_VERSION
  if [ ! -f "$STAMP" ]; then
    log "building TimescaleDB $TSDB_VERSION from Debian trixie's source package (one-time, ~1-2 min)"
    server_ver=$(dpkg-query -W -f='${Version}' postgresql-$PG_VER)
    apt_update_once
    # Pin the headers to the running server so apt never upgrades the server; when the archive no
    # longer carries that version, take the current headers (another 15.x minor builds the same ABI)
    # without upgrading the server (--no-upgrade of postgresql-15 through apt-mark hold).
    apt-mark hold postgresql-$PG_VER >/dev/null
    if ! apt-get install -y -qq --no-install-recommends "postgresql-server-dev-$PG_VER=$server_ver" cmake build-essential dpkg-dev >/dev/null 2>&1; then
      log "postgresql-server-dev-$PG_VER=$server_ver not in the archive; using the current headers"
      apt-get install -y -qq --no-install-recommends "postgresql-server-dev-$PG_VER" cmake build-essential dpkg-dev >/dev/null
    fi
    apt-mark unhold postgresql-$PG_VER >/dev/null
    # trixie deb-src in a private apt configuration: the system's sources are never touched.
    APTDIR=$CACHE/apt-trixie
    mkdir -p "$APTDIR/lists/partial" "$APTDIR/archives/partial"
    cat >"$APTDIR/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-updates main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main
SRC
    APTOPT=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache::Archives=$APTDIR/archives"
            -o "APT::Sandbox::User=root")
    apt-get "${APTOPT[@]}" update -qq
    rm -rf "$BUILD"; mkdir -p "$BUILD"; cd "$BUILD"
    if ! apt-get "${APTOPT[@]}" source -qq --download-only "timescaledb=$TSDB_VERSION" >/dev/null 2>&1; then
      log "timescaledb=$TSDB_VERSION is gone from trixie; taking trixie's current timescaledb source"
      apt-get "${APTOPT[@]}" source -qq --download-only timescaledb >/dev/null
    fi
    dpkg-source -x --skip-patches ./timescaledb_*.dsc src >/dev/null 2>&1 || dpkg-source -x ./timescaledb_*.dsc src >/dev/null
    cd src
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPG_CONFIG=/usr/lib/postgresql/$PG_VER/bin/pg_config \
          -DAPACHE_ONLY=1 -DUSE_TELEMETRY=OFF -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF >/dev/null 2>&1
    make -C build -j"$(nproc)" >/dev/null 2>&1 || make -C build
    touch "$STAMP"
    cd /
  else
    log "TimescaleDB already built in $BUILD; reinstalling the cached build"
  fi
  make -C "$BUILD/src/build" install >/dev/null
fi

# preload the library; restart PostgreSQL only when the running server lacks it
cat >"$PGCONF/conf.d/fittrack-timescaledb.conf" <<CONF
# written by fittrack scripts/provision.sh
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_connections = 200
CONF
if ! grep -q "^include_dir" "$PGCONF/postgresql.conf"; then
  echo "include_dir = 'conf.d'" >>"$PGCONF/postgresql.conf"
fi
preload=$(psql_su -c "SHOW shared_preload_libraries")
maxconn=$(psql_su -c "SHOW max_connections")
if [[ "$preload" != *timescaledb* ]] || [ "$maxconn" -lt 200 ]; then
  log "restarting PostgreSQL to load timescaledb"
  pg_restart
fi

# role for the test suite and the tools (password auth over TCP works on any pg_hba default)
psql_su <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fittrack') THEN
    CREATE ROLE fittrack LOGIN SUPERUSER PASSWORD 'fittrack';
  END IF;
END \$\$;
SQL
psql_su -c "SELECT 1 FROM pg_database WHERE datname='fittrack'" | grep -q 1 || psql_su -c "CREATE DATABASE fittrack OWNER fittrack"
PGOPTIONS="-c client_min_messages=warning" psql_su -d fittrack -c "CREATE EXTENSION IF NOT EXISTS timescaledb"
ver=$(psql_su -d fittrack -c "SELECT extversion FROM pg_extension WHERE extname='timescaledb'")
[ -n "$ver" ] || die "TimescaleDB did not load; see /var/log/postgresql/postgresql-$PG_VER-main.log"
log "PostgreSQL $PG_VER with TimescaleDB $ver is up on 127.0.0.1:5432 (role fittrack)"

# ---------------------------------------------------------------- Mosquitto (project instance)
MQDIR=$STATE/mosquitto
mkdir -p "$MQDIR"; id mosquitto >/dev/null 2>&1 && chown mosquitto: "$MQDIR"
cat >"$MQDIR/mosquitto.conf" <<CONF
# written by fittrack scripts/provision.sh: the test broker (anonymous, loopback only)
per_listener_settings false
set_tcp_nodelay true
persistence false
max_inflight_messages 1000
max_queued_messages 100000
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
log_dest file $MQDIR/mosquitto.log
pid_file $MQDIR/mosquitto.pid
CONF
if ! port_open "$MQTT_PORT"; then
  log "starting Mosquitto on 127.0.0.1:$MQTT_PORT"
  mosquitto -d -c "$MQDIR/mosquitto.conf"
  for _ in $(seq 50); do port_open "$MQTT_PORT" && break; sleep 0.1; done
  port_open "$MQTT_PORT" || die "mosquitto did not start; see $MQDIR/mosquitto.log"
fi
log "Mosquitto is up on 127.0.0.1:$MQTT_PORT"

command -v dbus-daemon >/dev/null || die "dbus-daemon missing after install"
log "dbus-daemon: $(dbus-daemon --version | head -1)"
log "done"
