package wallet

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/devnet"
)

// TestClaimAgainstRealRelay: `stagepass dev --manual-exits` pays no exit on the main chain.
// Development account 0 deposits 30 TestUSD, withdraws 12.5 spUSD, and the withdrawal
// stops at "checkpointed"; mainTxParams says the relay leaves claims to their recipients;
// prepareClaimWithdrawal ("Claim 12.5 spUSD on the main chain", gas paid by account 0) is
// approved — signed here for the main chain, sent through sp_sendRawTransaction — and the
// withdrawal is "exited" by that very transaction. Refused: another account's claim of it,
// the same claim again. Then a ticket checked in at the door of an event that is over
// exits as a souvenir and is claimed the same way (kind 2, the mirror minted).
func TestClaimAgainstRealRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts stagepass dev with its main chain")
	}
	mainRPC, sideRPC := devchain.MustFreeAddr(t), devchain.MustFreeAddr(t)
	addr := startRealRelay(t, "--block-time", "1s", "--main-chain-rpc", mainRPC, "--exit-delay", "2s", "--checkpoint-every", "4",
		"--confirmations", "2", "--anchor=false", "--manual-exits", "--chain-rpc", sideRPC, "--log-level", "info")
	rootGateway := healthRootGateway(t, addr)
	s, issuer, gate, ci := bridgeWallet(t, addr)

	// First an event that is over soon, with a ticket checked in at the door, for the
	// souvenir claimed last, so that it is over by the time the withdrawal is claimed. The
	// simulated chain's clock may run ahead of the wall clock: times are the later of the two.
	side, err := ethclient.Dial("http://" + sideRPC)
	if err != nil {
		t.Fatal(err)
	}
	defer side.Close()
	chainNow := func() int64 {
		h, err := side.HeaderByNumber(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return int64(h.Time)
	}
	now := chainNow()
	starts := max(now, time.Now().Unix()) + 25
	event, id := checkedInTicket(t, s, ci, "Claim night", issuer, gate, now, starts)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := devnet.Deposit(ctx, "http://"+mainRPC, common.HexToAddress(rootGateway), 0, common.HexToAddress(acct0), devchain.USDC(30)); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the deposit credited", func() bool {
		return call(t, s, "bridgeBalance", `{"account":"`+acct0+`"}`)["balance"].(string) == "30000000"
	})
	mined(t, s, call(t, s, "approve", `{"id":"`+call(t, s, "prepareWithdraw", `{"account":"`+acct0+`","amount":"12500000"}`)["id"].(string)+`"}`))

	// withdrawal is account 0's withdrawal of kind and value as sp_withdrawals shows it.
	withdrawal := func(kind, value string) map[string]any {
		out, err := s.Call(context.Background(), "withdrawals", []byte(`{"account":"`+acct0+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(out)
		var list []map[string]any
		json.Unmarshal(raw, &list)
		for _, x := range list {
			if x["kind"] == kind && x["value"] == value {
				return x
			}
		}
		return nil
	}
	stageOf := func(kind, value, stage string) func() bool {
		return func() bool { w := withdrawal(kind, value); return w != nil && w["stage"] == stage }
	}
	waitVeryLong(t, "the withdrawal checkpointed", stageOf("token", "12500000", "checkpointed"))
	mp := call(t, s, "mainTxParams", `{"account":"`+acct0+`"}`)
	if mp["manualExits"] != true || mp["chainId"] != float64(1338) || !strings.EqualFold(mp["gateway"].(string), rootGateway) {
		t.Fatalf("main tx params %v", mp)
	}
	time.Sleep(2 * time.Second) // the relay would have paid it by now
	if !stageOf("token", "12500000", "checkpointed")() {
		t.Fatalf("the relay exited with --manual-exits: %v", withdrawal("token", "12500000"))
	}
	index := withdrawal("token", "12500000")["index"].(float64)
	claim := fmt.Sprintf(`{"account":%q,"index":%d}`, acct0, int(index))
	if code := callErr(t, s, "prepareClaimWithdrawal", fmt.Sprintf(`{"account":%q,"index":%d}`, issuer, int(index))); code != "NOT_ALLOWED" {
		t.Fatalf("another account's claim: %s", code)
	}
	c := call(t, s, "prepareClaimWithdrawal", claim)
	text := summaryText(c)
	for _, want := range []string{"Claim 12.5 spUSD on the main chain", "paid by you from " + acct0, "nothing is paid on the main chain until you claim"} {
		if !strings.Contains(strings.ToLower(text), strings.ToLower(want)) {
			t.Fatalf("claim summary lacks %q: %s", want, text)
		}
	}
	sent := call(t, s, "approve", `{"id":"`+c["id"].(string)+`"}`)["claim"].(map[string]any)["txHash"].(string)
	waitVeryLong(t, "the claim paid on the main chain", stageOf("token", "12500000", "exited"))
	if w := withdrawal("token", "12500000"); !strings.EqualFold(w["exitTx"].(string), sent) {
		t.Fatalf("exited by %v, the claim was %s", w["exitTx"], sent)
	}
	if code := callErr(t, s, "prepareClaimWithdrawal", claim); code != "NOT_ALLOWED" {
		t.Fatalf("the same claim again: %s", code)
	}

	// The souvenir: its exit once the event is over, claimed the same way.
	time.Sleep(time.Until(time.Unix(starts+4, 0))) // the wallet's clock and the sidechain's past starts + EXIT_DELAY
	waitLong(t, "the sidechain's clock past the exit", func() bool { return chainNow() > starts+4 })
	x := call(t, s, "prepareExitTicket", `{"account":"`+acct0+`","event":"`+event+`","tokenId":"`+id+`"}`)
	mined(t, s, call(t, s, "approve", `{"id":"`+x["id"].(string)+`"}`))
	waitVeryLong(t, "the ticket's exit checkpointed", stageOf("ticket", id, "checkpointed"))
	index = withdrawal("ticket", id)["index"].(float64)
	c = call(t, s, "prepareClaimWithdrawal", fmt.Sprintf(`{"account":%q,"index":%d}`, acct0, int(index)))
	if !strings.Contains(summaryText(c), "Claim souvenir ticket #"+id+" on the main chain") {
		t.Fatalf("souvenir claim summary %s", summaryText(c))
	}
	sent = call(t, s, "approve", `{"id":"`+c["id"].(string)+`"}`)["claim"].(map[string]any)["txHash"].(string)
	waitVeryLong(t, "the souvenir minted on the main chain", stageOf("ticket", id, "exited"))
	if w := withdrawal("ticket", id); !strings.EqualFold(w["exitTx"].(string), sent) {
		t.Fatalf("souvenir exited by %v, the claim was %s", w["exitTx"], sent)
	}
}
