package payments_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagepass/stagepass/relay/payments"
)

// TestPayoutReversalSandbox: a transfer reversal over the sandbox's HTTP API takes money back
// from the party's account once per key, however often it is sent and after a reopen;
// more than is left of the transfer, a key reused for another amount and an unknown transfer
// are refused with a clear error, and leave the ledger as it was.
func TestPayoutReversalSandbox(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sb.db")
	sb, c, _ := server(t, path)
	ctx := context.Background()
	acct := payments.SandboxAccount("0xA1")
	tr, err := c.Pay(ctx, payments.Payout{Key: "0xabc/1", Party: "0xA1", Amount: 2700, Currency: "usd", Group: "0xabc"})
	if err != nil {
		t.Fatal(err)
	}
	balance := func() int64 {
		t.Helper()
		b, err := sb.Balance(acct)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if b := balance(); b != 2700 {
		t.Fatalf("balance %d after the payout", b)
	}
	r1, err := c.Reverse(ctx, payments.Reversal{Key: "0xdef/4:0xabc/1", Transfer: tr.ID, Amount: 900})
	if err != nil || !strings.HasPrefix(r1.ID, "trr_") || r1.Amount != 900 {
		t.Fatalf("reversal %+v %v", r1, err)
	}
	again, err := c.Reverse(ctx, payments.Reversal{Key: "0xdef/4:0xabc/1", Transfer: tr.ID, Amount: 900})
	if err != nil || again.ID != r1.ID {
		t.Fatalf("a retried reversal %+v %v, want %s once", again, err, r1.ID)
	}
	if b := balance(); b != 1800 {
		t.Fatalf("balance %d after reversing 900 of 2700 (twice, one key)", b)
	}
	// More than is left: refused, nothing recorded.
	_, err = c.Reverse(ctx, payments.Reversal{Key: "0xdef/5:0xabc/1", Transfer: tr.ID, Amount: 1801})
	if !errors.Is(err, payments.ErrInvalid) || !strings.Contains(err.Error(), "1800 of 2700 left to reverse, not 1801") {
		t.Fatalf("over-reversal: %v", err)
	}
	if _, err := c.Reverse(ctx, payments.Reversal{Key: "0xdef/4:0xabc/1", Transfer: tr.ID, Amount: 901}); !errors.Is(err, payments.ErrInvalid) {
		t.Fatalf("a key reused for another amount: %v", err)
	}
	if _, err := c.Reverse(ctx, payments.Reversal{Key: "0xdef/6:0xabc/1", Transfer: "tr_nope", Amount: 1}); !errors.Is(err, payments.ErrNotFound) {
		t.Fatalf("unknown transfer: %v", err)
	}
	if _, err := c.Reverse(ctx, payments.Reversal{Key: "0xdef/7:0xabc/1", Transfer: tr.ID, Amount: 0}); !errors.Is(err, payments.ErrInvalid) {
		t.Fatalf("zero reversal: %v", err)
	}
	if b := balance(); b != 1800 {
		t.Fatalf("balance %d after refused reversals", b)
	}
	// The rest, exactly: the account is back to zero; the ledger lists both reversals.
	if _, err := c.Reverse(ctx, payments.Reversal{Key: "0xdef/5:0xabc/1", Transfer: tr.ID, Amount: 1800}); err != nil {
		t.Fatal(err)
	}
	if b := balance(); b != 0 {
		t.Fatalf("balance %d after reversing everything", b)
	}
	revs, err := sb.Reversals()
	if err != nil || len(revs) != 2 {
		t.Fatalf("reversals %+v %v", revs, err)
	}
	ps, err := sb.Payouts()
	if err != nil || len(ps) != 1 || ps[0].AmountReversed != 2700 {
		t.Fatalf("payouts %+v %v", ps, err)
	}
	if _, err := sb.Reverse(ctx, payments.Reversal{Key: "0xdef/8:0xabc/1", Transfer: tr.ID, Amount: 1}); !errors.Is(err, payments.ErrInvalid) {
		t.Fatalf("reversing a fully reversed transfer: %v", err)
	}
}

// TestStripePayoutReversal: a reversal becomes a Stripe transfer reversal of the transfer,
// for the amount, keyed for idempotency by the reversal's key (stripe-mock checks the
// request against Stripe's API spec).
func TestStripePayoutReversal(t *testing.T) {
	rec := &recorder{next: http.DefaultTransport}
	s := payments.NewStripe("sk_test_123", stripeMock(t), &http.Client{Transport: rec, Timeout: 10 * time.Second})
	ctx := context.Background()
	r, err := s.Reverse(ctx, payments.Reversal{Key: "0xbeef/2:0xfeed/3", Transfer: "tr_1Feed", Amount: 900})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.ID, "trr_") || r.Amount != 900 || r.Transfer != "tr_1Feed" {
		t.Fatalf("reversal %+v", r)
	}
	if sent := rec.last(); sent.Get("amount") != "900" || sent.Get("metadata[key]") != "0xbeef/2:0xfeed/3" {
		t.Fatalf("sent %v", sent)
	}
	rec.mu.Lock()
	key := rec.header.Get("Idempotency-Key")
	rec.mu.Unlock()
	if key != "0xbeef/2:0xfeed/3" {
		t.Fatalf("Idempotency-Key %q", key)
	}
	if _, err := s.Reverse(ctx, payments.Reversal{Key: "k", Transfer: "tr_1Feed", Amount: 0}); !errors.Is(err, payments.ErrInvalid) {
		t.Fatalf("zero reversal: %v", err)
	}
}
