#!/usr/bin/env bash
# Week 4's pattern cache: the tests use the Redis on 127.0.0.1:6379 and start redis-server
# (Debian's package) for managed APIs. Installs and starts it when missing; a no-op otherwise.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
if ! command -v redis-server >/dev/null; then
  $SUDO apt-get install -y redis-server \
    || { $SUDO apt-get update && $SUDO apt-get install -y redis-server; }
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping
