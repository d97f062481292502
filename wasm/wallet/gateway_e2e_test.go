package wallet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/wasm/internal/fakerelay"
	"github.com/stagepass/stagepass/wasm/tickets"
	"github.com/stagepass/stagepass/wasm/vault"
)

// TestGatewayAgainstRealRelay: `stagepass dev` with its main chain (validators, checkpoints,
// the relay paying exits). Development account 0 deposits 30 TestUSD on the main chain; the
// validators credit 30 spUSD on the sidechain (bridgeBalance); the wallet withdraws 12.5
// (prepareWithdraw → forwarded → mined), and sp_withdrawals follows it to "exited" (paid
// on the main chain). Then account 1 creates an event that starts in ~40 s with account 2
// as its gate; account 0 buys a ticket, is checked in at the door (scanner), may not take
// the ticket out before the event is over (NOT_ALLOWED), then keeps it as a souvenir on
// the main chain (exitTicket), followed to "exited" too.
func TestGatewayAgainstRealRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts stagepass dev with its main chain")
	}
	mainRPC := devchain.MustFreeAddr(t)
	// Blocks every second keep the chains' clocks near the wall clock (the simulated chain
	// moves at least 1 s per block: at 500 ms blocks it runs twice as fast), which the
	// wallet's "not over yet" check reads.
	addr := startRealRelay(t, "--block-time", "1s", "--main-chain-rpc", mainRPC, "--exit-delay", "2s", "--checkpoint-every", "4", "--confirmations", "2", "--anchor=false")
	rootGateway := healthRootGateway(t, addr)
	s, issuer, gate, ci := bridgeWallet(t, addr)
	if ci["gateway"] == nil || ci["bridgedCurrency"] == nil || ci["mainChainId"] != float64(1338) || ci["exitDelay"] != float64(2) {
		t.Fatalf("chain info %v", ci)
	}

	// 30 TestUSD deposited on the main chain → 30 spUSD here.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := devnet.Deposit(ctx, "http://"+mainRPC, common.HexToAddress(rootGateway), 0, common.HexToAddress(acct0), devchain.USDC(30)); err != nil {
		t.Fatal(err)
	}
	balance := func() string { return call(t, s, "bridgeBalance", `{"account":"`+acct0+`"}`)["balance"].(string) }
	waitLong(t, "the deposit credited", func() bool { return balance() == "30000000" })

	if code := callErr(t, s, "prepareWithdraw", `{"account":"`+acct0+`","amount":"30000001"}`); code != "INSUFFICIENT_BALANCE" {
		t.Fatalf("withdraw above the balance: %s", code)
	}
	w := call(t, s, "prepareWithdraw", `{"account":"`+acct0+`","amount":"12500000"}`)
	if !strings.Contains(summaryText(w), "Withdraw 12.5 spUSD to the main chain") || !strings.Contains(summaryText(w), "17.5 spUSD") {
		t.Fatalf("withdraw summary %s", summaryText(w))
	}
	mined(t, s, call(t, s, "approve", `{"id":"`+w["id"].(string)+`"}`))
	if b := balance(); b != "17500000" {
		t.Fatalf("balance after withdrawing 12.5: %s", b)
	}
	exited := func(kind, value string) func() bool {
		return func() bool {
			out, err := s.Call(context.Background(), "withdrawals", []byte(`{"account":"`+acct0+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(out)
			var list []map[string]any
			json.Unmarshal(raw, &list)
			for _, x := range list {
				if x["kind"] == kind && x["value"] == value {
					return x["stage"] == "exited"
				}
			}
			return false
		}
	}
	waitVeryLong(t, "the withdrawal paid on the main chain", exited("token", "12500000"))

	// An event that is over soon; account 0 buys a ticket and is checked in.
	now := time.Now().Unix()
	starts := now + 40
	event, id := checkedInTicket(t, s, ci, "Souvenir night", issuer, gate, now, starts)

	exit := `{"account":"` + acct0 + `","event":"` + event + `","tokenId":"` + id + `"}`
	if time.Now().Unix() < starts+2 {
		if code := callErr(t, s, "prepareExitTicket", exit); code != "NOT_ALLOWED" {
			t.Fatalf("exit before the event is over: %s", code)
		}
	}
	time.Sleep(time.Until(time.Unix(starts+4, 0))) // the sidechain's clock past starts + EXIT_DELAY
	x := call(t, s, "prepareExitTicket", exit)
	if !strings.Contains(summaryText(x), "Keep as a souvenir ticket #"+id+" on the main chain") {
		t.Fatalf("exit summary %s", summaryText(x))
	}
	mined(t, s, call(t, s, "approve", `{"id":"`+x["id"].(string)+`"}`))
	waitVeryLong(t, "the souvenir minted on the main chain", exited("ticket", id))
}

// waitVeryLong waits for the main chain: a checkpoint over the block, then the relay's exit.
func waitVeryLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkedInTicket has issuer create event `name` (doors open at now, over at starts, gate
// its door), account 0 buy one ticket of it and the gate check it in; it returns the event
// and the ticket's id.
func checkedInTicket(t *testing.T, s *Service, ci map[string]any, name, issuer, gate string, now, starts int64) (event, id string) {
	t.Helper()
	cfg := map[string]any{
		"name": name, "venue": "Dock 7", "startsAt": starts, "doorsOpenAt": now, "resaleClosesAt": starts,
		"currency": ci["currency"], "maxPerBuyer": 4, "maxResaleMarkupBps": 1000, "sellerMarkupShareBps": 2500,
		"tiers":     []map[string]any{{"name": "Standing", "faceValue": "1000000", "supply": 10}},
		"splits":    []map[string]any{{"account": issuer, "bps": 10000, "role": 0}},
		"discounts": []map[string]any{}, "categoryQuotaBps": []int{10000, 10000, 10000, 10000, 10000},
		"gates": []string{gate},
	}
	b, _ := json.Marshal(map[string]any{"account": issuer, "config": cfg})
	before := len(issuerEvents(t, s, issuer))
	mined(t, s, call(t, s, "approve", `{"id":"`+call(t, s, "prepareCreateEvent", string(b))["id"].(string)+`"}`))
	waitLong(t, "the event", func() bool {
		if evs := issuerEvents(t, s, issuer); len(evs) > before {
			event = evs[len(evs)-1]["address"].(string)
		}
		return event != ""
	})
	call(t, s, "tickets", `{"account":"`+acct0+`"}`)
	mined(t, s, call(t, s, "approve", `{"id":"`+call(t, s, "prepareBuy", `{"account":"`+acct0+`","event":"`+event+`","tier":0,"quantity":1}`)["id"].(string)+`"}`))
	waitLong(t, "the ticket in the list", func() bool {
		for _, x := range call(t, s, "tickets", `{"account":"`+acct0+`"}`)["tickets"].([]any) {
			if m := x.(map[string]any); strings.EqualFold(m["event"].(string), event) {
				id = m["tokenId"].(string)
			}
		}
		return id != ""
	})
	call(t, s, "scannerOpen", `{"account":"`+gate+`","event":"`+event+`"}`)
	pass := call(t, s, "makePass", fmt.Sprintf(`{"account":%q,"chainId":1337,"event":%q,"tokenId":%q}`, acct0, event, id))
	if v := call(t, s, "scan", `{"payload":"`+pass["payload"].(string)+`"}`); v["ok"] != true {
		t.Fatalf("scan: %v", v)
	}
	waitLong(t, "the ticket checked in", func() bool { return ticketStates(t, s, acct0)[id] == "checkedIn" })
	return event, id
}

// healthRootGateway is RootGateway's address as the relay at addr reports it in /healthz.
func healthRootGateway(t *testing.T, addr string) string {
	t.Helper()
	var health struct {
		Bridge struct {
			RootGateway string `json:"rootGateway"`
		} `json:"bridge"`
	}
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&health); err != nil || health.Bridge.RootGateway == "" {
		t.Fatalf("healthz: no bridge (%v)", err)
	}
	return health.Bridge.RootGateway
}

// bridgeWallet is a wallet restored from the development mnemonic, with accounts 1 and 2
// added (an issuer and a gate) and connected to the relay at addr, and its chain info.
func bridgeWallet(t *testing.T, addr string) (s *Service, issuer, gate string, ci map[string]any) {
	t.Helper()
	s = New(&vault.MemoryStore{}, fastKDF{})
	s.Dial, s.Cache = fakerelay.Dial, &tickets.MemoryStore{}
	t.Cleanup(s.disconnect)
	call(t, s, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	issuer = call(t, s, "addAccount", `{}`)["address"].(string)
	gate = call(t, s, "addAccount", `{}`)["address"].(string)
	call(t, s, "connect", `{"url":"ws://`+addr+`/ws"}`)
	return s, issuer, gate, call(t, s, "chainInfo", `{}`)
}
