#!/usr/bin/env bash
# A three-node NATS JetStream cluster on loopback ports (14221-14223 for
# clients, 16221-16223 for routes, 18221-18223 for monitoring), for the NATS
# store's tests and benchmarks. State (store directories, logs, pid files)
# lives in DIR.
#
#   cluster.sh start DIR          start every node that is not running; wait for a meta leader
#   cluster.sh stop DIR           stop every node (SIGKILL after 10 s)
#   cluster.sh kill DIR N         SIGKILL node N (1-3)
#   cluster.sh start-node DIR N   start node N again, on its store
#   cluster.sh pause DIR N        SIGSTOP node N (partitioned: alive, silent)
#   cluster.sh resume DIR N       SIGCONT node N
#   cluster.sh wait DIR           wait until every running node reports a meta leader
#
# NATS_SERVER names the binary (default: nats-server on the PATH).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?usage: cluster.sh start|stop|kill|start-node|pause|resume|wait DIR [N]}
dir=${2:?usage: cluster.sh $cmd DIR [N]}
bin=${NATS_SERVER:-nats-server}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

pid_of() { cat "$dir/n$1.pid" 2>/dev/null || true; }
running() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

start_node() {
    local n=$1
    running "$n" && return 0
    mkdir -p "$dir/n$n"
    setsid "$bin" -c "$here/n$n.conf" -sd "$dir/n$n" -P "$dir/n$n.pid" -l "$dir/n$n.log" \
        </dev/null >>"$dir/n$n.out" 2>&1 &
    for _ in $(seq 1 100); do
        running "$n" && return 0
        sleep 0.1
    done
    echo "nats-cluster: node $n did not start; its log:" >&2
    tail -n 20 "$dir/n$n.log" >&2 || true
    exit 1
}

# Every running node answers its monitoring port and knows a meta leader.
wait_leader() {
    for _ in $(seq 1 300); do
        local ok=1
        for n in 1 2 3; do
            running "$n" || continue
            curl -fs "http://127.0.0.1:1822$n/jsz" 2>/dev/null | grep -q '"leader"' || ok=0
        done
        [ "$ok" = 1 ] && return 0
        sleep 0.1
    done
    echo "nats-cluster: no JetStream meta leader within 30 s" >&2
    exit 1
}

case "$cmd" in
    start)
        command -v "$bin" >/dev/null || { echo "nats-cluster: $bin not found" >&2; exit 1; }
        for n in 1 2 3; do start_node "$n"; done
        wait_leader
        ;;
    stop)
        for n in 1 2 3; do
            p=$(pid_of "$n")
            [ -n "$p" ] || continue
            kill -CONT "$p" 2>/dev/null || true
            kill -TERM "$p" 2>/dev/null || true
        done
        for n in 1 2 3; do
            for _ in $(seq 1 100); do running "$n" || break; sleep 0.1; done
            running "$n" && kill -KILL "$(pid_of "$n")" 2>/dev/null || true
            rm -f "$dir/n$n.pid"
        done
        ;;
    kill) n=${3:?node}; running "$n" && kill -KILL "$(pid_of "$n")"; for _ in $(seq 1 50); do running "$n" || break; sleep 0.1; done ;;
    start-node) start_node "${3:?node}" ;;
    pause) kill -STOP "$(pid_of "${3:?node}")" ;;
    resume) kill -CONT "$(pid_of "${3:?node}")" ;;
    wait) wait_leader ;;
    *) echo "nats-cluster: unknown command $cmd" >&2; exit 2 ;;
esac
