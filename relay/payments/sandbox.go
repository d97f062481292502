package payments

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/stagepass/stagepass/relay/payments/webhook"
)

// Sandbox is an embedded card processor for development and tests: Stripe's API shape and
// test cards, persistent on disk, with refunds, chargebacks, card fingerprints and a payouts
// ledger. No money moves.
type Sandbox struct {
	db     *bbolt.DB
	secret []byte // keys card fingerprints: the same card, the same fingerprint, per sandbox
	mu     sync.Mutex
	hooks  webhooks
}

var (
	bucketIntents = []byte("intents")
	bucketPayouts = []byte("payouts")
	// bucketReversals holds transfer reversals by idempotency key; bucketTransfers maps a
	// transfer id to its payout's key.
	bucketReversals = []byte("reversals")
	bucketTransfers = []byte("transfers")
	bucketMeta      = []byte("meta")
	keySecret       = []byte("fingerprint-secret")
)

// testCard is how the sandbox treats one of Stripe's published test card numbers.
type testCard struct {
	brand   string
	decline *CardError // nil: the payment succeeds
	dispute bool       // succeeds, then the bank charges it back
}

// testCards are Stripe's test numbers (https://docs.stripe.com/testing); others are declined.
var testCards = map[string]testCard{
	"4242424242424242": {brand: "visa"},
	"4000056655665556": {brand: "visa"}, // debit
	"5555555555554444": {brand: "mastercard"},
	"378282246310005":  {brand: "amex"},
	"4000000000000002": {brand: "visa", decline: &CardError{Code: "card_declined", DeclineCode: "generic_decline", Message: "Your card was declined."}},
	"4000000000009995": {brand: "visa", decline: &CardError{Code: "card_declined", DeclineCode: "insufficient_funds", Message: "Your card has insufficient funds."}},
	"4000000000009987": {brand: "visa", decline: &CardError{Code: "card_declined", DeclineCode: "lost_card", Message: "Your card was declined."}},
	"4000000000000069": {brand: "visa", decline: &CardError{Code: "expired_card", DeclineCode: "expired_card", Message: "Your card has expired."}},
	"4000000000000127": {brand: "visa", decline: &CardError{Code: "incorrect_cvc", DeclineCode: "incorrect_cvc", Message: "Your card's security code is incorrect."}},
	"4000000000000259": {brand: "visa", dispute: true},
}

// OpenSandbox opens (or creates) the sandbox's ledger at path.
func OpenSandbox(path string) (*Sandbox, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open sandbox ledger %s: %w", path, err)
	}
	s := &Sandbox{db: db}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketIntents, bucketPayouts, bucketMeta, bucketReversals, bucketTransfers} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if sec := meta.Get(keySecret); sec != nil {
			s.secret = append([]byte(nil), sec...)
			return nil
		}
		s.secret = make([]byte, 32)
		if _, err := rand.Read(s.secret); err != nil {
			return err
		}
		return meta.Put(keySecret, s.secret)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise sandbox ledger: %w", err)
	}
	return s, nil
}

// Close closes the ledger.
func (s *Sandbox) Close() error { return s.db.Close() }

func randomID(prefix string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err) // the system's randomness is gone: nothing sensible to do
	}
	return prefix + hex.EncodeToString(b)
}

// CreateIntent implements Processor.
func (s *Sandbox) CreateIntent(_ context.Context, amount int64, currency string, metadata map[string]string) (Intent, error) {
	if amount <= 0 || amount > 99_999_999 {
		return Intent{}, fmt.Errorf("%w: amount must be between 1 and 99999999 minor units", ErrInvalid)
	}
	currency = strings.ToLower(currency)
	if len(currency) != 3 {
		return Intent{}, fmt.Errorf("%w: currency must be a 3-letter ISO code", ErrInvalid)
	}
	if len(metadata) > 50 {
		return Intent{}, fmt.Errorf("%w: at most 50 metadata keys", ErrInvalid)
	}
	md := make(map[string]string, len(metadata))
	for k, v := range metadata {
		if len(k) > 40 || len(v) > 500 {
			return Intent{}, fmt.Errorf("%w: metadata key %q too long (keys 40, values 500 characters)", ErrInvalid, k)
		}
		md[k] = v
	}
	id := randomID("pi_")
	in := Intent{
		ID: id, Object: "payment_intent", Amount: amount, Currency: currency, Status: StatusRequiresPaymentMethod,
		Metadata: md, ClientSecret: id + "_secret_" + randomID(""), Created: now(),
	}
	return in, s.put(in)
}

// Confirm implements Processor.
func (s *Sandbox) Confirm(_ context.Context, id string, card Card) (Intent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, err := s.get(id)
	if err != nil {
		return Intent{}, err
	}
	if in.Status == StatusSucceeded {
		return in, ErrAlreadyPaid
	}
	if in.Status == StatusCanceled {
		return in, fmt.Errorf("%w: payment intent %s was canceled", ErrInvalid, id)
	}
	number := strings.NewReplacer(" ", "", "-", "").Replace(card.Number)
	tc, ok := testCards[number]
	var decline *CardError
	switch {
	case !ok:
		decline = &CardError{Code: "card_declined", DeclineCode: "test_mode_live_card", Message: "Your card was declined: the sandbox takes only test cards, such as 4242 4242 4242 4242."}
	case card.ExpYear < time.Now().Year() || (card.ExpYear == time.Now().Year() && card.ExpMonth < int(time.Now().Month())) || card.ExpMonth < 1 || card.ExpMonth > 12:
		decline = &CardError{Code: "invalid_expiry", DeclineCode: "expired_card", Message: "Your card's expiration date is invalid or past."}
	case len(card.CVC) < 3 || len(card.CVC) > 4:
		decline = &CardError{Code: "invalid_cvc", DeclineCode: "incorrect_cvc", Message: "Your card's security code is invalid."}
	default:
		decline = tc.decline
	}
	if decline != nil {
		in.LastError = decline
		if err := s.put(in); err != nil {
			return Intent{}, err
		}
		s.hooks.send(webhook.PaymentFailed, intentObject(in))
		return in, decline
	}
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte(number))
	in.Status, in.LastError = StatusSucceeded, nil
	in.Card = &CardInfo{Brand: tc.brand, Last4: number[len(number)-4:], Fingerprint: hex.EncodeToString(mac.Sum(nil))[:16]}
	in.Disputed = tc.dispute
	if err := s.put(in); err != nil {
		return in, err
	}
	s.hooks.send(webhook.PaymentSucceeded, intentObject(in))
	if in.Disputed {
		s.hooks.send(webhook.DisputeCreated, disputeObject(in))
	}
	return in, nil
}

// Retrieve implements Processor.
func (s *Sandbox) Retrieve(_ context.Context, id string) (Intent, error) {
	return s.get(id)
}

// Refund implements Processor.
func (s *Sandbox) Refund(_ context.Context, id string) (Intent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, err := s.get(id)
	if err != nil {
		return Intent{}, err
	}
	if in.Status != StatusSucceeded || in.AmountRefunded > 0 {
		return in, fmt.Errorf("%w: %s is %s with %d refunded", ErrNotRefundable, id, in.Status, in.AmountRefunded)
	}
	in.AmountRefunded = in.Amount
	if err := s.put(in); err != nil {
		return in, err
	}
	s.hooks.send(webhook.ChargeRefunded, webhook.Object{
		ID: "ch_" + strings.TrimPrefix(in.ID, "pi_"), Object: "charge", Amount: in.Amount, Refunded: in.AmountRefunded,
		Currency: in.Currency, PaymentIntent: in.ID, Status: "succeeded",
	})
	return in, nil
}

// Chargeback marks a succeeded payment as disputed by the cardholder's bank (sandbox only:
// a real processor learns this from the bank).
func (s *Sandbox) Chargeback(_ context.Context, id string) (Intent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, err := s.get(id)
	if err != nil {
		return Intent{}, err
	}
	if in.Status != StatusSucceeded {
		return in, fmt.Errorf("%w: only a succeeded payment can be charged back", ErrInvalid)
	}
	in.Disputed = true
	if err := s.put(in); err != nil {
		return in, err
	}
	s.hooks.send(webhook.DisputeCreated, disputeObject(in))
	return in, nil
}

// Payout is one transfer of a card sale's share to a party's connected account, made
// once per key.
type Payout struct {
	Key         string `json:"key"`         // idempotency key: the revenue-split log's tx hash and index
	Destination string `json:"destination"` // the party's connected account
	Party       string `json:"party"`       // the party's address
	Amount      int64  `json:"amount"`      // minor units
	Currency    string `json:"currency"`
	Group       string `json:"transfer_group"` // the transaction the sale was fulfilled in
	ID          string `json:"id"`             // the processor's transfer id ("tr_…")
	Created     int64  `json:"created"`
	// AmountReversed is how much of the transfer was taken back by reversals.
	AmountReversed int64 `json:"amount_reversed"`
}

// Reversal takes back part of a transfer (a payout) from the party's connected account, once
// per key: a card payment was refunded or charged back after its revenue was paid out.
type Reversal struct {
	Key      string `json:"key"`      // idempotency key
	Transfer string `json:"transfer"` // the transfer ("tr_…") reversed
	Amount   int64  `json:"amount"`   // minor units
	ID       string `json:"id"`       // the processor's reversal id ("trr_…")
	Created  int64  `json:"created"`
}

// Payer moves card revenue to the parties (the payout worker's processor side).
type Payer interface {
	// Pay makes payout p unless one with the same key was made, and returns the payout as
	// the processor records it. Retrying never pays twice.
	Pay(ctx context.Context, p Payout) (Payout, error)
	// Reverse takes r.Amount back from transfer r.Transfer unless a reversal with the same
	// key was made, and returns the reversal as the processor records it. Retrying never
	// reverses twice; reversing more than is left of the transfer is refused (ErrInvalid).
	Reverse(ctx context.Context, r Reversal) (Reversal, error)
}

var _ Payer = (*Sandbox)(nil)

// SandboxAccount is the connected account the sandbox keeps for a party's address.
func SandboxAccount(party string) string {
	return "acct_" + strings.TrimPrefix(strings.ToLower(party), "0x")
}

// Pay implements Payer: the sandbox records the transfer in its payouts ledger, to the
// party's sandbox account when no destination is given.
func (s *Sandbox) Pay(_ context.Context, p Payout) (Payout, error) {
	if p.Key == "" || p.Amount <= 0 || (p.Destination == "" && p.Party == "") {
		return p, fmt.Errorf("%w: a payout needs a key, a destination and a positive amount", ErrInvalid)
	}
	if p.Destination == "" {
		p.Destination = SandboxAccount(p.Party)
	}
	if p.Currency == "" {
		p.Currency = "usd"
	}
	p.ID, p.Created = randomID("tr_"), now()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketPayouts)
		if old := b.Get([]byte(p.Key)); old != nil {
			return json.Unmarshal(old, &p)
		}
		raw, err := json.Marshal(p)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketTransfers).Put([]byte(p.ID), []byte(p.Key)); err != nil {
			return err
		}
		return b.Put([]byte(p.Key), raw)
	})
	return p, err
}

// Reverse implements Payer: the reversal is recorded on the ledger with the transfer's
// amount_reversed, in one transaction, so the account's balance reflects it at once. The
// same key gives back the recorded reversal; the same key for another transfer or amount,
// or more than is left of the transfer, is refused.
func (s *Sandbox) Reverse(_ context.Context, r Reversal) (Reversal, error) {
	if r.Key == "" || r.Transfer == "" || r.Amount <= 0 {
		return r, fmt.Errorf("%w: a reversal needs a key, a transfer and a positive amount", ErrInvalid)
	}
	r.ID, r.Created = randomID("trr_"), now()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		revs := tx.Bucket(bucketReversals)
		if old := revs.Get([]byte(r.Key)); old != nil {
			var was Reversal
			if err := json.Unmarshal(old, &was); err != nil {
				return err
			}
			if was.Transfer != r.Transfer || was.Amount != r.Amount {
				return fmt.Errorf("%w: reversal key %s was used for %d of %s, not %d of %s", ErrInvalid, r.Key, was.Amount, was.Transfer, r.Amount, r.Transfer)
			}
			r = was
			return nil
		}
		payouts := tx.Bucket(bucketPayouts)
		key := tx.Bucket(bucketTransfers).Get([]byte(r.Transfer))
		if key == nil { // a ledger written before transfers were indexed: look for it
			_ = payouts.ForEach(func(k, v []byte) error {
				var p Payout
				if json.Unmarshal(v, &p) == nil && p.ID == r.Transfer {
					key = k
				}
				return nil
			})
		}
		if key == nil {
			return fmt.Errorf("%w: no such transfer %s", ErrNotFound, r.Transfer)
		}
		var p Payout
		if err := json.Unmarshal(payouts.Get(key), &p); err != nil {
			return err
		}
		if left := p.Amount - p.AmountReversed; r.Amount > left {
			return fmt.Errorf("%w: transfer %s has %d of %d left to reverse, not %d", ErrInvalid, r.Transfer, left, p.Amount, r.Amount)
		}
		p.AmountReversed += r.Amount
		rawP, err := json.Marshal(p)
		if err != nil {
			return err
		}
		rawR, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := payouts.Put(key, rawP); err != nil {
			return err
		}
		return revs.Put([]byte(r.Key), rawR)
	})
	return r, err
}

// Balance is what the ledger's transfers left on connected account `account`: every payout
// to it less what reversals took back.
func (s *Sandbox) Balance(account string) (int64, error) {
	ps, err := s.Payouts()
	var sum int64
	for _, p := range ps {
		if p.Destination == account {
			sum += p.Amount - p.AmountReversed
		}
	}
	return sum, err
}

// Reversals lists the ledger's transfer reversals, by key.
func (s *Sandbox) Reversals() ([]Reversal, error) {
	var out []Reversal
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketReversals).ForEach(func(_, v []byte) error {
			var r Reversal
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// Payouts lists the ledger's payouts, by key.
func (s *Sandbox) Payouts() ([]Payout, error) {
	var out []Payout
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketPayouts).ForEach(func(_, v []byte) error {
			var p Payout
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

func (s *Sandbox) get(id string) (Intent, error) {
	var in Intent
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketIntents).Get([]byte(id))
		if raw == nil {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return json.Unmarshal(raw, &in)
	})
	return in, err
}

func (s *Sandbox) put(in Intent) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketIntents).Put([]byte(in.ID), raw)
	})
}
