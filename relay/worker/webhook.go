//go:build js && wasm

package main

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"syscall/js"
	"time"

	"github.com/syumai/workers/cloudflare"

	"github.com/stagepass/stagepass/relay/payments/webhook"
	"github.com/stagepass/stagepass/relay/worker/edge"
)

// processorWebhook is POST /webhooks/processor: the card processor's webhooks, verified
// with WEBHOOK_SECRET (a secret: `wrangler secret put WEBHOOK_SECRET`), stored once in D1
// and, for a payment, pushed as "paid" on the payment topic (edge.ProcessorWebhook).
func processorWebhook(log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		secret := cloudflare.Getenv("WEBHOOK_SECRET")
		if secret == "" {
			http.Error(w, "worker: WEBHOOK_SECRET is not set (a secret)", http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.MaxBody))
		if err != nil {
			http.Error(w, "read the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		fanout, err := stub("FANOUT", "fanout")
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		var db edge.DB
		if v := cloudflare.GetBinding("INDEX"); v.Type() == js.TypeObject {
			db = d1{v}
		}
		// syumai/workers splits every header value at its commas (internal/jshttp.ToHeader):
		// "t=…,v1=…" arrives as two values, joined again here.
		header := strings.Join(r.Header.Values(webhook.Header), ",")
		pub := &edge.HTTPPublisher{Client: &http.Client{Transport: fanout}, Base: "https://fanout"}
		_, err = edge.ProcessorWebhook(r.Context(), db, pub, body, header, secret, time.Now())
		switch {
		case errors.Is(err, edge.ErrWebhookRefused):
			log.Warn("processor webhook refused", "err", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
		case err != nil: // the processor retries a 5xx
			log.Warn("processor webhook", "err", err)
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}
}
