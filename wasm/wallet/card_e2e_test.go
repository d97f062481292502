package wallet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/wasm/internal/fakerelay"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/tickets"
	"github.com/stagepass/stagepass/wasm/vault"
)

// TestCardAndResaleAgainstRealRelay: against `stagepass dev` (its chain, relay, sandbox
// processor and three in-process oracle nodes):
//   - a new fan with no TestUSD buys by card: the wallet checks the relay's payment intent
//     and signs requestPurchase; a declined card (4000 0000 0000 0002) then 4242… pay it on
//     the sandbox; the wallet's "payment" notifications go verifying → minted; the ticket
//     appears in the fan's list;
//   - a resale: development account 1 buys and lists a ticket, development account 6 buys
//     it with buyListed (gasless; its TestUSD allowance to the demo event), the ticket moves.
func TestCardAndResaleAgainstRealRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts stagepass dev")
	}
	addr := startRealRelay(t)
	url := "ws://" + addr + "/ws"

	var mu sync.Mutex
	var progress []protocol.PaymentProgress
	fan := New(&vault.MemoryStore{}, fastKDF{})
	fan.Dial, fan.Cache = fakerelay.Dial, &tickets.MemoryStore{}
	fan.Notify = func(kind string, data any) {
		if st, ok := data.(protocol.PaymentProgress); ok && kind == "payment" {
			mu.Lock()
			progress = append(progress, st)
			mu.Unlock()
		}
	}
	t.Cleanup(fan.disconnect)
	account := call(t, fan, "create", `{"password":"hunter2hunter2"}`)["accounts"].([]any)[0].(string)
	call(t, fan, "connect", `{"url":"`+url+`"}`)
	evs, err := fan.Call(context.Background(), "events", []byte(`{}`))
	if err != nil || len(evs.([]protocol.EventInfo)) == 0 {
		t.Fatalf("events: %v %v", evs, err)
	}
	event := strings.ToLower(evs.([]protocol.EventInfo)[0].Address)

	// The card purchase.
	prep := call(t, fan, "prepareCardBuy", `{"account":"`+account+`","event":"`+event+`","tier":0,"quantity":1}`)
	pay := prep["payment"].(map[string]any)
	summary := summaryText(prep)
	for _, want := range []string{"by card", "Card charge", "USD 45.00", "Pays Originator"} {
		if !strings.Contains(summary, want) {
			t.Errorf("card summary lacks %q: %s", want, summary)
		}
	}
	if !strings.HasPrefix(pay["checkoutUrl"].(string), "/sandbox/checkout/"+pay["id"].(string)) {
		t.Fatalf("checkout URL %v", pay["checkoutUrl"])
	}
	res := call(t, fan, "approve", `{"id":"`+prep["id"].(string)+`"}`)
	if st, _ := res["request"].(map[string]any); st == nil || st["id"] == "" {
		t.Fatalf("approve: %v", res)
	}
	// Not paid yet: "created", or "verifying" with no signature once the request is on chain.
	if st := call(t, fan, "followPayment", `{"id":"`+pay["id"].(string)+`"}`); st["signatures"].(float64) != 0 ||
		(st["state"] != protocol.PaymentCreated && st["state"] != protocol.PaymentVerifying) {
		t.Fatalf("before paying: %v", st)
	}
	call(t, fan, "followPayment", `{"id":"`+pay["paymentId"].(string)+`"}`) // again, by its 0x id: still one subscription
	sandbox := &payments.Client{BaseURL: "http://" + addr + "/sandbox", APIKey: "sk_test_stagepass_dev"}
	card := payments.Card{Number: "4000 0000 0000 0002", ExpMonth: 12, ExpYear: time.Now().Year() + 3, CVC: "123"}
	var ce *payments.CardError
	if _, err := sandbox.Confirm(context.Background(), pay["id"].(string), card); !errors.As(err, &ce) {
		t.Fatalf("declined card: %v", err)
	}
	card.Number = "4242 4242 4242 4242"
	if _, err := sandbox.Confirm(context.Background(), pay["id"].(string), card); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	var states []string
	for {
		mu.Lock()
		states = states[:0]
		minted := false
		for _, p := range progress {
			states = append(states, fmt.Sprintf("%s %d/%d", p.State, p.Signatures, p.Members))
			minted = minted || p.State == protocol.PaymentMinted
		}
		mu.Unlock()
		if minted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("payment never minted; notifications %v", states)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("payment notifications: %v", states)
	if n := strings.Count(strings.Join(states, ","), "minted"); n != 1 {
		t.Errorf("%d minted notifications (one subscription per payment): %v", n, states)
	}
	if !strings.Contains(strings.Join(states, ","), "verifying") && !strings.Contains(strings.Join(states, ","), "submitted") {
		t.Errorf("no intermediate state among %v", states)
	}
	if st := call(t, fan, "paymentStatus", `{"id":"`+pay["paymentId"].(string)+`"}`); st["state"] != protocol.PaymentMinted {
		t.Fatalf("status by payment id: %v", st)
	}
	waitTickets(t, fan, account, func(st map[string]string) bool { return len(st) == 1 })
	if code := callErr(t, fan, "followPayment", `{"id":"pi_unknown"}`); code != "RELAY_REFUSED" {
		t.Errorf("unknown payment: %s", code)
	}

	// The resale: account 1 buys and lists, account 6 buys the listing.
	dev := New(&vault.MemoryStore{}, fastKDF{})
	dev.Dial, dev.Cache = fakerelay.Dial, &tickets.MemoryStore{}
	t.Cleanup(dev.disconnect)
	call(t, dev, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	var accts []string
	for i := 0; i < 6; i++ {
		accts = append(accts, call(t, dev, "addAccount", `{}`)["address"].(string))
	}
	seller, buyer := accts[0], accts[5]
	call(t, dev, "connect", `{"url":"`+url+`"}`)
	approve := func(method, params string) {
		t.Helper()
		p := call(t, dev, method, params)
		if res := call(t, dev, "approve", `{"id":"`+p["id"].(string)+`"}`); res["request"] == nil {
			t.Fatalf("%s approve: %v", method, res)
		}
	}
	approve("prepareBuy", `{"account":"`+seller+`","event":"`+event+`","tier":0,"quantity":2}`)
	var ids []string
	waitTickets(t, dev, seller, func(st map[string]string) bool {
		ids = ids[:0]
		for k := range st {
			ids = append(ids, k)
		}
		return len(st) == 2
	})
	id, cardID := ids[0], ids[1]
	approve("prepareList", `{"account":"`+seller+`","event":"`+event+`","tokenId":"`+id+`","price":"54000000"}`)
	approve("prepareList", `{"account":"`+seller+`","event":"`+event+`","tokenId":"`+cardID+`","price":"50000000"}`)
	waitTickets(t, dev, seller, func(st map[string]string) bool { return st[id] == "listed" && st[cardID] == "listed" })
	if code := callErr(t, dev, "prepareBuyListed", `{"account":"`+seller+`","event":"`+event+`","tokenId":"`+id+`"}`); code != "NOT_ALLOWED" {
		t.Errorf("buying one's own listing: %s", code)
	}
	if code := callErr(t, dev, "prepareBuyListed", `{"account":"`+buyer+`","event":"`+event+`","tokenId":"999"}`); code != "NOT_ALLOWED" {
		t.Errorf("buying a ticket not listed: %s", code)
	}
	if ls, err := dev.Call(context.Background(), "listings", []byte(`{"event":"`+event+`"}`)); err != nil || len(ls.([]protocol.TicketInfo)) != 2 {
		t.Fatalf("listings: %v %v", ls, err)
	}
	p := call(t, dev, "prepareBuyListed", `{"account":"`+buyer+`","event":"`+event+`","tokenId":"`+id+`"}`)
	for _, want := range []string{"Buy resale ticket #" + id, "Seller receives", "49.5", "Pays Originator"} {
		if !strings.Contains(summaryText(p), want) {
			t.Errorf("resale summary lacks %q: %s", want, summaryText(p))
		}
	}
	call(t, dev, "approve", `{"id":"`+p["id"].(string)+`"}`)
	waitTickets(t, dev, buyer, func(st map[string]string) bool { return st[id] == "valid" })
	waitTickets(t, dev, seller, func(st map[string]string) bool { _, still := st[id]; return !still })

	// The card fan buys the other listing by card: requestResale, paid, the ticket moves.
	p = call(t, fan, "prepareCardBuyListed", `{"account":"`+account+`","event":"`+event+`","tokenId":"`+cardID+`"}`)
	for _, want := range []string{"by card", "Seller receives", "47.5", "USD 50.00", "requestResale"} {
		if !strings.Contains(summaryText(p), want) {
			t.Errorf("card resale summary lacks %q: %s", want, summaryText(p))
		}
	}
	pay = p["payment"].(map[string]any)
	call(t, fan, "approve", `{"id":"`+p["id"].(string)+`"}`)
	call(t, fan, "followPayment", `{"id":"`+pay["id"].(string)+`"}`)
	if _, err := sandbox.Confirm(context.Background(), pay["id"].(string), card); err != nil {
		t.Fatal(err)
	}
	waitTickets(t, fan, account, func(st map[string]string) bool { return st[cardID] == "valid" })
	waitTickets(t, dev, seller, func(st map[string]string) bool { return len(st) == 0 })
}

func waitTickets(t *testing.T, s *Service, account string, cond func(map[string]string) bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		st := ticketStates(t, s, account)
		if cond(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out; tickets of %s: %v", account, st)
		}
		time.Sleep(150 * time.Millisecond)
	}
}
