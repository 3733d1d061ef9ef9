#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the HQ backend tests.
#
#   bash scripts/pg-cluster.sh start DIR   creates and starts a cluster in DIR on a free
#                                          port; writes DIR/conninfo (libpq key=value)
#   bash scripts/pg-cluster.sh stop DIR    stops it and removes DIR
#
# Uses Debian's postgresql binaries; as root it runs them as the postgres user
# (initdb refuses to run as root).
set -euo pipefail

cmd="${1:?start|stop}"
dir="${2:?directory}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
if [[ -z "$bin" ]]; then
  echo "pg-cluster: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
  exit 1
fi
as_pg=()
if ((EUID == 0)); then as_pg=(runuser -u postgres --); fi

case "$cmd" in
start)
  rm -rf "$dir"
  mkdir -p "$dir"
  ((EUID == 0)) && chown postgres: "$dir"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -A trust -U loyalty --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=50" start \
    >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  echo "host=127.0.0.1 port=$port user=loyalty dbname=postgres" >"$dir/conninfo"
  chmod 644 "$dir/conninfo"
  echo "pg-cluster: started on port $port ($dir)"
  ;;
stop)
  if [[ -d "$dir/data" ]]; then
    "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: pg-cluster.sh start|stop DIR" >&2
  exit 2
  ;;
esac
