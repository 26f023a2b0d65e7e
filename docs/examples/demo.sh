#!/usr/bin/env bash
# naq demo: `npm run demo` (the README's quick start) runs this.
#
# On a fresh Debian + Node 20 machine it:
#   1. installs nats-server with apt-get when it is missing (needed by `npm test` too),
#   2. runs `npm ci` when node_modules is missing, and `npm run build` when dist/ is
#      missing or older than src/,
#   3. picks a NATS server: $NAQ_URL / $NATS_URL if set; else the one on 127.0.0.1:4222 if
#      it answers with JetStream; else it starts a throwaway local nats-server on a free
#      port (stopped and its data removed on exit),
#   4. uses a namespace of its own (demo<pid>) so it never touches other data, and deletes
#      that namespace's streams and buckets at the end,
#   5. starts a worker with docs/examples/tasks.mjs, enqueues jobs from the shell, shows
#      their status and results, and stops the worker with SIGTERM.
#
# Exits 0 when everything worked, non-zero on any real failure.
#
# Environment:
#   NAQ_URL / NATS_URL      use this server (nothing is started)
#   NAQ_DEMO_FORCE_LOCAL=1  always start a local nats-server, even when NAQ_URL/NATS_URL is
#                           set or a server answers on 127.0.0.1:4222 (to try, or test, the
#                           "no server yet" path on a machine that has one)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

NS="demo$$"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/naq-demo.XXXXXX")"
SERVER_PID=""
WORKER_PID=""
CLEANED=0

# --- output helpers: section headers and commands go to stderr, data to stdout ----------
if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
  BOLD=$'\033[1m' DIM=$'\033[2m' RED=$'\033[31m' RESET=$'\033[0m'
else
  BOLD="" DIM="" RED="" RESET=""
fi
section() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$RESET" >&2; }
note() { printf '%s%s%s\n' "$DIM" "$*" "$RESET" >&2; }
die() {
  printf '%serror:%s %s\n' "$RED" "$RESET" "$*" >&2
  exit 1
}

naq() { node "$ROOT/bin/naq" "$@"; }
# Shows the command as a reader would type it, then runs it.
run() {
  printf '%s$ naq %s%s\n' "$DIM" "$*" "$RESET" >&2
  naq "$@"
}

# Deletes every stream (and bucket: KV_* streams) of the demo namespace.
delete_demo_streams() {
  local names name
  names="$(naq --timeout 5s stream list --names)" || return 1
  for name in $names; do
    naq --timeout 5s stream delete "$name" --force >/dev/null || return 1
  done
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "$WORKER_PID" ] && kill -0 "$WORKER_PID" 2>/dev/null; then
    kill -TERM "$WORKER_PID" 2>/dev/null
    # A second signal makes a worker stop at once.
    sleep 2
    kill -TERM "$WORKER_PID" 2>/dev/null
    wait "$WORKER_PID" 2>/dev/null
  fi
  # Interrupted before the final clean-up: delete the demo's streams on a shared server.
  if [ "$CLEANED" -eq 0 ] && [ -z "$SERVER_PID" ] && [ -n "${NAQ_URL:-}" ]; then
    delete_demo_streams >/dev/null 2>&1
  fi
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$TMP"
  if [ "$rc" -ne 0 ]; then
    printf '%sdemo failed (exit %s)%s\n' "$RED" "$rc" "$RESET" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. prerequisites ------------------------------------------------------------------
section "Checking prerequisites"
command -v node >/dev/null 2>&1 || die "node is not installed: naq needs Node.js 20 or newer"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  die "naq needs Node.js 20 or newer; this is node $(node --version)"

# Debian installs nats-server in /usr/sbin, which is not on a non-root PATH.
find_nats_server() {
  if ! command -v nats-server >/dev/null 2>&1 && [ -x /usr/sbin/nats-server ]; then
    export PATH="$PATH:/usr/sbin"
  fi
  command -v nats-server >/dev/null 2>&1
}
if ! find_nats_server; then
  note "nats-server is not installed: installing it from the OS packages (apt-get install nats-server)"
  if ! command -v apt-get >/dev/null 2>&1; then
    die "no apt-get here: install nats-server yourself (https://github.com/nats-io/nats-server/releases) and run this again"
  fi
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    # Ask for a password only when someone is there to type it.
    if [ -t 0 ]; then SUDO=(sudo); else SUDO=(sudo -n); fi
  else
    die "nats-server is missing and installing it needs root: run 'apt-get install nats-server' as root (no sudo here), then run this again"
  fi
  "${SUDO[@]}" apt-get update ||
    die "apt-get update failed: install nats-server yourself ('apt-get install nats-server' as root), then run this again"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server ||
    die "apt-get install nats-server failed: install it yourself, then run this again"
  find_nats_server || die "nats-server is still not on PATH after installing it"
fi
note "node $(node --version), $(nats-server --version)"

if [ ! -d node_modules ]; then
  section "Installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
if [ ! -f dist/cli/main.js ] ||
  [ -n "$(find src package.json tsconfig.json tsconfig.build.json -newer dist/cli/main.js -print -quit 2>/dev/null)" ]; then
  section "Building (npm run build)"
  npm run build
fi

# --- 2. which server --------------------------------------------------------------------
export NAQ_NAMESPACE="$NS"

# True when a NATS server with JetStream answers at $1. doctor exits 5 when it cannot
# connect, and 1 here because the demo's streams do not exist yet: read its JSON instead.
has_jetstream() {
  local json
  json="$(naq -s "$1" --timeout 2s doctor --json 2>/dev/null)" || [ $? -ne 5 ] || return 1
  printf '%s' "$json" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      try { process.exit(JSON.parse(s).jetstream.enabled ? 0 : 1); } catch { process.exit(1); }
    });'
}

port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_local_server() {
  local port i
  port="$(node -e 'const s = require("node:net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')"
  note "starting nats-server -js -a 127.0.0.1 -p $port -sd $TMP/jetstream (log: $TMP/nats-server.log)"
  nats-server -js -a 127.0.0.1 -p "$port" -sd "$TMP/jetstream" >"$TMP/nats-server.log" 2>&1 &
  SERVER_PID=$!
  export NAQ_URL="nats://127.0.0.1:$port"
  for i in $(seq 1 50); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$TMP/nats-server.log" >&2
      die "nats-server exited at start (its log is above)"
    fi
    if port_answers "$port" && has_jetstream "$NAQ_URL"; then return 0; fi
    sleep 0.2
  done
  die "nats-server did not become ready on port $port within 10s"
}

section "Choosing a NATS server"
if [ "${NAQ_DEMO_FORCE_LOCAL:-}" = "1" ]; then
  note "NAQ_DEMO_FORCE_LOCAL=1: not looking for a running server"
  unset NATS_URL
  start_local_server
elif [ -n "${NAQ_URL:-}" ] || [ -n "${NATS_URL:-}" ]; then
  export NAQ_URL="${NAQ_URL:-$NATS_URL}"
  note "using \$NAQ_URL/\$NATS_URL: $NAQ_URL"
elif port_answers 4222 && has_jetstream nats://127.0.0.1:4222; then
  export NAQ_URL="nats://127.0.0.1:4222"
  note "a NATS server with JetStream answers on 127.0.0.1:4222: using it"
else
  note "no NATS server with JetStream on 127.0.0.1:4222"
  start_local_server
fi
note "server $NAQ_URL, namespace $NS (every stream, subject and bucket starts with $NS)"

# --- 3. the demo ------------------------------------------------------------------------
section "Creating naq's streams and buckets"
run stream init

section "Checking the server (doctor: warnings are fine, errors exit 1)"
run doctor

section "Starting a worker in the background"
printf '%s$ naq worker start default --handlers docs/examples/tasks.mjs --concurrency 4 &%s\n' "$DIM" "$RESET" >&2
# Its log lines (one per job outcome) go to stderr, prefixed with "worker |".
# (node directly, not the naq() function: $! must be the worker's own pid for the SIGTERM.)
node "$ROOT/bin/naq" worker start default --handlers docs/examples/tasks.mjs --concurrency 4 \
  2> >(sed -u 's/^/  worker | /' >&2) &
WORKER_PID=$!
for i in $(seq 1 100); do
  kill -0 "$WORKER_PID" 2>/dev/null || die "the worker exited at start"
  [ -n "$(naq worker list --names)" ] && break
  [ "$i" -eq 100 ] && die "the worker did not register within 20s"
  sleep 0.2
done
run worker list

section "Enqueueing jobs from the shell (each prints its job id)"
id_add="$(run job enqueue add '{"a": 2, "b": 3}')"
echo "$id_add"
id_welcome="$(run job enqueue sendWelcome '{"user": 42}' --label source=demo)"
echo "$id_welcome"
# Fails on attempts 1 and 2, succeeds on 3: watch the worker retry it.
id_flaky="$(run job enqueue flaky '{"succeedOn": 3}' --retries 3 --backoff fixed:200ms)"
echo "$id_flaky"

section "Enqueueing and waiting for the result (--wait prints the result: 42)"
result="$(run job enqueue add '{"a": 40, "b": 2}' --wait --wait-timeout 30s)"
echo "$result"
[ "$result" = "42" ] || die "expected 42, got: $result"

section "Waiting for the other jobs"
for id in "$id_add" "$id_welcome" "$id_flaky"; do
  run job result "$id" --wait --wait-timeout 30s
done

section "Status and results"
run job status "$id_flaky"
run job result "$id_welcome" --json

section "A job that fails for good: --wait exits 6 (it is dead-lettered)"
set +e
run job enqueue flaky '{"succeedOn": 9}' --retries 1 --backoff fixed:100ms --wait --wait-timeout 30s
rc=$?
set -e
[ "$rc" -eq 6 ] || die "expected exit code 6 for a failed job, got $rc"
note "exit code $rc, as documented"

section "Cancelling a running job"
id_sleep="$(run job enqueue sleepFor '{"ms": 60000}')"
echo "$id_sleep"
sleep 0.5
run job cancel "$id_sleep" --reason "demo"
run job status "$id_sleep"

section "Workers and streams"
run worker list
run stream list

section "Stopping the worker (SIGTERM: running jobs finish, then it exits 0)"
printf '%s$ kill -TERM %s%s\n' "$DIM" "$WORKER_PID" "$RESET" >&2
kill -TERM "$WORKER_PID"
set +e
wait "$WORKER_PID"
rc=$?
set -e
WORKER_PID=""
[ "$rc" -eq 0 ] || die "the worker exited with $rc after SIGTERM (expected 0)"
note "worker exited 0"

section "Cleaning up: deleting the demo's streams and buckets"
note "naq stream list --names | xargs -n1 naq stream delete --force   (namespace $NS only)"
delete_demo_streams || die "could not delete the demo's streams"
CLEANED=1
left="$(naq stream list --names)"
[ -z "$left" ] || die "streams left over: $left"

section "Done"
note "Next: README.md (shell tutorial, TypeScript library), man -l man/naq.1, docs/wire-format.md"
