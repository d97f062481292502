package wallet

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
)

// Card purchases and resale purchases: the relay makes the card payment intent, the
// wallet checks it and signs the gasless requestPurchase; the fan pays on the
// processor's checkout; the payment's progress (oracles verifying k of n → minted) comes
// from the relay's "payment" topic on the wallet's one websocket.

var cardMethods = []string{"prepareCardBuy", "prepareBuyListed", "prepareCardBuyListed", "followPayment", "paymentStatus", "listings"}

func init() { Methods = append(Methods, cardMethods...) }

// paymentDone: following a payment stops following a payment once it reaches one of these states.
var paymentDone = map[string]bool{protocol.PaymentMinted: true, protocol.PaymentRefunded: true}

func (s *Service) callCard(ctx context.Context, method string, params []byte) (any, error) {
	switch method {
	case "prepareCardBuy":
		var p struct {
			Account ethcrypto.Address `json:"account"`
			Event   ethcrypto.Address `json:"event"`
			Tier    Quantity          `json:"tier"`
			Qty     Quantity          `json:"quantity"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		tier, err1 := p.Tier.uint64()
		qty, err2 := p.Qty.uint64()
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: tier and quantity must be whole numbers", ErrBadParams)
		}
		if err := s.checkAccount(p.Account); err != nil {
			return nil, err
		}
		var in protocol.PaymentIntent
		if err := s.rpc(ctx, protocol.MethodCreatePayment, []any{p.Event.Hex(), tier, qty, p.Account.Hex()}, &in); err != nil {
			return nil, err
		}
		return s.prepareCard(ctx, p.Account, p.Event, &in, func(env actions.Env, ev *protocol.EventInfo) (*actions.Action, error) {
			return actions.CardBuy(p.Account, env, ev, &in)
		})
	case "prepareBuyListed", "prepareCardBuyListed":
		var p struct {
			Account ethcrypto.Address `json:"account"`
			Event   ethcrypto.Address `json:"event"`
			TokenID Quantity          `json:"tokenId"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		if err := s.checkAccount(p.Account); err != nil {
			return nil, err
		}
		id := p.TokenID.big()
		var listings []protocol.TicketInfo
		if err := s.rpc(ctx, protocol.MethodListings, []any{p.Event.Hex()}, &listings); err != nil {
			return nil, err
		}
		var listing *protocol.TicketInfo
		for i := range listings {
			if listings[i].TokenID == id.String() {
				listing = &listings[i]
			}
		}
		if listing == nil {
			return nil, fmt.Errorf("%w: ticket #%s is not for sale any more", actions.ErrNotAllowed, id)
		}
		if method == "prepareBuyListed" {
			return s.prepare(ctx, p.Account, p.Event, func(env actions.Env, ev *protocol.EventInfo, tok *protocol.PermitInfo) (*actions.Action, error) {
				return actions.BuyListed(p.Account, env, ev, tok, *listing)
			})
		}
		if !id.IsUint64() {
			return nil, fmt.Errorf("%w: token id %s", ErrBadParams, id)
		}
		var in protocol.PaymentIntent
		if err := s.rpc(ctx, protocol.MethodCreateResalePayment, []any{p.Event.Hex(), id.Uint64(), p.Account.Hex()}, &in); err != nil {
			return nil, err
		}
		return s.prepareCard(ctx, p.Account, p.Event, &in, func(env actions.Env, ev *protocol.EventInfo) (*actions.Action, error) {
			return actions.CardBuyListed(p.Account, env, ev, *listing, &in)
		})
	case "listings":
		var p struct {
			Event ethcrypto.Address `json:"event"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		listings := []protocol.TicketInfo{}
		err := s.rpc(ctx, protocol.MethodListings, []any{p.Event.Hex()}, &listings)
		return listings, err
	case "followPayment", "paymentStatus":
		var p struct {
			ID string `json:"id"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		if p.ID == "" {
			return nil, fmt.Errorf("%w: id (pi_… or 0x payment id) is required", ErrBadParams)
		}
		var st protocol.PaymentProgress
		if err := s.rpc(ctx, protocol.MethodPaymentStatus, []any{p.ID}, &st); err != nil {
			return nil, err
		}
		if method == "followPayment" && !paymentDone[st.State] {
			s.followPayment(p.ID)
		}
		return st, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownMethod, method)
}

// prepareCard holds a card purchase for approval; the answer carries the payment intent
// (the checkout URL the page opens once the request is on the chain).
func (s *Service) prepareCard(ctx context.Context, account, event ethcrypto.Address, in *protocol.PaymentIntent,
	build func(actions.Env, *protocol.EventInfo) (*actions.Action, error)) (any, error) {
	res, err := s.prepare(ctx, account, event, func(env actions.Env, ev *protocol.EventInfo, _ *protocol.PermitInfo) (*actions.Action, error) {
		return build(env, ev)
	})
	if err != nil {
		return nil, err
	}
	return struct {
		pendingResult
		Payment protocol.PaymentIntent `json:"payment"`
	}{res.(pendingResult), *in}, nil
}

// followPayment subscribes, once per payment and connection, to the payment's progress and
// hands each state to the page as a "payment" notification, until minted or refunded.
func (s *Service) followPayment(id string) {
	c, err := s.relay()
	if err != nil {
		return
	}
	// One subscription per payment, whether named by its pi_… or its 0x payment id.
	key := strings.ToLower(id)
	if !strings.HasPrefix(id, "0x") {
		key = protocol.Hex32(protocol.PaymentIDOf(id))
	}
	s.on.mu.Lock()
	if s.on.payments == nil {
		s.on.payments = map[string]*relayclient.Client{}
	}
	if s.on.payments[key] == c {
		s.on.mu.Unlock()
		return
	}
	s.on.payments[key] = c
	s.on.mu.Unlock()

	finished := make(chan struct{})
	var once sync.Once
	cancel := c.Subscribe(&relayclient.Subscription{
		Topic:  protocol.TopicPayment,
		Params: func() any { return map[string]any{"id": id} },
		OnPush: func(raw json.RawMessage) {
			var st protocol.PaymentProgress
			if json.Unmarshal(raw, &st) != nil {
				return
			}
			if st.ID == "" {
				st.ID = id
			}
			s.notify("payment", st)
			if paymentDone[st.State] {
				once.Do(func() { close(finished) })
			}
		},
	})
	go func() {
		select {
		case <-finished:
		case <-time.After(30 * time.Minute):
		}
		cancel()
		s.on.mu.Lock()
		if s.on.payments[key] == c {
			delete(s.on.payments, key)
		}
		s.on.mu.Unlock()
	}()
}
