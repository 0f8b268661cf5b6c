#!/usr/bin/env bash
# Load test: the real `dogpipe run` against `dogpipe blast` on this machine.
#
#   scripts/loadtest.sh CORPUS TRANSPORT RATE SECONDS [CONTEXTS]
#     CORPUS     a corpus file (../shared/corpus/*.bin.zst)
#     TRANSPORT  udp | uds | uds-stream
#     RATE       bytes per second for blast (e.g. 100MiB)
#     SECONDS    how long to send
#     CONTEXTS   optional: blast --contexts N
#
# Reports messages accepted per second, dogpipe's CPU (utime+stime from /proc/<pid>/stat, as a
# share of one core), its peak RSS (VmHWM), datagrams the kernel dropped (SO_RXQ_OVFL, UDP) and
# what blast could not send. Not a test: it measures, it does not assert.
# The receive buffer is 8 MiB unless DD_DOGSTATSD_SO_RCVBUF is set in the environment.
set -euo pipefail
corpus=${1:?corpus}; transport=${2:?udp|uds|uds-stream}; rate=${3:?rate}; seconds=${4:?seconds}
contexts=${5:-0}
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin dogpipe
bin=target/release/dogpipe
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

DD_DOGSTATSD_PORT=__random__ DD_DOGSTATSD_SOCKET="$work/dsd.sock" \
DD_DOGSTATSD_STREAM_SOCKET="$work/dsd-stream.sock" DD_DOGSTATSD_SO_RCVBUF=${DD_DOGSTATSD_SO_RCVBUF:-8388608} \
DD_HEALTH_PORT=0 DOGPIPE_OUTPUT_DIR="$work/out" DD_DOGSTATSD_CONTEXT_LIMIT=2000000 \
  "$bin" run 2>"$work/stderr" &
pid=$!
for _ in $(seq 100); do grep -q "listening on udp" "$work/stderr" && break; sleep 0.1; done
port=$(grep -o 'udp 127.0.0.1:[0-9]*' "$work/stderr" | cut -d: -f2)
case "$transport" in
  udp) target=(--udp "127.0.0.1:$port") ;;
  uds) target=(--uds "$work/dsd.sock") ;;
  uds-stream) target=(--uds-stream "$work/dsd-stream.sock") ;;
  *) echo "transport: udp, uds or uds-stream" >&2; exit 2 ;;
esac
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
cpu0=$(cpu); t0=$(date +%s.%N)
"$bin" blast --corpus "$corpus" "${target[@]}" --rate "$rate" --duration "$seconds" \
  --contexts "$contexts" >"$work/blast.json" 2>/dev/null
sleep 1 # let the queue drain
cpu1=$(cpu); t1=$(date +%s.%N)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"; wait "$pid" || true
# How long each flush lasted and held the ingest thread from reading (making chunks; waiting
# on the serializer only for the shutdown flush and with shard threads); the last one listed
# is the shutdown flush, after blast has stopped.
took=$(grep -o "flush_ms=[0-9]*" "$work/stderr" | cut -d= -f2 | paste -sd, || true)
held=$(grep -o "held_ingest_ms=[0-9]*" "$work/stderr" | cut -d= -f2 | paste -sd, || true)
longest=$(grep -o "longest_hold_ms=[0-9]*" "$work/stderr" | cut -d= -f2 | paste -sd, || true)
summary=$(grep "packets=" "$work/stderr" | tail -1 || true)
field() { grep -o " $1=[0-9]*" <<<"$summary" | head -1 | cut -d= -f2; }
ok=$(field ok); bad=$(field bad)
python3 - "$work/blast.json" <<PY
import json, sys
b = json.load(open(sys.argv[1]))

print(json.dumps({
  "transport": "$transport", "rate": "$rate", "contexts": $contexts,
  "sent_messages": b["messages"], "sent_bytes_per_second": b["bytes_per_second"],
  "blast_errors": b["errors"],
  "accepted_messages": int("${ok:-0}"), "bad_messages": int("${bad:-0}"),
  "accepted_messages_per_second": round(int("${ok:-0}") / b["seconds"]),
  "cpu_share_of_one_core": round(($cpu1 - $cpu0) / $ticks / b["seconds"], 3),
  "peak_rss_mib": round($hwm / 1024, 1),
  "kernel_drops": int("$(field kernel_drops)" or 0),
  "truncated": int("$(field truncated)" or 0),
  "live_contexts": int("$(field contexts)" or 0),
  "flush_ms": [${took}],
  "flush_held_ingest_ms": [${held}],
  "flush_longest_hold_ms": [${longest}],
}))
PY
