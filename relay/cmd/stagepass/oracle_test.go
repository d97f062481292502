package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/wasm/protocol"
)

func TestOracleFlags(t *testing.T) {
	out, err := exec.Command(binary(t), "oracle", "--rpc", "http://127.0.0.1:1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "missing") || !strings.Contains(string(out), "--hub") {
		t.Fatalf("oracle without flags: %v\n%s", err, out)
	}
}

// TestCardPurchaseSeparateOracles: on geth --dev, `stagepass serve --hub …` with the
// sandbox processor and two of the three oracles as `stagepass oracle` processes (k = 2: both
// are needed), each with its own keystore, chain connection and processor credentials, one
// reporting over the relay's websocket and one over HTTP: a card payment is verified by the
// separate nodes, aggregated by the relay and minted.
func TestCardPurchaseSeparateOracles(t *testing.T) {
	c, url, args := gethPlatform(t)
	issuer := c.Accounts[1]
	ev, err := c.CreateEvent(issuer, c.DefaultConfig(issuer.Address, c.Accounts[2].Address, c.Accounts[3].Address))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeKey := func(name string, a *devchain.Account) string {
		return writeKeystore(t, filepath.Join(dir, name+".json"), a.Key, "relay password")
	}
	const apiKey = "sk_test_separate_oracles"
	env := []string{"STAGEPASS_PASSWORD=relay password"}
	args = append(args, "--hub", c.Hub.Hex(), "--reporter-keystore", writeKey("reporter", c.Accounts[5]), "--sandbox-key", apiKey)
	p := start(t, env, args...)
	for i, o := range c.Oracles[:2] {
		relay := p.url + "/rpc"
		if i == 0 { // one node on the relay's websocket, the others on HTTP
			relay = "ws" + strings.TrimPrefix(p.url, "http") + "/ws"
		}
		cmd := exec.Command(binary(t), "oracle", "--rpc", url, "--keystore", writeKey(fmt.Sprintf("oracle%d", i), o),
			"--hub", c.Hub.Hex(), "--factory", c.Factory.Hex(), "--relay", relay, "--processor-url", p.url+"/sandbox")
		cmd.Env = append(append(os.Environ(), env...), "STAGEPASS_PROCESSOR_KEY="+apiKey)
		cmd.Stdout, cmd.Stderr = nil, nil
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}

	result := func(method string, v any, params ...any) bool {
		t.Helper()
		r := p.call(t, method, params...)
		if r.Error != nil {
			return false
		}
		if err := json.Unmarshal(r.Result, v); err != nil {
			t.Fatal(err)
		}
		return true
	}
	deadline := time.Now().Add(90 * time.Second)
	var info protocol.EventInfo
	for !result(protocol.MethodEvent, &info, ev.Hex()) {
		if time.Now().After(deadline) {
			t.Fatal("the event was never indexed")
		}
		time.Sleep(200 * time.Millisecond)
	}
	fan := devchain.NewAccount(t.Name()+" fan", 0)
	var in protocol.PaymentIntent
	if !result(protocol.MethodCreatePayment, &in, ev.Hex(), 0, 1, fan.Address.Hex()) {
		t.Fatalf("sp_createPayment: %+v", p.call(t, protocol.MethodCreatePayment, ev.Hex(), 0, 1, fan.Address.Hex()).Error)
	}
	sandbox := &payments.Client{BaseURL: p.url + "/sandbox", APIKey: apiKey}
	if _, err := sandbox.Confirm(context.Background(), in.ID, payments.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 3, CVC: "123"}); err != nil {
		t.Fatal(err)
	}
	pid, _ := protocol.ParseHash32("paymentId", in.PaymentID)
	req, sig := c.SignForward(fan, ev, devchain.Ticket.PackRequestPurchase(pid, big.NewInt(0), big.NewInt(1)), 1_500_000, c.Now()+3600)
	var st protocol.RequestStatus
	if !result(protocol.MethodSendForward, &st, protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}) {
		t.Fatalf("sp_sendForward: %+v", p.call(t, protocol.MethodSendForward, protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}).Error)
	}
	for {
		var pr protocol.PaymentProgress
		result(protocol.MethodPaymentStatus, &pr, in.ID)
		if pr.State == protocol.PaymentMinted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("payment still %+v:\n%s", pr, p.logs)
		}
		time.Sleep(300 * time.Millisecond)
	}
	rec, err := c.HubPayment(pid)
	if err != nil || rec.Status != devchain.PaymentMinted || rec.Quantity.Uint64() != 1 {
		t.Fatalf("hub payment %+v %v", rec, err)
	}
	p.stop(t)
}
