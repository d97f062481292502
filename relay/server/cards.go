package server

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/relay/payout"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// CardConfig turns on card purchases: the payment API and the oracle report aggregator.
type CardConfig struct {
	// Hub is the OracleHub.
	Hub common.Address
	// Reporter is the hot wallet that submits the oracles' reports to the hub: a wallet of
	// its own, so its nonces never race the forwarding outbox's.
	Reporter *ecdsa.PrivateKey
	// Processor creates payment intents (sp_createPayment) and refunds purchases that
	// failed at mint time; nil uses Config.Payments, the embedded sandbox.
	Processor payments.Processor
	// CheckoutURL is the processor's hosted checkout page, to which the intent id and
	// ?client_secret=… are appended (default "/sandbox/checkout/", the embedded sandbox's).
	CheckoutURL string
	// Expire is how long a paid intent may wait for its on-chain request before the relay
	// refunds it (default 1 hour).
	Expire time.Duration
	// Payer executes card sales' RevenueSplit events as transfers to each party, and claws
	// them back when a payment is refunded or charged back (the payout worker); nil uses
	// Config.Payments, the embedded sandbox, if there is one.
	Payer payments.Payer
	// PayoutConfirmations is how deep a block must be before its payouts are made.
	PayoutConfirmations uint64
	// WebhookSecret is the processor's webhook signing secret ("whsec_…"); set, the relay
	// takes the processor's webhooks at WebhookPath (webhooks.go).
	WebhookSecret string
}

var ticketABI = events.NewEventTicket()

// startCards builds the aggregator; its Run is started with the relay's other loops.
func (r *Relay) startCards(ctx context.Context) error {
	c := r.cfg.Cards
	if c.Processor == nil {
		if r.cfg.Payments == nil {
			return errors.New("card purchases need a payment processor")
		}
		c.Processor = r.cfg.Payments
	}
	if c.CheckoutURL == "" {
		c.CheckoutURL = "/sandbox/checkout/"
	}
	agg, err := oracle.NewAggregator(ctx, oracle.AggregatorConfig{
		Client: r.cfg.Client, ChainID: r.cfg.ChainID, Hub: c.Hub, Key: c.Reporter, Processor: c.Processor,
		Logger: r.cfg.Logger, OnProgress: r.publishProgress, Path: filepath.Join(r.cfg.DataDir, "payments.db"), Expire: c.Expire,
	})
	if err != nil {
		return err
	}
	r.cards, r.agg = c, agg
	if c.Payer == nil && r.cfg.Payments != nil {
		c.Payer = r.cfg.Payments
	}
	if c.Payer != nil {
		w, err := payout.New(payout.Config{
			Chain: r.cfg.Client, Factory: r.cfg.Factory, Payer: c.Payer, Path: filepath.Join(r.cfg.DataDir, "payouts.db"),
			Start: r.cfg.StartBlock, Confirmations: c.PayoutConfirmations, Logger: r.cfg.Logger,
		})
		if err != nil {
			_ = agg.Close()
			return err
		}
		r.payouts = w
	}
	return nil
}

// Aggregator is the relay's oracle report aggregator, nil without card purchases.
// In-process oracle nodes (stagepass dev) talk to it directly.
func (r *Relay) Aggregator() *oracle.Aggregator { return r.agg }

func paymentKey(pid string) string { return "payment:" + strings.ToLower(pid) }

func (r *Relay) publishProgress(p protocol.PaymentProgress) {
	_ = r.rpc.Publish(rpcserver.Message{Cursor: protocol.Cursor{Block: uint64(time.Now().UnixNano())}, Data: p}, paymentKey(p.PaymentID))
}

func (r *Relay) registerCardAPI(s *rpcserver.Server) {
	s.Register(protocol.MethodCreatePayment, r.createPayment)
	s.Register(protocol.MethodCreateResalePayment, r.createResalePayment)
	s.Register(protocol.MethodSubmitReport, r.submitReport)
	s.Register(protocol.MethodBatchProposals, func(ctx context.Context, _ *rpcserver.Request) (any, error) {
		return r.agg.Proposals(ctx)
	})
	s.Register(protocol.MethodPaymentRef, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		var id string
		if err := positional(req, &id); err != nil {
			return nil, err
		}
		pid, err := protocol.ParseHash32("paymentId", id)
		if err != nil {
			return nil, rpcserver.InvalidParams("%v", err)
		}
		ref, err := r.agg.PaymentRef(ctx, pid)
		if err != nil {
			return nil, rpcserver.InvalidParams("%v", err)
		}
		return ref, nil
	})
	s.Register(protocol.MethodPaymentStatus, func(_ context.Context, req *rpcserver.Request) (any, error) {
		var id string
		if err := positional(req, &id); err != nil {
			return nil, err
		}
		pid, err := paymentParam(id)
		if err != nil {
			return nil, err
		}
		return r.paymentProgress(pid)
	})
	s.RegisterTopic(protocol.TopicPayment, func(_ context.Context, req *rpcserver.Request) (rpcserver.Feed, error) {
		var p struct {
			ID string `json:"id"`
		}
		if err := topicParams(req, &p); err != nil {
			return rpcserver.Feed{}, err
		}
		pid, err := paymentParam(p.ID)
		if err != nil {
			return rpcserver.Feed{}, err
		}
		if _, err := r.paymentProgress(pid); err != nil {
			return rpcserver.Feed{}, err
		}
		return rpcserver.Feed{Key: paymentKey(protocol.Hex32(pid)), Backlog: func(context.Context) ([]rpcserver.Message, error) {
			p, err := r.paymentProgress(pid)
			if err != nil {
				return nil, err
			}
			return []rpcserver.Message{{Cursor: protocol.Cursor{Block: uint64(p.Time) * 1e6}, Data: p}}, nil
		}}, nil
	})
}

// paymentParam reads a payment as its processor id ("pi_…") or its 0x payment id.
func paymentParam(id string) ([32]byte, error) {
	if strings.HasPrefix(id, "0x") {
		pid, err := protocol.ParseHash32("payment", id)
		if err != nil {
			return pid, rpcserver.InvalidParams("%v", err)
		}
		return pid, nil
	}
	if id == "" || len(id) > 255 {
		return [32]byte{}, rpcserver.InvalidParams("payment must be a processor id (pi_…) or a 0x payment id")
	}
	return protocol.PaymentIDOf(id), nil
}

// paymentProgress is what the aggregator knows of a payment (or the hub, after a restart).
func (r *Relay) paymentProgress(pid [32]byte) (protocol.PaymentProgress, error) {
	p, err := r.agg.ProgressOf(context.Background(), pid)
	if err != nil {
		return p, rpcserver.InvalidParams("no card payment %s is known to this relay", protocol.Hex32(pid))
	}
	return p, nil
}

// createPayment makes a card payment intent for (event, tier, quantity, buyer) at the
// event's current primary price, its metadata bound to the purchase.
func (r *Relay) createPayment(ctx context.Context, req *rpcserver.Request) (any, error) {
	var ev, buyer common.Address
	var tier, qty uint64
	if err := positional(req, addressParam(&ev, "event"), &tier, &qty, addressParam(&buyer, "buyer")); err != nil {
		return nil, err
	}
	if _, ok := r.index.Event(ev); !ok {
		return nil, rpcserver.InvalidParams("no Stagepass event at %s", ev.Hex())
	}
	if qty == 0 || qty > 100 {
		return nil, rpcserver.InvalidParams("quantity must be between 1 and 100")
	}
	if buyer == (common.Address{}) {
		return nil, rpcserver.InvalidParams("buyer must not be the zero address")
	}
	out, err := r.cfg.Client.CallContract(ctx, ethereum.CallMsg{To: &ev, Data: ticketABI.PackPrices(new(big.Int).SetUint64(tier))}, nil)
	if err != nil {
		return nil, rpcserver.InvalidParams("event %s has no tier %d: %v", ev.Hex(), tier, err)
	}
	prices, err := ticketABI.UnpackPrices(out)
	if err != nil {
		return nil, fmt.Errorf("read the price: %w", err)
	}
	price := new(big.Int).Mul(prices.Primary, new(big.Int).SetUint64(qty))
	return r.newIntent(ctx, ev, buyer, tier, qty, price)
}

// createResalePayment makes a card payment intent for listed ticket `tokenId` at its
// listing price, bound to (event, token, buyer) as requestResale will record it.
func (r *Relay) createResalePayment(ctx context.Context, req *rpcserver.Request) (any, error) {
	var ev, buyer common.Address
	var tokenID uint64
	if err := positional(req, addressParam(&ev, "event"), &tokenID, addressParam(&buyer, "buyer")); err != nil {
		return nil, err
	}
	if _, ok := r.index.Event(ev); !ok {
		return nil, rpcserver.InvalidParams("no Stagepass event at %s", ev.Hex())
	}
	if buyer == (common.Address{}) {
		return nil, rpcserver.InvalidParams("buyer must not be the zero address")
	}
	id := new(big.Int).SetUint64(tokenID)
	out, err := r.cfg.Client.CallContract(ctx, ethereum.CallMsg{To: &ev, Data: ticketABI.PackListingPrice(id)}, nil)
	if err != nil {
		return nil, fmt.Errorf("read the listing: %w", err)
	}
	price, err := ticketABI.UnpackListingPrice(out)
	if err != nil {
		return nil, fmt.Errorf("read the listing: %w", err)
	}
	if price.Sign() == 0 {
		return nil, rpcserver.InvalidParams("ticket %d of %s is not for resale", tokenID, ev.Hex())
	}
	out, err = r.cfg.Client.CallContract(ctx, ethereum.CallMsg{To: &ev, Data: ticketABI.PackOwnerOf(id)}, nil)
	if err == nil {
		if owner, err := ticketABI.UnpackOwnerOf(out); err == nil && owner == buyer {
			return nil, rpcserver.InvalidParams("ticket %d is already %s's", tokenID, buyer.Hex())
		}
	}
	return r.newIntent(ctx, ev, buyer, tokenID, 0, price)
}

// newIntent creates the processor's intent for `price` (event currency units), its metadata
// bound to the purchase, and remembers its payment id for the oracles.
func (r *Relay) newIntent(ctx context.Context, ev, buyer common.Address, tier, qty uint64, price *big.Int) (any, error) {
	cents, err := protocol.CardMinorUnits(price)
	if err != nil {
		return nil, rpcserver.InvalidParams("this purchase cannot be paid by card: %v", err)
	}
	b := payments.Binding{ChainID: r.cfg.ChainID.Uint64(), Event: ev.Hex(), Buyer: buyer.Hex(), Tier: tier, Quantity: qty, Amount: cents}
	in, err := r.cards.Processor.CreateIntent(ctx, cents, protocol.CardCurrency, b.Metadata())
	if err != nil {
		return nil, fmt.Errorf("create the payment: %w", err)
	}
	pid, err := r.agg.RememberPayment(in.ID)
	if err != nil {
		return nil, err
	}
	return protocol.PaymentIntent{
		ID: in.ID, PaymentID: protocol.Hex32(pid), ClientSecret: in.ClientSecret,
		CheckoutURL: r.cards.CheckoutURL + url.PathEscape(in.ID) + "?client_secret=" + url.QueryEscape(in.ClientSecret),
		Amount:      cents, Currency: protocol.CardCurrency, Price: price.String(), ChainID: r.cfg.ChainID.Uint64(),
		Event: strings.ToLower(ev.Hex()), Buyer: strings.ToLower(buyer.Hex()), Tier: tier, Quantity: qty,
	}, nil
}
