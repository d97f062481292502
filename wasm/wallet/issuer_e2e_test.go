package wallet

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagepass/stagepass/wasm/internal/fakerelay"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/tickets"
	"github.com/stagepass/stagepass/wasm/vault"
)

// TestIssuerAgainstRealRelay: against `stagepass dev`, development account 1 creates an
// event through the wallet (a broken rule refused before signing with INVALID_CONFIG; the
// summary in words; signed, forwarded, mined), finds it in issuerEvents, follows it with
// watchEvent, adds a door scanner with prepareSetGate (the gateSet activity is pushed, and
// eventStats lists the gate); another account may not add gates (NOT_ALLOWED).
func TestIssuerAgainstRealRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts stagepass dev")
	}
	addr := startRealRelay(t)
	var mu sync.Mutex
	var pushed []protocol.Activity
	s := New(&vault.MemoryStore{}, fastKDF{})
	s.Dial, s.Cache = fakerelay.Dial, &tickets.MemoryStore{}
	s.Notify = func(kind string, data any) {
		if a, ok := data.(protocol.Activity); ok && kind == "eventActivity" {
			mu.Lock()
			pushed = append(pushed, a)
			mu.Unlock()
		}
	}
	t.Cleanup(s.disconnect)
	call(t, s, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	issuer := call(t, s, "addAccount", `{}`)["address"].(string)
	gate := call(t, s, "addAccount", `{}`)["address"].(string)
	call(t, s, "connect", `{"url":"ws://`+addr+`/ws"}`)
	ci := call(t, s, "chainInfo", `{}`)
	before := len(issuerEvents(t, s, issuer))

	now := time.Now().Unix()
	starts := now + 20*86400
	cfg := map[string]any{
		"name": "Issuer console test night", "venue": "Dock 7", "startsAt": starts, "doorsOpenAt": starts - 3600,
		"resaleClosesAt": starts - 7200, "currency": ci["currency"],
		"maxPerBuyer": 4, "maxResaleMarkupBps": 1000, "sellerMarkupShareBps": 2500, "giftsAllowed": false,
		"tiers":     []map[string]any{{"name": "Standing", "faceValue": "30000000", "supply": 100}},
		"splits":    []map[string]any{{"account": issuer, "bps": 6000, "role": 0}, {"account": gate, "bps": 3000, "role": 1}},
		"discounts": []map[string]any{}, "categoryQuotaBps": []int{10000, 10000, 10000, 10000, 10000},
	}
	params := func() string {
		b, _ := json.Marshal(map[string]any{"account": issuer, "config": cfg})
		return string(b)
	}
	if code := callErr(t, s, "prepareCreateEvent", params()); code != "INVALID_CONFIG" {
		t.Fatalf("splits of 90%%: %s", code)
	}
	cfg["splits"] = []map[string]any{{"account": issuer, "bps": 7000, "role": 0}, {"account": gate, "bps": 3000, "role": 1}}
	p := call(t, s, "prepareCreateEvent", params())
	for _, want := range []string{"Create the event Issuer console test night", "Standing: face value 30 ", "up to 10% above face value",
		"Seller keeps", "25% of a resale markup", "Per-buyer limit", "4 ticket(s)", "Gifts", "not allowed", "Pays Originator", "70% to",
		"Pays Artist", "30% to", "none: the price never drops below face value"} {
		if !strings.Contains(summaryText(p), want) {
			t.Errorf("summary lacks %q: %s", want, summaryText(p))
		}
	}
	mined(t, s, call(t, s, "approve", `{"id":"`+p["id"].(string)+`"}`))
	var ev map[string]any
	waitLong(t, "the event in issuerEvents", func() bool {
		evs := issuerEvents(t, s, issuer)
		if len(evs) == before+1 {
			ev = evs[len(evs)-1]
		}
		return ev != nil
	})
	if ev["name"] != "Issuer console test night" || ev["maxResaleMarkupBps"].(float64) != 1000 || ev["giftsAllowed"] != false {
		t.Fatalf("created event %v", ev)
	}
	event := ev["address"].(string)
	call(t, s, "watchEvent", `{"event":"`+event+`"}`)

	stranger := call(t, s, "addAccount", `{}`)["address"].(string)
	if code := callErr(t, s, "prepareSetGate", `{"account":"`+stranger+`","event":"`+event+`","gate":"`+gate+`"}`); code != "NOT_ALLOWED" {
		t.Errorf("a stranger adds a gate: %s", code)
	}
	g := call(t, s, "prepareSetGate", `{"account":"`+issuer+`","event":"`+event+`","gate":"`+gate+`"}`)
	if !strings.Contains(summaryText(g), "Add a door scanner") || !strings.Contains(strings.ToLower(summaryText(g)), strings.ToLower(gate)) {
		t.Errorf("setGate summary %s", summaryText(g))
	}
	mined(t, s, call(t, s, "approve", `{"id":"`+g["id"].(string)+`"}`))
	waitLong(t, "the gateSet push", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range pushed {
			if a.Kind == protocol.KindGateSet && strings.EqualFold(a.Account, gate) {
				return true
			}
		}
		return false
	})
	st := call(t, s, "eventStats", `{"event":"`+event+`"}`)
	if gs, _ := st["gates"].([]any); len(gs) != 1 || !strings.EqualFold(gs[0].(string), gate) || st["sold"].(float64) != 0 {
		t.Fatalf("stats %v", st)
	}
}

func issuerEvents(t *testing.T, s *Service, issuer string) []map[string]any {
	t.Helper()
	res, err := s.Call(context.Background(), "issuerEvents", []byte(`{"issuer":"`+issuer+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	var out []map[string]any
	json.Unmarshal(b, &out)
	return out
}

// mined waits until an approved request is mined.
func mined(t *testing.T, s *Service, approved map[string]any) {
	t.Helper()
	id := approved["request"].(map[string]any)["id"].(string)
	waitLong(t, "request "+id+" mined", func() bool {
		st := call(t, s, "requestStatus", `{"id":"`+id+`"}`)
		if st["state"] == protocol.RequestFailed {
			t.Fatalf("request failed: %v", st["reason"])
		}
		return st["state"] == protocol.RequestMined
	})
}

// waitLong is waitUntil with a chain's patience (blocks of 500 ms, an index to catch up).
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(150 * time.Millisecond)
	}
}
