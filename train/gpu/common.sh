# Sourced by the GPU training scripts.
#
# timed_train SECONDS LOG COMMAND...: run a training command for at most SECONDS (then SIGTERM),
# its output without progress-bar lines shown and written to LOG. A run stopped by the time
# limit (status 124) has left its checkpoints and counts as done; any other failure exits.
timed_train() {
  local seconds=$1 log=$2 status
  shift 2
  set +e
  timeout --signal=TERM "$seconds" "$@" 2>&1 \
    | tr '\r' '\n' | grep --line-buffered -v "batch/s\]\|s/batch\]" | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ] && [ "$status" -ne 124 ]; then
    echo "training failed with status $status (log: $log)" >&2
    exit "$status"
  fi
}
