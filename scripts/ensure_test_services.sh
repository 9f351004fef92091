#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis servers the tests use answer, and that the browser the
# Dagster UI test drives is installed.
#
# Uses BANDIT_TEST_POSTGRES_URL / BANDIT_TEST_REDIS_URL (defaults: local PostgreSQL on
# 5432 as user postgres, Redis on 6379). When a local server does not answer it is
# started if installed, and installed from Debian packages (apt-get) when missing.
# Headless Chromium (/usr/bin/chromium) is installed from Debian's package `chromium`
# when missing, and Java 17 for the Spark tests (pyspark) from `openjdk-17-jre-headless`
# when no Java 17 or newer is on PATH. Every action taken is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${BANDIT_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
REDIS_URL="${BANDIT_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
PY=.venv/bin/python

answers() {  # answers postgres|redis URL
  "$PY" - "$1" "$2" <<'PY'
import sys
kind, url = sys.argv[1], sys.argv[2]
try:
    if kind == "postgres":
        import psycopg
        psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3).close()
    else:
        import redis
        redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3).ping()
except Exception as exc:  # noqa: BLE001
    print(f"  ({kind} at this URL does not answer: {str(exc).splitlines()[0]})")
    sys.exit(1)
PY
}

is_local() { case "$1" in *@127.0.0.1*|*@localhost*|*://127.0.0.1*|*://localhost*) return 0;; *) return 1;; esac; }

apt_install() {
  if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    echo "error: $* missing and cannot be installed here (needs root and apt-get)" >&2
    exit 1
  fi
  echo "installing Debian packages: $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() {  # wait_for postgres|redis URL
  for _ in $(seq 1 30); do answers "$1" "$2" >/dev/null && return 0; sleep 1; done
  echo "error: $1 did not come up at $2" >&2
  exit 1
}

ensure_postgres() {
  if answers postgres "$PG_URL"; then echo "postgres: reachable"; return; fi
  is_local "$PG_URL" || { echo "error: PostgreSQL at BANDIT_TEST_POSTGRES_URL does not answer" >&2; exit 1; }
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
  fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  conf="/etc/postgresql/$version/main"
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
    echo "postgres: allowing trust auth for local TCP connections (test server)"
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
  fi
  echo "postgres: starting cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
  wait_for postgres "$PG_URL"
  echo "postgres: started"
}

ensure_redis() {
  if answers redis "$REDIS_URL"; then echo "redis: reachable"; return; fi
  is_local "$REDIS_URL" || { echo "error: Redis at BANDIT_TEST_REDIS_URL does not answer" >&2; exit 1; }
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  echo "redis: starting redis-server on 127.0.0.1:6379 (no persistence)"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/bandit-test-redis.log
  wait_for redis "$REDIS_URL"
  echo "redis: started"
}

ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then echo "chromium: installed"; return; fi
  apt_install chromium
  echo "chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo '(version unknown)')"
}

ensure_postgres_binaries() {  # the fault tests start a PostgreSQL server of their own
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then echo "postgres binaries: installed"; return; fi
  apt_install postgresql
  echo "postgres binaries: installed"
}

ensure_prometheus() {  # promtool for the alerting rules, a Prometheus for the scrape test
  if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    echo "prometheus: installed"; return
  fi
  apt_install prometheus
  echo "prometheus: installed $(prometheus --version 2>&1 | head -n 1)"
}

ensure_java() {  # pyspark starts a JVM: Java 17 or newer
  major="$({ java -version 2>&1 || true; } | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)"
  if [ -n "$major" ] && [ "$major" -ge 17 ]; then echo "java: $major"; return; fi
  apt_install openjdk-17-jre-headless
  echo "java: installed $(java -version 2>&1 | head -n 1)"
}

ensure_postgres
ensure_postgres_binaries
ensure_prometheus
ensure_redis
ensure_chromium
ensure_java
