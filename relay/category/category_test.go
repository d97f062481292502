package category_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stagepass/stagepass/relay/category"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// world builds synthetic chain histories: events of artists, and the activities the relay's
// index would emit for purchases, resales, gifts and check-ins.
type world struct {
	h     *category.History
	block uint64
	tx    int
	next  map[string]uint64 // event → next serial (tier 0)
}

func newWorld() *world { return &world{h: category.NewHistory(), next: map[string]uint64{}} }

func addr(name string) string {
	return fmt.Sprintf("0x%040x", []byte(name)[:min(len(name), 20)])
}

func (w *world) event(name, artist string) string {
	ev := addr("event " + name)
	w.h.AddEvent(protocol.EventInfo{
		Address: ev, MaxResaleMarkupBps: 2000,
		Tiers:  []protocol.TierInfo{{Name: "GA", FaceValue: "50000000", Supply: 1000}},
		Splits: []protocol.SplitInfo{{Account: addr("issuer"), Bps: 5000, Role: 0}, {Account: artist, Bps: 5000, Role: 1}},
	})
	return ev
}

func (w *world) apply(a protocol.Activity) {
	a.Cursor = protocol.Cursor{Block: w.block}
	w.h.Apply(a)
}

func (w *world) txHash() string { w.tx++; return fmt.Sprintf("0x%064x", w.tx) }

// buy: one primary purchase of one ticket; returns its token id.
func (w *world) buy(ev, who string) string {
	w.next[ev]++
	id := fmt.Sprint(w.next[ev])
	tx := w.txHash()
	w.apply(protocol.Activity{Kind: protocol.KindTransfer, Event: ev, TokenID: id, From: "0x0000000000000000000000000000000000000000", To: who, TxHash: tx})
	w.apply(protocol.Activity{Kind: protocol.KindPurchased, Event: ev, TokenID: id, To: who, Quantity: 1, Price: "50000000", TxHash: tx})
	w.block += 3
	return id
}

func (w *world) resell(ev, id, from, to, price string) {
	tx := w.txHash()
	w.apply(protocol.Activity{Kind: protocol.KindTransfer, Event: ev, TokenID: id, From: from, To: to, TxHash: tx})
	w.apply(protocol.Activity{Kind: protocol.KindResold, Event: ev, TokenID: id, From: from, To: to, Price: price, TxHash: tx})
	w.block++
}

func (w *world) gift(ev, id, from, to string) {
	w.apply(protocol.Activity{Kind: protocol.KindTransfer, Event: ev, TokenID: id, From: from, To: to, TxHash: w.txHash()})
	w.block++
}

func (w *world) checkIn(ev, id string) {
	w.apply(protocol.Activity{Kind: protocol.KindCheckedIn, Event: ev, TokenID: id, TxHash: w.txHash()})
	w.block++
}

// TestCategoryRules: a synthetic platform with three artists, nine events and accounts of
// every kind gets exactly the expected verdicts, and each verdict names its facts.
func TestCategoryRules(t *testing.T) {
	r := category.DefaultRules()
	r.CountTestCards = true
	w := newWorld()
	artA, artB, artC := addr("artist A"), addr("artist B"), addr("artist C")
	var evA, evB []string
	for i := range 4 {
		evA = append(evA, w.event(fmt.Sprintf("A%d", i), artA))
		evB = append(evB, w.event(fmt.Sprintf("B%d", i), artB))
	}
	evC := w.event("C0", artC)

	superA := addr("superfan of A")
	for _, ev := range evA[:3] { // checked in at three of A's events
		w.checkIn(ev, w.buy(ev, superA))
	}
	w.checkIn(evB[0], w.buy(evB[0], superA)) // and one of B's: a fan of B

	fanA := addr("fan of A")
	w.checkIn(evA[0], w.buy(evA[0], fanA))
	keeper := addr("keeps B tickets") // never checked in, kept tickets to two of B's events
	w.buy(evB[1], keeper)
	w.buy(evB[2], keeper)

	scalper := addr("scalper")
	for i, ev := range []string{evA[3], evB[3], evC} {
		for range 2 {
			id := w.buy(ev, scalper)
			w.resell(ev, id, scalper, addr(fmt.Sprintf("buyer %d", i)), "60000000") // the cap: 50 + 20%
		}
	}
	w.buy(evC, scalper) // kept one: 6 of 7 resold

	fairReseller := addr("resells at face") // resells a lot, but at face value
	for _, ev := range []string{evA[3], evB[3], evC} {
		w.resell(ev, w.buy(ev, fairReseller), fairReseller, addr("someone"), "50000000")
	}

	burst := addr("burst buyer")
	for range 8 {
		w.next[evC]++
		id := fmt.Sprint(w.next[evC])
		tx := w.txHash()
		w.apply(protocol.Activity{Kind: protocol.KindTransfer, Event: evC, TokenID: id, From: "0x0000000000000000000000000000000000000000", To: burst, TxHash: tx})
		w.apply(protocol.Activity{Kind: protocol.KindPurchased, Event: evC, TokenID: id, To: burst, Quantity: 1, TxHash: tx})
	} // eight purchases in one block

	cardFarm := make([]string, 5)
	for i := range cardFarm {
		cardFarm[i] = addr(fmt.Sprintf("card farm %d", i))
		w.buy(evC, cardFarm[i])
		w.h.AddCard(cardFarm[i], "fp-shared", true, r)
	}
	fourWallets := make([]string, 4) // one card, four wallets: below the threshold
	for i := range fourWallets {
		fourWallets[i] = addr(fmt.Sprintf("family %d", i))
		w.h.AddCard(fourWallets[i], "fp-family", true, r)
	}

	giver := addr("gives tickets")
	id := w.buy(evA[1], giver)
	w.gift(evA[1], id, giver, addr("friend"))
	w.checkIn(evA[1], id) // the friend went: the friend's check-in, not the giver's

	want := map[string]string{
		superA + "/" + artA: "superfan", superA + "/" + artB: "fan",
		fanA + "/" + artA: "fan", keeper + "/" + artB: "fan",
		scalper + "/": "scalper", burst + "/": "bot",
		addr("friend") + "/" + artA: "fan", giver + "/" + artA: "",
	}
	for _, c := range cardFarm {
		want[c+"/"] = "bot"
	}
	got := map[string]string{}
	for _, v := range w.h.Classify(r) {
		got[v.Buyer+"/"+v.Artist] = v.Name
		if len(v.Facts) == 0 || v.Name != category.Names[v.Category] {
			t.Fatalf("verdict without facts or name: %+v", v)
		}
	}
	for k, name := range want {
		if got[k] != name {
			t.Errorf("%s: got %q, want %q", k, got[k], name)
		}
	}
	for k, name := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected verdict %s: %s", k, name)
		}
	}
	for _, x := range append([]string{fairReseller}, fourWallets...) {
		if g, _ := w.h.Explain(x, r); g.Category != category.Unclassified {
			t.Errorf("%s is %s: %v", x, g.Name, g.Facts)
		}
	}

	// Explanations name the facts and thresholds.
	g, _ := w.h.Explain(scalper, r)
	if !strings.Contains(g.Facts[0], "resold 6 of 7 tickets acquired, across 3 events, at 100% of the allowed markup") {
		t.Errorf("scalper facts: %v", g.Facts)
	}
	g, _ = w.h.Explain(cardFarm[0], r)
	if !strings.Contains(strings.Join(g.Facts, "; "), "used by 5 wallets") {
		t.Errorf("card farm facts: %v", g.Facts)
	}
	_, fans := w.h.Explain(superA, r)
	if len(fans) != 2 || !strings.Contains(fans[0].Facts[0], "checked in at 3") && !strings.Contains(fans[1].Facts[0], "checked in at 3") {
		t.Errorf("superfan facts: %+v", fans)
	}
	if g, _ := w.h.Explain(addr("never seen"), r); g.Category != category.Unclassified || len(g.Facts) == 0 {
		t.Errorf("a new wallet: %+v", g)
	}

	// Test-mode cards do not count unless the rules say so.
	h := category.NewHistory()
	for i := range 6 {
		h.AddCard(addr(fmt.Sprint("dev fan ", i)), "fp-4242", false, category.DefaultRules())
		h.Apply(protocol.Activity{Kind: protocol.KindPurchased, Event: evC, To: addr(fmt.Sprint("dev fan ", i)), Quantity: 1, Cursor: protocol.Cursor{Block: uint64(10 * i)}})
	}
	if v := h.Classify(category.DefaultRules()); len(v) != 0 {
		t.Errorf("test cards made bots: %+v", v)
	}
}

// TestCategoryDeterministic: the same activities in the same order give the same verdicts
// (what k oracle nodes need to sign one identical attestation).
func TestCategoryDeterministic(t *testing.T) {
	run := func() string {
		w := newWorld()
		art := addr("artist")
		evs := []string{w.event("x", art), w.event("y", art), w.event("z", art)}
		for i := range 40 {
			who := addr(fmt.Sprint("acct ", i%7))
			ev := evs[i%3]
			id := w.buy(ev, who)
			switch i % 4 {
			case 0:
				w.checkIn(ev, id)
			case 1:
				w.resell(ev, id, who, addr(fmt.Sprint("acct ", (i+1)%7)), "58000000")
			}
		}
		return fmt.Sprint(w.h.Classify(category.DefaultRules()))
	}
	first := run()
	for range 20 {
		if again := run(); again != first {
			t.Fatalf("verdicts differ between runs:\n%s\n%s", first, again)
		}
	}
}
