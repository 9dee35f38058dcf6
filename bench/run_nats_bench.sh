#!/usr/bin/env bash
# Benchmarks roj's swarm on NATS JetStream (bench/bench_nats.c) against a
# nats-server of its own.
#
# 1. Builds roj (scripts/build.sh) and the bench_nats target.
# 2. Starts nats-server with JetStream on 127.0.0.1, on a free port, with
#    its store in a new temporary folder, and waits until it is ready.
# 3. Runs bench_nats (raw cycle, dispatch with a no-op skill, throughput
#    with 1 and 2 `roj agent` processes against the local mode) and
#    prints its markdown tables, with the date, the machine and the load
#    average before and after.
# 4. Stops the server by its PID and removes the temporary folder.
#
# Environment (all optional):
#   ROJ_BUILD_DIR          roj build folder (default: build)
#   ROJ_NATS_SERVER        nats-server binary (default: on PATH, then
#                          /usr/sbin/nats-server)
#   ROJ_NATS_BENCH_RUNS    runs per configuration (default 5)
#   ROJ_NATS_BENCH_N       raw cycle messages per run (default 2000)
#   ROJ_NATS_BENCH_JOBS    no-op jobs per dispatch run (default 2000)
#   ROJ_NATS_BENCH_MODEL_JOBS  jobs per throughput run (default 400)
#   ROJ_NATS_BENCH_TESTS   raw, dispatch, throughput or all (default all)
set -euo pipefail

if [[ $# -gt 0 ]]; then
    if [[ $1 == -h || $1 == --help ]]; then
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
    fi
    echo "run_nats_bench.sh: unexpected argument '$1'; it takes none (see" \
         "--help for the environment variables)" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ROJ_BUILD_DIR:-$root/build}
runs=${ROJ_NATS_BENCH_RUNS:-5}
n=${ROJ_NATS_BENCH_N:-2000}
jobs=${ROJ_NATS_BENCH_JOBS:-2000}
model_jobs=${ROJ_NATS_BENCH_MODEL_JOBS:-400}
tests=${ROJ_NATS_BENCH_TESTS:-all}

server=${ROJ_NATS_SERVER:-}
if [[ -z $server ]]; then
    server=$(command -v nats-server || true)
    [[ -z $server && -x /usr/sbin/nats-server ]] && server=/usr/sbin/nats-server
fi
if [[ -z $server || ! -x $server ]]; then
    echo "run_nats_bench.sh: nats-server not found (install the Debian" \
         "package nats-server or set ROJ_NATS_SERVER)" >&2
    exit 2
fi

ROJ_BUILD_DIR=$build "$root/scripts/build.sh" >/dev/null
cmake --build "$build" --target bench_nats -j2 >/dev/null

# A port nothing listens on: a connection to it is refused.
free_port() {
    local port
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "run_nats_bench.sh: no free port found" >&2
    return 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/roj-nats-bench-XXXXXX")
pid=
cleanup() {
    if [[ -n $pid ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(free_port)
"$server" -js -a 127.0.0.1 -p "$port" -sd "$work/store" \
    >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    grep -q "Server is ready" "$work/server.log" && break
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "run_nats_bench.sh: nats-server exited:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if ! grep -q "Server is ready" "$work/server.log"; then
    echo "run_nats_bench.sh: nats-server not ready after 10 s" >&2
    exit 1
fi

echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo |
    sed 's/.*: //'), $(uname -sr)"
echo "Server: $("$server" --version), client: nats.c $(pkg-config \
    --modversion libnats 2>/dev/null || echo '?')"
echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/bench_nats" "$tests" --nats "nats://127.0.0.1:$port" \
    --roj "$build/roj" --server-pid "$pid" --runs "$runs" --n "$n" \
    --jobs "$jobs" --model-jobs "$model_jobs" --dir "$work/files"
echo
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
