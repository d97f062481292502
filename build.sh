#!/usr/bin/env bash
# Stagepass build entry point.
#   ./build.sh          build everything into ./bin
#   ./build.sh run      build, then start `stagepass dev` at http://127.0.0.1:8080 (extra args go to it)
#   ./build.sh test     install what the tests need (npm packages, ...) and run every test
#   ./build.sh gas      print the contracts' gas report
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
export PATH="$(go env GOROOT)/bin:$(go env GOPATH)/bin:$PATH"

log() { printf '\n== %s\n' "$*" >&2; }

# npm packages for the contracts (solc, OpenZeppelin, Solady), installed from the lockfile
# and reinstalled only when the lockfile changes.
npm_deps() {
  local dir=$ROOT/contracts stamp=$ROOT/contracts/node_modules/.lock-stamp
  if [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then return; fi
  log "npm ci (contracts)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$dir/package-lock.json" "$stamp"
}

# wrangler (npm, 3.114.x: the last major that runs on Node 20) for the Workers build of the
# relay, installed from relay/worker's lockfile and reinstalled only when it changes.
worker_deps() {
  local dir=$ROOT/relay/worker stamp=$ROOT/relay/worker/node_modules/.lock-stamp
  if ! { [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; }; then
    log "npm ci (relay/worker: wrangler)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
  export STAGEPASS_WRANGLER=$dir/node_modules/.bin/wrangler WRANGLER_SEND_METRICS=false
}

# The relay's Cloudflare Workers build (relay/worker/build/, not committed): syumai/workers'
# JavaScript glue and the Go worker compiled with GOOS=js GOARCH=wasm.
worker_build() {
  log "relay/worker (GOOS=js GOARCH=wasm)"
  (cd "$ROOT/relay/worker" &&
    go run github.com/syumai/workers/cmd/workers-assets-gen -mode=go -o build &&
    GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o build/app.wasm .)
}

# geth for the integration tests against a real node, built from source at the go.mod
# version of go-ethereum (3-4 minutes the first time; cached in $GOPATH/bin after).
geth_dep() {
  local version bin
  version=$(go list -m -f '{{.Version}}' github.com/ethereum/go-ethereum)
  bin="$(go env GOPATH)/bin/geth"
  # Read the whole output first: with pipefail, grep -q closing the pipe early could make
  # a good geth look missing.
  local have
  have=$("$bin" version 2>/dev/null || true)
  if ! grep -q "^Version: ${version#v}" <<<"$have"; then
    log "go install geth@$version"
    go install "github.com/ethereum/go-ethereum/cmd/geth@$version"
  fi
  export STAGEPASS_GETH=$bin
}

# stripe-mock, the Stripe API simulator the Stripe adapter's tests run against.
stripe_mock_dep() {
  local bin version=v0.203.0
  bin="$(go env GOPATH)/bin/stripe-mock"
  if [ ! -x "$bin" ] || [ "$(cat "$bin.version" 2>/dev/null)" != "$version" ]; then
    log "go install stripe-mock@$version"
    go install "github.com/stripe/stripe-mock@$version"
    echo "$version" > "$bin.version"
  fi
  export STAGEPASS_STRIPE_MOCK=$bin
}

# btcd and btcctl for the proof-of-work anchor's tests (relay/anchor: btcd on simnet),
# built from source at v0.26.2 and cached in $GOPATH/bin.
btcd_dep() {
  local version=v0.26.2 gobin
  gobin="$(go env GOPATH)/bin"
  if [ ! -x "$gobin/btcd" ] || [ ! -x "$gobin/btcctl" ] || [ "$(cat "$gobin/btcd.version" 2>/dev/null)" != "$version" ]; then
    log "go install btcd@$version"
    go install "github.com/btcsuite/btcd@$version" "github.com/btcsuite/btcd/cmd/btcctl@$version"
    echo "$version" > "$gobin/btcd.version"
  fi
  export STAGEPASS_BTCD=$gobin/btcd STAGEPASS_BTCCTL=$gobin/btcctl
}

# Chromium for the site's browser tests (site/browsertest, chromedp), from Debian.
chromium_dep() {
  if [ -x /usr/bin/chromium ]; then return; fi
  log "apt-get install chromium"
  # A failed install is not fatal here: the browser tests then fail under CI=true saying why.
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; then
    echo "chromium could not be installed; the browser tests will say so" >&2
  fi
}

# The wallet the site serves (site/static/wallet/, not committed): wallet.wasm built with
# GOOS=js GOARCH=wasm -trimpath -ldflags="-s -w", wasm_exec.js of the same Go release and
# the worker glue; go:embed puts them into bin/stagepass.
site_wallet() {
  log "go generate ./site (wallet.wasm)"
  go generate ./site
}

build() {
  site_wallet
  log "go build"
  mkdir -p bin
  go build ./...
  go build -o bin/stagepass ./relay/cmd/stagepass
  go build -o bin/gasreport ./contracts/cmd/gasreport
  worker_build
  echo "built: bin/stagepass bin/gasreport relay/worker/build/app.wasm" >&2
}

test_all() {
  npm_deps
  geth_dep
  stripe_mock_dep
  btcd_dep
  chromium_dep
  worker_deps
  site_wallet
  worker_build
  log "gofmt"
  local unformatted
  unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './contracts/node_modules/*'))
  if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
  log "go vet"
  go vet ./...
  GOOS=js GOARCH=wasm go vet ./relay/worker/...
  log "go test (native)"
  go test -count=1 ./...
  if compgen -G "wasm/cmd/*/*_test.go" >/dev/null; then
    log "go test (js/wasm under Node)"
    PATH="$(go env GOROOT)/lib/wasm:$PATH" GOOS=js GOARCH=wasm go test -count=1 ./wasm/cmd/...
  fi
  log "gas budgets"
  go run ./contracts/cmd/gasreport -check
}

case "${1:-build}" in
  build) build ;;
  run)
    build
    log "stagepass dev"
    exec ./bin/stagepass dev "${@:2}"
    ;;
  test) test_all ;;
  gas) go run ./contracts/cmd/gasreport ;;
  *) echo "usage: $0 [build|run|test|gas]" >&2; exit 2 ;;
esac
