package server_test

import (
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// TestGaslessPurchaseThroughTheRelay: a fan with TestUSD and no native coin signs a permit
// and a forward request, sends it with sp_sendForward, follows it on the "request" topic
// (accepted → sent → mined), and sees the ticket in sp_ticketsByOwner. Bad submissions get
// clear errors and nothing is queued.
func TestGaslessPurchaseThroughTheRelay(t *testing.T) {
	e := newEnv(t)
	fan := devchain.NewAccount("relay fan without coin", 0)
	e.chain.MustTransact(e.chain.Accounts[9], e.chain.USD, devchain.USD.PackMint(fan.Address, devchain.USDC(100)), nil)

	now := e.chain.Now()
	call := e.chain.BuyWithPermitCall(fan, e.chain.Demo, 0, 1, devchain.USDC(45), now+3600)
	req, sig := e.chain.SignForward(fan, e.chain.Demo, call, 400_000, now+3600)
	hexSig := fmt.Sprintf("0x%x", sig)

	// Refusals first.
	forged := append([]byte(nil), sig...)
	forged[10] ^= 0xff
	badGas := req.JSON()
	badGas.Gas = "lots"
	for _, tc := range []struct {
		sub  protocol.ForwardSubmission
		want string
	}{
		{protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", forged)}, "signature"},
		{protocol.ForwardSubmission{Request: req.JSON(), Signature: "0x1234"}, "65 bytes"},
		{protocol.ForwardSubmission{Request: badGas, Signature: hexSig}, "gas must be a decimal integer"},
	} {
		res := e.call(protocol.MethodSendForward, []any{tc.sub})
		if res.Error == nil || res.Error.Code != -32602 || !strings.Contains(res.Error.Message, tc.want) {
			t.Errorf("submission %q: %+v", tc.want, res.Error)
		}
	}

	var st protocol.RequestStatus
	e.result(protocol.MethodSendForward, []any{protocol.ForwardSubmission{Request: req.JSON(), Signature: hexSig}}, &st)
	if st.State != protocol.RequestAccepted && st.State != protocol.RequestSent {
		t.Fatalf("status %+v", st)
	}
	c := e.dial()
	_, early := c.subscribeRequest(st.ID)
	states := map[string]bool{}
	for _, p := range early {
		states[p.State] = true
	}
	deadlineT := time.Now().Add(15 * time.Second)
	for !states[protocol.RequestMined] {
		if time.Now().After(deadlineT) || states[protocol.RequestFailed] {
			t.Fatalf("request never mined; states seen %v", states)
		}
		m := c.readRaw(15 * time.Second)
		if m.Method == protocol.MethodSubscription {
			states[m.Params.Result.State] = true
		}
	}
	var again protocol.RequestStatus
	e.result(protocol.MethodRequestStatus, []any{st.ID}, &again)
	if again.State != protocol.RequestMined || again.TxHash == "" {
		t.Fatalf("sp_requestStatus %+v", again)
	}
	waitFor(t, "the gasless ticket", func() bool {
		var mine []protocol.TicketInfo
		e.result(protocol.MethodTicketsByOwner, []any{fan.Address.Hex()}, &mine)
		return len(mine) == 1
	})
	if b := e.chain.Balance(fan.Address); b.Sign() != 0 {
		t.Fatalf("the fan paid gas: balance %s", b)
	}
	// The same signed request again is the same request, not a second purchase.
	var dup protocol.RequestStatus
	e.result(protocol.MethodSendForward, []any{protocol.ForwardSubmission{Request: req.JSON(), Signature: hexSig}}, &dup)
	if dup.ID != st.ID {
		t.Fatalf("resubmission got a new id %s (first %s)", dup.ID, st.ID)
	}
}

// TestGaslessCardPurchaseRequest: the first step of a card purchase — the fan's signed
// requestPurchase(paymentId, tier, qty) — goes through the relay, which pays the gas, and the
// oracle hub records the payment id as requested.
func TestGaslessCardPurchaseRequest(t *testing.T) {
	e := newEnv(t)
	fan := devchain.NewAccount("card fan without coin", 0)
	pid := devchain.PaymentID("pi_relaytest")
	now := e.chain.Now()
	req, sig := e.chain.SignForward(fan, e.chain.Demo, devchain.Ticket.PackRequestPurchase(pid, big.NewInt(0), big.NewInt(2)), 400_000, now+3600)
	var st protocol.RequestStatus
	e.result(protocol.MethodSendForward, []any{protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}}, &st)
	waitFor(t, "the card request to be mined", func() bool {
		var now protocol.RequestStatus
		e.result(protocol.MethodRequestStatus, []any{st.ID}, &now)
		if now.State == protocol.RequestFailed {
			t.Fatalf("request failed: %s", now.Reason)
		}
		return now.State == protocol.RequestMined
	})
	p, err := e.chain.HubPayment(pid)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != devchain.PaymentRequested || p.TicketEvent != e.chain.Demo {
		t.Fatalf("hub payment %+v", p)
	}
}
