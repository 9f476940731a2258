#!/usr/bin/env bash
# The whole suite, with the real 5-minute storage outage (issue 12) run beside it.
# That test spends its time waiting for the outage to pass, so it runs in its own pytest
# process, database and Redis db at the same time as the rest instead of after it; the
# suite fails if either fails. Extra arguments go to the main run only.
set -uo pipefail
cd "$(dirname "$0")/.."

LONG_DB=test_long_faults
LONG_URL="postgresql+psycopg://postgres@127.0.0.1:5432/${LONG_DB}"
LONG_LOG=.pytest-long-faults.log
LONG_TEST="tests/faults/test_storage_outage.py::test_a_five_minute_outage_with_the_default_retry_settings_ends_with_none_failed"

if ! psql -h 127.0.0.1 -U postgres -d "$LONG_DB" -c 'select 1' -q >/dev/null 2>&1; then
  createdb -h 127.0.0.1 -U postgres "$LONG_DB"
fi

CONSENTGATE_LONG_FAULT_TESTS=1 \
CONSENTGATE_TEST_DATABASE_URL="$LONG_URL" \
CONSENTGATE_TEST_BROKER_URL=redis://127.0.0.1:6379/12 \
  .venv/bin/pytest -p no:cacheprovider -q "$LONG_TEST" >"$LONG_LOG" 2>&1 &
long_pid=$!
# Stop the background run too if this script is interrupted.
trap 'kill "$long_pid" 2>/dev/null' INT TERM

.venv/bin/pytest --deselect "$LONG_TEST" "$@"
main_rc=$?

echo "waiting for the 5-minute storage outage test (log: $LONG_LOG)"
wait "$long_pid"
long_rc=$?
tail -n 15 "$LONG_LOG"
if [ "$long_rc" -ne 0 ]; then
  echo "the 5-minute storage outage test failed (exit $long_rc); full log in $LONG_LOG" >&2
fi
[ "$main_rc" -eq 0 ] && [ "$long_rc" -eq 0 ]
