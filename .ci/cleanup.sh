# Sourced by the other .ci scripts: one EXIT trap that runs every registered cleanup, newest first,
# so that each server a script starts is stopped however CI ends (success, failure, Ctrl-C, TERM).

if [ -z "${CASEMGMT_CLEANUP_SET:-}" ]; then
  CASEMGMT_CLEANUP_SET=1
  CASEMGMT_CLEANUP=()

  casemgmt_cleanup() {
    local i
    for ((i = ${#CASEMGMT_CLEANUP[@]} - 1; i >= 0; i--)); do
      "${CASEMGMT_CLEANUP[i]}" || true
    done
    CASEMGMT_CLEANUP=()
  }

  # casemgmt_at_exit FUNCTION: run FUNCTION when the shell exits.
  casemgmt_at_exit() {
    CASEMGMT_CLEANUP+=("$1")
  }

  trap 'casemgmt_cleanup' EXIT
  # Without these, a signal would end the shell without running the EXIT trap.
  trap 'exit 130' INT
  trap 'exit 143' TERM
fi
