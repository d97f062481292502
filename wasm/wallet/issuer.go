package wallet

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
)

// The issuer console's methods: create an event and manage its door scanners (gasless,
// signed here after a summary), and read the event's figures, live.

var issuerMethods = []string{"prepareCreateEvent", "prepareSetGate", "issuerEvents", "eventStats", "watchEvent"}

func init() {
	Methods = append(Methods, issuerMethods...)
	codes = append(codes, struct {
		err  error
		code string
	}{actions.ErrInvalidConfig, "INVALID_CONFIG"})
}

func (s *Service) callIssuer(ctx context.Context, method string, params []byte) (any, error) {
	switch method {
	case "prepareCreateEvent":
		var p struct {
			Account ethcrypto.Address    `json:"account"`
			Config  *actions.EventConfig `json:"config"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		if p.Config == nil {
			return nil, fmt.Errorf("%w: config is required", ErrBadParams)
		}
		// Refused before any relay round trip when the rules are broken.
		if err := p.Config.Validate(); err != nil {
			return nil, err
		}
		if err := s.checkAccount(p.Account); err != nil {
			return nil, err
		}
		env, err := s.env(ctx, p.Account)
		if err != nil {
			return nil, err
		}
		ci, err := s.chainInfo(ctx)
		if err != nil {
			return nil, err
		}
		factory, err := ethcrypto.ParseAddress(ci.Factory)
		if err != nil {
			return nil, fmt.Errorf("wallet: relay's factory address: %w", err)
		}
		tok, err := s.token(ctx, &p.Config.EventInfo, p.Account)
		if err != nil {
			return nil, err
		}
		a, err := actions.CreateEvent(p.Account, env, factory, p.Config, tok)
		if err != nil {
			return nil, err
		}
		return s.holdEntry(&pendingEntry{account: p.Account, summary: a.Summary, action: a})
	case "prepareSetGate":
		var p struct {
			Account ethcrypto.Address `json:"account"`
			Event   ethcrypto.Address `json:"event"`
			Gate    ethcrypto.Address `json:"gate"`
			Allowed *bool             `json:"allowed"` // default true
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		allowed := p.Allowed == nil || *p.Allowed
		return s.prepare(ctx, p.Account, p.Event, func(env actions.Env, ev *protocol.EventInfo, _ *protocol.PermitInfo) (*actions.Action, error) {
			return actions.SetGate(p.Account, env, ev, p.Gate, allowed)
		})
	case "issuerEvents":
		var p struct {
			Issuer ethcrypto.Address `json:"issuer"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		var out []protocol.EventInfo
		err := s.rpc(ctx, protocol.MethodIssuerEvents, []any{p.Issuer.Hex()}, &out)
		return out, err
	case "eventStats":
		var p struct {
			Event ethcrypto.Address `json:"event"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		var out protocol.EventStats
		err := s.rpc(ctx, protocol.MethodEventStats, []any{p.Event.Hex()}, &out)
		return out, err
	case "watchEvent":
		// Follows one event's activity (replacing the previous watch): each arrives as
		// onEvent("eventActivity", activity); the console reads eventStats again.
		var p struct {
			Event ethcrypto.Address `json:"event"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		c, err := s.relay()
		if err != nil {
			return nil, err
		}
		ev := p.Event.Hex()
		cancel := c.Subscribe(&relayclient.Subscription{
			Topic:  protocol.TopicEvent,
			Params: func() any { return map[string]any{"event": ev} },
			OnPush: func(raw json.RawMessage) {
				var a protocol.Activity
				if json.Unmarshal(raw, &a) == nil {
					s.notify("eventActivity", a)
				}
			},
		})
		s.on.mu.Lock()
		prev := s.on.watchSub
		s.on.watchSub = cancel
		s.on.mu.Unlock()
		if prev != nil {
			prev()
		}
		return map[string]any{"event": ev}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownMethod, method)
}
