package edge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stagepass/stagepass/relay/payments/webhook"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// ErrWebhookRefused: the webhook's signature or body is not acceptable (HTTP 400).
var ErrWebhookRefused = errors.New("webhook refused")

// ProcessorWebhook takes one of the card processor's webhooks (POST /webhooks/processor)
// with the native relay's verifier (relay/payments/webhook). A verified event is stored
// once in the webhook_events table (by event id: a redelivery changes nothing and pushes
// nothing); a payment_intent.succeeded then pushes "paid" on the payment topic, under both
// the processor id and the payment id, through the Fanout. It says whether the event was
// new. Unlike the native relay, the worker has no ledger of the payments it created (it
// does not serve sp_createPayment): every verified payment is pushed, which only tells the
// payment's own subscribers what the processor signed. Oracles verify with the processor
// themselves.
func ProcessorWebhook(ctx context.Context, db DB, fanout Publisher, body []byte, header, secret string, now time.Time) (bool, error) {
	ev, err := webhook.Construct(body, header, secret, now)
	if errors.Is(err, webhook.ErrUnhandled) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrWebhookRefused, err)
	}
	if db == nil {
		return false, errors.New("worker: no INDEX binding (D1) to record webhooks in")
	}
	var rows []struct {
		ID string `json:"id"`
	}
	if err := db.Query(ctx, &rows, `INSERT INTO webhook_events (id, type, payment_intent, amount, currency, created, received)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING id`,
		ev.ID, ev.Type, ev.PaymentIntent, ev.Amount, ev.Currency, ev.Created, now.Unix()); err != nil {
		return false, fmt.Errorf("record webhook %s: %w", ev.ID, err)
	}
	if len(rows) == 0 || ev.Type != webhook.PaymentSucceeded {
		return len(rows) > 0, nil
	}
	pid := protocol.Hex32(protocol.PaymentIDOf(ev.PaymentIntent))
	p := protocol.PaymentProgress{ID: ev.PaymentIntent, PaymentID: pid, State: protocol.PaymentPaid, Time: now.UnixMilli()}
	for _, key := range []string{PaymentKey(pid), PaymentKey(ev.PaymentIntent)} {
		if err := fanout.Publish(ctx, key, p); err != nil {
			return true, fmt.Errorf("push %s: %w", key, err)
		}
	}
	return true, nil
}

// PaymentKey is the Fanout's key of the payment topic for a 0x payment id or a processor
// id (relay.mjs builds the same).
func PaymentKey(id string) string {
	if strings.HasPrefix(id, "0x") {
		id = strings.ToLower(id)
	}
	return "payment:" + id
}
