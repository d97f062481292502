// Command cardbench measures card purchases through the whole platform on the embedded
// chain: the relay (sp_createPayment, sp_sendForward), the sandbox processor, three oracle
// nodes (k = 2) and the chain, all in one process.
//
//	go run ./relay/cmd/cardbench                      # latency (20 one at a time) and an onsale burst of 2,000 fans
//	go run ./relay/cmd/cardbench -fans 500 -latency 0 # a smaller burst only
//
// Latency: one purchase at a time, from the fan's gasless requestPurchase reaching the
// relay to the tickets minted (the payment is made before, as on the checkout page).
// Burst: every fan (a wallet of its own) pays, then all send their requests at once; the
// run reports wall time, tickets per second, latency percentiles, gas per ticket, and checks
// that every payment minted exactly once. The relay's per-IP rate limit is off: the load
// comes from one host.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/wasm/protocol"
)

const apiKey = "sk_test_cardbench"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cardbench:", err)
		os.Exit(1)
	}
}

type bench struct {
	chain   *devnet.Devnet
	relay   *server.Relay
	sandbox *payments.Sandbox
	rpc     *oracle.RPCRelay
	event   common.Address
	out     io.Writer
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("cardbench", flag.ContinueOnError)
	fans := fs.Int("fans", 2000, "fans in the onsale burst (0: none)")
	latency := fs.Int("latency", 20, "purchases made one at a time for the latency figures (0: none)")
	blockTime := fs.Duration("block-time", time.Second, "the embedded chain's block time")
	workers := fs.Int("concurrency", 64, "requests in flight at once during the burst")
	inflight := fs.Int("inflight", 1024, "the relayer's unmined transactions at once (the embedded chain takes many; a public node's mempool about 64)")
	verbose := fs.Bool("v", false, "log the relay and the oracle nodes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		logger = slog.Default()
	}
	dir, err := os.MkdirTemp("", "cardbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	chain, err := devnet.Start(devnet.Config{BlockTime: *blockTime, Logger: logger})
	if err != nil {
		return err
	}
	defer chain.Close()
	cfg := chain.DefaultConfig(chain.Accounts[1].Address, chain.Accounts[3].Address, chain.Accounts[4].Address)
	cfg.Name = "Cardbench onsale"
	cfg.Tiers[0].FaceValue = devchain.USDC(50)
	cfg.Tiers[0].Supply = uint32(*fans + *latency + 10)
	event, err := chain.CreateEvent(chain.Accounts[1], cfg)
	if err != nil {
		return fmt.Errorf("create the bench event: %w", err)
	}
	sandbox, err := payments.OpenSandbox(filepath.Join(dir, "sandbox.db"))
	if err != nil {
		return err
	}
	defer sandbox.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	relay, err := server.Start(context.Background(), server.Config{
		Listener: ln, DataDir: dir, Client: chain.Client, ChainID: chain.ChainID,
		Forwarder: chain.Forwarder, Factory: chain.Factory, USD: chain.USD, Relayer: chain.Relayer,
		Payments: sandbox, PaymentsKey: apiKey, RatePerSecond: -1, MaxInFlight: *inflight, Logger: logger,
		Cards: &server.CardConfig{Hub: chain.Hub, Reporter: chain.Reporter},
	})
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = relay.Shutdown(ctx)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := "http://" + relay.Addr()
	if _, err := chain.StartOracles(ctx, func(int) oracle.Relay { return relay.Aggregator() }, func(int) payments.Processor {
		return &payments.Client{BaseURL: base + "/sandbox", APIKey: apiKey}
	}, logger); err != nil {
		return err
	}
	b := &bench{chain: chain, relay: relay, sandbox: sandbox, rpc: &oracle.RPCRelay{URL: base + "/rpc"}, event: event, out: out}
	fmt.Fprintf(out, "embedded chain, %s blocks; relay, sandbox processor and 3 oracle nodes (k = 2) in one process; %d CPUs\n", *blockTime, runtime.NumCPU())
	if *latency > 0 {
		if err := b.latency(ctx, *latency); err != nil {
			return err
		}
	}
	if *fans > 0 {
		if err := b.burst(ctx, *fans, *workers); err != nil {
			return err
		}
	}
	return nil
}

// purchase is one fan's card purchase.
type purchase struct {
	fan    *devchain.Account
	intent protocol.PaymentIntent
	pid    [32]byte
	sub    protocol.ForwardSubmission
	reqID  string
	sent   time.Time
	minted time.Time
}

// prepare makes the fan's intent through the relay, pays it on the sandbox and signs the
// gasless requestPurchase.
func (b *bench) prepare(ctx context.Context, label string, i int) (*purchase, error) {
	p := &purchase{fan: devchain.NewAccount(label, i)}
	if err := b.rpc.Call(ctx, protocol.MethodCreatePayment, &p.intent, b.event.Hex(), 0, 1, p.fan.Address.Hex()); err != nil {
		return nil, fmt.Errorf("create payment: %w", err)
	}
	if _, err := b.sandbox.Confirm(ctx, p.intent.ID, payments.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"}); err != nil {
		return nil, fmt.Errorf("pay: %w", err)
	}
	p.pid = protocol.PaymentIDOf(p.intent.ID)
	req, sig := b.chain.SignForward(p.fan, b.event, devchain.Ticket.PackRequestPurchase(p.pid, big.NewInt(0), big.NewInt(1)), 400_000, b.chain.Now()+3600)
	p.sub = protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}
	return p, nil
}

func (b *bench) send(ctx context.Context, p *purchase) error {
	var st protocol.RequestStatus
	p.sent = time.Now()
	if err := b.rpc.Call(ctx, protocol.MethodSendForward, &st, p.sub); err != nil {
		return fmt.Errorf("send the request: %w", err)
	}
	p.reqID = st.ID
	return nil
}

// wait polls the aggregator until every purchase is minted (or one fails, or time is up).
func (b *bench) wait(ps []*purchase, deadline time.Duration) error {
	agg := b.relay.Aggregator()
	left := len(ps)
	for end := time.Now().Add(deadline); left > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			return fmt.Errorf("%d of %d purchases not minted after %s", left, len(ps), deadline)
		}
		for _, p := range ps {
			if !p.minted.IsZero() {
				continue
			}
			pr, ok := agg.Progress(p.pid)
			switch {
			case !ok:
			case pr.State == protocol.PaymentMinted:
				p.minted = time.Now()
				left--
			case pr.State == protocol.PaymentFailed || pr.State == protocol.PaymentRefunded:
				return fmt.Errorf("payment %s: %s %s", p.intent.ID, pr.State, pr.Reason)
			}
		}
	}
	return nil
}

func (b *bench) latency(ctx context.Context, n int) error {
	ps := make([]*purchase, n)
	for i := range ps {
		p, err := b.prepare(ctx, "cardbench latency fan", i)
		if err != nil {
			return err
		}
		ps[i] = p
		if err := b.send(ctx, p); err != nil {
			return err
		}
		if err := b.wait(ps[i:i+1], 60*time.Second); err != nil {
			return err
		}
	}
	if err := b.exactlyOnce(ps); err != nil {
		return err
	}
	q := percentiles(ps)
	fmt.Fprintf(b.out, "latency, request to minted, %d purchases one at a time: p50 %s  p95 %s  max %s\n", n, q[50], q[95], q[100])
	return nil
}

func (b *bench) burst(ctx context.Context, n, workers int) error {
	ps := make([]*purchase, n)
	if err := parallel(n, workers, func(i int) error {
		p, err := b.prepare(ctx, "cardbench burst fan", i)
		ps[i] = p
		return err
	}); err != nil {
		return err
	}
	start := time.Now()
	if err := parallel(n, workers, func(i int) error { return b.send(ctx, ps[i]) }); err != nil {
		return err
	}
	accepted := time.Since(start)
	if err := b.wait(ps, 10*time.Minute); err != nil {
		return err
	}
	wall := time.Since(start)
	if err := b.exactlyOnce(ps); err != nil {
		return err
	}
	gasReq, gasFulfil, fulfils, err := b.gas(ctx, ps)
	if err != nil {
		return err
	}
	q := percentiles(ps)
	fmt.Fprintf(b.out, "onsale burst: %d fans, %d tickets, each payment minted exactly once\n", n, n)
	fmt.Fprintf(b.out, "  requests accepted by the relay in %s; all minted in %s: %.0f tickets/s\n", accepted.Round(time.Millisecond), wall.Round(time.Millisecond), float64(n)/wall.Seconds())
	fmt.Fprintf(b.out, "  latency, request to minted: p50 %s  p95 %s  max %s\n", q[50], q[95], q[100])
	fmt.Fprintf(b.out, "  gas per ticket: %d requestPurchase (forwarded) + %d fulfil (%d fulfil transactions, %.1f tickets each)\n",
		gasReq/uint64(n), gasFulfil/uint64(n), fulfils, float64(n)/float64(max(fulfils, 1)))
	return nil
}

// exactlyOnce checks on chain that every payment minted one ticket, owned by its own fan.
func (b *bench) exactlyOnce(ps []*purchase) error {
	for _, p := range ps {
		rec, err := b.chain.HubPayment(p.pid)
		if err != nil {
			return err
		}
		if rec.Status != devchain.PaymentMinted || rec.Quantity.Uint64() != 1 {
			return fmt.Errorf("payment %s: hub status %d quantity %s", p.intent.ID, rec.Status, rec.Quantity)
		}
		out, err := b.chain.Call(b.event, devchain.Ticket.PackOwnerOf(rec.FirstTokenId))
		if err != nil {
			return err
		}
		owner, err := devchain.Ticket.UnpackOwnerOf(out)
		if err != nil || owner != p.fan.Address {
			return fmt.Errorf("ticket %s of payment %s is %s's, not the fan's %s", rec.FirstTokenId, p.intent.ID, owner, p.fan.Address)
		}
	}
	return nil
}

// gas sums the gas of the requests' and the fulfilments' transactions.
func (b *bench) gas(ctx context.Context, ps []*purchase) (req, fulfil uint64, fulfils int, err error) {
	seenReq, seenFulfil := map[string]bool{}, map[string]bool{}
	agg := b.relay.Aggregator()
	for _, p := range ps {
		var st protocol.RequestStatus
		if err := b.rpc.Call(ctx, protocol.MethodRequestStatus, &st, p.reqID); err != nil {
			return 0, 0, 0, err
		}
		pr, _ := agg.Progress(p.pid)
		for _, x := range []struct {
			hash string
			seen map[string]bool
			sum  *uint64
		}{{st.TxHash, seenReq, &req}, {pr.TxHash, seenFulfil, &fulfil}} {
			if x.hash == "" || x.seen[x.hash] {
				continue
			}
			x.seen[x.hash] = true
			rcpt, err := b.chain.Client.TransactionReceipt(ctx, common.HexToHash(x.hash))
			if err != nil {
				return 0, 0, 0, fmt.Errorf("receipt %s: %w", x.hash, err)
			}
			*x.sum += rcpt.GasUsed
		}
	}
	return req, fulfil, len(seenFulfil), nil
}

func percentiles(ps []*purchase) map[int]time.Duration {
	ds := make([]time.Duration, len(ps))
	for i, p := range ps {
		ds[i] = p.minted.Sub(p.sent)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := map[int]time.Duration{}
	for _, pc := range []int{50, 95, 100} {
		idx := (len(ds)*pc+99)/100 - 1
		q[pc] = ds[max(idx, 0)].Round(time.Millisecond)
	}
	return q
}

// parallel runs f(0..n-1) on `workers` goroutines and returns the first error.
func parallel(n, workers int, f func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}
