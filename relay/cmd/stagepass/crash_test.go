package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/protocol"
)

type rpcReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (p *proc) call(t *testing.T, method string, params ...any) rpcReply {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	res, err := http.Post(p.url+"/rpc", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer res.Body.Close()
	var r rpcReply
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return r
}

// TestCrashAfterAcknowledging: `stagepass serve` against geth --dev acknowledges N gasless
// purchases and is killed with SIGKILL at once; restarted on the same data folder, it
// finishes them all, and each lands on chain exactly once.
func TestCrashAfterAcknowledging(t *testing.T) {
	const n = 8
	c, _, args := gethPlatform(t)
	issuer := c.Accounts[1]
	cfg := c.DefaultConfig(issuer.Address, c.Accounts[2].Address, c.Accounts[3].Address)
	ev, err := c.CreateEvent(issuer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// N fans with TestUSD and no native coin sign their purchases.
	deadline := c.Now() + 3600
	subs := make([]protocol.ForwardSubmission, n)
	fans := make([]*devchain.Account, n)
	for i := range fans {
		fans[i] = devchain.NewAccount(t.Name(), 100+i)
		c.MustTransact(c.Deployer, c.USD, devchain.USD.PackMint(fans[i].Address, devchain.USDC(100)), nil)
		call := c.BuyWithPermitCall(fans[i], ev, 0, 1, devchain.USDC(50), deadline)
		req, sig := c.SignForward(fans[i], ev, call, 1_500_000, deadline) // geth --dev prices state like Bogota: ~3x Osaka
		subs[i] = protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}
	}

	env := []string{"STAGEPASS_PASSWORD=relay password"}
	p := start(t, env, args...)
	ids := make([]string, n)
	for i, sub := range subs {
		r := p.call(t, protocol.MethodSendForward, sub)
		if r.Error != nil {
			t.Fatalf("submission %d refused: %d %s", i, r.Error.Code, r.Error.Message)
		}
		var st protocol.RequestStatus
		if err := json.Unmarshal(r.Result, &st); err != nil {
			t.Fatal(err)
		}
		ids[i] = st.ID
	}
	p.kill() // SIGKILL right after the last acknowledgement

	p2 := start(t, env, args...)
	deadlineT := time.Now().Add(90 * time.Second)
	for i, id := range ids {
		for {
			r := p2.call(t, protocol.MethodRequestStatus, id)
			if r.Error != nil {
				t.Fatalf("request %d unknown after the restart: %s", i, r.Error.Message)
			}
			var st protocol.RequestStatus
			_ = json.Unmarshal(r.Result, &st)
			if st.State == protocol.RequestMined {
				break
			}
			if st.State == protocol.RequestFailed {
				t.Fatalf("request %d failed: %s", i, st.Reason)
			}
			if time.Now().After(deadlineT) {
				t.Fatalf("request %d still %s after the restart:\n%s", i, st.State, p2.logs)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// Exactly once: every fan holds one ticket, and the event sold exactly N.
	for i, f := range fans {
		out, err := c.Call(ev, devchain.Ticket.PackBalanceOf(f.Address))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := devchain.Ticket.UnpackBalanceOf(out); b.Cmp(big.NewInt(1)) != 0 {
			t.Fatalf("fan %d holds %s tickets", i, b)
		}
	}
	out, err := c.Call(ev, devchain.Ticket.PackTierInfo(common.Big0))
	if err != nil {
		t.Fatal(err)
	}
	if tier, _ := devchain.Ticket.UnpackTierInfo(out); tier.Sold != n {
		t.Fatalf("sold %d, want %d", tier.Sold, n)
	}
	p2.stop(t)
}
