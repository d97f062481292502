//go:build js && wasm

// Command worker is the Stagepass relay built for Cloudflare Workers with
// github.com/syumai/workers: /rpc (sp_chainInfo, sp_forwarderNonce, sp_sendForward,
// sp_requestStatus through relay/rpcserver) and /healthz, with the outbox in the Outbox
// Durable Object and status pushes through the Fanout Durable Object (relay.mjs). A
// Workers isolate runs this program afresh for every request, so it keeps nothing in
// memory: each request builds the relay from the bindings and answers. The sender runs when
// the Outbox Durable Object's alarm calls /__pump, for as long as it holds unfinished
// requests, and on the cron trigger as a backstop.
//
// Bindings (wrangler.toml): RPC_URL, CHAIN_ID, FORWARDER, FACTORY, START_BLOCK (vars),
// RELAYER_KEY (secret: the hot wallet's hex private key), WEBHOOK_SECRET (secret: the card
// processor's webhook signing secret), OUTBOX and FANOUT (Durable
// Objects), INDEX (D1: the chain index, which the sender's passes and the cron trigger keep
// current; edge/index.go). With the bridge: CHILD_GATEWAY, MAIN_RPC, ROOT_GATEWAY,
// MAIN_START_BLOCK and DEPOSIT_CONFIRMATIONS (vars; edge/bridge.go: the withdrawal and
// deposit read calls, followed in D1).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall/js"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/syumai/workers"
	"github.com/syumai/workers/cloudflare"
	"github.com/syumai/workers/cloudflare/cron"

	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/relay/worker/edge"
)

// pumpFor is how long one sender run keeps going (the Outbox's alarm then sets the next).
const pumpFor = 20 * time.Second

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		relay, err := build(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		h, err := relay.Health(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(h)
	})
	mux.HandleFunc("/rpc", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "use POST with a JSON-RPC body", http.StatusMethodNotAllowed)
			return
		}
		relay, err := build(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		srv := rpcserver.New(rpcserver.Config{AllowedOrigins: origins(), RatePerSecond: -1, Logger: log})
		relay.Register(srv)
		srv.HTTPHandler().ServeHTTP(w, r)
	})
	// The sender: the Outbox's alarm calls this (relay.mjs keeps /__ paths from the outside)
	// whenever it holds unfinished requests, so one sender runs at a time.
	mux.HandleFunc("/__pump", func(w http.ResponseWriter, r *http.Request) {
		queued, err := pump(r.Context())
		if err != nil {
			log.Warn("sender", "err", err)
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int{"queued": queued})
	})
	// The index's follower alone: the Fanout's alarm calls this while sockets follow the
	// tickets or event topic.
	mux.HandleFunc("/__follow", func(w http.ResponseWriter, r *http.Request) {
		relay, err := build(r.Context())
		if err == nil {
			var next uint64
			if next, err = relay.Follow(r.Context()); err == nil {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]uint64{"next": next})
				return
			}
		}
		log.Warn("follower", "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	})
	// sp_subscribe to the tickets and event topics: the Fanout object asks here for the
	// params' check and the backlog after the subscriber's cursor (relay.mjs).
	mux.HandleFunc("/__subscribe", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Topic  string          `json:"topic"`
			Params json.RawMessage `json:"params"`
		}
		reply := map[string]any{}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			reply["error"] = rpcserver.InvalidParams("invalid params: %v", err)
		} else if relay, err := build(r.Context()); err != nil {
			reply["error"] = rpcserver.Errorf(rpcserver.CodeUnavailable, "%v", err)
		} else if feed, err := relay.Subscribe(r.Context(), body.Topic, body.Params); err != nil {
			var re *rpcserver.Error
			if !errors.As(err, &re) {
				log.Warn("subscribe", "err", err)
				re = rpcserver.Errorf(rpcserver.CodeInternalError, "internal error")
			}
			reply["error"] = re
		} else {
			reply["result"] = feed
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(reply)
	})
	// The card processor's webhooks (webhook.go).
	mux.HandleFunc("/webhooks/processor", processorWebhook(log))
	workers.ServeNonBlock(mux)
	// A backstop should an alarm ever be lost, and the index's follower for what nobody
	// relayed here. Errors are logged, not returned: syumai/workers' cron glue panics on
	// one, and the trigger then never finishes ("the Worker's code had hung").
	cron.ScheduleTaskNonBlock(func(ctx context.Context) error {
		if _, err := pump(ctx); err != nil {
			log.Warn("cron: sender and follower", "err", err)
		}
		// The bridge's follower, so that a read call's own pass stays short.
		if relay, err := build(ctx); err == nil && relay.HasBridge() {
			if _, err := relay.FollowBridge(ctx); err != nil {
				log.Warn("cron: bridge follower", "err", err)
			}
		}
		return nil
	})
	workers.Ready()
	select {
	case <-workers.Done():
	case <-cron.Done():
	}
}

// pump runs the sender for up to pumpFor and says how many requests are still unfinished.
func pump(ctx context.Context) (int, error) {
	relay, err := build(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, pumpFor)
	defer cancel()
	if err := relay.Pump(ctx, time.Now().Add(pumpFor), 2*time.Second); err != nil {
		return 0, err
	}
	return relay.Queued(ctx)
}

// origins is ALLOWED_ORIGINS, comma-separated ("*" in development).
func origins() []string {
	var out []string
	for _, o := range strings.Split(cloudflare.Getenv("ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// build assembles the relay from the request's bindings.
func build(ctx context.Context) (*edge.Relay, error) {
	env := func(name string) (string, error) {
		v := strings.TrimSpace(cloudflare.Getenv(name))
		if v == "" {
			return "", fmt.Errorf("worker: %s is not set (wrangler.toml [vars] or a secret)", name)
		}
		return v, nil
	}
	var vals [5]string
	for i, name := range []string{"RPC_URL", "CHAIN_ID", "FORWARDER", "FACTORY", "RELAYER_KEY"} {
		v, err := env(name)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	chainID, ok := new(big.Int).SetString(vals[1], 10)
	if !ok {
		return nil, fmt.Errorf("worker: CHAIN_ID %q is not a decimal number", vals[1])
	}
	for _, a := range vals[2:4] {
		if !common.IsHexAddress(a) {
			return nil, fmt.Errorf("worker: %q is not an address", a)
		}
	}
	key, err := crypto.HexToECDSA(strings.TrimPrefix(vals[4], "0x"))
	if err != nil {
		return nil, fmt.Errorf("worker: RELAYER_KEY: %w", err)
	}
	// js.Global() is a Proxy of globalThis here (syumai/workers' wasm_exec.js), and workerd
	// refuses fetch called on anything but the real one ("Illegal invocation").
	httpc := &http.Client{Transport: jsFetch{js.Global().Get("globalThis")}}
	rc, err := rpc.DialOptions(ctx, vals[0], rpc.WithHTTPClient(httpc))
	if err != nil {
		return nil, fmt.Errorf("worker: RPC_URL: %w", err)
	}
	outbox, err := stub("OUTBOX", "outbox")
	if err != nil {
		return nil, err
	}
	fanout, err := stub("FANOUT", "fanout")
	if err != nil {
		return nil, err
	}
	var gateway common.Address
	if v := strings.TrimSpace(cloudflare.Getenv("CHILD_GATEWAY")); v != "" {
		if !common.IsHexAddress(v) {
			return nil, fmt.Errorf("worker: CHILD_GATEWAY %q is not an address", v)
		}
		gateway = common.HexToAddress(v)
	}
	var startBlock uint64
	if v := strings.TrimSpace(cloudflare.Getenv("START_BLOCK")); v != "" {
		if startBlock, err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, fmt.Errorf("worker: START_BLOCK %q is not a block number", v)
		}
	}
	var maxFeeCap *big.Int // MAX_FEE_CAP: the most the hot wallet pays per gas, in wei (empty: no ceiling)
	if v := strings.TrimSpace(cloudflare.Getenv("MAX_FEE_CAP")); v != "" {
		if maxFeeCap, ok = new(big.Int).SetString(v, 10); !ok || maxFeeCap.Sign() <= 0 {
			return nil, fmt.Errorf("worker: MAX_FEE_CAP %q is not a positive number of wei", v)
		}
	}
	var stuckAfter time.Duration // STUCK_SECONDS: when an unmined transaction is re-priced
	if v := strings.TrimSpace(cloudflare.Getenv("STUCK_SECONDS")); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("worker: STUCK_SECONDS %q is not a positive number of seconds", v)
		}
		stuckAfter = time.Duration(n) * time.Second
	}
	var db edge.DB
	if v := cloudflare.GetBinding("INDEX"); v.Type() == js.TypeObject {
		db = d1{v}
	}
	br, err := mainChain(ctx, httpc, gateway)
	if err != nil {
		return nil, err
	}
	pub := &edge.HTTPPublisher{Client: &http.Client{Transport: fanout}, Base: "https://fanout"}
	return edge.New(edge.Config{
		Chain: ethclient.NewClient(rc), ChainID: chainID,
		Forwarder: common.HexToAddress(vals[2]), Factory: common.HexToAddress(vals[3]), Gateway: gateway, Key: key,
		Store:  &edge.HTTPStore{Client: &http.Client{Transport: outbox}, Base: "https://outbox"},
		Fanout: pub, Activities: pub, DB: db, StartBlock: startBlock, Bridge: br,
		MaxFeeCap: maxFeeCap, StuckAfter: stuckAfter,
	})
}

// mainChain is the bridge's main-chain side from MAIN_RPC, ROOT_GATEWAY, MAIN_START_BLOCK
// (RootGateway's deployment block: where its logs are read from) and DEPOSIT_CONFIRMATIONS
// (the validators' M, which sp_deposits reports; default 6), or nil
// when MAIN_RPC is not set. CheckpointManager is read from RootGateway, the bridged
// stablecoin and the exit delay from ChildGateway, as the native relay does.
func mainChain(ctx context.Context, httpc *http.Client, child common.Address) (*edge.Bridge, error) {
	url := strings.TrimSpace(cloudflare.Getenv("MAIN_RPC"))
	root := strings.TrimSpace(cloudflare.Getenv("ROOT_GATEWAY"))
	if url == "" {
		if root != "" {
			return nil, errors.New("worker: ROOT_GATEWAY is set but MAIN_RPC is not (the main chain's JSON-RPC endpoint)")
		}
		return nil, nil
	}
	if child == (common.Address{}) || !common.IsHexAddress(root) {
		return nil, fmt.Errorf("worker: MAIN_RPC needs CHILD_GATEWAY and ROOT_GATEWAY addresses (ROOT_GATEWAY %q)", root)
	}
	var start uint64
	if v := strings.TrimSpace(cloudflare.Getenv("MAIN_START_BLOCK")); v != "" {
		var err error
		if start, err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, fmt.Errorf("worker: MAIN_START_BLOCK %q is not a block number", v)
		}
	}
	var confirmations uint64
	if v := strings.TrimSpace(cloudflare.Getenv("DEPOSIT_CONFIRMATIONS")); v != "" {
		var err error
		if confirmations, err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, fmt.Errorf("worker: DEPOSIT_CONFIRMATIONS %q is not a number of blocks", v)
		}
	}
	rc, err := rpc.DialOptions(ctx, url, rpc.WithHTTPClient(httpc))
	if err != nil {
		return nil, fmt.Errorf("worker: MAIN_RPC: %w", err)
	}
	return &edge.Bridge{Main: ethclient.NewClient(rc), Root: common.HexToAddress(root), MainStart: start, Confirmations: confirmations}, nil
}

// stub is the Durable Object of binding, the one instance called name.
func stub(binding, name string) (http.RoundTripper, error) {
	ns := cloudflare.GetBinding(binding)
	if ns.Type() != js.TypeObject {
		return nil, fmt.Errorf("worker: no Durable Object binding %s (wrangler.toml)", binding)
	}
	return jsFetch{ns.Call("get", ns.Call("idFromName", name))}, nil
}
