package wallet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
	"github.com/stagepass/stagepass/wasm/scanner"
	"github.com/stagepass/stagepass/wasm/tickets"
)

// Errors of the online methods.
var (
	ErrNotConnected = errors.New("wallet: no relay configured (call connect first)")
	ErrNoScanner    = errors.New("wallet: scanner not opened (call scannerOpen first)")
	ErrRelay        = errors.New("wallet: the relay refused")
)

// OfflineWait bounds a relay call made while the socket is down.
var OfflineWait = 3 * time.Second

// onlineMethods are the methods that talk to the relay (or its cached data).
var onlineMethods = []string{
	"connect", "disconnect", "chainInfo", "events", "tickets",
	"prepareBuy", "prepareList", "prepareCancelListing", "prepareGift", "requestStatus",
	"scannerOpen", "scan", "scannerSync", "scannerStatus", "finality",
}

// online is the relay side of the service.
type online struct {
	mu       sync.Mutex
	client   *relayclient.Client
	url      string
	chain    *protocol.ChainInfo
	trackers map[string]*tickets.Tracker
	scan     *scanner.Scanner
	gate     ethcrypto.Address
	scanInfo protocol.EventInfo
	scanSub  func()
	payments map[string]*relayclient.Client // card payments followed (card.go), on which client
	watchSub func()                         // the issuer console's event topic (issuer.go)
	bridges  map[string]func()              // the "bridge" topic per shown account: its cancel (bridgefeed.go)
}

func (s *Service) cache() tickets.Store {
	if s.Cache == nil {
		s.Cache = &tickets.MemoryStore{}
	}
	return s.Cache
}

func (s *Service) notify(kind string, data any) {
	if s.Notify != nil {
		s.Notify(kind, data)
	}
}

func (s *Service) relay() (*relayclient.Client, error) {
	s.on.mu.Lock()
	defer s.on.mu.Unlock()
	if s.on.client == nil {
		return nil, ErrNotConnected
	}
	return s.on.client, nil
}

// rpc calls the relay, turning its refusals into ErrRelay errors with its message.
func (s *Service) rpc(ctx context.Context, method string, params []any, out any) error {
	c, err := s.relay()
	if err != nil {
		return err
	}
	timeout := s.CallTimeout
	if !c.Connected() && timeout > OfflineWait {
		// Down (or still dialling): wait a little for the socket, not a full call timeout,
		// so an offline door or ticket page falls back to its cache quickly.
		timeout = OfflineWait
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = c.Call(ctx, method, params, out)
	var re *relayclient.RPCError
	if errors.As(err, &re) {
		return &Error{Code: "RELAY_REFUSED", Message: re.Message, err: fmt.Errorf("%w: %v", ErrRelay, err)}
	}
	if errors.Is(err, relayclient.ErrOffline) {
		return &Error{Code: "OFFLINE", Message: err.Error(), err: err}
	}
	return err
}

func (s *Service) chainInfo(ctx context.Context) (*protocol.ChainInfo, error) {
	s.on.mu.Lock()
	ci := s.on.chain
	s.on.mu.Unlock()
	if ci != nil {
		return ci, nil
	}
	var info protocol.ChainInfo
	if err := s.rpc(ctx, protocol.MethodChainInfo, nil, &info); err != nil {
		return nil, err
	}
	s.on.mu.Lock()
	s.on.chain = &info
	s.on.mu.Unlock()
	return &info, nil
}

func (s *Service) env(ctx context.Context, account ethcrypto.Address) (actions.Env, error) {
	ci, err := s.chainInfo(ctx)
	if err != nil {
		return actions.Env{}, err
	}
	fwd, err := ethcrypto.ParseAddress(ci.Forwarder)
	if err != nil {
		return actions.Env{}, fmt.Errorf("wallet: relay's forwarder address: %w", err)
	}
	var nonce string
	if err := s.rpc(ctx, protocol.MethodForwarderNonce, []any{account.Hex()}, &nonce); err != nil {
		return actions.Env{}, err
	}
	n, ok := new(big.Int).SetString(nonce, 10)
	if !ok {
		return actions.Env{}, fmt.Errorf("wallet: relay sent nonce %q", nonce)
	}
	return actions.Env{ChainID: ci.ChainID, Forwarder: fwd, Nonce: n, Now: s.Now()}, nil
}

func (s *Service) event(ctx context.Context, ev ethcrypto.Address) (*protocol.EventInfo, error) {
	var info protocol.EventInfo
	if err := s.rpc(ctx, protocol.MethodEvent, []any{ev.Hex()}, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// token describes the event's currency for amounts and permits (nil for the native coin).
func (s *Service) token(ctx context.Context, ev *protocol.EventInfo, owner ethcrypto.Address) (*protocol.PermitInfo, error) {
	cur, err := ethcrypto.ParseAddress(ev.Currency)
	if err != nil || cur.IsZero() {
		return nil, nil
	}
	var pi protocol.PermitInfo
	if err := s.rpc(ctx, protocol.MethodPermitInfo, []any{cur.Hex(), owner.Hex()}, &pi); err != nil {
		return nil, err
	}
	return &pi, nil
}

// holding checks, from the wallet's own ticket list, that account holds a ticket that
// can still move (not checked in): the page should not offer anything else.
func (s *Service) holding(account, ev ethcrypto.Address, id *big.Int) error {
	t, err := s.held(account, ev, id)
	if err == nil && t.CheckedIn {
		return fmt.Errorf("%w: ticket %s is checked in and can no longer move", ErrBadParams, id)
	}
	return err
}

// held is the account's ticket as its ticket list has it; not in the list → an error; the
// zero Ticket when the wallet does not follow the account (the relay's simulation decides).
func (s *Service) held(account, ev ethcrypto.Address, id *big.Int) (tickets.Ticket, error) {
	s.on.mu.Lock()
	tr := s.on.trackers[strings.ToLower(account.Hex())]
	s.on.mu.Unlock()
	if tr == nil {
		return tickets.Ticket{}, nil
	}
	t, ok := tr.Ticket(ev.Hex(), id.String())
	if !ok {
		return t, fmt.Errorf("%w: %s does not hold ticket %s of %s", ErrBadParams, account, id, ev)
	}
	return t, nil
}

func (s *Service) callOnline(ctx context.Context, method string, params []byte) (any, error) {
	switch method {
	case "connect":
		var p struct {
			URL string `json:"url"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(p.URL, "ws://") && !strings.HasPrefix(p.URL, "wss://") {
			return nil, fmt.Errorf("%w: url must be ws:// or wss://", ErrBadParams)
		}
		if s.Dial == nil {
			return nil, fmt.Errorf("%w: no websocket transport", ErrBadParams)
		}
		s.disconnect()
		c := relayclient.New(relayclient.Config{URL: p.URL, Dial: s.Dial,
			OnState: func(up bool) { s.notify("connection", map[string]any{"connected": up, "url": p.URL}) }})
		s.on.mu.Lock()
		s.on.client, s.on.url, s.on.chain = c, p.URL, nil
		s.on.mu.Unlock()
		c.Start()
		return map[string]any{"url": p.URL}, nil
	case "disconnect":
		s.disconnect()
		return struct{}{}, nil
	case "chainInfo":
		return s.chainInfo(ctx)
	case "events":
		var out []protocol.EventInfo
		err := s.rpc(ctx, protocol.MethodEvents, nil, &out)
		return out, err
	case "requestStatus":
		var p struct {
			ID string `json:"id"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		var st protocol.RequestStatus
		err := s.rpc(ctx, protocol.MethodRequestStatus, []any{p.ID}, &st)
		return st, err
	case "finality":
		// sp_finality's answer passes through as it is (relay/README.md): decoding it here
		// would only add to the wasm.
		var p struct {
			Event   ethcrypto.Address `json:"event"`
			TokenID Quantity          `json:"tokenId"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		var out json.RawMessage
		err := s.rpc(ctx, protocol.MethodFinality, []any{p.Event.Hex(), p.TokenID.big().String()}, &out)
		return out, err
	case "tickets":
		var p struct {
			Account ethcrypto.Address `json:"account"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		c, err := s.relay()
		if err != nil {
			return nil, err
		}
		return s.track(ctx, c, strings.ToLower(p.Account.Hex())).View(), nil // accounts.go
	case "prepareBuy":
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
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		return s.prepare(ctx, p.Account, p.Event, func(env actions.Env, ev *protocol.EventInfo, tok *protocol.PermitInfo) (*actions.Action, error) {
			return actions.Buy(p.Account, env, ev, tok, tier, qty)
		})
	case "prepareList", "prepareCancelListing", "prepareGift":
		var p struct {
			Account ethcrypto.Address  `json:"account"`
			Event   ethcrypto.Address  `json:"event"`
			TokenID Quantity           `json:"tokenId"`
			Price   *Quantity          `json:"price"`
			To      *ethcrypto.Address `json:"to"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		id := p.TokenID.big()
		if err := s.holding(p.Account, p.Event, id); err != nil {
			return nil, err
		}
		return s.prepare(ctx, p.Account, p.Event, func(env actions.Env, ev *protocol.EventInfo, tok *protocol.PermitInfo) (*actions.Action, error) {
			switch method {
			case "prepareList":
				if p.Price == nil {
					return nil, fmt.Errorf("%w: price is required", ErrBadParams)
				}
				return actions.List(p.Account, env, ev, tok, id, p.Price.big())
			case "prepareGift":
				if p.To == nil {
					return nil, fmt.Errorf("%w: to is required", ErrBadParams)
				}
				return actions.Gift(p.Account, env, ev, id, *p.To)
			}
			return actions.CancelListing(p.Account, env, ev, id)
		})
	case "scannerOpen":
		return s.scannerOpen(ctx, params)
	case "scan":
		return s.scanPass(ctx, params)
	case "scannerSync":
		return s.scannerSync(ctx)
	case "scannerStatus":
		sc, _, err := s.scanner()
		if err != nil {
			return nil, err
		}
		return sc.Stats(), nil
	}
	if slices.Contains(issuerMethods, method) {
		return s.callIssuer(ctx, method, params)
	}
	if slices.Contains(identityMethods, method) {
		return s.callIdentity(ctx, method, params)
	}
	if slices.Contains(gatewayMethods, method) {
		return s.callGateway(ctx, method, params)
	}
	if slices.Contains(depositMethods, method) {
		return s.callDeposit(ctx, method, params)
	}
	if slices.Contains(claimMethods, method) {
		return s.callClaim(ctx, method, params) // claim.go
	}
	return s.callCard(ctx, method, params)
}

func (s *Service) notifyTickets(owner string) {
	s.on.mu.Lock()
	tr := s.on.trackers[owner]
	s.on.mu.Unlock()
	if tr != nil {
		s.notify("tickets", tr.View())
	}
}

func (s *Service) disconnect() {
	s.stopBridges(nil)
	s.on.mu.Lock()
	c, trs, sub := s.on.client, s.on.trackers, s.on.scanSub
	s.on.client, s.on.trackers, s.on.scanSub = nil, map[string]*tickets.Tracker{}, nil
	s.on.mu.Unlock()
	for _, t := range trs {
		t.Stop()
	}
	if sub != nil {
		sub()
	}
	if c != nil {
		c.Close()
	}
}

// prepare fetches what an action needs from the relay, builds it and holds it for approval.
func (s *Service) prepare(ctx context.Context, account, event ethcrypto.Address,
	build func(actions.Env, *protocol.EventInfo, *protocol.PermitInfo) (*actions.Action, error)) (any, error) {
	if err := s.checkAccount(account); err != nil {
		return nil, err
	}
	env, err := s.env(ctx, account)
	if err != nil {
		return nil, err
	}
	ev, err := s.event(ctx, event)
	if err != nil {
		return nil, err
	}
	tok, err := s.token(ctx, ev, account)
	if err != nil {
		return nil, err
	}
	a, err := build(env, ev, tok)
	if err != nil {
		return nil, err
	}
	return s.holdEntry(&pendingEntry{account: account, summary: a.Summary, action: a})
}

// submit signs an approved action and sends it to the relay, then follows its status.
func (s *Service) submit(ctx context.Context, a *actions.Action) (protocol.RequestStatus, error) {
	var sub protocol.ForwardSubmission
	err := s.Vault.WithKey(a.Account, func(k *ethcrypto.PrivateKey) error {
		var err error
		sub, err = a.Sign(k)
		return err
	})
	if err != nil {
		return protocol.RequestStatus{}, err
	}
	var st protocol.RequestStatus
	if err := s.rpc(ctx, protocol.MethodSendForward, []any{sub}, &st); err != nil {
		return st, err
	}
	s.follow(st.ID, nil)
	return st, nil
}

// follow subscribes to a request's status until it is mined or failed, notifying the page
// of each state and, if done is set, sending the final one there.
func (s *Service) follow(id string, done chan<- protocol.RequestStatus) {
	c, err := s.relay()
	if err != nil {
		return
	}
	var once sync.Once
	var cancel func()
	finished := make(chan struct{})
	cancel = c.Subscribe(&relayclient.Subscription{
		Topic:  protocol.TopicRequest,
		Params: func() any { return map[string]any{"id": id} },
		OnPush: func(raw json.RawMessage) {
			var st protocol.RequestStatus
			if json.Unmarshal(raw, &st) != nil {
				return
			}
			s.notify("request", st)
			if st.State == protocol.RequestMined || st.State == protocol.RequestFailed {
				once.Do(func() {
					if done != nil {
						done <- st
					}
					close(finished)
				})
			}
		},
	})
	go func() {
		select {
		case <-finished:
		case <-time.After(10 * time.Minute):
		}
		cancel()
	}()
}
