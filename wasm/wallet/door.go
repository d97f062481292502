package wallet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
	"github.com/stagepass/stagepass/wasm/scanner"
)

// ConfirmWait is how long an online scan waits for its check-in to be mined before
// admitting on the relay's acceptance alone.
var ConfirmWait = 8 * time.Second

// scannerMeta is cached next to the scanner state so the door opens offline.
type scannerMeta struct {
	ChainID uint64             `json:"chainId"`
	Event   protocol.EventInfo `json:"event"`
	Gate    string             `json:"gate"`
}

func metaKey(ev ethcrypto.Address) string { return "scannerMeta:" + strings.ToLower(ev.Hex()) }

func (s *Service) scanner() (*scanner.Scanner, ethcrypto.Address, error) {
	s.on.mu.Lock()
	defer s.on.mu.Unlock()
	if s.on.scan == nil {
		return nil, ethcrypto.Address{}, ErrNoScanner
	}
	return s.on.scan, s.on.gate, nil
}

func (s *Service) saveScanner(ctx context.Context, sc *scanner.Scanner, ev ethcrypto.Address) {
	s.cache().Save(ctx, scanner.CacheKey(ev), sc.Save())
	s.notify("scanner", sc.Stats())
}

// scannerOpen makes this wallet a door for event with gate as the signing account. Online
// it loads the relay's snapshot of owners (sp_eventTickets) or, from a relay without it,
// replays the event topic from the start; then it follows the event topic. Offline it
// opens from the cache.
func (s *Service) scannerOpen(ctx context.Context, params []byte) (any, error) {
	var p struct {
		Account ethcrypto.Address `json:"account"`
		Event   ethcrypto.Address `json:"event"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	if err := s.checkAccount(p.Account); err != nil {
		return nil, err
	}
	var meta scannerMeta
	ci, err := s.chainInfo(ctx)
	var ev *protocol.EventInfo
	if err == nil {
		ev, err = s.event(ctx, p.Event)
	}
	if err == nil {
		meta = scannerMeta{ChainID: ci.ChainID, Event: *ev, Gate: p.Account.Hex()}
		b, _ := json.Marshal(meta)
		s.cache().Save(ctx, metaKey(p.Event), b)
	} else {
		b, lerr := s.cache().Load(ctx, metaKey(p.Event))
		if lerr != nil || len(b) == 0 || json.Unmarshal(b, &meta) != nil {
			return nil, err // never opened online: nothing to work from
		}
	}
	sc := scanner.New(meta.ChainID, p.Event)
	if b, err := s.cache().Load(ctx, scanner.CacheKey(p.Event)); err == nil && len(b) > 0 {
		sc.Restore(b)
	}
	if ev != nil {
		var snap protocol.EventTickets
		err := s.rpc(ctx, protocol.MethodEventTickets, []any{p.Event.Hex()}, &snap)
		var we *Error
		switch {
		case err == nil:
			if err := sc.LoadSnapshot(snap, s.Now()); err != nil {
				return nil, err
			}
		case errors.As(err, &we) && we.Code == "RELAY_REFUSED" && sc.Stats().Cursor == (protocol.Cursor{}):
			// The relay has no snapshot method: the event topic replays all from the start.
		case errors.As(err, &we) && we.Code == "RELAY_REFUSED":
			// Resume from the cached cursor.
		default:
			return nil, err
		}
	}
	s.on.mu.Lock()
	old := s.on.scanSub
	s.on.scan, s.on.gate, s.on.scanInfo, s.on.scanSub = sc, p.Account, meta.Event, nil
	c := s.on.client
	s.on.mu.Unlock()
	if old != nil {
		old()
	}
	if c != nil {
		cancel := c.Subscribe(&relayclient.Subscription{
			Topic:  protocol.TopicEvent,
			Params: func() any { return map[string]any{"event": p.Event.Hex(), "from": sc.Cursor()} },
			OnPush: func(raw json.RawMessage) {
				var a protocol.Activity
				if json.Unmarshal(raw, &a) == nil && sc.Apply(a) {
					s.saveScanner(context.Background(), sc, p.Event)
				}
			},
		})
		s.on.mu.Lock()
		s.on.scanSub = cancel
		s.on.mu.Unlock()
	}
	s.saveScanner(ctx, sc, p.Event)
	return sc.Stats(), nil
}

type scanResult struct {
	scanner.Verdict
	CheckIn string `json:"checkIn,omitempty"` // "mined", "pending" (accepted, not yet mined) or "queued" (offline)
	Request string `json:"request,omitempty"`
}

// scanPass verifies a pass and checks the ticket in: online through the relay (admitted
// once the check-in is mined, or accepted if mining takes longer than ConfirmWait),
// offline into the queue.
func (s *Service) scanPass(ctx context.Context, params []byte) (any, error) {
	var p struct {
		Payload string `json:"payload"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	sc, gate, err := s.scanner()
	if err != nil {
		return nil, err
	}
	s.on.mu.Lock()
	info := s.on.scanInfo
	c := s.on.client
	s.on.mu.Unlock()
	ev, _ := ethcrypto.ParseAddress(info.Address)
	online := c != nil && c.Connected()
	var lookup scanner.Lookup
	if online {
		lookup = func(pass protocol.Pass) (bool, bool, error) {
			lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			var held []protocol.TicketInfo
			if err := c.Call(lctx, protocol.MethodTicketsByOwner, []any{pass.Holder.Hex()}, &held); err != nil {
				return false, false, err
			}
			for _, t := range held {
				if strings.EqualFold(t.Event, pass.Event.Hex()) && t.TokenID == pass.TokenID.String() {
					return true, t.CheckedIn, nil
				}
			}
			return false, false, nil
		}
	}
	now := s.Now()
	v, pass := sc.Check(p.Payload, now, lookup)
	if !v.OK {
		return scanResult{Verdict: v}, nil
	}
	defer s.saveScanner(context.Background(), sc, ev)
	if !online {
		sc.Admit(v.TokenID, now, "")
		return scanResult{Verdict: v, CheckIn: "queued"}, nil
	}
	st, err := s.checkIn(ctx, gate, &info, []*big.Int{pass.TokenID})
	if err != nil {
		var we *Error
		if errors.As(err, &we) && we.Code == "OFFLINE" {
			sc.Admit(v.TokenID, now, "")
			return scanResult{Verdict: v, CheckIn: "queued"}, nil
		}
		if errors.As(err, &we) && we.Code == "RELAY_REFUSED" {
			return scanResult{Verdict: refused(v, we.Message)}, nil
		}
		return nil, err
	}
	sc.Admit(v.TokenID, now, st.ID)
	done := make(chan protocol.RequestStatus, 1)
	s.follow(st.ID, done)
	select {
	case final := <-done:
		if final.State == protocol.RequestFailed {
			sc.Unadmit(v.TokenID)
			return scanResult{Verdict: refused(v, final.Reason), Request: st.ID}, nil
		}
		return scanResult{Verdict: v, CheckIn: "mined", Request: st.ID}, nil
	case <-time.After(ConfirmWait):
		return scanResult{Verdict: v, CheckIn: "pending", Request: st.ID}, nil
	}
}

func refused(v scanner.Verdict, reason string) scanner.Verdict {
	v.OK = false
	v.Code, v.Reason, v.Detail = "CHECK_IN_REFUSED", "the chain refused the check-in", reason
	if strings.Contains(reason, "TicketCheckedIn") {
		v.Code, v.Reason = scanner.AlreadyCheckedIn, "ticket already checked in (at another door)"
	}
	return v
}

// checkIn signs a gate's check-in of ids and sends it to the relay.
func (s *Service) checkIn(ctx context.Context, gate ethcrypto.Address, ev *protocol.EventInfo, ids []*big.Int) (protocol.RequestStatus, error) {
	env, err := s.env(ctx, gate)
	if err != nil {
		return protocol.RequestStatus{}, err
	}
	a, err := actions.CheckIn(gate, env, ev, ids)
	if err != nil {
		return protocol.RequestStatus{}, err
	}
	var sub protocol.ForwardSubmission
	if err := s.Vault.WithKey(gate, func(k *ethcrypto.PrivateKey) error {
		var err error
		sub, err = a.Sign(k)
		return err
	}); err != nil {
		return protocol.RequestStatus{}, err
	}
	var st protocol.RequestStatus
	err = s.rpc(ctx, protocol.MethodSendForward, []any{sub}, &st)
	return st, err
}

// scannerSync sends the offline queue as one batch check-in; a failed batch goes back to
// the queue. It reloads the owners first: a queued ticket another door checked in while
// this one was offline is a double entry (Stats.DoubleEntries), not sent.
func (s *Service) scannerSync(ctx context.Context) (any, error) {
	sc, gate, err := s.scanner()
	if err != nil {
		return nil, err
	}
	if len(sc.Queue()) > 0 {
		var snap protocol.EventTickets
		s.on.mu.Lock()
		info := s.on.scanInfo
		s.on.mu.Unlock()
		err := s.rpc(ctx, protocol.MethodEventTickets, []any{info.Address}, &snap)
		if err == nil {
			err = sc.LoadSnapshot(snap, s.Now())
		}
		var we *Error
		if err != nil && !(errors.As(err, &we) && we.Code == "RELAY_REFUSED") {
			return nil, err
		}
		if ev, perr := ethcrypto.ParseAddress(info.Address); perr == nil {
			s.saveScanner(ctx, sc, ev)
		}
	}
	q := sc.Queue()
	if len(q) == 0 {
		return map[string]any{"sent": 0}, nil
	}
	ids := make([]*big.Int, len(q))
	for i, id := range q {
		x, ok := new(big.Int).SetString(id, 10)
		if !ok {
			return nil, fmt.Errorf("wallet: queued token id %q", id)
		}
		ids[i] = x
	}
	s.on.mu.Lock()
	info := s.on.scanInfo
	s.on.mu.Unlock()
	ev, _ := ethcrypto.ParseAddress(info.Address)
	st, err := s.checkIn(ctx, gate, &info, ids)
	if err != nil {
		return nil, err
	}
	sc.Sent(q, st.ID)
	s.saveScanner(ctx, sc, ev)
	done := make(chan protocol.RequestStatus, 1)
	s.follow(st.ID, done)
	go func() {
		switch final := <-done; final.State {
		case protocol.RequestFailed:
			sc.Requeue(st.ID)
		case protocol.RequestMined:
			sc.Mined(st.ID, final.TxHash) // another door's check-in of a ticket in it: a double entry
		}
		s.saveScanner(context.Background(), sc, ev)
	}()
	return map[string]any{"sent": len(q), "request": st}, nil
}
