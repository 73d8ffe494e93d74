#!/usr/bin/env bash
# `make dev`: builds, applies migrations/ to local D1, starts `wrangler dev` on
# 127.0.0.1:$PORT with state in $STATE_DIR, creates a demo account and prints
# its login. Foreground; Ctrl-C or SIGTERM stops wrangler and all its children.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

PORT="${PORT:-8787}"
STATE_DIR="${STATE_DIR:-.wrangler/state}"
BASE="http://127.0.0.1:$PORT"

bash scripts/build.sh
wrangler d1 migrations apply DB --local --persist-to "$STATE_DIR" </dev/null >/dev/null

# Every configuration variable set in the environment is passed to the three
# Workers: --var reaches the API, the engine's and the account Worker's
# configs are written with them.
vars=()
worker_vars=()
for v in RATE_LIMIT_PER_MINUTE DAILY_QUOTA SESSION_RATE_LIMIT_PER_MINUTE RATE_LIMIT_WINDOW_SECONDS \
         MAX_UPLOAD_BYTES WEBHOOK_ALLOW_LOOPBACK WEBHOOK_RETRY_DELAYS LEAK_REPORT_PUBLIC_KEYS \
         BENCH_ROUTES LOGIN_MAX_FAILURES LOGIN_WINDOW_SECONDS USAGE_FLUSH_SECONDS EXPIRY_NOTICE_SECONDS \
         MEDIA_ORPHAN_SECONDS WEBHOOK_SECRET_GRACE_SECONDS WEBHOOK_SECRET_KEY \
         SIGNUP_MAX_PER_ADDRESS SIGNUP_WINDOW_SECONDS CREDENTIAL_MISS_MAX CREDENTIAL_MISS_WINDOW_SECONDS \
         WEBHOOK_HISTORY_PER_ENDPOINT; do
  if [ -n "${!v+x}" ]; then vars+=(--var "$v:${!v}"); worker_vars+=("$v=${!v}"); fi
done
mkdir -p "$STATE_DIR"
python3 scripts/worker_config.py "$STATE_DIR/wrangler.engine.json" wrangler.engine.toml "${worker_vars[@]}"
python3 scripts/worker_config.py "$STATE_DIR/wrangler.account.json" wrangler.account.toml "${worker_vars[@]}"

# --test-scheduled: `curl $BASE/__scheduled` runs the cron once (it never fires locally).
setsid wrangler dev -c wrangler.toml -c "$STATE_DIR/wrangler.engine.json" -c "$STATE_DIR/wrangler.account.json" --ip 127.0.0.1 --port "$PORT" --persist-to "$STATE_DIR" --test-scheduled "${vars[@]}" &
pgid=$!
stop() { trap - INT TERM EXIT; kill -TERM -- "-$pgid" 2>/dev/null || true; wait "$pgid" 2>/dev/null || true; }
trap 'stop; exit 130' INT TERM
trap stop EXIT

for _ in $(seq 1 120); do
  curl -fsS "$BASE/health" >/dev/null 2>&1 && break
  kill -0 "$pgid" 2>/dev/null || { echo "dev: wrangler exited" >&2; exit 1; }
  sleep 1
done

DEMO_USER="${DEMO_USER:-demo}"
DEMO_PASSWORD="${DEMO_PASSWORD:-demo-password-123}"
curl -sS -o /dev/null -X POST "$BASE/api/auth/signup" -H 'content-type: application/json' \
  -d "{\"username\":\"$DEMO_USER\",\"email\":\"$DEMO_USER@example.com\",\"password\":\"$DEMO_PASSWORD\",\"displayName\":\"Demo\"}" || true
token=$(curl -sS -X POST "$BASE/api/auth/login" -H 'content-type: application/json' \
  -d "{\"login\":\"$DEMO_USER\",\"password\":\"$DEMO_PASSWORD\"}" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
cat <<MSG

Jestha Edge is running on $BASE (state in $STATE_DIR)
  web app:        $BASE/
  demo login:     $DEMO_USER / $DEMO_PASSWORD
  session token:  $token
  try:            curl $BASE/api/auth/me -H "Authorization: Bearer $token"
  run the cron:   curl "$BASE/__scheduled?cron=*+*+*+*+*"
Press Ctrl-C to stop.
MSG
wait "$pgid"
