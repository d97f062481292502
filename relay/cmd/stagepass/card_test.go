package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// TestDevCardPurchase: `stagepass dev` alone runs a card purchase end to end — payment
// intent, sandbox checkout with 4242…, gasless requestPurchase, its three in-process oracle
// nodes, the relay's aggregator — and the fan's ticket is minted.
func TestDevCardPurchase(t *testing.T) {
	p := start(t, nil, "dev", "--block-time", "100ms", "--data", t.TempDir())
	result := func(method string, v any, params ...any) {
		t.Helper()
		r := p.call(t, method, params...)
		if r.Error != nil {
			t.Fatalf("%s: %d %s", method, r.Error.Code, r.Error.Message)
		}
		if err := json.Unmarshal(r.Result, v); err != nil {
			t.Fatal(err)
		}
	}
	var info protocol.ChainInfo
	result(protocol.MethodChainInfo, &info)
	var evs []protocol.EventInfo
	result(protocol.MethodEvents, &evs)
	if len(evs) == 0 {
		t.Fatal("no demo event")
	}
	fan := devchain.NewAccount("dev card fan", 0)
	var in protocol.PaymentIntent
	result(protocol.MethodCreatePayment, &in, evs[0].Address, 0, 1, fan.Address.Hex())
	sandbox := &payments.Client{BaseURL: p.url + "/sandbox", APIKey: devPaymentsKey}
	if _, err := sandbox.Confirm(context.Background(), in.ID, payments.Card{Number: "4242 4242 4242 4242", ExpMonth: 12, ExpYear: time.Now().Year() + 3, CVC: "123"}); err != nil {
		t.Fatal(err)
	}
	// The processor's webhooks are taken, signed with the development secret only.
	if resp, err := http.Post(p.url+server.WebhookPath, "application/json", strings.NewReader(`{"id":"evt_forged","object":"event"}`)); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an unsigned webhook: %v %v, want 400", resp, err)
	} else {
		resp.Body.Close()
	}

	pid, err := protocol.ParseHash32("paymentId", in.PaymentID)
	if err != nil {
		t.Fatal(err)
	}
	var nonce string
	result(protocol.MethodForwarderNonce, &nonce, fan.Address.Hex())
	n, _ := new(big.Int).SetString(nonce, 10)
	req := &protocol.ForwardRequest{
		From: ethcrypto.Address(fan.Address), To: ethcrypto.MustParseAddress(evs[0].Address), Value: big.NewInt(0),
		Gas: big.NewInt(400_000), Nonce: n, Deadline: uint64(time.Now().Add(2 * time.Hour).Unix()),
		Data: devchain.Ticket.PackRequestPurchase(pid, big.NewInt(0), big.NewInt(1)),
	}
	digest, err := req.Digest(protocol.ForwarderDomain(info.ChainID, ethcrypto.MustParseAddress(info.Forwarder)))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := crypto.Sign(digest[:], fan.Key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	var st protocol.RequestStatus
	result(protocol.MethodSendForward, &st, protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)})

	deadline := time.Now().Add(30 * time.Second)
	for {
		var pr protocol.PaymentProgress
		result(protocol.MethodPaymentStatus, &pr, in.ID)
		if pr.State == protocol.PaymentMinted {
			if pr.Quantity != 1 || pr.Signatures < 2 {
				t.Fatalf("progress %+v", pr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("payment still %+v:\n%s", pr, p.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		var mine []protocol.TicketInfo
		result(protocol.MethodTicketsByOwner, &mine, fan.Address.Hex())
		if len(mine) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ticket for the fan")
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop(t)
}
