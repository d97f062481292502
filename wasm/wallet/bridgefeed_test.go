package wallet

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagepass/stagepass/wasm/internal/fakerelay"
	"github.com/stagepass/stagepass/wasm/tickets"
	"github.com/stagepass/stagepass/wasm/vault"
)

// bridgeNote is a "bridge" notification as the page receives it (JSON).
type bridgeNote struct {
	Account     string           `json:"account"`
	Full        bool             `json:"full"`
	Refused     string           `json:"refused"`
	Withdrawals []map[string]any `json:"withdrawals"`
	Deposits    []map[string]any `json:"deposits"`
	at          time.Time
}

// bridgeNotes collects a service's "bridge" notifications.
type bridgeNotes struct {
	mu    sync.Mutex
	notes []bridgeNote
}

func (b *bridgeNotes) note(kind string, data any) {
	if kind != "bridge" {
		return
	}
	raw, _ := json.Marshal(data)
	var n bridgeNote
	json.Unmarshal(raw, &n)
	n.at = time.Now()
	b.mu.Lock()
	b.notes = append(b.notes, n)
	b.mu.Unlock()
}

// find is the first notification from index `from` on that satisfies ok, and its index.
func (b *bridgeNotes) find(from int, ok func(bridgeNote) bool) (bridgeNote, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := from; i < len(b.notes); i++ {
		if ok(b.notes[i]) {
			return b.notes[i], i
		}
	}
	return bridgeNote{}, -1
}

func (b *bridgeNotes) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.notes)
}

// A relay without the "bridge" topic (the Workers build; here the fake relay, which knows
// only tickets, event and request) refuses it: the page is told, with the relay's words,
// and the ticket feed is followed as before.
func TestBridgeFeedRefused(t *testing.T) {
	c := newFakeChain(t)
	s, _, _ := onlineService(t, c, &tickets.MemoryStore{})
	notes := &bridgeNotes{}
	s.Notify = notes.note
	call(t, s, "followAccounts", `{"accounts":["`+acct0+`"]}`)
	waitUntil(t, "the refusal told", func() bool {
		n, i := notes.find(0, func(n bridgeNote) bool { return n.Refused != "" })
		return i >= 0 && n.Account == strings.ToLower(acct0) && strings.Contains(n.Refused, "unknown topic bridge")
	})
	waitUntil(t, "the ticket feed", func() bool { return c.relay.Active("tickets", acct0) == 1 })
}

// TestBridgeFeedAgainstRealRelay: `stagepass dev` with its main chain. The wallet follows
// the shown account's "bridge" topic: its state first, then a deposit pushed as credited
// and a withdrawal pushed queued → … → exited, each as the relay's tracker reads it. Once
// another account is shown, the first account's changes are no longer pushed.
func TestBridgeFeedAgainstRealRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts stagepass dev with its main chain")
	}
	addr := startRealRelay(t, "--block-time", "500ms", "--checkpoint-every", "4", "--confirmations", "2", "--anchor=false")
	s := New(&vault.MemoryStore{}, fastKDF{})
	notes := &bridgeNotes{}
	s.Dial, s.Cache, s.Notify = fakerelay.Dial, &tickets.MemoryStore{}, notes.note
	t.Cleanup(s.disconnect)
	call(t, s, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	other := strings.ToLower(call(t, s, "addAccount", `{}`)["address"].(string))
	call(t, s, "connect", `{"url":"ws://`+addr+`/ws"}`)
	me := strings.ToLower(acct0)
	call(t, s, "followAccounts", `{"accounts":["`+acct0+`"]}`)
	mine := func(what string, from int, ok func(bridgeNote) bool) (bridgeNote, int) {
		t.Helper()
		var n bridgeNote
		i := -1
		waitVeryLong(t, what, func() bool {
			n, i = notes.find(from, func(n bridgeNote) bool { return n.Account == me && ok(n) })
			return i >= 0
		})
		return n, i
	}
	first, _ := mine("the account's state", 0, func(n bridgeNote) bool { return n.Full })
	if len(first.Deposits) != 0 || len(first.Withdrawals) != 0 {
		t.Fatalf("first push %+v", first)
	}

	p := call(t, s, "prepareDeposit", `{"account":"`+acct0+`","amount":"12500000"}`)
	call(t, s, "approve", `{"id":"`+p["id"].(string)+`"}`)
	n, i := mine("the deposit credited", 0, func(n bridgeNote) bool {
		return len(n.Deposits) == 1 && n.Deposits[0]["stage"] == "credited" && n.Deposits[0]["amount"] == "12500000"
	})
	// The page reads sp_deposits on the push: it says the same.
	out, err := s.Call(context.Background(), "deposits", []byte(`{"account":"`+acct0+`"}`))
	if raw, _ := json.Marshal(out); err != nil || !strings.Contains(string(raw), `"stage":"credited"`) {
		t.Fatalf("deposits after the push: %s %v", raw, err)
	}
	t.Logf("deposit credited pushed (push %d)", i)

	w := call(t, s, "prepareWithdraw", `{"account":"`+acct0+`","amount":"2500000"}`)
	mined(t, s, call(t, s, "approve", `{"id":"`+w["id"].(string)+`"}`))
	at := map[string]time.Time{}
	for _, stage := range []string{"checkpointed", "exited"} {
		n, i = mine("the withdrawal "+stage, i, func(n bridgeNote) bool {
			return len(n.Withdrawals) == 1 && n.Withdrawals[0]["stage"] == stage && n.Withdrawals[0]["value"] == "2500000"
		})
		at[stage] = n.at
	}
	t.Logf("withdrawal pushed checkpointed, then exited %v later", at["exited"].Sub(at["checkpointed"]).Round(time.Millisecond))

	// Another account shown: its state comes, the first account's feed is over.
	call(t, s, "followAccounts", `{"accounts":["`+other+`"]}`)
	waitVeryLong(t, "the other account's state", func() bool {
		_, j := notes.find(0, func(n bridgeNote) bool { return n.Account == other && n.Full })
		return j >= 0
	})
	seen := notes.len()
	p = call(t, s, "prepareDeposit", `{"account":"`+acct0+`","amount":"1000000"}`)
	call(t, s, "approve", `{"id":"`+p["id"].(string)+`"}`)
	waitVeryLong(t, "the second deposit credited (sp_deposits)", func() bool {
		out, err := s.Call(context.Background(), "deposits", []byte(`{"account":"`+acct0+`"}`))
		raw, _ := json.Marshal(out)
		return err == nil && strings.Count(string(raw), `"stage":"credited"`) == 2
	})
	time.Sleep(1500 * time.Millisecond) // a tracker step past it
	if n, j := notes.find(seen, func(n bridgeNote) bool { return n.Account == me }); j >= 0 {
		t.Fatalf("a push for the account no longer shown: %+v", n)
	}
}
