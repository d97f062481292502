package watcher_test

import (
	"context"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/index"
	"github.com/stagepass/stagepass/relay/watcher"
	"github.com/stagepass/stagepass/wasm/protocol"
)

type recorder struct {
	mu   sync.Mutex
	acts map[string][]protocol.Activity
}

func (r *recorder) publish(keys []string, a protocol.Activity) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		r.acts[k] = append(r.acts[k], a)
	}
}

func (r *recorder) get(key string) []protocol.Activity {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]protocol.Activity(nil), r.acts[key]...)
}

func setup(t *testing.T) (*devchain.Chain, *index.Index, *watcher.Watcher, *recorder) {
	t.Helper()
	c, err := devchain.New(devchain.Options{Accounts: 6, Seed: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	rec := &recorder{acts: map[string][]protocol.Activity{}}
	ix := index.New(c.Client, c.Factory, rec.publish)
	w := watcher.New(watcher.Config{Client: c.Client, Sink: ix, Factory: c.Factory, Start: 0})
	return c, ix, w, rec
}

func step(t *testing.T, w *watcher.Watcher) {
	t.Helper()
	if err := w.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestIndexFollowsTicketLifecycle(t *testing.T) {
	c, ix, w, rec := setup(t)
	issuer, artist, venue, gate, a, b := c.Accounts[0], c.Accounts[1], c.Accounts[2], c.Accounts[3], c.Accounts[4], c.Accounts[5]
	cfg := c.DefaultConfig(issuer.Address, artist.Address, venue.Address)
	cfg.Gates = []common.Address{gate.Address}
	ev, err := c.CreateEvent(issuer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.FundUSD(ev, devchain.USDC(1000), a, b)
	step(t, w)
	info, ok := ix.Event(ev)
	if !ok || info.Name != cfg.Name || info.Venue != cfg.Venue || len(info.Tiers) != 1 ||
		info.Tiers[0].Name != "General admission" || len(info.Splits) != 3 || info.MaxPerBuyer != 4 {
		t.Fatalf("event info %+v", info)
	}

	c.MustTransact(a, ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(2), devchain.USDC(50)), nil)
	step(t, w)
	mine := ix.TicketsByOwner(a.Address)
	if len(mine) != 2 || mine[0].TokenID != "1" || mine[1].TokenID != "2" {
		t.Fatalf("a's tickets %+v", mine)
	}
	c.MustTransact(a, ev, devchain.Ticket.PackList(big.NewInt(1), devchain.USDC(55)), nil)
	step(t, w)
	if l := ix.Listings(ev); len(l) != 1 || l[0].ListingPrice != devchain.USDC(55).String() {
		t.Fatalf("listings %+v", l)
	}
	c.MustTransact(b, ev, devchain.Ticket.PackBuyListed(big.NewInt(1), devchain.USDC(55)), nil)
	step(t, w)
	if l := ix.Listings(ev); len(l) != 0 {
		t.Fatalf("listing survived the sale: %+v", l)
	}
	if got := ix.TicketsByOwner(b.Address); len(got) != 1 || got[0].TokenID != "1" {
		t.Fatalf("b's tickets %+v", got)
	}
	c.Warp(7*24*time.Hour - 2*time.Hour)
	c.MustTransact(gate, ev, devchain.Ticket.PackCheckInBatch([]*big.Int{big.NewInt(1), big.NewInt(2)}), nil)
	step(t, w)
	for _, tk := range append(ix.TicketsByOwner(a.Address), ix.TicketsByOwner(b.Address)...) {
		if !tk.CheckedIn {
			t.Fatalf("ticket %s not checked in", tk.TokenID)
		}
	}

	// b's feed: the resale (transfer + resold) then the check-in, in cursor order; and a
	// resume from the middle returns only what came after.
	feed := rec.get(index.OwnerKey(b.Address))
	var kinds []string
	for i, act := range feed {
		kinds = append(kinds, act.Kind)
		if i > 0 && !feed[i-1].Cursor.Less(act.Cursor) {
			t.Fatalf("feed out of order at %d: %+v", i, feed)
		}
	}
	if strings.Join(kinds, ",") != "transfer,resold,checkedIn" {
		t.Fatalf("b's feed %v", kinds)
	}
	since := ix.Since(index.OwnerKey(b.Address), feed[0].Cursor)
	if len(since) != 2 || since[0] != feed[1] || since[1] != feed[2] {
		t.Fatalf("since %+v", since)
	}
}

func TestReorgRetractsAndReapplies(t *testing.T) {
	c, ix, w, rec := setup(t)
	issuer, a := c.Accounts[0], c.Accounts[4]
	ev, err := c.CreateEvent(issuer, c.DefaultConfig(issuer.Address, c.Accounts[1].Address, c.Accounts[2].Address))
	if err != nil {
		t.Fatal(err)
	}
	c.FundUSD(ev, devchain.USDC(1000), a)
	step(t, w)
	parent, err := c.Client.HeaderByNumber(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.MustTransact(a, ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(50)), nil)
	step(t, w)
	if len(ix.TicketsByOwner(a.Address)) != 1 {
		t.Fatal("purchase not indexed")
	}

	// A longer side chain from before the purchase replaces it.
	if err := c.Backend.Fork(parent.Hash()); err != nil {
		t.Fatal(err)
	}
	c.Backend.Commit()
	c.Backend.Commit()
	c.Backend.Commit()
	step(t, w)
	feed := rec.get(index.OwnerKey(a.Address))
	var removed int
	for _, act := range feed {
		if act.Removed {
			removed++
		}
	}
	inPool := len(ix.TicketsByOwner(a.Address))
	if removed == 0 {
		t.Fatalf("no removal pushed after the reorg: %+v", feed)
	}
	// The dropped transaction returns to the pool and is mined again on the new chain;
	// whichever block it lands in, the index ends agreeing with the chain.
	for range 3 {
		c.Backend.Commit()
	}
	step(t, w)
	onChain, err := c.Call(ev, devchain.Ticket.PackBalanceOf(a.Address))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := devchain.Ticket.UnpackBalanceOf(onChain)
	if got := len(ix.TicketsByOwner(a.Address)); int64(got) != n.Int64() {
		t.Fatalf("index has %d tickets for a, chain %d (right after the fork: %d)", got, n, inPool)
	}
}

// A watcher resumed from another's Position (the Workers build keeps it in a database
// between runs) goes on where it stopped and still sees a reorganisation of the blocks the
// first one read.
func TestResumeFromPosition(t *testing.T) {
	c, ix, w, rec := setup(t)
	issuer, a := c.Accounts[0], c.Accounts[4]
	ev, err := c.CreateEvent(issuer, c.DefaultConfig(issuer.Address, c.Accounts[1].Address, c.Accounts[2].Address))
	if err != nil {
		t.Fatal(err)
	}
	c.FundUSD(ev, devchain.USDC(1000), a)
	step(t, w)
	parent, err := c.Client.HeaderByNumber(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.MustTransact(a, ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(50)), nil)
	step(t, w)
	next, hashes := w.Position()
	if next != parent.Number.Uint64()+2 || len(hashes) == 0 {
		t.Fatalf("position %d with %d hashes after block %d", next, len(hashes), parent.Number.Uint64()+1)
	}

	w2 := watcher.New(watcher.Config{Client: c.Client, Sink: ix, Factory: c.Factory, Start: 0})
	w2.Resume(next, hashes)
	before := len(rec.get(index.OwnerKey(a.Address)))
	step(t, w2) // nothing new: nothing applied twice
	if got := len(rec.get(index.OwnerKey(a.Address))); got != before {
		t.Fatalf("the resumed watcher pushed %d activities again", got-before)
	}
	if err := c.Backend.Fork(parent.Hash()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.Backend.Commit()
	}
	step(t, w2)
	var removed int
	for _, act := range rec.get(index.OwnerKey(a.Address)) {
		if act.Removed {
			removed++
		}
	}
	if removed == 0 {
		t.Fatal("the resumed watcher did not retract the replaced block")
	}
}
