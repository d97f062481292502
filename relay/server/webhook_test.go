package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/relay/payments/webhook"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/wasm/protocol"
)

const webhookSecret = "whsec_test_relay"

// paymentPushes subscribes to a payment's topic and collects its pushes.
type paymentPushes struct {
	mu     sync.Mutex
	states []string
}

func (p *paymentPushes) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.states...)
}

func (e *cardEnv) subscribePayment(id string) *paymentPushes {
	e.t.Helper()
	c := e.dial()
	c.id++
	if err := c.conn.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": protocol.MethodSubscribe, "params": []any{protocol.TopicPayment, map[string]any{"id": id}}}); err != nil {
		e.t.Fatal(err)
	}
	p := &paymentPushes{}
	go func() {
		for {
			var m wsMessageOf[protocol.PaymentProgress]
			if err := c.conn.ReadJSON(&m); err != nil {
				return
			}
			if m.Method == protocol.MethodSubscription {
				p.mu.Lock()
				p.states = append(p.states, m.Params.Result.State)
				p.mu.Unlock()
			}
		}
	}()
	return p
}

func (e *cardEnv) postWebhook(body []byte, secret string) int {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+server.WebhookPath, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set(webhook.Header, webhook.Signature(body, secret, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCardWebhookPaid: a card payment on the sandbox reaches the relay as the processor's
// signed webhook, and the payment topic shows "paid" before the oracles' "verifying"; the
// purchase then mints as before. A forged webhook is refused with 400 and pushes nothing;
// a redelivered event pushes nothing more.
func TestCardWebhookPaid(t *testing.T) {
	e := newCardEnvWith(t, cardOptions{webhook: webhookSecret})
	fan := devchain.NewAccount("card webhook fan", 0)
	var in protocol.PaymentIntent
	e.result(protocol.MethodCreatePayment, []any{e.chain.Demo.Hex(), 0, 1, fan.Address.Hex()}, &in)
	pushes := e.subscribePayment(in.ID)
	time.Sleep(200 * time.Millisecond) // the subscription is in place before the payment
	payCard(t, e, in.ID)
	waitFor(t, "the paid push", func() bool { return strings.Contains(strings.Join(pushes.list(), ","), protocol.PaymentPaid) })
	e.request(fan, in, 0, 1)
	e.waitState(in.ID, protocol.PaymentMinted)
	waitFor(t, "the minted push", func() bool { return strings.Contains(strings.Join(pushes.list(), ","), protocol.PaymentMinted) })
	states := pushes.list()
	paid, verifying := -1, -1
	for i, s := range states {
		if s == protocol.PaymentPaid && paid < 0 {
			paid = i
		}
		if s == protocol.PaymentVerifying && verifying < 0 {
			verifying = i
		}
	}
	if paid < 0 || verifying < 0 || paid > verifying {
		t.Fatalf("pushes %v: want paid before verifying", states)
	}

	// Another intent, not paid: forged, replayed and foreign webhooks.
	var other protocol.PaymentIntent
	e.result(protocol.MethodCreatePayment, []any{e.chain.Demo.Hex(), 0, 1, fan.Address.Hex()}, &other)
	otherPushes := e.subscribePayment(other.ID)
	time.Sleep(200 * time.Millisecond)
	body, err := webhook.Payload("evt_forged_1", webhook.PaymentSucceeded, time.Now().Unix(),
		webhook.Object{ID: other.ID, Object: "payment_intent", Amount: other.Amount, Currency: "usd", Status: "succeeded"})
	if err != nil {
		t.Fatal(err)
	}
	if code := e.postWebhook(body, "whsec_forged"); code != http.StatusBadRequest {
		t.Fatalf("forged webhook: %d, want 400", code)
	}
	unsigned, _ := http.Post(e.base+server.WebhookPath, "application/json", bytes.NewReader(body))
	if unsigned.Body.Close(); unsigned.StatusCode != http.StatusBadRequest {
		t.Fatalf("unsigned webhook: %d, want 400", unsigned.StatusCode)
	}
	time.Sleep(300 * time.Millisecond)
	if got := otherPushes.list(); strings.Contains(strings.Join(got, ","), protocol.PaymentPaid) {
		t.Fatalf("a forged webhook pushed %v", got)
	}
	if p := e.progress(other.ID); p.State != protocol.PaymentCreated {
		t.Fatalf("after a forged webhook: %+v", p)
	}
	// Correctly signed, twice with the same event id: one push.
	for range 2 {
		if code := e.postWebhook(body, webhookSecret); code/100 != 2 {
			t.Fatalf("signed webhook: %d", code)
		}
	}
	waitFor(t, "the paid push", func() bool { return len(otherPushes.list()) > 0 })
	time.Sleep(300 * time.Millisecond)
	n := 0
	for _, s := range otherPushes.list() {
		if s == protocol.PaymentPaid {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d paid pushes for one event id delivered twice: %v", n, otherPushes.list())
	}
	// A payment another relay made: acknowledged, nothing pushed.
	foreign, _ := webhook.Payload("evt_foreign", webhook.PaymentSucceeded, time.Now().Unix(),
		webhook.Object{ID: "pi_not_ours", Object: "payment_intent", Amount: 100, Currency: "usd"})
	if code := e.postWebhook(foreign, webhookSecret); code/100 != 2 {
		t.Fatalf("foreign payment webhook: %d", code)
	}
}

func payCard(t *testing.T, e *cardEnv, id string) {
	t.Helper()
	card := payments.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"}
	if _, err := e.api.Confirm(e.ctx, id, card); err != nil {
		t.Fatalf("pay %s: %v", id, err)
	}
}
