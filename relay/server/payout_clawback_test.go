package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/relay/payout"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// clawbackEvent creates a one-tier event at 50.00 a ticket whose card revenue is split among
// three parties (70 / 20 / 10 %), with `gate` at the door, and waits until the relay knows it.
func (e *cardEnv) clawbackEvent(gate *devchain.Account) (common.Address, []string) {
	e.t.Helper()
	issuer := e.chain.Accounts[1]
	artist, venue := devchain.NewAccount("clawback artist", 0), devchain.NewAccount("clawback venue", 0)
	cfg := e.chain.DefaultConfig(issuer.Address, artist.Address, venue.Address)
	cfg.Name, cfg.Gates = "Clawback night", []common.Address{gate.Address}
	ev, err := e.chain.CreateEvent(issuer, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	waitFor(e.t, "the relay to index the event", func() bool {
		return e.call(protocol.MethodEvent, []any{ev.Hex()}).Error == nil
	})
	return ev, []string{payments.SandboxAccount(issuer.Address.Hex()), payments.SandboxAccount(artist.Address.Hex()), payments.SandboxAccount(venue.Address.Hex())}
}

// cardBuy pays `qty` tickets of event ev's tier 0 by card (4242…) and waits until minted.
func (e *cardEnv) cardBuy(ev common.Address, fan *devchain.Account, qty int64) (protocol.PaymentIntent, *big.Int) {
	e.t.Helper()
	var in protocol.PaymentIntent
	e.result(protocol.MethodCreatePayment, []any{ev.Hex(), 0, qty, fan.Address.Hex()}, &in)
	if _, err := e.api.Confirm(context.Background(), in.ID, payments.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"}); err != nil {
		e.t.Fatal(err)
	}
	pid, _ := protocol.ParseHash32("paymentId", in.PaymentID)
	req, sig := e.chain.SignForward(fan, ev, devchain.Ticket.PackRequestPurchase(pid, big.NewInt(0), big.NewInt(qty)), 400_000, e.chain.Now()+3600)
	var st protocol.RequestStatus
	e.result(protocol.MethodSendForward, []any{protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}}, &st)
	p := e.waitState(in.ID, protocol.PaymentMinted)
	first, ok := new(big.Int).SetString(p.FirstTokenID, 10)
	if !ok {
		e.t.Fatalf("minted progress %+v", p)
	}
	return in, first
}

// ledger reads a sandbox's balances of `accounts` and its payout and reversal counts.
func ledger(t *testing.T, sb *payments.Sandbox, accounts []string) (balances []int64, payouts, reversals int) {
	t.Helper()
	for _, a := range accounts {
		b, err := sb.Balance(a)
		if err != nil {
			t.Fatal(err)
		}
		balances = append(balances, b)
	}
	ps, err := sb.Payouts()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := sb.Reversals()
	if err != nil {
		t.Fatal(err)
	}
	return balances, len(ps), len(rs)
}

func allZero(bs []int64) bool {
	for _, b := range bs {
		if b != 0 {
			return false
		}
	}
	return true
}

// flakyPayer is the sandbox behind a network that fails: the nth reversal (counting from 1)
// in `fail` never reaches the sandbox, the one in `lose` is made but its answer is lost.
type flakyPayer struct {
	*payments.Sandbox
	mu         sync.Mutex
	n          int
	fail, lose map[int]bool
}

func (f *flakyPayer) Reverse(ctx context.Context, r payments.Reversal) (payments.Reversal, error) {
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	if f.fail[n] {
		return r, errors.New("connection refused (injected)")
	}
	out, err := f.Sandbox.Reverse(ctx, r)
	if f.lose[n] {
		return r, errors.New("connection reset before the answer (injected)")
	}
	return out, err
}

// TestCardPurchasePayoutClawback: a card purchase of 2 tickets is paid out to 3 parties;
// the payment is charged back, the hub burns the tickets, and the payout worker reverses
// each party's payout, half per ticket: every balance is back to 0, with one reversal per
// ticket and party. A second worker that starts only after the chargeback (it pays and
// reverses in one pass) on a node that answers log queries of at most 10 blocks, whose
// processor fails and loses answers mid-way, and which restarts mid-way, ends the same,
// exactly once. (The relay itself is not restarted here: the
// simulated chain prunes the historical state a restarted relay's index reads once it is
// 128 blocks behind, which this test's two workers outlast.)
func TestCardPurchasePayoutClawback(t *testing.T) {
	e := newCardEnv(t)
	ctx := context.Background()
	ev, accounts := e.clawbackEvent(e.chain.Accounts[2])
	fan := devchain.NewAccount("clawback fan", 0)
	in, _ := e.cardBuy(ev, fan, 2)
	if in.Amount != 10_000 {
		t.Fatalf("2 tickets at 50.00 cost %d cents", in.Amount)
	}
	waitFor(t, "a payout per party", func() bool { _, n, _ := ledger(t, e.sandbox, accounts); return n == 3 })
	if bs, _, _ := ledger(t, e.sandbox, accounts); fmt.Sprint(bs) != "[7000 2000 1000]" {
		t.Fatalf("paid out %v", bs)
	}

	if _, err := e.api.Chargeback(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the chargeback on chain", func() bool {
		rec, err := e.chain.HubPayment(protocol.PaymentIDOf(in.ID))
		return err == nil && rec.Status == devchain.PaymentChargedBack
	})
	waitFor(t, "every payout clawed back", func() bool { bs, _, _ := ledger(t, e.sandbox, accounts); return allZero(bs) })
	if _, p, r := ledger(t, e.sandbox, accounts); p != 3 || r != 6 {
		t.Fatalf("%d payouts and %d reversals, want 3 and 6 (a ticket's half of each)", p, r)
	}
	time.Sleep(time.Second) // the worker keeps reading the chain: nothing is reversed twice
	if bs, p, r := ledger(t, e.sandbox, accounts); !allZero(bs) || p != 3 || r != 6 {
		t.Fatalf("a second later: balances %v, %d payouts, %d reversals", bs, p, r)
	}

	// A worker behind: it starts after the chargeback, on its own processor ledger.
	sb, err := payments.OpenSandbox(filepath.Join(t.TempDir(), "behind.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	flaky := &flakyPayer{Sandbox: sb, lose: map[int]bool{2: true}, fail: map[int]bool{4: true}}
	cursor := filepath.Join(t.TempDir(), "payouts.db")
	// Its node refuses log queries over 10 blocks: the sale is looked up 10 blocks at a time.
	node := &prunedNode{Client: e.chain.Client, limit: 10}
	worker := func() *payout.Worker {
		w, err := payout.New(payout.Config{Chain: node, RangeLimit: 10, Factory: e.chain.Factory, Payer: flaky, Path: cursor,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	// steps runs the worker until it fails or has read the chain up to now.
	steps := func(w *payout.Worker) error {
		head, err := e.chain.Client.BlockNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for range head/10 + 2 {
			if err := w.Step(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	w := worker()
	if err := steps(w); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("the first pass: %v, want the lost answer", err)
	}
	w.Close() // a restart mid-way
	w = worker()
	defer w.Close()
	if err := steps(w); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("the second pass: %v, want the refused connection", err)
	}
	if err := steps(w); err != nil {
		t.Fatal(err)
	}
	if bs, p, r := ledger(t, sb, accounts); !allZero(bs) || p != 3 || r != 6 {
		t.Fatalf("the worker behind: balances %v, %d payouts, %d reversals (want 0s, 3, 6)", bs, p, r)
	}
	ps, _ := sb.Payouts()
	for _, p := range ps {
		if p.AmountReversed != p.Amount {
			t.Fatalf("payout %+v not reversed exactly", p)
		}
	}
}

// TestCardPurchasePayoutClawbackCheckedIn: a 3-ticket card purchase is refunded after one of
// its tickets was checked in at the door. The hub burns the two others and only marks the
// checked-in one (CardReversed with burned = false), but the money went back to the fan all
// the same: every party's payout is reversed in full.
func TestCardPurchasePayoutClawbackCheckedIn(t *testing.T) {
	e := newCardEnv(t)
	ctx := context.Background()
	gate := e.chain.Accounts[2]
	ev, accounts := e.clawbackEvent(gate)
	fan := devchain.NewAccount("clawback checked-in fan", 0)
	in, first := e.cardBuy(ev, fan, 3)
	waitFor(t, "a payout per party", func() bool { _, n, _ := ledger(t, e.sandbox, accounts); return n == 3 })
	if bs, _, _ := ledger(t, e.sandbox, accounts); fmt.Sprint(bs) != "[10500 3000 1500]" {
		t.Fatalf("paid out %v", bs)
	}

	e.chain.Warp(7*24*time.Hour - time.Hour) // the doors are open
	e.chain.MustTransact(gate, ev, devchain.Ticket.PackCheckIn(first), nil)
	if _, err := e.api.Refund(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refund on chain", func() bool {
		rec, err := e.chain.HubPayment(protocol.PaymentIDOf(in.ID))
		return err == nil && rec.Status == devchain.PaymentRefunded
	})
	logs, err := e.chain.Client.FilterLogs(ctx, ethereum.FilterQuery{
		Addresses: []common.Address{ev}, Topics: [][]common.Hash{{crypto.Keccak256Hash([]byte("CardReversed(uint256,bool)"))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, l := range logs {
		if r, err := devchain.Ticket.UnpackCardReversedEvent(&l); err == nil && !r.Burned {
			marked++
			if r.TokenId.Cmp(first) != 0 {
				t.Fatalf("ticket %s marked, the checked-in one is %s", r.TokenId, first)
			}
		}
	}
	if len(logs) != 3 || marked != 1 {
		t.Fatalf("%d CardReversed logs, %d marked; want 3, 1", len(logs), marked)
	}
	waitFor(t, "every payout clawed back", func() bool { bs, _, _ := ledger(t, e.sandbox, accounts); return allZero(bs) })
	if _, p, r := ledger(t, e.sandbox, accounts); p != 3 || r != 9 {
		t.Fatalf("%d payouts and %d reversals, want 3 and 9 (a ticket's third of each)", p, r)
	}
}

// TestCardPurchasePayoutClawbackResale: a ticket resold by card at 55.00 pays the seller
// 52.50 (face value and half the markup) and splits the other 2.50 among the parties; the
// card payment is charged back, the hub burns the ticket, and the seller's payout and each
// party's are reversed in full.
func TestCardPurchasePayoutClawbackResale(t *testing.T) {
	e := newCardEnv(t)
	ctx := context.Background()
	ev, accounts := e.clawbackEvent(e.chain.Accounts[2])
	seller := e.chain.Accounts[6]
	accounts = append(accounts, payments.SandboxAccount(seller.Address.Hex()))
	e.chain.FundUSD(ev, devchain.USDC(100), seller)
	rcpt := e.chain.MustTransact(seller, ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(50)), nil)
	var id *big.Int
	for _, l := range rcpt.Logs {
		if p, err := devchain.Ticket.UnpackPurchasedEvent(l); err == nil {
			id = p.FirstTokenId
		}
	}
	if id == nil {
		t.Fatal("no Purchased log")
	}
	e.chain.MustTransact(seller, ev, devchain.Ticket.PackList(id, devchain.USDC(55)), nil)

	fan := devchain.NewAccount("clawback resale fan", 0)
	var in protocol.PaymentIntent
	e.result(protocol.MethodCreateResalePayment, []any{ev.Hex(), id.Uint64(), fan.Address.Hex()}, &in)
	if _, err := e.api.Confirm(ctx, in.ID, payments.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"}); err != nil {
		t.Fatal(err)
	}
	pid, _ := protocol.ParseHash32("paymentId", in.PaymentID)
	req, sig := e.chain.SignForward(fan, ev, devchain.Ticket.PackRequestResale(pid, id), 400_000, e.chain.Now()+3600)
	var st protocol.RequestStatus
	e.result(protocol.MethodSendForward, []any{protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}}, &st)
	e.waitState(in.ID, protocol.PaymentMinted)
	waitFor(t, "the seller's and the parties' payouts", func() bool { _, n, _ := ledger(t, e.sandbox, accounts); return n == 4 })
	if bs, _, _ := ledger(t, e.sandbox, accounts); fmt.Sprint(bs) != "[175 50 25 5250]" {
		t.Fatalf("paid out %v", bs)
	}

	if _, err := e.api.Chargeback(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every payout clawed back", func() bool { bs, _, _ := ledger(t, e.sandbox, accounts); return allZero(bs) })
	if _, p, r := ledger(t, e.sandbox, accounts); p != 4 || r != 4 {
		t.Fatalf("%d payouts and %d reversals, want 4 and 4", p, r)
	}
}
