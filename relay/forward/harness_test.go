package forward

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/simulated"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Both clients the relay runs with satisfy Client.
var (
	_ Client = (*ethclient.Client)(nil)
	_ Client = simulated.Client(nil)
)

// harness is a simulated chain with the platform and one event, a hot wallet, and an
// outbox path. The test goroutine is the only one that mines (the simulated beacon is not
// safe for concurrent commits), so chain set-up through devchain happens before mining.
type harness struct {
	t      *testing.T
	c      *devchain.Chain
	ev     common.Address
	issuer *devchain.Account
	holder *devchain.Account // has native coin and a ticket bought directly (token 1)
	hot    *devchain.Account
	path   string
	rec    *recorder
	fans   int
}

func newHarness(t *testing.T, edit func(*events.EventConfig)) *harness {
	t.Helper()
	c, err := devchain.New(devchain.Options{Accounts: 5, Seed: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h := &harness{
		t: t, c: c, issuer: c.Accounts[0], holder: c.Accounts[4], hot: c.Accounts[3],
		path: filepath.Join(t.TempDir(), "outbox.db"), rec: &recorder{},
	}
	cfg := c.DefaultConfig(h.issuer.Address, c.Accounts[1].Address, c.Accounts[2].Address)
	if edit != nil {
		edit(&cfg)
	}
	if h.ev, err = c.CreateEvent(h.issuer, cfg); err != nil {
		t.Fatalf("create event: %v", err)
	}
	return h
}

// giveHolderATicket buys token 1 for the holder directly (not through the relay).
func (h *harness) giveHolderATicket() {
	h.t.Helper()
	h.c.FundUSD(h.ev, devchain.USDC(1000), h.holder)
	if _, err := h.c.Transact(h.holder, h.ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(50)), nil); err != nil {
		h.t.Fatalf("holder buys: %v", err)
	}
}

func (h *harness) config() Config {
	return Config{
		Client: h.c.Client, ChainID: h.c.ChainID, Forwarder: h.c.Forwarder, Factory: h.c.Factory,
		Key: h.hot.Key, Path: h.path,
		Limits:       Limits{Rate: 1000, Burst: 1000, MaxPending: 16},
		PollInterval: 10 * time.Millisecond,
		DrainTimeout: 300 * time.Millisecond,
		Logger:       testLogger(h.t),
		OnStatus:     h.rec.add,
	}
}

func (h *harness) open(cfg Config) *Forwarder {
	h.t.Helper()
	f, err := New(context.Background(), cfg)
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	h.t.Cleanup(func() { f.Close() })
	return f
}

// fan is a new account with TestUSD and no native coin at all.
func (h *harness) fan() *devchain.Account {
	h.t.Helper()
	h.fans++
	a := devchain.NewAccount(h.t.Name()+"/fan", h.fans)
	h.c.MustTransact(h.c.Deployer, h.c.USD, devchain.USD.PackMint(a.Address, devchain.USDC(1000)), nil)
	return a
}

func (h *harness) deadline() uint64 {
	return max(h.c.Now(), uint64(time.Now().Unix())) + 3600
}

// sign makes fan's forward request to `to` and signs it as the wallet does.
func (h *harness) sign(fan *devchain.Account, to common.Address, data []byte, nonce uint64) signedRequest {
	h.t.Helper()
	req := protocol.ForwardRequest{
		From: ethcrypto.Address(fan.Address), To: ethcrypto.Address(to), Value: new(big.Int),
		Gas: big.NewInt(400_000), Nonce: new(big.Int).SetUint64(nonce), Deadline: h.deadline(), Data: data,
	}
	return signedRequest{req, h.resign(fan, req)}
}

func (h *harness) resign(fan *devchain.Account, req protocol.ForwardRequest) []byte {
	h.t.Helper()
	digest, err := req.Digest(protocol.ForwarderDomain(h.c.ChainID.Uint64(), ethcrypto.Address(h.c.Forwarder)))
	if err != nil {
		h.t.Fatal(err)
	}
	sig, err := crypto.Sign(digest[:], fan.Key)
	if err != nil {
		h.t.Fatal(err)
	}
	sig[64] += 27
	return sig
}

// buyWithPermit is a gasless purchase of one ticket whose permit allows `allowance`, so the
// fan's later plain buys (sent while this one is pending) can spend the rest.
func (h *harness) buyWithPermit(fan *devchain.Account, nonce uint64, allowance int64) signedRequest {
	h.t.Helper()
	deadline := new(big.Int).SetUint64(h.deadline())
	v, r, s := h.c.SignPermit(fan, h.ev, devchain.USDC(allowance), deadline)
	return h.sign(fan, h.ev, devchain.Ticket.PackBuyWithPermit(big.NewInt(0), big.NewInt(1), devchain.USDC(allowance), deadline, v, r, s), nonce)
}

func (h *harness) buy(fan *devchain.Account, nonce uint64) signedRequest {
	return h.sign(fan, h.ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(50)), nonce)
}

func (h *harness) submit(f *Forwarder, s signedRequest) common.Hash {
	h.t.Helper()
	r, err := f.Submit(context.Background(), s.req, s.sig)
	if err != nil {
		h.t.Fatalf("submit: %v", err)
	}
	return r.ID
}

// waitFor polls cond; it fails the test after 30 s.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	for end := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(end) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mineUntil commits a block every 20 ms until cond holds.
func (h *harness) mineUntil(what string, cond func() bool) {
	h.t.Helper()
	for end := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(end) {
			h.t.Fatalf("timed out mining until %s", what)
		}
		h.c.Backend.Commit()
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) state(f *Forwarder, id common.Hash) State {
	st, err := f.Status(id)
	if err != nil {
		h.t.Fatalf("status %s: %v", id, err)
	}
	return st.State
}

func (h *harness) allIn(f *Forwarder, ids []common.Hash, want State) func() bool {
	return func() bool {
		for _, id := range ids {
			if h.state(f, id) != want {
				return false
			}
		}
		return true
	}
}

func (h *harness) hotNonce(pending bool) uint64 {
	h.t.Helper()
	var n uint64
	var err error
	if pending {
		n, err = h.c.Client.PendingNonceAt(context.Background(), h.hot.Address)
	} else {
		n, err = h.c.Client.NonceAt(context.Background(), h.hot.Address, nil)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func (h *harness) tickets(owner common.Address) int64 {
	h.t.Helper()
	out, err := h.c.Call(h.ev, devchain.Ticket.PackBalanceOf(owner))
	if err != nil {
		h.t.Fatal(err)
	}
	n, err := devchain.Ticket.UnpackBalanceOf(out)
	if err != nil {
		h.t.Fatal(err)
	}
	return n.Int64()
}

func (h *harness) forwarderNonce(a common.Address) uint64 {
	h.t.Helper()
	out, err := h.c.Call(h.c.Forwarder, fwdABI.PackNonces(a))
	if err != nil {
		h.t.Fatal(err)
	}
	n, err := fwdABI.UnpackNonces(out)
	if err != nil {
		h.t.Fatal(err)
	}
	return n.Uint64()
}

// crash stops f the way kill -9 would as far as the outbox can tell: no drain, no final
// writes; whatever was committed stays, nothing else happens.
func (f *Forwarder) crash() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.closeOnce.Do(func() {
		f.sendCancel()
		<-f.sendDone
		close(f.stopCommit)
		<-f.commitDone
		if f.ownDB {
			f.db.Close()
		}
	})
}

// record reads an entry straight from the outbox.
func (f *Forwarder) record(t *testing.T, id common.Hash) *record {
	t.Helper()
	r, err := f.get(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// recorder collects OnStatus calls.
type recorder struct {
	mu  sync.Mutex
	all []Status
}

func (r *recorder) add(s Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, s)
}

func (r *recorder) states(id common.Hash) []State {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []State
	for _, s := range r.all {
		if s.ID == id {
			out = append(out, s.State)
		}
	}
	return out
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testLogger writes to the test log while the test runs, and nowhere after.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done && testing.Verbose() {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

var _ io.Writer = (*testWriter)(nil)
