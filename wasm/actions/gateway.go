package actions

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/signing"
)

// The main-chain bridge (issue 9): ChildGateway on the sidechain burns the bridged
// stablecoin (withdraw) or records a ticket's exit (exitTicket); a checkpoint then carries
// the withdrawal to the main chain, where RootGateway pays it or mints the ticket's mirror.
// Both take their caller from the forwarder, so they go out as gasless forward requests.
const (
	SigWithdraw   = "withdraw(address,uint256)"
	SigExitTicket = "exitTicket(address,uint256,address)"
)

// Gateway refusals the page branches on.
var (
	ErrNoGateway           = errors.New("actions: this chain has no gateway to a main chain")
	ErrInsufficientBalance = errors.New("actions: more than the balance")
	// ErrBelowMinimum: a deposit smaller than the least the relay sends for the fan
	// (MainPermitInfo.MinAmount).
	ErrBelowMinimum = errors.New("actions: below the minimum")
)

// Gas of both calls: ~300,000 for the withdrawal tree's leaf (ChildGateway's notes) and
// the exit's reads of the event, with a margin.
const gasGateway = 450_000

// ExitOpensAt is when ev's tickets may exit: ChildGateway.EXIT_DELAY (ci.ExitDelay) after
// the later of the event's start and its resale close.
func ExitOpensAt(ci *protocol.ChainInfo, ev *protocol.EventInfo) uint64 {
	return max(ev.StartsAt, ev.ResaleClosesAt) + ci.ExitDelay
}

// Gateway prepares a gasless ChildGateway call. With c.Sig = SigWithdraw: burning c.Amount
// of the bridged stablecoin (base units) on the sidechain to be paid to c.To on the main
// chain (the account itself when c.To is zero: one key holds both); token is the bridged currency with the account's balance (from
// sp_permitInfo). With c.Sig = SigExitTicket: taking the account's ticket c.TokenID of ev
// out to c.To on the main chain once the event is over (checkedIn: as a souvenir).
func Gateway(account ethcrypto.Address, env Env, ci *protocol.ChainInfo, c Call, token *protocol.PermitInfo, ev *protocol.EventInfo, checkedIn bool) (*Action, error) {
	gw, err := ethcrypto.ParseAddress(ci.Gateway)
	if err != nil || gw.IsZero() {
		return nil, fmt.Errorf("%w (chain %d)", ErrNoGateway, ci.ChainID)
	}
	if err := env.check(); err != nil {
		return nil, err
	}
	if c.To.IsZero() {
		c.To = account
	}
	var lines []signing.Line
	title := "Withdraw "
	m := MoneyOf(&protocol.EventInfo{}, token)
	if c.Sig != SigWithdraw {
		if c.Event, err = eventAddress(ev); err != nil {
			return nil, err
		}
		if ev.Cancelled {
			return nil, fmt.Errorf("%w: %s is cancelled", ErrNotAllowed, ev.Name)
		}
		if at := ExitOpensAt(ci, ev); uint64(env.Now.Unix()) < at {
			return nil, fmt.Errorf("%w: %s is not over yet; its tickets may go to the main chain from %s", ErrNotAllowed, ev.Name, when(at))
		}
		title = "Keep ticket #"
		if checkedIn {
			title = "Keep as a souvenir ticket #"
		}
		c.Sig = SigExitTicket
	} else {
		if token == nil || !strings.EqualFold(token.Token, ci.BridgedCurrency) {
			return nil, fmt.Errorf("%w: no balance of the bridged currency %s", ErrBadArgs, ci.BridgedCurrency)
		}
		bal, err := parseAmount("balance", token.Balance)
		if err != nil {
			return nil, err
		}
		switch {
		case c.Amount == nil || c.Amount.Sign() <= 0:
			return nil, fmt.Errorf("%w: withdraw a positive amount of %s", ErrBadArgs, m.Symbol)
		case c.Amount.Cmp(bal) > 0:
			return nil, fmt.Errorf("%w: %s asked, %s held", ErrInsufficientBalance, m.Format(c.Amount), m.Format(bal))
		}
		lines = []signing.Line{{Label: "Balance after", Value: m.Format(bal.Sub(bal, c.Amount))}}
	}
	data, err := c.Encode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArgs, err)
	}
	req := env.request(account, gw, gasGateway, data)
	// The summary says what the signed calldata says.
	d, err := Decode(req.Data)
	if err != nil {
		return nil, err
	}
	main := fmt.Sprintf("%s on the main chain (id %d)", d.To.Hex(), ci.MainChainID)
	if d.Sig == SigExitTicket {
		title += d.TokenID.String() + " on the main chain"
		lines = []signing.Line{{Label: "Event", Value: ev.Name},
			{Label: "Ticket", Value: fmt.Sprintf("#%s (%s)", d.TokenID, tierName(ev, new(big.Int).Rsh(d.TokenID, 32).Uint64()))},
			{Label: "Mirror ticket to", Value: main},
			{Label: "How", Value: "it stays here, marked as exited, and its mirror is minted on the main chain once a checkpoint carries it"}}
	} else {
		title += m.Format(d.Amount) + " to the main chain"
		lines = append([]signing.Line{{Label: "Amount", Value: m.Format(d.Amount)}, {Label: "Paid to", Value: main},
			{Label: "How", Value: "burned here now, paid on the main chain once a checkpoint carries it"}}, lines...)
	}
	s := signing.Summary{Kind: "forward", Account: account.Hex(), Title: title, Lines: lines}
	if d.Sig == SigExitTicket {
		s.Warnings = []string{"A ticket exits once: it cannot come back to this chain."}
	}
	tail(&s, req, d)
	return &Action{Account: account, Summary: s, Request: req, Domain: protocol.ForwarderDomain(env.ChainID, env.Forwarder)}, nil
}

// tail adds the lines every forward request's summary ends with.
func tail(s *signing.Summary, req *protocol.ForwardRequest, c *Call) {
	s.Lines = append(s.Lines, signing.Line{Label: "Contract", Value: req.To.Hex()}, signing.Line{Label: "Function", Value: c.Sig},
		signing.Line{Label: "Gas", Value: "paid by Stagepass"},
		signing.Line{Label: "Valid until", Value: time.Unix(int64(req.Deadline), 0).UTC().Format("2006-01-02 15:04:05 UTC")})
}
