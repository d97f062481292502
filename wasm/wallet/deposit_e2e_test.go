package wallet

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stagepass/stagepass/wasm/internal/fakerelay"
	"github.com/stagepass/stagepass/wasm/tickets"
	"github.com/stagepass/stagepass/wasm/vault"
)

// TestGatewayDepositAgainstRealRelay: `stagepass dev` with its main chain. Development
// account 0 holds TestUSD on the main chain (mainBalance) and no coin is spent from it on
// either chain for gas: prepareDeposit signs a permit for RootGateway on approval, the
// relay sends it (sp_depositWithPermit), and sp_deposits follows the deposit from pending
// to credited, 12.50 spUSD on the sidechain. An account with nothing on the main chain is
// refused before anything is signed.
func TestGatewayDepositAgainstRealRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts stagepass dev with its main chain")
	}
	addr := startRealRelay(t, "--block-time", "500ms", "--checkpoint-every", "4", "--confirmations", "2", "--anchor=false")
	s := New(&vault.MemoryStore{}, fastKDF{})
	s.Dial, s.Cache = fakerelay.Dial, &tickets.MemoryStore{}
	t.Cleanup(s.disconnect)
	call(t, s, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	empty := call(t, s, "addAccount", `{}`)["address"].(string)
	for range 9 { // account 10: past the ten development accounts funded on the main chain
		empty = call(t, s, "addAccount", `{}`)["address"].(string)
	}
	call(t, s, "connect", `{"url":"ws://`+addr+`/ws"}`)

	mb := call(t, s, "mainBalance", `{"account":"`+acct0+`"}`)
	tok, _ := mb["token"].(map[string]any)
	if mb["chainId"] != float64(1338) || tok["balance"] != "5000000000" || tok["symbol"] != "tUSD" || mb["gateway"] == "" {
		t.Fatalf("main balance %v", mb)
	}
	if code := callErr(t, s, "prepareDeposit", `{"account":"`+empty+`","amount":"1000000"}`); code != "INSUFFICIENT_BALANCE" {
		t.Fatalf("deposit without a main-chain balance: %s", code)
	}
	if code := callErr(t, s, "prepareDeposit", `{"account":"`+acct0+`","amount":"999999"}`); code != "BELOW_MINIMUM" {
		t.Fatalf("deposit below the relay's minimum of 1 tUSD: %s", code)
	}
	p := call(t, s, "prepareDeposit", `{"account":"`+acct0+`","amount":"12500000"}`)
	if !strings.Contains(summaryText(p), "Bring 12.5 tUSD from the main chain to Stagepass") || !strings.Contains(summaryText(p), "4987.5 tUSD") {
		t.Fatalf("deposit summary %s", summaryText(p))
	}
	sent := call(t, s, "approve", `{"id":"`+p["id"].(string)+`"}`)
	if d, _ := sent["deposit"].(map[string]any); d == nil || d["txHash"] == "" {
		t.Fatalf("approve %v", sent)
	}
	deposits := func() []map[string]any {
		out, err := s.Call(context.Background(), "deposits", []byte(`{"account":"`+acct0+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(out)
		var list []map[string]any
		json.Unmarshal(raw, &list)
		return list
	}
	waitLong(t, "the deposit credited", func() bool {
		l := deposits()
		return len(l) == 1 && l[0]["amount"] == "12500000" && l[0]["stage"] == "credited"
	})
	if b := call(t, s, "bridgeBalance", `{"account":"`+acct0+`"}`)["balance"]; b != "12500000" {
		t.Fatalf("spUSD %v after the deposit", b)
	}
	if b := call(t, s, "mainBalance", `{"account":"`+acct0+`"}`)["token"].(map[string]any)["balance"]; b != "4987500000" {
		t.Fatalf("main-chain balance %v after the deposit", b)
	}
}
