#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite, run as the unprivileged `postgres` user.
#   scripts/pg_cluster.sh start DIR PORT   -> installs PostgreSQL if missing, starts it, prints its URL
#   scripts/pg_cluster.sh stop DIR
set -euo pipefail
action=$1 dir=$2 port=${3:-55432}

bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}

case "$action" in
  start)
    if [ -z "$(bin_dir)" ] || [ ! -x "$(bin_dir)/initdb" ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    BIN=$(bin_dir)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_postgres "$BIN/initdb -D '$dir/data' -A trust -U postgres --no-instructions >'$dir/initdb.log'"
    fi
    as_postgres "$BIN/pg_ctl -D '$dir/data' -l '$dir/server.log' -w -t 60 \
      -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start >/dev/null"
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    BIN=$(bin_dir)
    as_postgres "$BIN/pg_ctl -D '$dir/data' -m fast -w -t 60 stop >/dev/null" || true
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
