package server_test

import (
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// bridgeSub is one "bridge" subscription on its own websocket.
type bridgeSub struct {
	c  *wsClient
	id string
}

// subscribeBridge subscribes to the "bridge" topic with params and returns the
// subscription, or the relay's refusal (code, message).
func (e *env) subscribeBridge(params any) (*bridgeSub, int, string) {
	e.t.Helper()
	c := e.dial()
	if err := c.conn.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": 1, "method": protocol.MethodSubscribe, "params": []any{protocol.TopicBridge, params}}); err != nil {
		e.t.Fatal(err)
	}
	var m wsMessageOf[json.RawMessage]
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.conn.ReadJSON(&m); err != nil {
		e.t.Fatalf("read: %v", err)
	}
	if m.Error != nil {
		return nil, m.Error.Code, m.Error.Message
	}
	var id string
	if err := json.Unmarshal(m.Result, &id); err != nil || m.Method != "" {
		e.t.Fatalf("subscribe reply %+v", m)
	}
	return &bridgeSub{c: c, id: id}, 0, ""
}

// next is the next push, or false if none comes within wait.
func (s *bridgeSub) next(wait time.Duration) (protocol.BridgeUpdate, bool) {
	s.c.t.Helper()
	for {
		_ = s.c.conn.SetReadDeadline(time.Now().Add(wait))
		var m wsMessageOf[protocol.BridgeUpdate]
		err := s.c.conn.ReadJSON(&m)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return protocol.BridgeUpdate{}, false
		}
		if err != nil {
			s.c.t.Fatalf("read: %v", err)
		}
		if m.Method == protocol.MethodSubscription && m.Params.Subscription == s.id {
			return m.Params.Result, true
		}
	}
}

// until reads pushes until one satisfies ok, failing after 60 s.
func (s *bridgeSub) until(what string, ok func(protocol.BridgeUpdate) bool) protocol.BridgeUpdate {
	s.c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		u, got := s.next(time.Until(deadline))
		if !got {
			break
		}
		if ok(u) {
			return u
		}
	}
	s.c.t.Fatalf("no push: %s", what)
	return protocol.BridgeUpdate{}
}

func withdrawalAt(u protocol.BridgeUpdate, index uint64, stage string) bool {
	for _, w := range u.Withdrawals {
		if w.Index == index && w.Stage == stage {
			return true
		}
	}
	return false
}

func depositAt(u protocol.BridgeUpdate, stage string) bool {
	for _, d := range u.Deposits {
		if d.Stage == stage {
			return true
		}
	}
	return false
}

// TestBridgeTopic: subscribers to the "bridge" topic get their account's whole state
// first, then a push as soon as the relay's tracker reads a change: a deposit seen and
// confirmed, then credited by the validators; a withdrawal queued, checkpointed, and exited
// by the relay. Another account's subscriber gets nothing past its own (empty) state; a
// subscriber that comes back gets the state it missed; bad params are refused clearly.
func TestBridgeTopic(t *testing.T) {
	chain := bridgeChain(t, 200*time.Millisecond)
	e, _ := bridgeRelay(t, chain, false, t.TempDir(), nil)
	fan := devchain.NewAccount("bridge topic fan", 0)
	paidTo := devchain.NewAccount("bridge topic fan", 1)
	other := devchain.NewAccount("bridge topic other", 0)

	subs := map[string]*bridgeSub{}
	for name, a := range map[string]string{"fan": fan.Address.Hex(), "paidTo": strings.ToLower(paidTo.Address.Hex()), "other": other.Address.Hex()} {
		s, code, msg := e.subscribeBridge(map[string]any{"account": a})
		if s == nil {
			t.Fatalf("subscribe %s: %d %s", name, code, msg)
		}
		first, ok := s.next(10 * time.Second)
		if !ok || !first.Full || len(first.Withdrawals) != 0 || len(first.Deposits) != 0 || !strings.EqualFold(first.Account, a) {
			t.Fatalf("%s's first push %+v (%v)", name, first, ok)
		}
		subs[name] = s
	}

	// A deposit from the main chain: seen pending (its whole state when the tracker's step
	// saw it with M confirmations already), then credited.
	chain.Main.MustTransact(chain.Main.Accounts[3], chain.Bridge.Root, devchain.RootGW.PackDeposit(fan.Address, devchain.USDC(50)), nil)
	seen := subs["fan"].until("the deposit seen", func(u protocol.BridgeUpdate) bool { return depositAt(u, protocol.DepositPending) })
	if d := seen.Deposits[0]; len(seen.Deposits) != 1 || d.Amount != "50000000" || d.Required != 2 {
		t.Fatalf("deposit push %+v", seen)
	}
	stopValidators := e.validators()
	credited := time.Now()
	u := subs["fan"].until("the deposit credited", func(u protocol.BridgeUpdate) bool { return depositAt(u, protocol.DepositCredited) })
	if len(u.Deposits) != 1 || u.Deposits[0].Amount != "50000000" {
		t.Fatalf("credited push %+v", u)
	}
	t.Logf("deposit credited pushed %v after the validators started", time.Since(credited).Round(time.Millisecond))

	// A withdrawal to paidTo: queued (no validators: no checkpoint yet), checkpointed,
	// exited (the relay pays it).
	stopValidators()
	e.forward(fan, chain.Bridge.Child, devchain.ChildGW.PackWithdraw(paidTo.Address, devchain.USDC(20)))
	for _, stage := range []string{protocol.WithdrawalQueued, protocol.WithdrawalCheckpointed, protocol.WithdrawalExited} {
		u := subs["paidTo"].until("the withdrawal "+stage, func(u protocol.BridgeUpdate) bool { return withdrawalAt(u, 0, stage) })
		if w := u.Withdrawals[0]; len(u.Withdrawals) != 1 || w.Value != "20000000" || !strings.EqualFold(w.Recipient, paidTo.Address.Hex()) || u.Full {
			t.Fatalf("%s push %+v", stage, u)
		}
		if stage == protocol.WithdrawalQueued {
			e.validators()
		}
	}
	if served := e.withdrawalsUntil(paidTo.Address, 0, protocol.WithdrawalExited); served.ExitTx == "" {
		t.Fatalf("sp_withdrawals %+v", served)
	}

	// The other account heard nothing; the fan's own withdrawal is not the fan's to hear.
	if u, ok := subs["other"].next(2 * time.Second); ok {
		t.Fatalf("another account's subscriber got %+v", u)
	}
	for {
		u, ok := subs["fan"].next(time.Second)
		if !ok {
			break
		}
		if len(u.Withdrawals) > 0 {
			t.Fatalf("the sender's subscriber got the recipient's withdrawal: %+v", u)
		}
	}

	// Back after missing it all: the first push is the state now.
	again, _, _ := e.subscribeBridge(map[string]any{"account": paidTo.Address.Hex()})
	if u, ok := again.next(10 * time.Second); !ok || !u.Full || !withdrawalAt(u, 0, protocol.WithdrawalExited) || len(u.Deposits) != 0 {
		t.Fatalf("resubscribed: %+v", u)
	}
	back, _, _ := e.subscribeBridge(map[string]any{"account": fan.Address.Hex()})
	if u, ok := back.next(10 * time.Second); !ok || !u.Full || len(u.Deposits) != 1 || !depositAt(u, protocol.DepositCredited) || len(u.Withdrawals) != 0 {
		t.Fatalf("resubscribed: %+v", u)
	}

	// Bad params.
	for _, tc := range []struct {
		params any
		want   string
	}{
		{map[string]any{}, "bridge: account is required"},
		{map[string]any{"account": "0x12"}, "bridge: account must be a 0x-prefixed 20-byte hex address"},
		{map[string]any{"owner": fan.Address.Hex()}, "owner"},
		{nil, "params object required"},
	} {
		s, code, msg := e.subscribeBridge(tc.params)
		if s != nil || code != -32602 || !strings.Contains(msg, tc.want) {
			t.Errorf("params %v: %d %q", tc.params, code, msg)
		}
	}
}

// TestBridgeTopicNoBridge: a relay without the main chain refuses the topic, saying so.
func TestBridgeTopicNoBridge(t *testing.T) {
	e := newEnv(t)
	s, code, msg := e.subscribeBridge(map[string]any{"account": e.chain.Accounts[1].Address.Hex()})
	if s != nil || code != -32602 || !strings.Contains(msg, "no bridge") {
		t.Fatalf("%d %q", code, msg)
	}
}
