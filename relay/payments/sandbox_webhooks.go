package payments

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stagepass/stagepass/relay/payments/webhook"
)

// webhooks are the endpoints the sandbox posts its events to, as Stripe does: signed with
// the endpoint's secret (webhook.Signature), in the background, retried a few times.
type webhooks struct {
	mu        sync.Mutex
	endpoints map[string]string // URL → signing secret
}

// webhookRetries is how many times a delivery is tried, webhookBackoff the first wait
// between tries (doubling).
const (
	webhookRetries = 5
	webhookBackoff = 200 * time.Millisecond
)

var webhookClient = &http.Client{Timeout: 10 * time.Second}

// SetWebhook makes the sandbox post its events (payment_intent.succeeded and
// .payment_failed, charge.refunded, charge.dispute.created) to url, signed with secret; an
// empty secret removes the endpoint. Deliveries never hold up the API call that caused them.
func (s *Sandbox) SetWebhook(url, secret string) {
	h := &s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.endpoints == nil {
		h.endpoints = map[string]string{}
	}
	if secret == "" {
		delete(h.endpoints, url)
		return
	}
	h.endpoints[url] = secret
}

// send posts one event to every endpoint, each in its own goroutine.
func (h *webhooks) send(typ string, obj webhook.Object) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.endpoints) == 0 {
		return
	}
	body, err := webhook.Payload(randomID("evt_"), typ, now(), obj)
	if err != nil {
		return // an Object always marshals
	}
	for url, secret := range h.endpoints {
		go deliver(url, secret, body)
	}
}

// deliver posts body to url until it answers 2xx or the tries run out; each try is signed
// afresh, as Stripe's retries are.
func deliver(url, secret string, body []byte) error {
	wait := webhookBackoff
	var err error
	for try := 0; try < webhookRetries; try++ {
		if try > 0 {
			time.Sleep(wait)
			wait *= 2
		}
		var req *http.Request
		if req, err = http.NewRequest(http.MethodPost, url, bytes.NewReader(body)); err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhook.Header, webhook.Signature(body, secret, time.Now()))
		var resp *http.Response
		if resp, err = webhookClient.Do(req); err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		err = fmt.Errorf("webhook %s answered %s", url, resp.Status)
	}
	return err
}

func intentObject(in Intent) webhook.Object {
	status := in.Status
	if in.LastError != nil {
		status = StatusRequiresPaymentMethod
	}
	return webhook.Object{ID: in.ID, Object: "payment_intent", Amount: in.Amount, Currency: in.Currency, Status: status}
}

func disputeObject(in Intent) webhook.Object {
	return webhook.Object{
		ID: "dp_" + strings.TrimPrefix(in.ID, "pi_"), Object: "dispute", Amount: in.Amount, Currency: in.Currency,
		PaymentIntent: in.ID, Status: "needs_response",
	}
}
