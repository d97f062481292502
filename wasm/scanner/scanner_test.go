package scanner

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/protocol"
)

var (
	event = ethcrypto.MustParseAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	other = ethcrypto.MustParseAddress("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
	now   = time.Unix(1_800_000_007, 0)
)

func accounts(t *testing.T) (*ethcrypto.PrivateKey, *ethcrypto.PrivateKey) {
	m, err := keys.FromMnemonic(keys.DevMnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Account(0)
	b, _ := m.Account(1)
	return a, b
}

func lower(a ethcrypto.Address) string { return strings.ToLower(a.Hex()) }

func snapshot(holder, buyer ethcrypto.Address) protocol.EventTickets {
	return protocol.EventTickets{Event: lower(event), Cursor: protocol.Cursor{Block: 10}, Tickets: []protocol.TicketInfo{
		{Event: lower(event), TokenID: "1", Owner: lower(holder)},
		{Event: lower(event), TokenID: "2", Owner: lower(holder), CheckedIn: true},
		{Event: lower(event), TokenID: "3", Owner: lower(buyer)}, // holder sold it
		{Event: lower(event), TokenID: "4294967297", Owner: lower(holder)},
	}}
}

func TestVerdicts(t *testing.T) {
	holder, thief := accounts(t)
	s := New(1337, event)
	if err := s.LoadSnapshot(snapshot(holder.Address(), thief.Address()), now); err != nil {
		t.Fatal(err)
	}
	pass := func(k *ethcrypto.PrivateKey, chain uint64, ev ethcrypto.Address, id int64, at time.Time) string {
		p, _, err := protocol.MakePass(k, chain, ev, big.NewInt(id), at)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	forged := func() string {
		p := protocol.Pass{ChainID: 1337, Event: event, Holder: holder.Address(), TokenID: big.NewInt(1), Window: protocol.WindowAt(now)}
		d, _ := p.Digest()
		sig, _ := thief.Sign(d[:])
		b, _ := protocol.EncodePass(&p, sig)
		return protocol.Base45Encode(b)
	}()
	tests := []struct {
		name    string
		payload string
		want    string
	}{
		{"valid", pass(holder, 1337, event, 1, now), Admitted},
		{"previous window still valid", pass(holder, 1337, event, 4294967297, now.Add(-protocol.PassWindow)), Admitted},
		{"expired", pass(holder, 1337, event, 1, now.Add(-time.Minute)), PassExpired},
		{"forged", forged, PassForged},
		{"garbage", "NOT A PASS", PassMalformed},
		{"wrong event", pass(holder, 1337, other, 1, now), PassWrongEvent},
		{"wrong chain", pass(holder, 1, event, 1, now), PassWrongChain},
		{"transferred ticket", pass(holder, 1337, event, 3, now), PassNotOwner},
		{"checked in on chain", pass(holder, 1337, event, 2, now), AlreadyCheckedIn},
		{"unknown ticket", pass(holder, 1337, event, 99, now), UnknownTicket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := s.Check(tt.payload, now, nil)
			if v.Code != tt.want || v.OK != (tt.want == Admitted) {
				t.Fatalf("verdict %+v, want %s", v, tt.want)
			}
			if !v.OK && v.Reason == "" {
				t.Fatal("rejection without a reason")
			}
		})
	}
	// Replay: once admitted here, the same ticket (even with a fresh pass) is refused.
	v, _ := s.Check(pass(holder, 1337, event, 1, now), now, nil)
	s.Admit(v.TokenID, now, "")
	if v, _ := s.Check(pass(holder, 1337, event, 1, now.Add(5*time.Second)), now.Add(5*time.Second), nil); v.Code != PassReplayed {
		t.Fatalf("replay verdict %+v", v)
	}
	if v.Tier != 0 {
		t.Fatalf("tier %d", v.Tier)
	}
	// Online, the fresh lookup wins over the snapshot both ways.
	soldSince := func(protocol.Pass) (bool, bool, error) { return false, false, nil }
	checkedSince := func(protocol.Pass) (bool, bool, error) { return true, true, nil }
	boughtSince := func(protocol.Pass) (bool, bool, error) { return true, false, nil }
	failing := func(protocol.Pass) (bool, bool, error) { return false, false, errors.New("offline") }
	for _, c := range []struct {
		id     int64
		lookup Lookup
		want   string
	}{
		{4294967297, soldSince, PassNotOwner}, {4294967297, checkedSince, AlreadyCheckedIn},
		{3, boughtSince, Admitted}, {3, failing, PassNotOwner}, {4294967297, failing, Admitted},
	} {
		if v, _ := s.Check(pass(holder, 1337, event, c.id, now), now, c.lookup); v.Code != c.want {
			t.Errorf("ticket %d with lookup: %+v, want %s", c.id, v, c.want)
		}
	}
}

// TestFreshDataAndOfflineQueue: pushes move ownership (a resale after the snapshot makes the
// old holder's pass invalid and the buyer's valid), the offline queue survives a restart,
// and a check-in push clears it — as a double entry when the ticket was still queued here.
func TestFreshDataAndOfflineQueue(t *testing.T) {
	holder, buyer := accounts(t)
	s := New(1337, event)
	s.LoadSnapshot(snapshot(holder.Address(), buyer.Address()), now)
	resale := protocol.Activity{Kind: protocol.KindTransfer, Event: lower(event), TokenID: "1", From: lower(holder.Address()),
		To: lower(buyer.Address()), Cursor: protocol.Cursor{Block: 11}}
	if !s.Apply(resale) {
		t.Fatal("transfer not applied")
	}
	if s.Apply(resale) {
		t.Fatal("repeat applied twice")
	}
	old, _, _ := protocol.MakePass(holder, 1337, event, big.NewInt(1), now)
	if v, _ := s.Check(old, now, nil); v.Code != PassNotOwner {
		t.Fatalf("old holder verdict %+v", v)
	}
	fresh, _, _ := protocol.MakePass(buyer, 1337, event, big.NewInt(1), now)
	v, _ := s.Check(fresh, now, nil)
	if !v.OK {
		t.Fatalf("buyer verdict %+v", v)
	}
	// A reorg takes the resale back: the old holder owns it again.
	back := resale
	back.Removed = true
	s.Apply(back)
	if v, _ := s.Check(old, now, nil); !v.OK {
		t.Fatalf("after retraction %+v", v)
	}
	if c := s.Cursor(); c.Block != 10 {
		t.Fatalf("cursor after retraction %+v", c)
	}

	s.Admit("1", now, "")
	s.Admit("4294967297", now, "")
	restarted := New(1337, event)
	if err := restarted.Restore(s.Save()); err != nil {
		t.Fatal(err)
	}
	if q := restarted.Queue(); len(q) != 2 || q[0] != "1" {
		t.Fatalf("queue after restart %v", q)
	}
	if v, _ := restarted.Check(old, now, nil); v.Code != PassReplayed {
		t.Fatalf("replay after restart %+v", v)
	}
	restarted.Sent([]string{"1", "4294967297"}, "0xreq")
	restarted.Requeue("0xreq") // the batch failed: try again
	if q := restarted.Queue(); len(q) != 2 {
		t.Fatalf("requeue %v", q)
	}
	restarted.Apply(protocol.Activity{Kind: protocol.KindCheckedIn, Event: lower(event), TokenID: "1", Cursor: protocol.Cursor{Block: 12}})
	if q := restarted.Queue(); len(q) != 1 || q[0] != "4294967297" {
		t.Fatalf("queue after check-in push %v", q)
	}
	// Checked in on the chain while still queued here: another door let it in first.
	if d := restarted.Stats().DoubleEntries; len(d) != 1 || d[0] != "1" {
		t.Fatalf("double entries after the push %v", d)
	}
	// The same found in a fresh snapshot (what a sync loads first).
	snap := snapshot(holder.Address(), buyer.Address())
	for i := range snap.Tickets {
		if snap.Tickets[i].TokenID == "4294967297" {
			snap.Tickets[i].CheckedIn = true
		}
	}
	again := New(1337, event)
	again.Restore(restarted.Save())
	again.LoadSnapshot(snap, now)
	if q, d := again.Queue(), again.Stats().DoubleEntries; len(q) != 0 || len(d) != 2 {
		t.Fatalf("after a snapshot showing the queued ticket checked in: queue %v, double entries %v", q, d)
	}
	// A ticket sent from here and then checked in is no double entry.
	mine := New(1337, event)
	mine.LoadSnapshot(snapshot(holder.Address(), buyer.Address()), now)
	mine.Admit("1", now, "")
	mine.Sent([]string{"1"}, "0xreq")
	mine.Apply(protocol.Activity{Kind: protocol.KindCheckedIn, Event: lower(event), TokenID: "1", Cursor: protocol.Cursor{Block: 12}})
	mine.Mined("0xreq", "0xMINE")
	if d := mine.Stats().DoubleEntries; len(d) != 0 {
		t.Fatalf("own check-in counted as a double entry: %v", d)
	}
	// Two doors sync at once: this one's batch is mined, but the chain shows the ticket
	// checked in by the other door's transaction (this batch skipped it) — either order.
	for _, minedFirst := range []bool{true, false} {
		both := New(1337, event)
		both.LoadSnapshot(snapshot(holder.Address(), buyer.Address()), now)
		both.Admit("1", now, "")
		both.Admit("4294967297", now, "")
		both.Sent([]string{"1", "4294967297"}, "0xbatch")
		if minedFirst {
			both.Mined("0xbatch", "0xMine")
		}
		both.Apply(protocol.Activity{Kind: protocol.KindCheckedIn, Event: lower(event), TokenID: "1", TxHash: "0xother", Cursor: protocol.Cursor{Block: 12}})
		both.Apply(protocol.Activity{Kind: protocol.KindCheckedIn, Event: lower(event), TokenID: "4294967297", TxHash: "0xMINE", Cursor: protocol.Cursor{Block: 13}})
		if !minedFirst {
			both.Mined("0xbatch", "0xMine")
		}
		if d := both.Stats().DoubleEntries; len(d) != 1 || d[0] != "1" {
			t.Fatalf("simultaneous syncs (mined first %v): double entries %v", minedFirst, d)
		}
	}
	if err := New(1337, other).Restore(s.Save()); err == nil {
		t.Fatal("state of another event restored")
	}
	if st := restarted.Stats(); st.Tickets != 4 || st.Admitted != 2 || st.Queued != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func BenchmarkScannerCheck(b *testing.B) {
	m, _ := keys.FromMnemonic(keys.DevMnemonic, "")
	holder, _ := m.Account(0)
	s := New(1337, event)
	snap := protocol.EventTickets{Event: lower(event)}
	for i := 1; i <= 5000; i++ {
		snap.Tickets = append(snap.Tickets, protocol.TicketInfo{TokenID: big.NewInt(int64(i)).String(), Owner: lower(holder.Address())})
	}
	s.LoadSnapshot(snap, now)
	p, _, _ := protocol.MakePass(holder, 1337, event, big.NewInt(4321), now)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if v, _ := s.Check(p, now, nil); !v.OK {
			b.Fatal(v)
		}
	}
}
