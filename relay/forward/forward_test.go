package forward

import (
	"context"
	"errors"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/bindings/forwarder"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// TestRejections: every check refuses before the relay spends any gas, with the sentinel
// the relay maps to a JSON-RPC error.
func TestRejections(t *testing.T) {
	h := newHarness(t, nil)
	h.giveHolderATicket()
	fan := h.fan()
	stranger := devchain.NewAccount("stranger", 0)
	f := h.open(h.config())

	type tc struct {
		name string
		make func() signedRequest
		want error
		// revert is the custom error name a would-revert case must decode to.
		revert string
	}
	edit := func(s signedRequest, change func(*protocol.ForwardRequest)) signedRequest {
		change(&s.req)
		return signedRequest{s.req, h.resign(fan, s.req)}
	}
	cases := []tc{
		{name: "target is a token, not an event", want: ErrTarget, make: func() signedRequest {
			return h.sign(fan, h.c.USD, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(50)), 0)
		}},
		{name: "target is the forwarder itself", want: ErrTarget, make: func() signedRequest {
			return h.sign(fan, h.c.Forwarder, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(50)), 0)
		}},
		{name: "event function not on the allowlist", want: ErrSelector, make: func() signedRequest {
			return h.sign(fan, h.ev, devchain.Ticket.PackName(), 0)
		}},
		{name: "factory function other than createEvent", want: ErrSelector, make: func() signedRequest {
			return h.sign(fan, h.c.Factory, devchain.Factory.PackIsEvent(h.ev), 0)
		}},
		{name: "createEvent selector sent to an event", want: ErrSelector, make: func() signedRequest {
			return h.sign(fan, h.ev, devchain.Factory.PackCreateEvent(h.c.DefaultConfig(fan.Address, fan.Address, fan.Address)), 0)
		}},
		{name: "value", want: ErrValue, make: func() signedRequest {
			return edit(h.buy(fan, 0), func(r *protocol.ForwardRequest) { r.Value = big.NewInt(1) })
		}},
		{name: "deadline inside the margin", want: ErrDeadline, make: func() signedRequest {
			return edit(h.buy(fan, 0), func(r *protocol.ForwardRequest) { r.Deadline = uint64(time.Now().Unix()) + 10 })
		}},
		{name: "deadline passed", want: ErrDeadline, make: func() signedRequest {
			return edit(h.buy(fan, 0), func(r *protocol.ForwardRequest) { r.Deadline = uint64(time.Now().Unix()) - 10 })
		}},
		{name: "signed by someone else", want: ErrSignature, make: func() signedRequest {
			s := h.buy(fan, 0)
			return signedRequest{s.req, h.resign(stranger, s.req)}
		}},
		{name: "tampered after signing", want: ErrSignature, make: func() signedRequest {
			s := h.buy(fan, 0)
			s.req.Data = devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(4), devchain.USDC(50))
			return s
		}},
		{name: "signature too short", want: ErrSignature, make: func() signedRequest {
			s := h.buy(fan, 0)
			s.sig = s.sig[:64]
			return s
		}},
		{name: "gas above the cap", want: ErrGasLimit, make: func() signedRequest {
			return edit(h.buy(fan, 0), func(r *protocol.ForwardRequest) { r.Gas = big.NewInt(3_000_000) })
		}},
		{name: "nonce ahead of the chain", want: ErrNonce, make: func() signedRequest {
			return h.buy(fan, 5)
		}},
		{name: "calldata without a selector", want: ErrInvalidRequest, make: func() signedRequest {
			return h.sign(fan, h.ev, []byte{1, 2}, 0)
		}},
		{name: "calldata too large", want: ErrInvalidRequest, make: func() signedRequest {
			return h.sign(fan, h.ev, append(devchain.Ticket.PackWithdraw(fan.Address), make([]byte, 20_000)...), 0)
		}},
		{name: "resale price out of range", want: ErrWouldRevert, revert: "PriceOutOfRange", make: func() signedRequest {
			return h.sign(h.holder, h.ev, devchain.Ticket.PackList(big.NewInt(1), devchain.USDC(1000)), 0)
		}},
		{name: "listing someone else's ticket", want: ErrWouldRevert, revert: "NotTicketOwner", make: func() signedRequest {
			return h.sign(fan, h.ev, devchain.Ticket.PackList(big.NewInt(1), devchain.USDC(50)), 0)
		}},
		{name: "buying without an allowance", want: ErrWouldRevert, revert: "ERC20InsufficientAllowance", make: func() signedRequest {
			return h.buy(fan, 0)
		}},
		{name: "max price below the price", want: ErrWouldRevert, revert: "PriceAboveMax", make: func() signedRequest {
			return h.sign(fan, h.ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(1)), 0)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.make()
			_, err := f.Submit(context.Background(), s.req, s.sig)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.revert != "" {
				var re *RevertError
				if !errors.As(err, &re) || re.Name != c.revert {
					t.Fatalf("got %v, want the decoded custom error %s", err, c.revert)
				}
			}
			t.Logf("%v", err)
		})
	}
	var ne *NonceError
	ahead := h.buy(fan, 5)
	if _, err := f.Submit(context.Background(), ahead.req, ahead.sig); !errors.As(err, &ne) || ne.Want.Uint64() != 0 {
		t.Fatalf("nonce error %v does not say the next nonce is 0", err)
	}
	if n := h.hotNonce(true); n != 0 {
		t.Fatalf("the hot wallet sent %d transactions for refused requests", n)
	}
	if f.idle() == false {
		t.Fatal("a refused request reached the outbox")
	}
}

// TestRateAndPendingLimits: a signer gets Burst requests at once, then Rate per second;
// and no more than MaxPending may wait.
func TestRateAndPendingLimits(t *testing.T) {
	h := newHarness(t, nil)
	fan := h.fan()
	clock := &fakeClock{now: time.Now()}
	cfg := h.config()
	cfg.Clock = clock.Now
	cfg.Limits = Limits{Rate: 1, Burst: 2, MaxPending: 2}
	cfg.hooks.holdSender = true // requests stay pending
	f := h.open(cfg)

	h.submit(f, h.buyWithPermit(fan, 0, 200))
	first := h.buy(fan, 1)
	h.submit(f, first)
	third := h.buy(fan, 2)
	if _, err := f.Submit(context.Background(), third.req, third.sig); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("third request at once: %v, want ErrRateLimited", err)
	}
	clock.Add(1100 * time.Millisecond)
	if _, err := f.Submit(context.Background(), third.req, third.sig); !errors.Is(err, ErrTooManyPending) {
		t.Fatalf("third pending request: %v, want ErrTooManyPending", err)
	}
	// A retry of an accepted request is neither limited nor refused.
	if r, err := f.Submit(context.Background(), first.req, first.sig); err != nil || r.Status != Accepted {
		t.Fatalf("resubmission: %v %v", r, err)
	}
}

// TestSeveralFansOneBlock: fans holding no native coin buy through the relay; their
// requests go out together and are mined in one block, and the relay paid all the gas.
func TestSeveralFansOneBlock(t *testing.T) {
	h := newHarness(t, nil)
	var fans []*devchain.Account
	for range 5 {
		fans = append(fans, h.fan())
	}
	f := h.open(h.config())
	var ids []common.Hash
	for _, fan := range fans {
		ids = append(ids, h.submit(f, h.buyWithPermit(fan, 0, 50)))
	}
	h.waitFor("all sent", h.allIn(f, ids, Sent))
	h.waitFor("the pool to hold them", func() bool { return h.hotNonce(true) == 5 })
	h.c.Backend.Commit()
	h.waitFor("all mined", h.allIn(f, ids, Mined))

	var block uint64
	for i, id := range ids {
		st, _ := f.Status(id)
		if i == 0 {
			block = st.Block
		} else if st.Block != block {
			t.Fatalf("request %d mined in block %d, the first in %d", i, st.Block, block)
		}
		// OnStatus runs just after the outbox write the status came from.
		h.waitFor("pushed states", func() bool { return len(h.rec.states(id)) == 3 })
		if got := h.rec.states(id); !slices.Equal(got, []State{Accepted, Sent, Mined}) {
			t.Fatalf("pushed states %v", got)
		}
	}
	for _, fan := range fans {
		if n := h.tickets(fan.Address); n != 1 {
			t.Fatalf("fan has %d tickets", n)
		}
		if b := h.c.Balance(fan.Address); b.Sign() != 0 {
			t.Fatalf("fan holds native coin %s", b)
		}
		if u := h.c.USDBalance(fan.Address); u.Cmp(devchain.USDC(950)) != 0 {
			t.Fatalf("fan has %s TestUSD, want 950", u)
		}
	}
	if n := h.hotNonce(false); n != 5 {
		t.Fatalf("hot wallet sent %d transactions, want 5", n)
	}
	t.Logf("5 requests mined in block %d", block)
}

// TestIdempotentResubmission: the same signed request, submitted again, concurrently or
// after it was mined, has one ID and one transaction.
func TestIdempotentResubmission(t *testing.T) {
	h := newHarness(t, nil)
	fan := h.fan()
	f := h.open(h.config())
	s := h.buyWithPermit(fan, 0, 50)
	req, sig := s.req, s.sig

	ids := make([]common.Hash, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			r, err := f.Submit(context.Background(), req, sig)
			if err != nil {
				t.Error(err)
			}
			ids[i] = r.ID
		})
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("IDs differ: %s and %s", id, ids[0])
		}
	}
	// The same request with v as 0/1 instead of 27/28 is the same request.
	low := append([]byte(nil), sig...)
	low[64] -= 27
	if r, err := f.Submit(context.Background(), req, low); err != nil || r.ID != ids[0] {
		t.Fatalf("v=0/1 form: %v %v", r, err)
	}
	h.mineUntil("mined", func() bool { return h.state(f, ids[0]) == Mined })
	r, err := f.Submit(context.Background(), req, sig)
	if err != nil || r.ID != ids[0] || r.Status != Mined {
		t.Fatalf("resubmission after mining: %+v %v", r, err)
	}
	if n := h.hotNonce(false); n != 1 {
		t.Fatalf("hot wallet sent %d transactions, want 1", n)
	}
	if n := h.tickets(fan.Address); n != 1 {
		t.Fatalf("fan has %d tickets", n)
	}
	if _, err := f.Status(common.Hash{1}); !errors.Is(err, ErrUnknownRequest) {
		t.Fatalf("status of an unknown id: %v", err)
	}
}

// TestFailedOnChainWithReason: two fans race for the last ticket. Both requests pass the
// check (each alone would succeed) and go out in one block; one is mined, the other fails
// with the contract's reason.
func TestFailedOnChainWithReason(t *testing.T) {
	h := newHarness(t, func(cfg *events.EventConfig) { cfg.Tiers[0].Supply = 1 })
	a, b := h.fan(), h.fan()
	f := h.open(h.config())
	ids := []common.Hash{h.submit(f, h.buyWithPermit(a, 0, 50)), h.submit(f, h.buyWithPermit(b, 0, 50))}
	h.waitFor("both sent", h.allIn(f, ids, Sent))
	h.mineUntil("both settled", func() bool { return h.state(f, ids[0]).Final() && h.state(f, ids[1]).Final() })
	first, _ := f.Status(ids[0])
	second, _ := f.Status(ids[1])
	if first.State != Mined || second.State != Failed {
		t.Fatalf("states %s, %s; want mined, failed", first.State, second.State)
	}
	if !strings.HasPrefix(second.Reason, "SoldOut(") {
		t.Fatalf("reason %q, want SoldOut", second.Reason)
	}
	t.Logf("second buyer: %s", second.Reason)
	// The failed request's nonce was not used: the fan can sign it again.
	if n := h.forwarderNonce(b.Address); n != 0 {
		t.Fatalf("forwarder nonce of the failed fan is %d", n)
	}
}

// TestDependentRequestsOfOneSigner: a fan's permit purchase and two plain purchases
// relying on its allowance, accepted while the first is pending, execute in order.
func TestDependentRequestsOfOneSigner(t *testing.T) {
	h := newHarness(t, nil)
	fan := h.fan()
	f := h.open(h.config())
	second := h.buy(fan, 1)
	ids := []common.Hash{h.submit(f, h.buyWithPermit(fan, 0, 150)), h.submit(f, second), h.submit(f, h.buy(fan, 2))}
	if r, err := f.Submit(context.Background(), second.req, second.sig); err != nil || r.ID != ids[1] {
		t.Fatalf("resubmitting the pending nonce-1 request: %v", err)
	}
	ahead := h.buy(fan, 4)
	if _, err := f.Submit(context.Background(), ahead.req, ahead.sig); !errors.Is(err, ErrNonce) {
		t.Fatalf("nonce 4 while 0..2 pending: %v", err)
	}
	h.mineUntil("all mined", h.allIn(f, ids, Mined))
	if n := h.tickets(fan.Address); n != 3 {
		t.Fatalf("fan has %d tickets, want 3", n)
	}
}

// TestRestartAfterClose: Close before anything is mined leaves the requests in the outbox;
// the next New on the same file lands each exactly once.
func TestRestartAfterClose(t *testing.T) {
	h := newHarness(t, nil)
	fans := []*devchain.Account{h.fan(), h.fan(), h.fan()}
	f := h.open(h.config())
	var ids []common.Hash
	for _, fan := range fans {
		ids = append(ids, h.submit(f, h.buyWithPermit(fan, 0, 100)), h.submit(f, h.buy(fan, 1)))
	}
	start := time.Now()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close drained for %v with nothing mined", time.Since(start).Round(time.Millisecond))
	if _, err := f.Submit(context.Background(), protocol.ForwardRequest{}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}

	g := h.open(h.config())
	for _, id := range ids {
		if s := h.state(g, id); s.Final() {
			t.Fatalf("request %s is %s before any block", id, s)
		}
	}
	h.mineUntil("all mined", h.allIn(g, ids, Mined))
	for _, fan := range fans {
		if n := h.tickets(fan.Address); n != 2 {
			t.Fatalf("fan has %d tickets, want 2", n)
		}
		if n := h.forwarderNonce(fan.Address); n != 2 {
			t.Fatalf("fan's forwarder nonce is %d, want 2", n)
		}
	}
	if n := h.hotNonce(false); n != uint64(len(ids)) {
		t.Fatalf("hot wallet sent %d transactions for %d requests", n, len(ids))
	}
}

// TestCrash: the process dies right after acknowledging, after writing transactions but
// before broadcasting them, or after broadcasting; a new Forwarder on the same file lands
// every acknowledged request exactly once, re-sending stored transactions as they are.
func TestCrash(t *testing.T) {
	for _, c := range []struct {
		name  string
		hooks testHooks
		// settled: the state the outbox must have reached before the crash; inPool: the
		// node must hold the transactions too.
		settled State
		inPool  bool
	}{
		{name: "after acknowledging, before sending", hooks: testHooks{holdSender: true}, settled: Accepted},
		{name: "after writing transactions, before broadcasting", hooks: testHooks{beforeBroadcast: func(*types.Transaction) bool { return false }}, settled: Sent},
		{name: "after broadcasting", settled: Sent, inPool: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			fans := []*devchain.Account{h.fan(), h.fan()}
			cfg := h.config()
			cfg.hooks = c.hooks
			f := h.open(cfg)
			var ids []common.Hash
			for _, fan := range fans {
				ids = append(ids, h.submit(f, h.buyWithPermit(fan, 0, 100)), h.submit(f, h.buy(fan, 1)))
			}
			h.waitFor("the state before the crash", h.allIn(f, ids, c.settled))
			if c.inPool {
				h.waitFor("the pool", func() bool { return h.hotNonce(true) == uint64(len(ids)) })
			}
			broadcast := h.hotNonce(true)
			stored := make(map[common.Hash]common.Hash)
			for _, id := range ids {
				if a := f.record(t, id).last(); a != nil {
					stored[id] = a.Hash
				}
			}
			f.crash()
			t.Logf("crashed with %d transactions in the node's pool", broadcast)

			g := h.open(h.config())
			h.mineUntil("all mined", h.allIn(g, ids, Mined))
			for _, fan := range fans {
				if n := h.tickets(fan.Address); n != 2 {
					t.Fatalf("fan has %d tickets, want 2", n)
				}
			}
			if n := h.hotNonce(false); n != uint64(len(ids)) {
				t.Fatalf("hot wallet sent %d transactions for %d requests", n, len(ids))
			}
			for id, hash := range stored {
				if st, _ := g.Status(id); st.TxHash != hash {
					t.Fatalf("request %s mined in %s, not the stored transaction %s", id, st.TxHash, hash)
				}
			}
		})
	}
}

// TestStuckTransactionReplaced: a transaction unmined for StuckAfter is replaced under
// the same nonce with fees at least 10% higher, and the replacement is what is mined.
func TestStuckTransactionReplaced(t *testing.T) {
	h := newHarness(t, nil)
	fan := h.fan()
	clock := &fakeClock{now: time.Now()}
	cfg := h.config()
	cfg.Clock = clock.Now
	cfg.Fees.StuckAfter = 30 * time.Second
	f := h.open(cfg)
	id := h.submit(f, h.buyWithPermit(fan, 0, 50))
	h.waitFor("sent", func() bool { return h.state(f, id) == Sent })
	first := *f.record(t, id).last()

	// No block is committed, so the transaction sits in the pool.
	clock.Add(31 * time.Second)
	h.waitFor("a replacement", func() bool { return len(f.record(t, id).Attempts) == 2 })
	second := f.record(t, id).Attempts[1]
	h.waitFor("the replacement in the pool", func() bool {
		_, pending, err := h.c.Client.TransactionByHash(context.Background(), second.Hash)
		return err == nil && pending
	})
	tenPercent := func(old, new *big.Int) bool {
		return new.Cmp(new.Div(new.Mul(old, big.NewInt(110)), big.NewInt(100))) >= 0
	}
	if !tenPercent(first.Tip, second.Tip) || !tenPercent(first.FeeCap, second.FeeCap) {
		t.Fatalf("bump too small: tip %s→%s, fee cap %s→%s", first.Tip, second.Tip, first.FeeCap, second.FeeCap)
	}
	if n := h.hotNonce(true); n != 1 {
		t.Fatalf("pending nonce %d: the replacement must reuse nonce 0", n)
	}
	h.c.Backend.Commit()
	h.waitFor("mined", func() bool { return h.state(f, id) == Mined })
	st, _ := f.Status(id)
	if st.TxHash != second.Hash || st.TxHash == first.Hash {
		t.Fatalf("mined %s; first %s, replacement %s", st.TxHash, first.Hash, second.Hash)
	}
	if n := h.hotNonce(false); n != 1 {
		t.Fatalf("hot wallet used %d nonces", n)
	}
	t.Logf("tip %s→%s, fee cap %s→%s", first.Tip, second.Tip, first.FeeCap, second.FeeCap)
}

// TestNonceGapRepaired: the node loses our transactions (its pool is cleared); the sender
// sees the pending nonce fall behind the nonces it used and re-broadcasts the stored ones.
func TestNonceGapRepaired(t *testing.T) {
	h := newHarness(t, nil)
	a, b := h.fan(), h.fan()
	cfg := h.config()
	cfg.Fees.StuckAfter = time.Hour // only repair may act
	f := h.open(cfg)
	ids := []common.Hash{h.submit(f, h.buyWithPermit(a, 0, 50)), h.submit(f, h.buyWithPermit(b, 0, 50))}
	h.waitFor("both sent", h.allIn(f, ids, Sent))
	h.waitFor("the pool to hold them", func() bool { return h.hotNonce(true) == 2 })
	hashes := []common.Hash{f.record(t, ids[0]).last().Hash, f.record(t, ids[1]).last().Hash}

	h.c.Backend.Rollback()
	if n := h.hotNonce(true); n != 0 {
		t.Fatalf("pool still counts %d transactions", n)
	}
	h.waitFor("re-broadcast", func() bool { return h.hotNonce(true) == 2 })
	h.c.Backend.Commit()
	h.waitFor("both mined", h.allIn(f, ids, Mined))
	for i, id := range ids {
		if st, _ := f.Status(id); st.TxHash != hashes[i] {
			t.Fatalf("mined %s, want the stored transaction %s", st.TxHash, hashes[i])
		}
	}
}

// TestExecutedByAnotherRelayer: a fan's signed request reaches another relayer too, which
// executes it first. The outbox entry is settled from the forwarder's log, not sent again.
func TestExecutedByAnotherRelayer(t *testing.T) {
	h := newHarness(t, nil)
	fan := h.fan()
	cfg := h.config()
	cfg.hooks.holdSender = true
	f := h.open(cfg)
	s := h.buyWithPermit(fan, 0, 50)
	req, sig := s.req, s.sig
	id := h.submit(f, s)
	f.crash()

	data := fwdABI.PackExecute(forwarder.ERC2771ForwarderForwardRequestData{
		From: fan.Address, To: h.ev, Value: new(big.Int), Gas: req.Gas,
		Deadline: new(big.Int).SetUint64(req.Deadline), Data: req.Data, Signature: sig,
	})
	rcpt, err := h.c.Transact(h.c.Deployer, h.c.Forwarder, data, nil)
	if err != nil {
		t.Fatalf("the other relayer: %v", err)
	}
	g := h.open(h.config())
	h.waitFor("settled", func() bool { return h.state(g, id) == Mined })
	st, _ := g.Status(id)
	if st.TxHash != rcpt.TxHash || st.Reason != "executed by another relayer" {
		t.Fatalf("status %+v, want the other relayer's transaction %s", st, rcpt.TxHash)
	}
	if n := h.hotNonce(true); n != 0 {
		t.Fatalf("hot wallet sent %d transactions", n)
	}
}

// TestCloseDrains: Close waits for what is in flight to be mined when blocks come.
func TestCloseDrains(t *testing.T) {
	h := newHarness(t, nil)
	fan := h.fan()
	cfg := h.config()
	cfg.DrainTimeout = 20 * time.Second
	f := h.open(cfg)
	id := h.submit(f, h.buyWithPermit(fan, 0, 50))
	h.waitFor("sent", func() bool { return h.state(f, id) == Sent })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				h.c.Backend.Commit()
			}
		}
	})
	err := f.Close()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	g := h.open(h.config())
	if s := h.state(g, id); s != Mined {
		t.Fatalf("after a drained Close the request is %s", s)
	}
}

// TestConfigErrors: New refuses an incomplete config and a node on another chain.
func TestConfigErrors(t *testing.T) {
	key, _ := crypto.GenerateKey()
	for _, cfg := range []Config{
		{},
		{Client: newStub(), ChainID: big.NewInt(1)},
		{Client: newStub(), ChainID: big.NewInt(1), Key: key, Forwarder: common.Address{1}, Factory: common.Address{2}},
	} {
		if _, err := New(context.Background(), cfg); err == nil {
			t.Fatalf("config %+v accepted", cfg)
		}
	}
	wrongChain := Config{Client: newStub(), ChainID: big.NewInt(5), Key: key, Forwarder: common.Address{1}, Factory: common.Address{2}, Path: t.TempDir() + "/x.db"}
	if _, err := New(context.Background(), wrongChain); err == nil || !strings.Contains(err.Error(), "chain") {
		t.Fatalf("wrong chain id: %v", err)
	}
}

func TestRevertReason(t *testing.T) {
	ticket := events.NewEventTicket().GetABI()
	data, err := ticket.Errors["PriceOutOfRange"].Inputs.Pack(big.NewInt(1), big.NewInt(2), big.NewInt(3))
	if err != nil {
		t.Fatal(err)
	}
	id := ticket.Errors["PriceOutOfRange"].ID
	re := decodeRevert(append(id[:4:4], data...), "")
	if got := re.Reason(); got != "PriceOutOfRange(price=1, floor=2, cap=3)" {
		t.Fatalf("reason %q", got)
	}
	if got := decodeRevert([]byte{1, 2, 3, 4}, "").Reason(); got != "unknown error 0x01020304" {
		t.Fatalf("reason %q", got)
	}
	if got := decodeRevert(nil, "out of gas").Reason(); got != "out of gas" {
		t.Fatalf("reason %q", got)
	}
}

// TestRejectedTransactionLeavesNoGap: a request whose transaction the node refuses (here,
// gas beyond the transaction cap, possible only because this relay's MaxGas is set far too
// high) fails, and its hot-wallet nonce is plugged with a no-op so later requests mine.
func TestRejectedTransactionLeavesNoGap(t *testing.T) {
	h := newHarness(t, nil)
	a, b := h.fan(), h.fan()
	cfg := h.config()
	cfg.Limits.MaxGas = 100_000_000
	cfg.hooks.holdSender = true
	f := h.open(cfg)
	first := h.submit(f, h.buyWithPermit(a, 0, 100))
	// Pending behind the first, so not simulated: only the node can refuse it.
	huge := h.buy(a, 1)
	huge.req.Gas = big.NewInt(70_000_000)
	huge.sig = h.resign(a, huge.req)
	doomed := h.submit(f, huge)
	last := h.submit(f, h.buyWithPermit(b, 0, 50))
	f.Close()

	g := h.open(h.config())
	h.mineUntil("all settled", func() bool {
		return h.state(g, first).Final() && h.state(g, doomed).Final() && h.state(g, last).Final()
	})
	st, _ := g.Status(doomed)
	if st.State != Failed || !strings.Contains(st.Reason, "rejected") {
		t.Fatalf("oversized request: %+v", st)
	}
	if h.state(g, first) != Mined || h.state(g, last) != Mined {
		t.Fatalf("requests around the rejected one: %s, %s", h.state(g, first), h.state(g, last))
	}
	if n := h.hotNonce(false); n != 3 {
		t.Fatalf("hot wallet nonce %d, want 3 (two requests and the filler)", n)
	}
	t.Logf("rejected: %s", st.Reason)
}

// TestConfirmations: with Confirmations 3 a request counts as mined two blocks after the
// one that holds it.
func TestConfirmations(t *testing.T) {
	h := newHarness(t, nil)
	fan := h.fan()
	cfg := h.config()
	cfg.Confirmations = 3
	f := h.open(cfg)
	id := h.submit(f, h.buyWithPermit(fan, 0, 50))
	// Sent is written before the broadcast; wait for the pool too.
	h.waitFor("in the pool", func() bool { return h.hotNonce(true) == 1 })
	h.c.Backend.Commit()
	h.c.Backend.Commit()
	time.Sleep(100 * time.Millisecond)
	if s := h.state(f, id); s != Sent {
		t.Fatalf("after 2 blocks the request is %s", s)
	}
	h.c.Backend.Commit()
	h.waitFor("mined", func() bool { return h.state(f, id) == Mined })
}

// TestGaslessIssuer: an issuer with no native coin creates an event through the relay,
// and a fan then buys from it through the relay: new events are allowed targets.
func TestGaslessIssuer(t *testing.T) {
	h := newHarness(t, nil)
	issuer := devchain.NewAccount(t.Name()+"/issuer", 0)
	fan := h.fan()
	f := h.open(h.config())
	create := h.sign(issuer, h.c.Factory, devchain.Factory.PackCreateEvent(h.c.DefaultConfig(issuer.Address, issuer.Address, issuer.Address)), 0)
	create.req.Gas = big.NewInt(1_500_000)
	create.sig = h.resign(issuer, create.req)
	id := h.submit(f, create)
	h.mineUntil("event created", func() bool { return h.state(f, id) == Mined })
	st, _ := f.Status(id)
	rcpt, err := h.c.Client.TransactionReceipt(context.Background(), st.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	var ev common.Address
	for _, l := range rcpt.Logs {
		if e, err := devchain.Factory.UnpackEventCreatedEvent(l); err == nil {
			ev = e.EventAddress
			if e.Issuer != issuer.Address {
				t.Fatalf("issuer %s, want the signer %s", e.Issuer, issuer.Address)
			}
		}
	}
	t.Logf("createEvent through the relay used %d gas", rcpt.GasUsed)
	h.ev = ev
	buy := h.submit(f, h.buyWithPermit(fan, 0, 50))
	h.mineUntil("bought", func() bool { return h.state(f, buy) == Mined })
	if n := h.tickets(fan.Address); n != 1 {
		t.Fatalf("fan has %d tickets at the new event", n)
	}
}
