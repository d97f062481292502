package payments

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	stripe "github.com/stripe/stripe-go/v82"
)

// Stripe is the Processor for Stripe itself, through github.com/stripe/stripe-go. In
// production the fan pays on Stripe's own checkout (the card never reaches Stagepass); the
// relay creates intents, and oracle nodes retrieve them to verify a payment.
type Stripe struct {
	client *stripe.Client
	// Accounts maps a party's address (lowercase 0x hex) to its Stripe connected account
	// ("acct_…"), onboarded through Stripe Connect; payouts to a party without one fail
	// and are retried by the payout worker until it has one.
	Accounts map[string]string
}

var (
	_ Processor = (*Stripe)(nil)
	_ Payer     = (*Stripe)(nil)
)

// NewStripe returns a Stripe processor with secret key `key`. A non-empty baseURL points it
// at another server speaking Stripe's API (stripe-mock in tests).
func NewStripe(key, baseURL string, httpClient *http.Client) *Stripe {
	cfg := &stripe.BackendConfig{MaxNetworkRetries: stripe.Int64(2), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelError}}
	if baseURL != "" {
		cfg.URL = stripe.String(strings.TrimRight(baseURL, "/"))
	}
	if httpClient != nil {
		cfg.HTTPClient = httpClient
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, cfg),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, cfg),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, cfg),
	}
	return &Stripe{client: stripe.NewClient(key, stripe.WithBackends(backends))}
}

// CreateIntent implements Processor.
func (s *Stripe) CreateIntent(ctx context.Context, amount int64, currency string, metadata map[string]string) (Intent, error) {
	p := &stripe.PaymentIntentCreateParams{Amount: stripe.Int64(amount), Currency: stripe.String(strings.ToLower(currency))}
	p.PaymentMethodTypes = stripe.StringSlice([]string{"card"})
	for k, v := range metadata {
		p.AddMetadata(k, v)
	}
	pi, err := s.client.V1PaymentIntents.Create(ctx, p)
	if err != nil {
		return Intent{}, stripeError("create payment intent", err)
	}
	return fromStripe(pi), nil
}

// testPaymentMethods maps Stripe's test card numbers to the test payment methods Stripe's
// API takes in their place (raw numbers are not accepted server-side).
var testPaymentMethods = map[string]string{
	"4242424242424242": "pm_card_visa",
	"5555555555554444": "pm_card_mastercard",
	"4000000000000002": "pm_card_chargeDeclined",
	"4000000000009995": "pm_card_chargeDeclinedInsufficientFunds",
	"4000000000000069": "pm_card_chargeDeclinedExpiredCard",
	"4000000000000127": "pm_card_chargeDeclinedIncorrectCvc",
	"4000000000000259": "pm_card_createDispute",
}

// Confirm implements Processor for Stripe's test mode only: the card must be one of
// Stripe's test numbers. Live cards are paid on Stripe's checkout, never through here.
func (s *Stripe) Confirm(ctx context.Context, id string, card Card) (Intent, error) {
	pm, ok := testPaymentMethods[strings.NewReplacer(" ", "", "-", "").Replace(card.Number)]
	if !ok {
		return Intent{}, fmt.Errorf("%w: only Stripe test cards can be confirmed server-side; fans pay on Stripe's checkout", ErrInvalid)
	}
	pi, err := s.client.V1PaymentIntents.Confirm(ctx, id, &stripe.PaymentIntentConfirmParams{PaymentMethod: stripe.String(pm)})
	if err != nil {
		return Intent{}, stripeError("confirm payment intent", err)
	}
	return fromStripe(pi), nil
}

// Retrieve implements Processor. The latest charge is expanded, for refunds, disputes and
// the card's fingerprint.
func (s *Stripe) Retrieve(ctx context.Context, id string) (Intent, error) {
	p := &stripe.PaymentIntentRetrieveParams{}
	p.AddExpand("latest_charge")
	pi, err := s.client.V1PaymentIntents.Retrieve(ctx, id, p)
	if err != nil {
		return Intent{}, stripeError("retrieve payment intent", err)
	}
	return fromStripe(pi), nil
}

// Refund implements Processor.
func (s *Stripe) Refund(ctx context.Context, id string) (Intent, error) {
	if _, err := s.client.V1Refunds.Create(ctx, &stripe.RefundCreateParams{PaymentIntent: stripe.String(id)}); err != nil {
		return Intent{}, stripeError("refund payment intent", err)
	}
	return s.Retrieve(ctx, id)
}

// Pay implements Payer with a Stripe transfer to the party's connected account, sent with
// the payout's key as its Idempotency-Key, so Stripe makes it once.
func (s *Stripe) Pay(ctx context.Context, p Payout) (Payout, error) {
	if p.Destination == "" {
		p.Destination = s.Accounts[strings.ToLower(p.Party)]
	}
	if p.Destination == "" {
		return p, fmt.Errorf("%w: party %s has no Stripe connected account", ErrInvalid, p.Party)
	}
	params := &stripe.TransferCreateParams{
		Amount: stripe.Int64(p.Amount), Currency: stripe.String(strings.ToLower(p.Currency)),
		Destination: stripe.String(p.Destination), TransferGroup: stripe.String(p.Group),
	}
	params.AddMetadata("party", p.Party)
	params.SetIdempotencyKey(p.Key)
	t, err := s.client.V1Transfers.Create(ctx, params)
	if err != nil {
		return p, stripeError("create transfer", err)
	}
	p.ID, p.Created = t.ID, t.Created
	return p, nil
}

// Reverse implements Payer with a Stripe transfer reversal, sent with the reversal's key as
// its Idempotency-Key, so Stripe makes it once (and refuses more than is left of the transfer).
func (s *Stripe) Reverse(ctx context.Context, r Reversal) (Reversal, error) {
	if r.Transfer == "" || r.Amount <= 0 {
		return r, fmt.Errorf("%w: a reversal needs a transfer and a positive amount", ErrInvalid)
	}
	params := &stripe.TransferReversalCreateParams{ID: stripe.String(r.Transfer), Amount: stripe.Int64(r.Amount)}
	params.AddMetadata("key", r.Key)
	params.SetIdempotencyKey(r.Key)
	t, err := s.client.V1TransferReversals.Create(ctx, params)
	if err != nil {
		return r, stripeError("reverse transfer", err)
	}
	r.ID, r.Created = t.ID, t.Created
	return r, nil
}

func fromStripe(pi *stripe.PaymentIntent) Intent {
	in := Intent{
		ID: pi.ID, Object: "payment_intent", Amount: pi.Amount, Currency: string(pi.Currency),
		Status: string(pi.Status), Metadata: pi.Metadata, ClientSecret: pi.ClientSecret, Created: pi.Created,
		Livemode: pi.Livemode,
	}
	if in.Metadata == nil {
		in.Metadata = map[string]string{}
	}
	if e := pi.LastPaymentError; e != nil && (e.Msg != "" || e.Code != "" || e.DeclineCode != "") {
		in.LastError = &CardError{Code: string(e.Code), DeclineCode: string(e.DeclineCode), Message: e.Msg}
	}
	if ch := pi.LatestCharge; ch != nil {
		in.AmountRefunded, in.Disputed = ch.AmountRefunded, ch.Disputed
		if d := ch.PaymentMethodDetails; d != nil && d.Card != nil {
			in.Card = &CardInfo{Brand: string(d.Card.Brand), Last4: d.Card.Last4, Fingerprint: d.Card.Fingerprint}
		}
	}
	return in
}

// stripeError maps Stripe's errors onto the package's: card declines to *CardError, a
// missing object to ErrNotFound, bad requests to ErrInvalid.
func stripeError(doing string, err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("stripe: %s: %w", doing, err)
	}
	switch {
	case se.Type == stripe.ErrorTypeCard:
		return &CardError{Code: string(se.Code), DeclineCode: string(se.DeclineCode), Message: se.Msg}
	case se.HTTPStatusCode == http.StatusNotFound || se.Code == stripe.ErrorCodeResourceMissing:
		return fmt.Errorf("%w: stripe: %s: %s", ErrNotFound, doing, se.Msg)
	default:
		return fmt.Errorf("%w: stripe: %s: %s", ErrInvalid, doing, se.Msg)
	}
}
