package payments_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/relay/payments/webhook"
)

// The sandbox posts a signed, Stripe-shaped event for each payment, decline, refund and
// chargeback, retrying an endpoint that fails.
func TestSandboxWebhooks(t *testing.T) {
	const secret = "whsec_sandbox_test"
	var mu sync.Mutex
	var got []webhook.Event
	fails := 1 // the first delivery is answered 500: the sandbox must try again
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := webhook.Construct(body, r.Header.Get(webhook.Header), secret, time.Now())
		if err != nil {
			t.Errorf("delivery: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			http.Error(w, "try later", http.StatusInternalServerError)
			return
		}
		got = append(got, ev)
	}))
	defer srv.Close()
	sb, err := payments.OpenSandbox(filepath.Join(t.TempDir(), "sandbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	sb.SetWebhook(srv.URL, secret)
	ctx := context.Background()
	card := func(n string) payments.Card {
		return payments.Card{Number: n, ExpMonth: 12, ExpYear: time.Now().Year() + 1, CVC: "123"}
	}
	wait := func(n int) []webhook.Event {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			if len(got) >= n {
				out := append([]webhook.Event(nil), got...)
				mu.Unlock()
				return out
			}
			mu.Unlock()
		}
		t.Fatalf("%d webhooks, want %d", len(got), n)
		return nil
	}

	in, err := sb.CreateIntent(ctx, 9000, "usd", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Confirm(ctx, in.ID, card("4242424242424242")); err != nil {
		t.Fatal(err)
	}
	ev := wait(1)[0]
	if ev.Type != webhook.PaymentSucceeded || ev.PaymentIntent != in.ID || ev.Amount != 9000 || ev.Currency != "usd" {
		t.Fatalf("payment webhook %+v", ev)
	}
	if _, err := sb.Refund(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if ev := wait(2)[1]; ev.Type != webhook.ChargeRefunded || ev.PaymentIntent != in.ID || ev.Amount != 9000 {
		t.Fatalf("refund webhook %+v", ev)
	}

	declined, _ := sb.CreateIntent(ctx, 500, "usd", nil)
	if _, err := sb.Confirm(ctx, declined.ID, card("4000000000000002")); err == nil {
		t.Fatal("the decline card paid")
	}
	if ev := wait(3)[2]; ev.Type != webhook.PaymentFailed || ev.PaymentIntent != declined.ID {
		t.Fatalf("decline webhook %+v", ev)
	}

	disputed, _ := sb.CreateIntent(ctx, 700, "usd", nil)
	if _, err := sb.Confirm(ctx, disputed.ID, card("5555555555554444")); err != nil {
		t.Fatal(err)
	}
	wait(4)
	if _, err := sb.Chargeback(ctx, disputed.ID); err != nil {
		t.Fatal(err)
	}
	evs := wait(5)
	if ev := evs[4]; ev.Type != webhook.DisputeCreated || ev.PaymentIntent != disputed.ID || ev.Amount != 700 {
		t.Fatalf("dispute webhook %+v", ev)
	}
	ids := map[string]bool{}
	for _, e := range evs {
		ids[e.ID] = true
	}
	if len(ids) != len(evs) {
		t.Fatalf("event ids repeat: %+v", evs)
	}

	// Without an endpoint nothing is sent.
	sb.SetWebhook(srv.URL, "")
	quiet, _ := sb.CreateIntent(ctx, 100, "usd", nil)
	if _, err := sb.Confirm(ctx, quiet.ID, card("4242424242424242")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 5 {
		t.Fatalf("%d webhooks after the endpoint was removed", len(got))
	}
}
