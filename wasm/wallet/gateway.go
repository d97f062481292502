package wallet

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/tickets"
)

// The main-chain bridge (issue 9): withdrawing the bridged stablecoin and taking a ticket
// of an event that is over to the main chain, both gasless through ChildGateway; the
// withdrawals' progress (queued → checkpointed → exited) is the relay's sp_withdrawals,
// passed through undecoded like sp_finality.

var gatewayMethods = []string{"bridgeBalance", "prepareWithdraw", "prepareExitTicket", "withdrawals"}

func init() { Methods = append(Methods, gatewayMethods...) }

func (s *Service) callGateway(ctx context.Context, method string, params []byte) (any, error) {
	var p struct {
		Account   ethcrypto.Address `json:"account"`
		Amount    Quantity          `json:"amount"`
		Recipient ethcrypto.Address `json:"recipient"`
		Event     ethcrypto.Address `json:"event"`
		TokenID   Quantity          `json:"tokenId"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	if method == "withdrawals" {
		// sp_withdrawals' answer passes through as it is (protocol.Withdrawal documents it).
		if p.Recipient.IsZero() {
			p.Recipient = p.Account
		}
		var out json.RawMessage
		err := s.rpc(ctx, protocol.MethodWithdrawals, []any{p.Recipient.Hex()}, &out)
		return out, err
	}
	if method != "bridgeBalance" {
		if err := s.checkAccount(p.Account); err != nil {
			return nil, err
		}
	}
	ci, err := s.chainInfo(ctx)
	if err != nil {
		return nil, err
	}
	// The bridged stablecoin with the account's balance (sp_permitInfo reads it).
	var tok *protocol.PermitInfo
	if method != "prepareExitTicket" {
		if ci.BridgedCurrency == "" {
			return nil, fmt.Errorf("%w (chain %d)", actions.ErrNoGateway, ci.ChainID)
		}
		tok = new(protocol.PermitInfo)
		if err := s.rpc(ctx, protocol.MethodPermitInfo, []any{ci.BridgedCurrency, p.Account.Hex()}, tok); err != nil || method == "bridgeBalance" {
			return tok, err
		}
	}
	c := actions.Call{Sig: actions.SigWithdraw, To: p.Recipient, Amount: p.Amount.big()}
	var ev *protocol.EventInfo
	var t tickets.Ticket
	if tok == nil {
		c = actions.Call{Sig: actions.SigExitTicket, To: p.Recipient, TokenID: p.TokenID.big()}
		if t, err = s.held(p.Account, p.Event, c.TokenID); err != nil {
			return nil, err
		}
		if ev, err = s.event(ctx, p.Event); err != nil {
			return nil, err
		}
	}
	env, err := s.env(ctx, p.Account)
	if err != nil {
		return nil, err
	}
	a, err := actions.Gateway(p.Account, env, ci, c, tok, ev, t.CheckedIn)
	if err != nil {
		return nil, err
	}
	return s.holdEntry(&pendingEntry{account: p.Account, summary: a.Summary, action: a})
}
