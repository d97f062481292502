package contracts_test

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/devchain/gethtest"
)

// TestGethDev runs the platform on a real `geth --dev` node: deploy, create an event, buy,
// resell within the cap with the split paid to every party, check in, refuse a second
// check-in, and buy by card through the OracleHub (k of n oracles' report mints, once).
func TestGethDev(t *testing.T) {
	url := gethtest.StartGeth(t)
	c, err := devchain.Dial(context.Background(), url, devchain.Options{Accounts: 6, Seed: "geth"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	issuer, artist, venue, gate, a, b := c.Accounts[0], c.Accounts[1], c.Accounts[2], c.Accounts[3], c.Accounts[4], c.Accounts[5]
	cfg := c.DefaultConfig(issuer.Address, artist.Address, venue.Address)
	now := int64(c.Now())
	// Sales open and doors open at once, so one run covers both on a real clock.
	cfg.DoorsOpenAt = big.NewInt(now - 60)
	cfg.Rules.ResaleClosesAt = big.NewInt(now + 3600)
	cfg.StartsAt = big.NewInt(now + 7200)
	cfg.Gates = []common.Address{gate.Address}
	ev, err := c.CreateEvent(issuer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.FundUSD(ev, devchain.USDC(1000), a, b, issuer, artist, venue)

	r, err := c.Transact(a, ev, ticket.PackBuy(zero, u(1), devchain.USDC(50)), nil)
	if err != nil {
		t.Fatalf("buy: %v", err)
	}
	var id *big.Int
	for _, l := range r.Logs {
		if p, err := ticket.UnpackPurchasedEvent(l); err == nil {
			id = p.FirstTokenId
		}
	}
	if id == nil {
		t.Fatal("no Purchased event")
	}
	if _, err := c.Transact(a, ev, ticket.PackList(id, devchain.USDC(61)), nil); devchain.ErrorName(ticketABI, err) != "PriceOutOfRange" {
		t.Fatalf("listing above the cap: %v", err)
	}
	c.MustTransact(a, ev, ticket.PackList(id, devchain.USDC(60)), nil)
	before := c.USDBalance(artist.Address)
	c.MustTransact(b, ev, ticket.PackBuyListed(id, devchain.USDC(60)), nil)
	if d := new(big.Int).Sub(c.USDBalance(artist.Address), before); d.Cmp(u(1_000_000)) != 0 {
		t.Fatalf("artist's resale share %s, want 1 USD", d)
	}
	c.MustTransact(gate, ev, ticket.PackCheckIn(id), nil)
	if _, err := c.Transact(gate, ev, ticket.PackCheckIn(id), nil); devchain.ErrorName(ticketABI, err) != "TicketCheckedIn" {
		t.Fatalf("second check-in: %v", err)
	}

	// Card purchase: a request, then k of n oracles' report mints; the same report again is
	// refused.
	p, _, err := c.RequestPurchase(a, ev, devchain.PaymentID("pi_geth"), 0, 1)
	if err != nil {
		t.Fatalf("requestPurchase: %v", err)
	}
	fulfil := c.FulfilCall(ev, []events.CardPurchase{p}, c.Quorum()...)
	if _, err := c.Transact(c.Deployer, c.Hub, fulfil, nil); err != nil {
		t.Fatalf("fulfil: %v", err)
	}
	if st, err := c.HubPayment(p.PaymentId); err != nil || st.Status != devchain.PaymentMinted {
		t.Fatalf("payment after report: %+v %v", st, err)
	}
	if _, err := c.Transact(c.Deployer, c.Hub, fulfil, nil); devchain.ErrorName(hubABI, err) != "PaymentAlreadyUsed" {
		t.Fatalf("replayed report: %v", err)
	}
}
