package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	stripewebhook "github.com/stripe/stripe-go/v82/webhook"

	"github.com/stagepass/stagepass/relay/payments/webhook"
)

const secret = "whsec_test_stagepass"

func event(t *testing.T, typ string, obj webhook.Object) []byte {
	t.Helper()
	b, err := webhook.Payload("evt_123", typ, time.Now().Unix(), obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Our signatures pass stripe-go's ConstructEvent, and stripe-go's pass ours: the two agree
// on the scheme.
func TestAgreesWithStripeGo(t *testing.T) {
	body := event(t, webhook.PaymentSucceeded, webhook.Object{ID: "pi_abc", Object: "payment_intent", Amount: 9000, Currency: "usd", Status: "succeeded"})
	now := time.Now()
	ours := webhook.Signature(body, secret, now)
	ev, err := stripewebhook.ConstructEventWithOptions(body, ours, secret, stripewebhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		t.Fatalf("stripe-go refuses our signature: %v", err)
	}
	if ev.ID != "evt_123" || string(ev.Type) != webhook.PaymentSucceeded {
		t.Fatalf("stripe-go read %s %s", ev.ID, ev.Type)
	}
	if _, err := stripewebhook.ConstructEventWithOptions(body, webhook.Signature(body, "whsec_other", now), secret, stripewebhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true}); err == nil {
		t.Fatal("stripe-go took a signature made with another secret")
	}

	theirs := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: now})
	if theirs.Header != ours {
		t.Fatalf("headers differ: stripe-go %q, ours %q", theirs.Header, ours)
	}
	got, err := webhook.Construct(body, theirs.Header, secret, now)
	if err != nil {
		t.Fatalf("stripe-go's signature refused: %v", err)
	}
	if got.ID != "evt_123" || got.Type != webhook.PaymentSucceeded || got.PaymentIntent != "pi_abc" || got.Amount != 9000 || got.Currency != "usd" {
		t.Fatalf("parsed %+v", got)
	}
	// A header with a second, rolled-over secret's signature first still verifies.
	old := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: "whsec_old", Timestamp: now})
	two := old.Header + ",v1=" + strings.SplitN(ours, "v1=", 2)[1]
	if _, err := webhook.Construct(body, two, secret, now); err != nil {
		t.Fatalf("two signatures: %v", err)
	}
}

func TestRefusesBadSignatures(t *testing.T) {
	body := event(t, webhook.PaymentSucceeded, webhook.Object{ID: "pi_abc", Object: "payment_intent", Amount: 9000, Currency: "usd"})
	now := time.Now()
	good := webhook.Signature(body, secret, now)
	tampered := []byte(strings.Replace(string(body), "9000", "1", 1))
	for name, c := range map[string]struct {
		body   []byte
		header string
		secret string
		at     time.Time
	}{
		"other secret":     {body, webhook.Signature(body, "whsec_other", now), secret, now},
		"tampered body":    {tampered, good, secret, now},
		"stale":            {body, good, secret, now.Add(webhook.DefaultTolerance + time.Second)},
		"no header":        {body, "", secret, now},
		"no v1":            {body, "t=" + strings.TrimPrefix(strings.SplitN(good, ",", 2)[0], "t="), secret, now},
		"bad timestamp":    {body, "t=abc,v1=00", secret, now},
		"no secret set":    {body, good, "", now},
		"v0 scheme only":   {body, strings.Replace(good, "v1=", "v0=", 1), secret, now},
		"signature as hex": {body, strings.Replace(good, "v1=", "v1=zz", 1), secret, now},
	} {
		if _, err := webhook.Construct(c.body, c.header, c.secret, c.at); !errors.Is(err, webhook.ErrSignature) {
			t.Errorf("%s: %v, want ErrSignature", name, err)
		}
	}
}

func TestParse(t *testing.T) {
	ev, err := webhook.Parse(event(t, webhook.ChargeRefunded, webhook.Object{ID: "ch_1", Object: "charge", Amount: 9000, Refunded: 4500, Currency: "USD", PaymentIntent: "pi_r"}))
	if err != nil || ev.PaymentIntent != "pi_r" || ev.Amount != 4500 || ev.Currency != "usd" {
		t.Fatalf("refund %+v %v", ev, err)
	}
	ev, err = webhook.Parse(event(t, webhook.DisputeCreated, webhook.Object{ID: "dp_1", Object: "dispute", Amount: 9000, Currency: "usd", PaymentIntent: "pi_d"}))
	if err != nil || ev.PaymentIntent != "pi_d" || ev.Amount != 9000 {
		t.Fatalf("dispute %+v %v", ev, err)
	}
	// An expanded payment_intent object.
	ev, err = webhook.Parse([]byte(`{"id":"evt_9","object":"event","type":"charge.refunded","data":{"object":{"object":"charge","amount_refunded":5,"payment_intent":{"id":"pi_x"}}}}`))
	if err != nil || ev.PaymentIntent != "pi_x" {
		t.Fatalf("expanded %+v %v", ev, err)
	}
	if ev, err := webhook.Parse(event(t, "customer.created", webhook.Object{ID: "cus_1", Object: "customer"})); !errors.Is(err, webhook.ErrUnhandled) || ev.ID != "evt_123" {
		t.Fatalf("unhandled type: %+v %v", ev, err)
	}
	for name, body := range map[string]string{
		"not json":       `{`,
		"not an event":   `{"id":"pi_1","object":"payment_intent","type":"x"}`,
		"wrong object":   `{"id":"evt_1","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"ch_1","object":"charge"}}}`,
		"no intent":      `{"id":"evt_1","object":"event","type":"charge.refunded","data":{"object":{"id":"ch_1","object":"charge"}}}`,
		"intent not pi_": `{"id":"evt_1","object":"event","type":"charge.dispute.created","data":{"object":{"object":"dispute","payment_intent":"ch_1"}}}`,
	} {
		if _, err := webhook.Parse([]byte(body)); err == nil || errors.Is(err, webhook.ErrUnhandled) {
			t.Errorf("%s: %v, want an error", name, err)
		}
	}
}
