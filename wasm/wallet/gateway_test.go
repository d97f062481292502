package wallet

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/internal/fakerelay"
	"github.com/stagepass/stagepass/wasm/protocol"
)

const (
	childGateway = "0xa513e6e4b8f2a923d98304ec87f64353c4d5c853"
	spUSD        = "0x2279b7a0a67db372996a5fab50d91eaa73d2ebe6"
)

// gatewayChain is the fake chain with ChildGateway: the bridged currency's balance, the
// gateway calls it receives (signature and nonce checked), and sp_withdrawals.
func gatewayChain(t *testing.T) (*fakeChain, *[]*actions.Call) {
	c := newFakeChain(t)
	var got []*actions.Call
	c.relay.Handle(protocol.MethodChainInfo, func([]json.RawMessage) (any, error) {
		return protocol.ChainInfo{ChainID: 1337, Block: c.block, Forwarder: forwarder, Currency: testUSD,
			Gateway: childGateway, BridgedCurrency: spUSD, MainChainID: 1338, ExitDelay: 86400}, nil
	})
	c.relay.Handle(protocol.MethodPermitInfo, func(p []json.RawMessage) (any, error) {
		var token, owner string
		json.Unmarshal(p[0], &token)
		json.Unmarshal(p[1], &owner)
		if !strings.EqualFold(token, spUSD) || !strings.EqualFold(owner, acct0) {
			return nil, &fakerelay.Error{Code: -32602, Message: "unexpected sp_permitInfo " + token + " " + owner}
		}
		return protocol.PermitInfo{Token: spUSD, Name: "Stagepass Bridged USD", Version: "1", Symbol: "spUSD", Decimals: 6, Nonce: "0", Balance: "30000000"}, nil
	})
	c.relay.Handle(protocol.MethodWithdrawals, func(p []json.RawMessage) (any, error) {
		return json.RawMessage(`[{"index":0,"kind":"token","recipient":` + string(p[0]) + `,"value":"12500000","txHash":"0x03","block":12,"stage":"checkpointed","checkpoint":3,"future":true}]`), nil
	})
	c.relay.Handle(protocol.MethodSendForward, func(p []json.RawMessage) (any, error) {
		var sub protocol.ForwardSubmission
		json.Unmarshal(p[0], &sub)
		req, err := sub.Request.Parse()
		if err != nil {
			return nil, err
		}
		call, err := actions.Decode(req.Data)
		if err != nil || (call.Sig != actions.SigWithdraw && call.Sig != actions.SigExitTicket) {
			return c.sendForward(p)
		}
		sig, _ := hex.DecodeString(strings.TrimPrefix(sub.Signature, "0x"))
		if err := protocol.VerifyForwardRequest(req, protocol.ForwarderDomain(1337, fwdAddr), sig); err != nil || !strings.EqualFold(req.To.Hex(), childGateway) {
			return nil, &fakerelay.Error{Code: -32602, Message: fmt.Sprintf("bad gateway request to %s: %v", req.To, err)}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		from := strings.ToLower(req.From.Hex())
		if req.Nonce.Int64() != c.nonces[from] {
			return nil, &fakerelay.Error{Code: -32602, Message: "wrong nonce"}
		}
		c.nonces[from]++
		c.reqs++
		got = append(got, call)
		return protocol.RequestStatus{ID: fmt.Sprintf("0x%064x", c.reqs), State: protocol.RequestAccepted, From: from, Nonce: req.Nonce.Uint64()}, nil
	})
	return c, &got
}

// TestWithdrawAndExit: the bridged balance, a withdrawal refused at zero, above the balance
// and on a chain without a gateway, then signed and sent; sp_withdrawals passed through as
// the relay wrote it; a checked-in ticket's exit refused before the event is over (with
// the time), then sent as a souvenir; a ticket not held refused.
func TestWithdrawAndExit(t *testing.T) {
	c, got := gatewayChain(t)
	s, _, _ := onlineService(t, c, nil)

	bal := call(t, s, "bridgeBalance", `{"account":"`+acct0+`"}`)
	if bal["balance"] != "30000000" || bal["symbol"] != "spUSD" || bal["decimals"] != float64(6) {
		t.Fatalf("bridgeBalance %v", bal)
	}
	for params, want := range map[string]string{
		`{"account":"` + acct0 + `","amount":"0"}`:                              "INVALID_REQUEST",
		`{"account":"` + acct0 + `"}`:                                           "INVALID_REQUEST",
		`{"account":"` + acct0 + `","amount":"30000001"}`:                       "INSUFFICIENT_BALANCE",
		`{"account":"` + acct0 + `","amount":"-5"}`:                             "INVALID_REQUEST",
		`{"account":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","amount":"1"}`: "UNKNOWN_ACCOUNT",
	} {
		if code := callErr(t, s, "prepareWithdraw", params); code != want {
			t.Errorf("prepareWithdraw %s: %s, want %s", params, code, want)
		}
	}
	w := call(t, s, "prepareWithdraw", `{"account":"`+acct0+`","amount":"12500000"}`)
	for _, want := range []string{"Withdraw 12.5 spUSD to the main chain", acct0 + " on the main chain (id 1338)", "Balance after", "17.5 spUSD"} {
		if !strings.Contains(summaryText(w), want) {
			t.Errorf("withdraw summary lacks %q: %s", want, summaryText(w))
		}
	}
	res := call(t, s, "approve", `{"id":"`+w["id"].(string)+`"}`)
	if st := res["request"].(map[string]any); st["state"] != protocol.RequestAccepted {
		t.Fatalf("approve: %v", res)
	}
	if len(*got) != 1 || (*got)[0].Sig != actions.SigWithdraw || !strings.EqualFold((*got)[0].To.Hex(), acct0) || (*got)[0].Amount.Int64() != 12_500_000 {
		t.Fatalf("relay received %+v", *got)
	}
	w = call(t, s, "prepareWithdraw", `{"account":"`+acct0+`","amount":1,"recipient":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}`)
	call(t, s, "approve", `{"id":"`+w["id"].(string)+`"}`)
	if len(*got) != 2 || (*got)[1].To.Hex() != "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" {
		t.Fatalf("withdraw to another recipient: %+v", (*got)[1])
	}

	// sp_withdrawals passes through undecoded (fields the wallet does not know included).
	out, err := s.Call(t.Context(), "withdrawals", []byte(`{"account":"`+acct0+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := json.Marshal(out); !strings.Contains(string(raw), `"recipient":"`+acct0+`"`) || !strings.Contains(string(raw), `"future":true`) {
		t.Fatalf("withdrawals %s", raw)
	}

	// A checked-in ticket of an event that is not over yet, then is.
	id := c.mint(acct0, 1)
	c.mu.Lock()
	c.in[id] = true
	c.block++
	c.mu.Unlock()
	c.relay.Publish(protocol.Activity{Kind: protocol.KindCheckedIn, Event: demoEvent, TokenID: id, Account: acct0, TxHash: "0x04",
		Cursor: protocol.Cursor{Block: c.block}}, acct0)
	waitUntil(t, "a checked-in ticket", func() bool { return ticketStates(t, s, acct0)[id] == "checkedIn" })
	exit := `{"account":"` + acct0 + `","event":"` + demoEvent + `","tokenId":"` + id + `"}`
	info := demoInfo()
	opens := time.Unix(int64(info.StartsAt+86400), 0).UTC().Format("2006-01-02 15:04 UTC")
	if _, err := s.Call(t.Context(), "prepareExitTicket", []byte(exit)); err == nil || err.(*Error).Code != "NOT_ALLOWED" || !strings.Contains(err.Error(), opens) {
		t.Fatalf("exit before the event is over: %v (want NOT_ALLOWED with %s)", err, opens)
	}
	s.Now = func() time.Time { return time.Unix(int64(info.StartsAt+86400), 0) }
	if code := callErr(t, s, "prepareExitTicket", `{"account":"`+acct0+`","event":"`+demoEvent+`","tokenId":"77"}`); code != "INVALID_REQUEST" {
		t.Fatalf("exit of a ticket not held: %s", code)
	}
	x := call(t, s, "prepareExitTicket", exit)
	if !strings.Contains(summaryText(x), "Keep as a souvenir ticket #"+id+" on the main chain") || !strings.Contains(summaryText(x), "VIP balcony") {
		t.Fatalf("exit summary %s", summaryText(x))
	}
	call(t, s, "approve", `{"id":"`+x["id"].(string)+`"}`)
	if len(*got) != 3 || (*got)[2].Sig != actions.SigExitTicket || (*got)[2].TokenID.String() != id || !strings.EqualFold((*got)[2].Event.Hex(), demoEvent) {
		t.Fatalf("relay received %+v", (*got)[2])
	}

	// A chain without a gateway.
	c.relay.Handle(protocol.MethodChainInfo, func([]json.RawMessage) (any, error) {
		return protocol.ChainInfo{ChainID: 1337, Forwarder: forwarder}, nil
	})
	call(t, s, "connect", `{"url":"`+c.relay.URL+`"}`) // forgets the cached chain info
	for _, m := range []string{"bridgeBalance", "prepareWithdraw"} {
		if code := callErr(t, s, m, `{"account":"`+acct0+`","amount":"1"}`); code != "NO_GATEWAY" {
			t.Errorf("%s without a gateway: %s", m, code)
		}
	}
	if code := callErr(t, s, "prepareExitTicket", exit); code != "NO_GATEWAY" {
		t.Errorf("exit without a gateway: %s", code)
	}
}
