// Package payments is the relay's view of card payment processors: one interface, behind
// which sit the embedded sandbox (sandbox.go, a persistent Stripe-shaped processor for
// development and tests) and, later, Stripe itself.
//
// Oracle nodes use the same interface to check, independently, that a payment the chain is
// asked to honour was really captured, for the amount, buyer, event and quantity its
// metadata binds it to (claims 6 and 14).
package payments

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Intent states, as Stripe names them.
const (
	StatusRequiresPaymentMethod = "requires_payment_method"
	StatusSucceeded             = "succeeded"
	StatusCanceled              = "canceled"
)

// Metadata keys that bind a payment to one purchase on one chain. The chain must see the
// same values before it mints, so nobody can claim someone else's payment.
const (
	MetaChainID  = "chain_id"
	MetaEvent    = "event"
	MetaBuyer    = "buyer"
	MetaTier     = "tier"
	MetaQuantity = "quantity"
)

// Intent is a payment intent.
type Intent struct {
	ID           string            `json:"id"`
	Object       string            `json:"object"` // "payment_intent"
	Amount       int64             `json:"amount"` // minor units (cents)
	Currency     string            `json:"currency"`
	Status       string            `json:"status"`
	Metadata     map[string]string `json:"metadata"`
	ClientSecret string            `json:"client_secret"`
	Created      int64             `json:"created"`
	// LastError says why the last confirmation failed (a decline), if it did.
	LastError *CardError `json:"last_payment_error,omitempty"`
	// Card is the card that paid: its brand, last four digits and fingerprint (the same
	// card always has the same fingerprint — a signal for bot detection).
	Card *CardInfo `json:"card,omitempty"`
	// AmountRefunded is what was refunded; Disputed is set when the cardholder's bank
	// charged the payment back.
	AmountRefunded int64 `json:"amount_refunded"`
	Disputed       bool  `json:"disputed"`
	// Livemode is false for test-mode payments (the sandbox's are all test mode): their
	// test cards are shared by everyone, so they are no signal about a buyer.
	Livemode bool `json:"livemode"`
}

// CardInfo describes the card that paid.
type CardInfo struct {
	Brand       string `json:"brand"`
	Last4       string `json:"last4"`
	Fingerprint string `json:"fingerprint"`
}

// Card is what the fan types on the checkout page.
type Card struct {
	Number   string
	ExpMonth int
	ExpYear  int
	CVC      string
}

// CardError is a decline, with Stripe's codes.
type CardError struct {
	Code        string `json:"code"`         // "card_declined", "expired_card", "incorrect_cvc", …
	DeclineCode string `json:"decline_code"` // "generic_decline", "insufficient_funds", …
	Message     string `json:"message"`
}

func (e *CardError) Error() string { return "payments: " + e.Message }

// Errors callers branch on.
var (
	ErrNotFound      = errors.New("payments: no such payment intent")
	ErrInvalid       = errors.New("payments: invalid request")
	ErrAlreadyPaid   = errors.New("payments: payment intent already succeeded")
	ErrNotRefundable = errors.New("payments: payment intent cannot be refunded")
)

// Processor is a card payment processor.
type Processor interface {
	// CreateIntent starts a payment of `amount` minor units, bound to `metadata`.
	CreateIntent(ctx context.Context, amount int64, currency string, metadata map[string]string) (Intent, error)
	// Confirm pays the intent with a card. A decline is a *CardError and leaves the intent
	// payable with another card.
	Confirm(ctx context.Context, id string, card Card) (Intent, error)
	// Retrieve reads an intent as the processor records it.
	Retrieve(ctx context.Context, id string) (Intent, error)
	// Refund refunds a succeeded intent in full.
	Refund(ctx context.Context, id string) (Intent, error)
}

// Binding is what a payment's metadata must say for it to pay for one purchase.
type Binding struct {
	ChainID  uint64
	Event    string // 0x address, any case
	Buyer    string // 0x address, any case
	Tier     uint64
	Quantity uint64
	Amount   int64 // minor units
}

// Metadata renders the binding as intent metadata.
func (b Binding) Metadata() map[string]string {
	return map[string]string{
		MetaChainID: strconv.FormatUint(b.ChainID, 10), MetaEvent: strings.ToLower(b.Event),
		MetaBuyer: strings.ToLower(b.Buyer), MetaTier: strconv.FormatUint(b.Tier, 10),
		MetaQuantity: strconv.FormatUint(b.Quantity, 10),
	}
}

// Verify reports whether `in` is a captured, unrefunded, undisputed payment for exactly
// this purchase, and if not, why.
func (b Binding) Verify(in Intent) error {
	switch {
	case in.Status != StatusSucceeded:
		return fmt.Errorf("payment %s is %s, not succeeded", in.ID, in.Status)
	case in.AmountRefunded > 0:
		return fmt.Errorf("payment %s was refunded", in.ID)
	case in.Disputed:
		return fmt.Errorf("payment %s was charged back", in.ID)
	case in.Amount != b.Amount:
		return fmt.Errorf("payment %s is for %d, the purchase costs %d", in.ID, in.Amount, b.Amount)
	}
	for k, want := range b.Metadata() {
		if got := in.Metadata[k]; !strings.EqualFold(got, want) {
			return fmt.Errorf("payment %s is bound to %s %q, not %q", in.ID, k, got, want)
		}
	}
	return nil
}

func now() int64 { return time.Now().Unix() }
