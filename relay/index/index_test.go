package index_test

import (
	"context"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/index"
	"github.com/stagepass/stagepass/relay/watcher"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// An index seeded with another's state and fed the later logs through Decode and
// ApplyActivity (as the Workers build does, with its state in a database) answers as the
// index that followed the whole chain.
func TestSeedThenApply(t *testing.T) {
	c, err := devchain.New(devchain.Options{Accounts: 6, Seed: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	issuer, a := c.Accounts[0], c.Accounts[4]
	ev, err := c.CreateEvent(issuer, c.DefaultConfig(issuer.Address, c.Accounts[1].Address, c.Accounts[2].Address))
	if err != nil {
		t.Fatal(err)
	}
	c.FundUSD(ev, devchain.USDC(1000), a)
	c.MustTransact(a, ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(2), devchain.USDC(100)), nil)
	full := index.New(c.Client, c.Factory, nil)
	w := watcher.New(watcher.Config{Client: c.Client, Sink: full, Factory: c.Factory})
	if err := w.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	mine := full.TicketsByOwner(a.Address)
	if len(mine) != 2 {
		t.Fatalf("%d tickets indexed, want 2", len(mine))
	}
	next, _ := w.Position()

	// The seeded index: the events and the tickets, no history.
	seeded := index.New(c.Client, c.Factory, nil)
	tickets, cursor := full.EventTickets(ev)
	seeded.Seed(full.Events(), tickets, cursor)

	// Later: a listing, a transfer (another owner) and a check-in of tickets seeded.
	first, _ := new(big.Int).SetString(mine[0].TokenID, 10)
	second, _ := new(big.Int).SetString(mine[1].TokenID, 10)
	c.MustTransact(a, ev, devchain.Ticket.PackList(first, devchain.USDC(55)), nil)
	c.MustTransact(a, ev, devchain.Ticket.PackTransferFrom(a.Address, c.Accounts[5].Address, second), nil)
	if err := w.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	logs, err := c.Client.FilterLogs(context.Background(), ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(next), Addresses: []common.Address{c.Factory, ev},
	})
	if err != nil {
		t.Fatal(err)
	}
	known := func(addr common.Address) bool { _, ok := seeded.Event(addr); return ok }
	for _, l := range logs {
		acts, info, err := index.Decode(context.Background(), c.Client, c.Factory, known, l)
		if err != nil {
			t.Fatal(err)
		}
		for _, act := range acts {
			if err := seeded.ApplyActivity(act, info); err != nil {
				t.Fatal(err)
			}
		}
	}
	same := func(what string, got, want any) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Fatalf("%s: seeded %s, full %s", what, g, w)
		}
	}
	same("events", seeded.Events(), full.Events())
	for _, o := range []common.Address{a.Address, c.Accounts[5].Address} {
		same("tickets of "+o.Hex(), seeded.TicketsByOwner(o), full.TicketsByOwner(o))
	}
	same("listings", seeded.Listings(ev), full.Listings(ev))
	st, sc := seeded.EventTickets(ev)
	ft, fc := full.EventTickets(ev)
	same("event tickets", []any{st, sc}, []any{ft, fc})
	if l := full.Listings(ev); len(l) != 1 || l[0].ListingPrice != "55000000" {
		t.Fatalf("listings %+v", l)
	}
	if got := seeded.Head(); got == (protocol.Cursor{}) || got != full.Head() {
		t.Fatalf("head %+v, want %+v", got, full.Head())
	}
}
