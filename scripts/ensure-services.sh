#!/usr/bin/env bash
# Start the local PostgreSQL and Redis the test suite uses, if they are down.
# Tests talk to real servers: PostgreSQL 127.0.0.1:5432 (trust auth, database
# `test`) and Redis 127.0.0.1:6379.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
fi
if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' -q >/dev/null 2>&1; then
  createdb -h 127.0.0.1 -U postgres test 2>/dev/null || true
fi

if ! redis_up; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
  redis_up || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }
fi
echo "PostgreSQL and Redis are up"
