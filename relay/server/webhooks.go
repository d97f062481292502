package server

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/stagepass/stagepass/relay/payments/webhook"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// WebhookPath is where the relay takes the card processor's webhooks (CardConfig.WebhookSecret).
const WebhookPath = "/webhooks/processor"

// seenEvents remembers the webhook event ids already acted on, so a redelivery changes
// nothing. In memory, at most maxSeenEvents (then it starts afresh): after a restart a
// redelivered payment_intent.succeeded is pushed again only if the oracles have not begun,
// which shows the fan nothing new.
type seenEvents struct {
	mu  sync.Mutex
	ids map[string]bool
}

const maxSeenEvents = 100_000

// first records id and says whether it is new.
func (s *seenEvents) first(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil || len(s.ids) >= maxSeenEvents {
		s.ids = map[string]bool{}
	}
	if s.ids[id] {
		return false
	}
	s.ids[id] = true
	return true
}

// processorWebhook takes the processor's signed events (POST WebhookPath). A bad signature
// is 400 and changes nothing. payment_intent.succeeded for a payment this relay created
// pushes "paid" on its payment topic, once per event id, unless the oracles' progress is
// already further on. The webhook only speeds up what the fan sees: the oracles still ask
// the processor themselves before anything reaches the chain. Other events, and payments
// this relay did not create, are acknowledged and ignored (refunds and chargebacks reach
// the chain through the oracles' reports).
func (r *Relay) processorWebhook(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, webhook.MaxBody))
	if err != nil {
		http.Error(w, "read the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	ev, err := webhook.Construct(body, req.Header.Get(webhook.Header), r.cards.WebhookSecret, time.Now())
	switch {
	case errors.Is(err, webhook.ErrUnhandled):
		w.WriteHeader(http.StatusNoContent)
		return
	case err != nil:
		r.cfg.Logger.Warn("processor webhook refused", "err", err, "remote", req.RemoteAddr)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if ev.Type != webhook.PaymentSucceeded {
		r.cfg.Logger.Info("processor webhook", "event", ev.ID, "type", ev.Type, "payment", ev.PaymentIntent)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	pid := protocol.PaymentIDOf(ev.PaymentIntent)
	if _, err := r.agg.PaymentRef(req.Context(), pid); err != nil {
		w.WriteHeader(http.StatusNoContent) // another relay's payment, or not a Stagepass one
		return
	}
	if _, begun := r.agg.Progress(pid); !begun && r.webhookEvents.first(ev.ID) {
		k, n := r.agg.Threshold()
		r.publishProgress(protocol.PaymentProgress{
			ID: ev.PaymentIntent, PaymentID: protocol.Hex32(pid), State: protocol.PaymentPaid,
			Threshold: k, Members: n, Time: time.Now().UnixMilli(),
		})
	}
	w.WriteHeader(http.StatusNoContent)
}
