package server_test

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// TestIssuerStats: on the demo event (issuer account 1; splits originator 50%, artist 30%,
// promoter 10%, venue 10%; resale cap +20%, the seller keeps half the markup) a TestUSD
// purchase, a resale at the cap, a card purchase of two and a check-in show up in
// sp_eventStats: sold per tier, revenue, resales, check-ins and each party's amounts — the
// token amounts equal to what the parties' balances actually gained, the card amounts those
// of the fulfilment's RevenueSplit events. sp_issuerEvents lists the issuer's events only.
func TestIssuerStats(t *testing.T) {
	e := newCardEnv(t)
	acc := e.chain.Accounts
	issuer, fan, buyer := acc[1], acc[6], acc[7]
	parties := e.chain.Accounts[1:6] // issuer, gate, artist, promoter, venue
	before := map[int]*big.Int{}
	for _, i := range []int{0, 2, 3, 4} {
		before[i] = e.chain.USDBalance(parties[i].Address)
	}
	sellerBefore := e.chain.USDBalance(fan.Address)

	var mine []protocol.EventInfo
	e.result(protocol.MethodIssuerEvents, []any{issuer.Address.Hex()}, &mine)
	if len(mine) != 1 || !strings.EqualFold(mine[0].Address, e.chain.Demo.Hex()) {
		t.Fatalf("issuer's events %+v", mine)
	}
	e.result(protocol.MethodIssuerEvents, []any{fan.Address.Hex()}, &mine)
	if len(mine) != 0 {
		t.Fatalf("a fan's events %+v", mine)
	}
	if r := e.call(protocol.MethodEventStats, []any{fan.Address.Hex()}); r.Error == nil || !strings.Contains(r.Error.Message, "no Stagepass event") {
		t.Fatalf("stats of a non-event: %+v", r.Error)
	}

	// TestUSD: buy one general admission ticket (45), list it at the cap (54), resold.
	e.buy(fan, 1)
	var held []protocol.TicketInfo
	waitFor(t, "the purchase to be indexed", func() bool {
		e.result(protocol.MethodTicketsByOwner, []any{fan.Address.Hex()}, &held)
		return len(held) == 1
	})
	id, _ := new(big.Int).SetString(held[0].TokenID, 10)
	e.chain.MustTransact(fan, e.chain.Demo, devchain.Ticket.PackList(id, devchain.USDC(54)), nil)
	e.chain.MustTransact(buyer, e.chain.Demo, devchain.Ticket.PackBuyListed(id, devchain.USDC(54)), nil)
	// Card: two tickets (90) through the oracles.
	cardFan := devchain.NewAccount("issuer stats card fan", 0)
	in := e.intent(cardFan, 0, 2, "4242424242424242")
	e.request(cardFan, in, 0, 2)
	e.waitState(in.ID, protocol.PaymentMinted)

	var st protocol.EventStats
	waitFor(t, "the stats to show every sale", func() bool {
		e.result(protocol.MethodEventStats, []any{e.chain.Demo.Hex()}, &st)
		return st.Sold == 3 && st.Resales == 1
	})
	usd := func(x int64) string { return big.NewInt(x).String() } // in 10^-6 TestUSD
	if st.Tiers[0].Sold != 3 || st.Tiers[0].Revenue != usd(135_000_000) || st.Revenue != usd(135_000_000) || st.CardSold != 2 ||
		st.ResaleValue != usd(54_000_000) || st.ToSellers != usd(49_500_000) || st.Tiers[1].Sold != 0 {
		t.Fatalf("stats %+v", st)
	}
	want := []struct{ primary, resale, card int64 }{
		{22_500_000, 2_250_000, 45_000_000}, // originator
		{13_500_000, 1_350_000, 27_000_000}, // artist
		{4_500_000, 450_000, 9_000_000},     // promoter
		{4_500_000, 450_000, 9_000_000},     // venue
	}
	partyIdx := []int{0, 2, 3, 4}
	for i, p := range st.Payouts {
		w := want[i]
		total := w.primary + w.resale + w.card
		if p.Primary != usd(w.primary) || p.Resale != usd(w.resale) || p.Card != usd(w.card) || p.Total != usd(total) {
			t.Errorf("payout %d %+v, want %+v", i, p, w)
		}
		// The token amounts are what the contract actually paid.
		gained := new(big.Int).Sub(e.chain.USDBalance(parties[partyIdx[i]].Address), before[partyIdx[i]])
		if gained.String() != usd(w.primary+w.resale) {
			t.Errorf("party %d gained %s on-chain, stats say %d", i, gained, w.primary+w.resale)
		}
	}
	// The seller paid 45 and received 49.5.
	if got := new(big.Int).Sub(e.chain.USDBalance(fan.Address), sellerBefore); got.String() != usd(4_500_000) {
		t.Errorf("seller's balance moved by %s", got)
	}
	if len(st.Gates) != 1 || !strings.EqualFold(st.Gates[0], acc[2].Address.Hex()) {
		t.Errorf("gates %v", st.Gates)
	}

	// A check-in once the doors open.
	e.chain.Warp(time.Duration(e.chainInfoStart(t)) * time.Second)
	e.chain.MustTransact(acc[2], e.chain.Demo, devchain.Ticket.PackCheckIn(id), nil)
	waitFor(t, "the check-in in the stats", func() bool {
		e.result(protocol.MethodEventStats, []any{e.chain.Demo.Hex()}, &st)
		return st.CheckedIn == 1
	})
}

// chainInfoStart is how long until the demo's doors open (plus a minute).
func (e *env) chainInfoStart(t *testing.T) uint64 {
	var ev protocol.EventInfo
	e.result(protocol.MethodEvent, []any{e.chain.Demo.Hex()}, &ev)
	return ev.DoorsOpenAt - e.chain.Now() + 60
}
