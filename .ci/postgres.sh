# Sourced by .ci/run: start a throwaway PostgreSQL server on 127.0.0.1 for the storage tests and
# export CASEMGMT_TEST_POSTGRES_URL. The server stops and its files go when the CI shell exits
# (the EXIT trap is shared with mariadb.sh through cleanup.sh).
# Safe under `set -euo pipefail`: every variable is set before use, and a failure stops CI with
# the server's own message.

# shellcheck source=cleanup.sh
source "$(dirname "${BASH_SOURCE[0]}")/cleanup.sh"

casemgmt_pg_start() {
  local bindir port top
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -z "${bindir}" ] || [ ! -x "${bindir}/initdb" ]; then
    echo "postgres.sh: no PostgreSQL server under /usr/lib/postgresql/*/bin" >&2
    return 1
  fi
  top="$(mktemp -d /tmp/casemgmt-ci-pg.XXXXXX)"
  # The server refuses to run as root: run it as the postgres user in a directory it owns.
  local -a as_pg=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "${top}"
    as_pg=(runuser -u postgres --)
  fi
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  CASEMGMT_PG_STOP=("${as_pg[@]}" "${bindir}/pg_ctl" -D "${top}/data" -m immediate -w stop)
  CASEMGMT_PG_DIR="${top}"
  casemgmt_at_exit casemgmt_pg_stop
  "${as_pg[@]}" "${bindir}/initdb" -D "${top}/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >/dev/null
  if ! "${as_pg[@]}" "${bindir}/pg_ctl" -D "${top}/data" -l "${top}/server.log" -w -t 60 \
      -o "-h 127.0.0.1 -p ${port} -k ${top}" start >/dev/null; then
    cat "${top}/server.log" >&2 || true
    return 1
  fi
  export CASEMGMT_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:${port}/postgres"
  echo "postgres.sh: PostgreSQL $(basename "$(dirname "${bindir}")") on ${CASEMGMT_TEST_POSTGRES_URL}"
}

casemgmt_pg_stop() {
  "${CASEMGMT_PG_STOP[@]}" >/dev/null 2>&1 || true
  rm -rf "${CASEMGMT_PG_DIR}"
  CASEMGMT_PG_STOP=(true)
}

casemgmt_pg_start
