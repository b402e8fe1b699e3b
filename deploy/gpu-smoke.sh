#!/usr/bin/env bash
# GPU smoke test, run as is from a clone on a machine with an NVIDIA GPU (CUDA 12 + cuDNN 9):
#
#   bash deploy/gpu-smoke.sh                 # every available model on cuda:0, 64 jobs each
#   DEVICE=cpu bash deploy/gpu-smoke.sh      # the same on the CPU (no GPU needed)
#
# It installs the dependencies (with onnxruntime's CUDA provider: ONNXRUNTIME_NODE_INSTALL=cuda12,
# which needs the internet), builds, writes the test models, uses the Redis at REDIS_URL or
# starts a private redis-server, starts the compiled API and one worker pinned to DEVICE that
# loads every available model, sends JOBS copies of each model's example through the queue at
# once, prints jobs/s, mean batch size and mean session time per model, and stops what it
# started. Exit 0 only if every model loaded and answered every job.
#
# Settings (environment): DEVICE (cuda:0), JOBS (64), MODELS (all), REDIS_URL (a private
# redis-server when unset and nothing answers on 127.0.0.1:6379), SKIP_INSTALL=1 (keep
# node_modules as they are), PORT / METRICS_PORT (free ports when unset).
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE="${DEVICE:-cuda:0}"
JOBS="${JOBS:-64}"
MODELS="${MODELS:-all}"
PREFIX="gpu-smoke-$$"
WORK="$(mktemp -d)"
PIDS=()

log() { printf 'gpu-smoke: %s\n' "$*"; }

cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "${REDIS_URL:-}" ] && command -v redis-cli >/dev/null 2>&1; then
    redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX:*" 2>/dev/null | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  fi
  [ -n "${PRIVATE_REDIS_PID:-}" ] && { kill "$PRIVATE_REDIS_PID" 2>/dev/null || true; wait "$PRIVATE_REDIS_PID" 2>/dev/null || true; }
  if [ "$status" -ne 0 ]; then
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "---- $(basename "$f") (last 40 lines)"; tail -n 40 "$f"; }; done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

wait_http() { # url what seconds
  local deadline=$((SECONDS + $3))
  until node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$1"; do
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || { log "$2 exited during start-up"; return 1; }; done
    [ "$SECONDS" -lt "$deadline" ] || { log "$2 did not answer $1 within $3 s"; return 1; }
    sleep 1
  done
}

log "device $DEVICE, $JOBS jobs per model, models: $MODELS"
node --version
if [[ "$DEVICE" == cuda:* ]] && command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
fi

# 1. Install. The repository's .npmrc skips onnxruntime-node's download; cuda12 overrides it.
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  if [[ "$DEVICE" == cuda:* ]]; then export ONNXRUNTIME_NODE_INSTALL=cuda12; fi
  npm ci --no-audit --no-fund
fi
if [[ "$DEVICE" == cuda:* ]]; then
  ORT_BIN="$(echo node_modules/onnxruntime-node/bin/napi-v*/linux/x64)"
  if [ ! -f "$ORT_BIN/libonnxruntime_providers_cuda.so" ]; then
    log "the CUDA provider is not installed; running onnxruntime-node's install script"
    (cd node_modules/onnxruntime-node && ONNXRUNTIME_NODE_INSTALL=cuda12 node script/install.js)
  fi
  test -f "$ORT_BIN/libonnxruntime_providers_cuda.so" || { log "no $ORT_BIN/libonnxruntime_providers_cuda.so after install"; exit 1; }
fi

# 2. Build, and the test models that stand in for reference models without weights.
npm run build
npm run models:generate

# 3. Redis.
if [ -z "${REDIS_URL:-}" ]; then
  if node -e 'const n=require("net").connect(6379,"127.0.0.1");n.on("connect",()=>{n.write("PING\r\n")});n.on("data",d=>process.exit(String(d).startsWith("+PONG")?0:1));n.on("error",()=>process.exit(1));setTimeout(()=>process.exit(1),1500)'; then
    export REDIS_URL="redis://127.0.0.1:6379"
  else
    command -v redis-server >/dev/null 2>&1 || { log "no Redis on 127.0.0.1:6379 and redis-server is not installed (apt-get install redis-server), or set REDIS_URL"; exit 1; }
    REDIS_PORT="$(free_port)"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
    PRIVATE_REDIS_PID=$!
    export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
    sleep 0.5
    log "started a private redis-server on port $REDIS_PORT"
  fi
fi
log "Redis $REDIS_URL, key prefix $PREFIX"

# 4. The compiled API and one worker on DEVICE (it loads every available model, or exits).
PORT="${PORT:-$(free_port)}"
METRICS_PORT="${METRICS_PORT:-$(free_port)}"
export MODELHUB_PREFIX="$PREFIX" HOST=127.0.0.1 LOG_FORMAT=json LOG_LEVEL="${LOG_LEVEL:-info}"
PORT="$PORT" node --enable-source-maps dist/api/main.js >"$WORK/api.log" 2>&1 &
PIDS+=($!)
METRICS_PORT="$METRICS_PORT" node --enable-source-maps dist/worker/main.js --device "$DEVICE" --models "$MODELS" >"$WORK/worker.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PORT/readyz" "the API" 60
wait_http "http://127.0.0.1:$METRICS_PORT/healthz" "the worker" 600
LOADED="$(node -e 'fetch(process.argv[1]).then(r=>r.json()).then(b=>console.log(b.models.join(", ")))' "http://127.0.0.1:$METRICS_PORT/healthz")"
log "worker on $DEVICE loaded: $LOADED"
# The API learns of the worker from its first heartbeat.
sleep 1

# 5. A batch per model through the queue.
node --enable-source-maps dist/deploy/local/throughput.js --url "http://127.0.0.1:$PORT" --jobs "$JOBS" --device "$DEVICE"
