# Sourced by .ci/run: start a throwaway MariaDB server on 127.0.0.1 for the storage tests and export
# CASEMGMT_TEST_MARIADB_URL (mysql+pymysql://casemgmt:PASSWORD@127.0.0.1:PORT/casemgmt_test). The
# server has its own data directory, socket and pid file in a temporary directory; it stops and its
# files go when the CI shell exits (the EXIT trap is shared with postgres.sh through cleanup.sh).
# Safe under `set -euo pipefail`: a failure stops CI with the server's own log.

# shellcheck source=cleanup.sh
source "$(dirname "${BASH_SOURCE[0]}")/cleanup.sh"

casemgmt_mariadb_start() {
  local server install client top port password i
  server="$(command -v mariadbd || true)"
  [ -n "${server}" ] || server=/usr/sbin/mariadbd
  install="$(command -v mariadb-install-db || true)"
  client="$(command -v mariadb || true)"
  if [ ! -x "${server}" ] || [ -z "${install}" ] || [ -z "${client}" ]; then
    echo "mariadb.sh: no MariaDB server (mariadbd, mariadb-install-db, mariadb): apt-get install mariadb-server" >&2
    return 1
  fi
  top="$(mktemp -d /tmp/casemgmt-ci-mariadb.XXXXXX)"
  CASEMGMT_MARIADB_DIR="${top}"
  CASEMGMT_MARIADB_PID=""
  casemgmt_at_exit casemgmt_mariadb_stop
  # The server refuses to run as root: as root, it runs as the mysql user in a directory it owns.
  local -a as_user=()
  if [ "$(id -u)" -eq 0 ]; then
    chown mysql "${top}"
    as_user=(--user=mysql)
  fi
  if ! "${install}" --no-defaults "${as_user[@]}" --datadir="${top}/data" --auth-root-authentication-method=normal \
      --skip-test-db --skip-name-resolve >"${top}/install.log" 2>&1; then
    cat "${top}/install.log" >&2 || true
    return 1
  fi
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "${server}" --no-defaults "${as_user[@]}" --datadir="${top}/data" --tmpdir="${top}" \
    --bind-address=127.0.0.1 --port="${port}" --socket="${top}/mariadb.sock" --pid-file="${top}/mariadb.pid" \
    --log-error="${top}/error.log" --skip-name-resolve --skip-log-bin \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=64M --max-connections=100 \
    >/dev/null 2>&1 &
  CASEMGMT_MARIADB_PID=$!
  for ((i = 0; i < 120; i++)); do
    if "${client}" --no-defaults --protocol=socket --socket="${top}/mariadb.sock" -u root -e 'SELECT 1' \
        >/dev/null 2>&1; then
      break
    fi
    if ! kill -0 "${CASEMGMT_MARIADB_PID}" 2>/dev/null; then
      i=120
      break
    fi
    sleep 0.5
  done
  if [ "${i}" -ge 120 ]; then
    echo "mariadb.sh: the server did not start" >&2
    cat "${top}/error.log" >&2 || true
    return 1
  fi
  password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  "${client}" --no-defaults --protocol=socket --socket="${top}/mariadb.sock" -u root <<SQL
CREATE DATABASE casemgmt_test CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER 'casemgmt'@'127.0.0.1' IDENTIFIED BY '${password}';
-- Every privilege: the tests create and drop a database per test.
GRANT ALL PRIVILEGES ON *.* TO 'casemgmt'@'127.0.0.1';
SQL
  export CASEMGMT_TEST_MARIADB_URL="mysql+pymysql://casemgmt:${password}@127.0.0.1:${port}/casemgmt_test"
  echo "mariadb.sh: MariaDB $("${server}" --version | awk '{print $3}') on mysql+pymysql://casemgmt:***@127.0.0.1:${port}/casemgmt_test"
}

casemgmt_mariadb_stop() {
  local i
  if [ -n "${CASEMGMT_MARIADB_PID:-}" ] && kill -0 "${CASEMGMT_MARIADB_PID}" 2>/dev/null; then
    kill -TERM "${CASEMGMT_MARIADB_PID}" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
      kill -0 "${CASEMGMT_MARIADB_PID}" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL "${CASEMGMT_MARIADB_PID}" 2>/dev/null || true
    wait "${CASEMGMT_MARIADB_PID}" 2>/dev/null || true
  fi
  CASEMGMT_MARIADB_PID=""
  if [ -n "${CASEMGMT_MARIADB_DIR:-}" ]; then
    rm -rf "${CASEMGMT_MARIADB_DIR}"
  fi
}

casemgmt_mariadb_start
