package tickets

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stagepass/stagepass/wasm/internal/fakerelay"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
)

const (
	me    = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
	other = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
	zero  = "0x0000000000000000000000000000000000000000"
	ev    = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
	tier1 = "4294967297" // tier 1, serial 1
)

func act(kind string, block uint64, id, from, to, price string) protocol.Activity {
	return protocol.Activity{Kind: kind, Event: ev, TokenID: id, From: from, To: to, Price: price,
		TxHash: "0xaa", Cursor: protocol.Cursor{Block: block}}
}

func removed(a protocol.Activity) protocol.Activity { a.Removed = true; return a }

func TestBookFold(t *testing.T) {
	mint := act(protocol.KindTransfer, 3, "1", zero, me, "")
	mint2 := act(protocol.KindTransfer, 3, tier1, zero, me, "")
	mint2.LogIndex = 1
	list := act(protocol.KindListed, 4, "1", me, "", "50000000")
	unlist := act(protocol.KindUnlisted, 5, "1", "", "", "")
	checkIn := act(protocol.KindCheckedIn, 6, "1", "", "", "")
	gift := act(protocol.KindTransfer, 7, tier1, me, other, "")
	received := act(protocol.KindTransfer, 8, "9", other, me, "")
	tests := []struct {
		name string
		acts []protocol.Activity
		want map[string]string // token id → state
	}{
		{"minted", []protocol.Activity{mint, mint2}, map[string]string{"1": StateValid, tier1: StateValid}},
		{"listed", []protocol.Activity{mint, list}, map[string]string{"1": StateListed}},
		{"unlisted", []protocol.Activity{mint, list, unlist}, map[string]string{"1": StateValid}},
		{"checked in", []protocol.Activity{mint, list, unlist, checkIn}, map[string]string{"1": StateCheckedIn}},
		{"gifted away", []protocol.Activity{mint, mint2, gift}, map[string]string{"1": StateValid}},
		{"received a gift", []protocol.Activity{received}, map[string]string{"9": StateValid}},
		{"out of order arrival", []protocol.Activity{list, mint}, map[string]string{"1": StateListed}},
		{"duplicate push ignored", []protocol.Activity{mint, list, list}, map[string]string{"1": StateListed}},
		{"reorg retracts the listing", []protocol.Activity{mint, list, removed(list)}, map[string]string{"1": StateValid}},
		{"reorg retracts the mint", []protocol.Activity{mint, mint2, removed(mint2)}, map[string]string{"1": StateValid}},
		{"reorg retracts the gift", []protocol.Activity{mint, mint2, gift, removed(gift)}, map[string]string{"1": StateValid, tier1: StateValid}},
		{"retraction of the unknown", []protocol.Activity{mint, removed(received)}, map[string]string{"1": StateValid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBook(me)
			for _, a := range tt.acts {
				b.Apply(a)
			}
			got := map[string]string{}
			for _, tk := range b.Tickets() {
				got[tk.TokenID] = tk.State
				if tk.TokenID == tier1 && tk.Tier != 1 {
					t.Errorf("tier of %s = %d", tk.TokenID, tk.Tier)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("tickets %v, want %v", got, tt.want)
			}
			for id, st := range tt.want {
				if got[id] != st {
					t.Fatalf("tickets %v, want %v", got, tt.want)
				}
			}
			// The cache reproduces the same book.
			back, err := Decode(b.Encode(), me)
			if err != nil || len(back.Tickets()) != len(got) || back.Cursor != b.Cursor {
				t.Fatalf("cache round trip: %v", err)
			}
		})
	}
}

func TestRetractionRewindsCursor(t *testing.T) {
	b := NewBook(me)
	b.Apply(act(protocol.KindTransfer, 3, "1", zero, me, ""))
	l := act(protocol.KindListed, 9, "1", me, "", "5")
	b.Apply(l)
	if b.Cursor.Block != 9 {
		t.Fatalf("cursor %+v", b.Cursor)
	}
	b.Apply(removed(l))
	if b.Cursor.Block != 3 {
		t.Fatalf("after retraction cursor %+v, want block 3", b.Cursor)
	}
	if _, err := Decode(b.Encode(), other); err == nil {
		t.Fatal("another owner's cache accepted")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func states(v View) map[string]string {
	m := map[string]string{}
	for _, t := range v.Tickets {
		m[t.TokenID] = t.State
	}
	return m
}

// TestTrackerOfflineCacheAndResume: the tracker folds pushes, fetches event details, caches
// everything; a second tracker over the same cache shows the tickets with no relay at all,
// then resumes from the cached cursor and receives only what it missed.
func TestTrackerOfflineCacheAndResume(t *testing.T) {
	r := fakerelay.New()
	defer r.Close()
	r.Handle(protocol.MethodEvent, func([]json.RawMessage) (any, error) {
		return protocol.EventInfo{Address: ev, Name: "Demo Night", Tiers: []protocol.TierInfo{{Name: "Floor"}, {Name: "Balcony"}}}, nil
	})
	store := &MemoryStore{}
	ctx := context.Background()

	c := relayclient.New(relayclient.Config{URL: r.URL, Dial: fakerelay.Dial, MinBackoff: 10 * time.Millisecond})
	changes := make(chan struct{}, 100)
	tr := Open(ctx, c, store, me, func() { changes <- struct{}{} })
	tr.Start()
	c.Start()
	r.Publish(act(protocol.KindTransfer, 3, "1", zero, me, ""), me)
	r.Publish(act(protocol.KindListed, 4, "1", me, "", "45000000"), me)
	waitFor(t, "listed ticket with event details", func() bool {
		v := tr.View()
		return states(v)["1"] == StateListed && v.Events[ev].Name == "Demo Night"
	})
	c.Close()

	// Offline: a new tracker shows the cached tickets without connecting.
	offline := relayclient.New(relayclient.Config{URL: "ws://127.0.0.1:1/ws", Dial: fakerelay.Dial})
	v := Open(ctx, offline, store, me, nil).View()
	if states(v)["1"] != StateListed || v.Connected || v.Events[ev].Name != "Demo Night" {
		t.Fatalf("offline view %+v", v)
	}

	// Back online later: resumes after block 4.
	r.Publish(act(protocol.KindCheckedIn, 6, "1", "", "", ""), me)
	c2 := relayclient.New(relayclient.Config{URL: r.URL, Dial: fakerelay.Dial, MinBackoff: 10 * time.Millisecond})
	defer c2.Close()
	tr2 := Open(ctx, c2, store, me, nil)
	tr2.Start()
	c2.Start()
	waitFor(t, "check-in pushed after resume", func() bool { return states(tr2.View())["1"] == StateCheckedIn })
	subs := r.Subscribes()
	var p struct{ From protocol.Cursor }
	json.Unmarshal(subs[len(subs)-1], &p)
	if p.From.Block != 4 {
		t.Fatalf("resumed from %+v, want block 4", p.From)
	}
	tr2.Stop()
}
