// Package server assembles the relay: the chain watcher and index, the JSON-RPC API over
// websockets and HTTP, forwarding of users' signed requests, metrics, and the static site.
package server

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stagepass/stagepass/relay/exits"
	"github.com/stagepass/stagepass/relay/forward"
	"github.com/stagepass/stagepass/relay/index"
	"github.com/stagepass/stagepass/relay/internal/loop"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/relay/payout"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/relay/validator"
	"github.com/stagepass/stagepass/relay/watcher"
	"github.com/stagepass/stagepass/site"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// ChainClient is what the relay needs of a chain connection. go-ethereum's ethclient and the
// simulated chain's client satisfy it.
type ChainClient interface {
	watcher.Client
	index.Caller
	forward.Client
	oracle.Sender
}

// Config configures a relay.
type Config struct {
	// Addr is where to listen, e.g. 127.0.0.1:8080.
	Addr string
	// Listener, if set, is used instead of listening on Addr (tests).
	Listener net.Listener
	// DataDir holds the relay's own state (the forwarding outbox).
	DataDir string
	// Origins may open websockets; empty allows only the relay's own origin.
	Origins []string

	Client     ChainClient
	ChainID    *big.Int
	Forwarder  common.Address
	Factory    common.Address
	USD        common.Address // the development stablecoin, if any
	StartBlock uint64
	Relayer    *ecdsa.PrivateKey

	// Payments, if set, is the embedded sandbox card processor, served under /sandbox/
	// (its Stripe-shaped API at /sandbox/v1/…, its checkout page at /sandbox/checkout/…)
	// with PaymentsKey as its API key.
	Payments    *payments.Sandbox
	PaymentsKey string

	// Cards, if set, turns on card purchases: sp_createPayment, the oracle report
	// aggregator (sp_submitReport) and the "payment" topic.
	Cards *CardConfig

	// Validators, if set, turns on the sidechain validators' aggregator (sp_submitReport
	// kinds "checkpoint" and "deposits"): this relay's chain is the sidechain.
	Validators *ValidatorConfig

	// MaxInFlight is how many of the relayer's transactions may be unmined at once (0:
	// forward's default, 64 — what a public node's mempool takes from one account).
	MaxInFlight int

	// RatePerSecond is the JSON-RPC rate limit per websocket connection and per remote IP
	// on /rpc (0: rpcserver's default, 20/s; negative: none — load tests from one host).
	RatePerSecond float64

	// Site is served at /; nil serves nothing there.
	Site   fs.FS
	Logger *slog.Logger
}

// Relay is a running relay.
type Relay struct {
	cfg     Config
	index   *index.Index
	watcher *watcher.Watcher
	http    *http.Server
	ln      net.Listener
	rpc     *rpcserver.Server
	fwd     *forward.Forwarder
	metrics *prometheus.Registry
	cards   *CardConfig
	agg     *oracle.Aggregator
	vagg    *validator.Aggregator
	exits   *exits.Tracker // the bridge's withdrawals, with ValidatorConfig (withdrawals.go)
	payouts *payout.Worker
	ident   identity

	// bridged is ChildGateway's ChildToken and exitDelay its EXIT_DELAY, with ValidatorConfig.
	bridged   common.Address
	exitDelay uint64
	// permitsSent: deposit permits sent on the main chain, and depositsSent their
	// transactions until mined (deposits.go).
	permitsSent  sentPermits
	depositsSent depositFollower
	// minted: the deposits ChildGateway was seen to mint (deposit id → true; deposits.go).
	minted sync.Map
	// bridgeFeed pushes the "bridge" topic from the tracker's steps (bridgefeed.go).
	bridgeFeed bridgeFeed

	webhookEvents seenEvents // processor webhook ids acted on (webhooks.go)

	headBlock prometheus.Gauge
	started   time.Time

	mu   sync.Mutex
	done chan struct{}
	// stopped is closed once the relay's loops have returned.
	stopped chan struct{}
	err     error
}

// Start builds the relay and starts serving; Shutdown stops it.
func Start(ctx context.Context, cfg Config) (*Relay, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Relay{cfg: cfg, metrics: prometheus.NewRegistry(), done: make(chan struct{}), stopped: make(chan struct{}), started: time.Now()}
	r.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.headBlock = prometheus.NewGauge(prometheus.GaugeOpts{Name: "stagepass_chain_head_block", Help: "Last block the relay has indexed."})
	r.metrics.MustRegister(r.headBlock)

	// The websocket server exists before anything can publish to it.
	r.rpc = rpcserver.New(rpcserver.Config{AllowedOrigins: cfg.Origins, Logger: cfg.Logger, RatePerSecond: cfg.RatePerSecond})
	r.index = index.New(cfg.Client, cfg.Factory, func(keys []string, a protocol.Activity) { r.publish(keys, a) })
	r.watcher = watcher.New(watcher.Config{
		Client: cfg.Client, Sink: r.index, Factory: cfg.Factory, Start: cfg.StartBlock, Logger: cfg.Logger,
		OnBlock: func(n uint64) { r.headBlock.Set(float64(n)) },
	})
	// Catch up once before serving, so the first requests see the chain as it is.
	if err := r.watcher.Step(ctx); err != nil {
		return nil, fmt.Errorf("read the chain: %w", err)
	}

	var gateway common.Address // fans' withdrawals and ticket exits go through the forwarder too
	if cfg.Validators != nil {
		gateway = cfg.Validators.Child
	}
	fwd, err := forward.New(ctx, forward.Config{
		Client: cfg.Client, ChainID: cfg.ChainID, Forwarder: cfg.Forwarder, Factory: cfg.Factory, Gateway: gateway,
		Key: cfg.Relayer, Path: filepath.Join(cfg.DataDir, "outbox.db"), Logger: cfg.Logger, Limits: forward.Limits{MaxInFlight: cfg.MaxInFlight},
		OnStatus: func(st forward.Status) { r.publishStatus(st) },
	})
	if err != nil {
		return nil, fmt.Errorf("start forwarding: %w", err)
	}
	r.fwd = fwd
	if cfg.Cards != nil {
		if err := r.startCards(ctx); err != nil {
			_ = fwd.Close()
			return nil, fmt.Errorf("start card purchases: %w", err)
		}
	}
	if cfg.Validators != nil {
		if err := r.startValidators(ctx); err != nil {
			_ = fwd.Close()
			return nil, fmt.Errorf("start the validators' aggregator: %w", err)
		}
	}
	r.registerAPI(r.rpc)
	if r.agg == nil && r.vagg != nil {
		r.rpc.Register(protocol.MethodSubmitReport, r.submitReport)
	}
	if r.agg != nil {
		r.registerCardAPI(r.rpc)
		r.registerIdentityAPI(r.rpc)
		for _, ev := range r.index.Events() { // created before the relay started
			r.agg.RegisterEvent(common.HexToAddress(ev.Address))
		}
	}
	r.registerMetrics()

	mux := http.NewServeMux()
	mux.Handle("GET /ws", r.rpc.WebSocketHandler())
	mux.Handle("POST /rpc", r.rpc.HTTPHandler())
	mux.HandleFunc("GET /healthz", r.healthz)
	if cfg.Payments != nil {
		sandbox := http.StripPrefix("/sandbox", cfg.Payments.Handler(cfg.PaymentsKey))
		mux.Handle("GET /sandbox/", sandbox)
		mux.Handle("POST /sandbox/", sandbox)
	}
	if r.agg != nil && r.cards.WebhookSecret != "" {
		mux.HandleFunc("POST "+WebhookPath, r.processorWebhook)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.metrics, promhttp.HandlerOpts{}))
	if cfg.Site != nil {
		mux.Handle("GET /", site.Handler(cfg.Site))
	}
	r.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	r.ln = cfg.Listener
	if r.ln == nil {
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			_ = fwd.Close()
			return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
		}
		r.ln = ln
	}
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := r.watcher.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			r.fail(fmt.Errorf("chain watcher: %w", err))
		}
	}()
	go func() {
		defer wg.Done()
		if err := r.http.Serve(r.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.fail(fmt.Errorf("http: %w", err))
		}
	}()
	if r.agg != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.agg.Close()
			if err := r.agg.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				r.fail(fmt.Errorf("oracle aggregator: %w", err))
			}
		}()
	}
	if r.vagg != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.vagg.Close()
			if err := r.vagg.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				r.fail(fmt.Errorf("validator aggregator: %w", err))
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = loop.Run(runCtx, loop.Task{Every: 2 * time.Second, Backoff: 30 * time.Second, Logger: r.cfg.Logger,
				Steps: []loop.Step{{Run: r.followDeposits, Failed: "following the deposits sent failed; retrying"}}})
		}()
	}
	if r.exits != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.exits.Close()
			_ = r.exits.Run(runCtx) // failures are logged and retried inside
		}()
	}
	if r.payouts != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.payouts.Close()
			_ = r.payouts.Run(runCtx) // failures are logged and retried inside
		}()
	}
	go func() {
		<-r.done
		cancel()
		wg.Wait()
		close(r.stopped)
	}()
	cfg.Logger.Info("relay serving", "addr", r.ln.Addr().String(), "chainId", cfg.ChainID, "factory", cfg.Factory)
	return r, nil
}

// Addr is the address the relay listens on.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Index is the relay's index (tests and embedding programs read it).
func (r *Relay) Index() *index.Index { return r.index }

// Done is closed when the relay stops, by Shutdown or a fatal error (see Err).
func (r *Relay) Done() <-chan struct{} { return r.done }

// Err is the fatal error that stopped the relay, if any.
func (r *Relay) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *Relay) fail(err error) {
	r.cfg.Logger.Error("relay stopping", "err", err)
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	r.stop()
}

func (r *Relay) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.done:
	default:
		close(r.done)
	}
}

// Shutdown stops accepting connections, closes the websockets with a close frame, drains
// the HTTP requests in flight, lets the forwarding outbox finish what is in flight (what
// is not stays in the outbox for the next start), and stops the watcher.
func (r *Relay) Shutdown(ctx context.Context) error {
	err := errors.Join(r.rpc.Shutdown(ctx), r.http.Shutdown(ctx), r.fwd.Close())
	r.stop()
	select { // the loops end, and the aggregator's ledger is closed, before Shutdown returns
	case <-r.stopped:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	return err
}

// registerMetrics exposes the websocket server's counters.
func (r *Relay) registerMetrics() {
	gauge := func(name, help string, f func(rpcserver.Stats) float64) {
		r.metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(r.rpc.Stats()) }))
	}
	counter := func(name, help string, f func(rpcserver.Stats) float64) {
		r.metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(r.rpc.Stats()) }))
	}
	gauge("stagepass_ws_connections", "Open websocket connections.", func(s rpcserver.Stats) float64 { return float64(s.Connections) })
	gauge("stagepass_ws_subscriptions", "Active subscriptions.", func(s rpcserver.Stats) float64 { return float64(s.Subscriptions) })
	counter("stagepass_rpc_requests_total", "JSON-RPC calls answered, errors included.", func(s rpcserver.Stats) float64 { return float64(s.Requests) })
	counter("stagepass_rpc_rate_limited_total", "Calls refused by a rate limit.", func(s rpcserver.Stats) float64 { return float64(s.RateLimited) })
	counter("stagepass_ws_dropped_total", "Connections dropped for a full send queue.", func(s rpcserver.Stats) float64 { return float64(s.Dropped) })
	counter("stagepass_ws_messages_sent_total", "Websocket messages written.", func(s rpcserver.Stats) float64 { return float64(s.MessagesSent) })
}

type health struct {
	protocol.ChainInfo
	Indexed uint64 `json:"indexed"`
	Uptime  string `json:"uptime"`
	// Bridge: the main chain's contracts, with ValidatorConfig.
	Bridge *bridgeHealth `json:"bridge,omitempty"`
}

func (r *Relay) chainInfo(ctx context.Context) (protocol.ChainInfo, error) {
	n, err := r.cfg.Client.BlockNumber(ctx)
	if err != nil {
		return protocol.ChainInfo{}, fmt.Errorf("chain head: %w", err)
	}
	info := protocol.ChainInfo{
		ChainID: r.cfg.ChainID.Uint64(), Block: n,
		Forwarder: strings.ToLower(r.cfg.Forwarder.Hex()), Factory: strings.ToLower(r.cfg.Factory.Hex()),
	}
	if r.cfg.USD != (common.Address{}) {
		info.Currency = strings.ToLower(r.cfg.USD.Hex())
	}
	if r.cards != nil {
		info.Hub = strings.ToLower(r.cards.Hub.Hex())
	}
	if v := r.cfg.Validators; v != nil {
		info.Gateway, info.BridgedCurrency = strings.ToLower(v.Child.Hex()), strings.ToLower(r.bridged.Hex())
		info.MainChainID, info.ExitDelay = v.MainChainID.Uint64(), r.exitDelay
	}
	return info, nil
}

func (r *Relay) healthz(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	info, err := r.chainInfo(req.Context())
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(health{ChainInfo: info, Indexed: r.watcher.Head(), Uptime: time.Since(r.started).Round(time.Second).String(), Bridge: r.bridgeHealth()})
}
