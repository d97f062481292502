// Package webhook verifies and reads the card processor's webhooks: Stripe's signature
// scheme and the four events the relay acts on. The embedded sandbox signs its webhooks
// with it too.
//
// It is hand-written on the standard library, not stripe-go's webhook package, because the
// Workers build (relay/worker, GOOS=js GOARCH=wasm) shares it: stripe-go would bring its
// whole API client into a worker that Cloudflare limits in size, for twenty lines of HMAC.
// Its tests check that it agrees with stripe-go's webhook.ConstructEvent and
// GenerateTestSignedPayload both ways.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is the HTTP header that carries the signature.
const Header = "Stripe-Signature"

// DefaultTolerance is how old a signature may be (Stripe's default): older ones are
// refused, so a captured webhook cannot be replayed later.
const DefaultTolerance = 5 * time.Minute

// MaxBody is the largest webhook body read (Stripe's events are a few kilobytes).
const MaxBody = 256 << 10

// The events the relay acts on.
const (
	PaymentSucceeded = "payment_intent.succeeded"
	PaymentFailed    = "payment_intent.payment_failed"
	ChargeRefunded   = "charge.refunded"
	DisputeCreated   = "charge.dispute.created"
)

var (
	// ErrSignature: the signature is missing, malformed, stale or does not match.
	ErrSignature = errors.New("webhook: bad signature")
	// ErrUnhandled: a correctly signed event of a type the relay does not act on (answer
	// it 2xx all the same, or the processor retries it).
	ErrUnhandled = errors.New("webhook: event type not handled")
)

// Event is what the relay reads from a webhook.
type Event struct {
	ID            string // "evt_…": a retried delivery carries the same id
	Type          string // one of the constants above
	PaymentIntent string // "pi_…"
	Amount        int64  // minor units: the intent's, the refund's or the dispute's
	Currency      string
	Created       int64 // unix seconds
}

// Signature is the header value signing payload with secret at time t:
// "t=<unix>,v1=hex(HMAC-SHA256(secret, "<unix>." + payload))".
func Signature(payload []byte, secret string, t time.Time) string {
	return fmt.Sprintf("t=%d,v1=%s", t.Unix(), hex.EncodeToString(mac(payload, secret, t.Unix())))
}

func mac(payload []byte, secret string, ts int64) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte("."))
	m.Write(payload)
	return m.Sum(nil)
}

// Verify checks header against payload and secret: one of its v1 signatures (there are
// several while a secret is rolled) must match, made at most tolerance before now.
func Verify(payload []byte, header, secret string, tolerance time.Duration, now time.Time) error {
	if secret == "" {
		return fmt.Errorf("%w: no webhook secret is configured", ErrSignature)
	}
	var ts int64 = -1
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: timestamp %q is not a number", ErrSignature, v)
			}
			ts = n
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if ts < 0 || len(sigs) == 0 {
		return fmt.Errorf("%w: the %s header needs t= and v1=", ErrSignature, Header)
	}
	if age := now.Sub(time.Unix(ts, 0)); age > tolerance {
		return fmt.Errorf("%w: signed %s ago, more than the %s allowed", ErrSignature, age.Round(time.Second), tolerance)
	}
	want := mac(payload, secret, ts)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrSignature)
}

// wire is the part of a Stripe event the relay reads.
type wire struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Type    string `json:"type"`
	Created int64  `json:"created"`
	Data    struct {
		Object struct {
			ID            string          `json:"id"`
			Object        string          `json:"object"`
			Amount        int64           `json:"amount"`
			Refunded      int64           `json:"amount_refunded"`
			Currency      string          `json:"currency"`
			PaymentIntent json.RawMessage `json:"payment_intent"` // an id, or the expanded object
		} `json:"object"`
	} `json:"data"`
}

// Parse reads an event (its signature already verified). An event of another type gives
// ErrUnhandled with its id and type filled in.
func Parse(payload []byte) (Event, error) {
	var w wire
	if err := json.Unmarshal(payload, &w); err != nil {
		return Event{}, fmt.Errorf("webhook: the body is not a JSON event: %w", err)
	}
	if !strings.HasPrefix(w.ID, "evt_") || w.Object != "event" || w.Type == "" {
		return Event{}, fmt.Errorf("webhook: not an event (id %q, object %q, type %q)", w.ID, w.Object, w.Type)
	}
	ev := Event{ID: w.ID, Type: w.Type, Created: w.Created}
	o := w.Data.Object
	switch w.Type {
	case PaymentSucceeded, PaymentFailed:
		if o.Object != "payment_intent" {
			return ev, fmt.Errorf("webhook: %s carries a %q, not a payment_intent", w.Type, o.Object)
		}
		ev.PaymentIntent, ev.Amount = o.ID, o.Amount
	case ChargeRefunded, DisputeCreated:
		pi, err := intentID(o.PaymentIntent)
		if err != nil {
			return ev, fmt.Errorf("webhook: %s: %w", w.Type, err)
		}
		ev.PaymentIntent, ev.Amount = pi, o.Amount
		if w.Type == ChargeRefunded {
			ev.Amount = o.Refunded
		}
	default:
		return ev, ErrUnhandled
	}
	if !strings.HasPrefix(ev.PaymentIntent, "pi_") || len(ev.PaymentIntent) > 255 {
		return ev, fmt.Errorf("webhook: %s names no payment intent (%q)", w.Type, ev.PaymentIntent)
	}
	ev.Currency = strings.ToLower(o.Currency)
	return ev, nil
}

func intentID(raw json.RawMessage) (string, error) {
	var id string
	if err := json.Unmarshal(raw, &id); err == nil {
		return id, nil
	}
	var obj struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.ID == "" {
		return "", errors.New("payment_intent is neither an id nor an object with one")
	}
	return obj.ID, nil
}

// Construct verifies payload against header (DefaultTolerance) and parses it.
func Construct(payload []byte, header, secret string, now time.Time) (Event, error) {
	if err := Verify(payload, header, secret, DefaultTolerance, now); err != nil {
		return Event{}, err
	}
	return Parse(payload)
}

// Object is the data.object of an event as Payload renders it.
type Object struct {
	ID            string `json:"id"`
	Object        string `json:"object"` // "payment_intent", "charge" or "dispute"
	Amount        int64  `json:"amount"`
	Refunded      int64  `json:"amount_refunded,omitempty"`
	Currency      string `json:"currency"`
	PaymentIntent string `json:"payment_intent,omitempty"` // charges and disputes
	Status        string `json:"status,omitempty"`
}

// Payload renders a Stripe-shaped event (the embedded sandbox's webhooks).
func Payload(id, typ string, created int64, obj Object) ([]byte, error) {
	return json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "created": created, "livemode": false,
		"pending_webhooks": 1, "data": map[string]any{"object": obj},
	})
}
