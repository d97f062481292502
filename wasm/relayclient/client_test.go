package relayclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stagepass/stagepass/wasm/internal/fakerelay"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
)

const owner = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"

func transfer(block uint64, id string) protocol.Activity {
	return protocol.Activity{Kind: protocol.KindTransfer, Event: "0x5fbdb2315678afecb367f032d93f642f64180aa3",
		TokenID: id, From: "0x0000000000000000000000000000000000000000", To: owner, TxHash: "0x01",
		Cursor: protocol.Cursor{Block: block}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCallAndErrors(t *testing.T) {
	r := fakerelay.New()
	defer r.Close()
	r.Handle(protocol.MethodChainInfo, func([]json.RawMessage) (any, error) {
		return protocol.ChainInfo{ChainID: 1337, Block: 9}, nil
	})
	r.Handle(protocol.MethodEvent, func([]json.RawMessage) (any, error) {
		return nil, &fakerelay.Error{Code: -32602, Message: "no Stagepass event at 0x…"}
	})
	c := relayclient.New(relayclient.Config{URL: r.URL, Dial: fakerelay.Dial, MinBackoff: 10 * time.Millisecond})
	c.Start()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var info protocol.ChainInfo
	if err := c.Call(ctx, protocol.MethodChainInfo, nil, &info); err != nil || info.ChainID != 1337 {
		t.Fatalf("chain info %+v, %v", info, err)
	}
	var rpcErr *relayclient.RPCError
	if err := c.Call(ctx, protocol.MethodEvent, []any{"0x1"}, nil); !errors.As(err, &rpcErr) || rpcErr.Code != -32602 {
		t.Fatalf("err = %v", err)
	}
	if err := c.Call(ctx, "sp_nope", nil, nil); !errors.As(err, &rpcErr) || rpcErr.Code != -32601 {
		t.Fatalf("unknown method err = %v", err)
	}
	c.Close()
	if err := c.Call(ctx, protocol.MethodChainInfo, nil, nil); !errors.Is(err, relayclient.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestOfflineCallHonoursContext(t *testing.T) {
	c := relayclient.New(relayclient.Config{URL: "ws://127.0.0.1:1/ws", Dial: fakerelay.Dial, MinBackoff: 10 * time.Millisecond})
	c.Start()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.Call(ctx, protocol.MethodChainInfo, nil, nil); !errors.Is(err, relayclient.ErrOffline) {
		t.Fatalf("err = %v", err)
	}
}

// TestResubscribeAfterReconnect: the connection drops; the client dials again with backoff
// and renews the subscription with the params of that moment (the latest cursor), and the
// relay's backlog fills the gap exactly once.
func TestResubscribeAfterReconnect(t *testing.T) {
	r := fakerelay.New()
	defer r.Close()
	var states []bool
	var mu sync.Mutex
	c := relayclient.New(relayclient.Config{URL: r.URL, Dial: fakerelay.Dial, MinBackoff: 10 * time.Millisecond,
		OnState: func(up bool) { mu.Lock(); states = append(states, up); mu.Unlock() }})
	var got []protocol.Activity
	last := protocol.Cursor{}
	c.Subscribe(&relayclient.Subscription{
		Topic: protocol.TopicTickets,
		Params: func() any {
			mu.Lock()
			defer mu.Unlock()
			return map[string]any{"owner": owner, "from": last}
		},
		OnPush: func(raw json.RawMessage) {
			var a protocol.Activity
			json.Unmarshal(raw, &a)
			mu.Lock()
			got = append(got, a)
			last = a.Cursor
			mu.Unlock()
		},
	})
	c.Start()
	defer c.Close()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	waitFor(t, "connection", c.Connected)
	waitFor(t, "subscription", func() bool { return len(r.Subscribes()) == 1 })
	r.Publish(transfer(5, "1"), owner)
	waitFor(t, "first push", func() bool { return count() == 1 })

	r.Kick()
	waitFor(t, "disconnect noticed", func() bool { mu.Lock(); defer mu.Unlock(); return len(states) >= 2 })
	r.Publish(transfer(6, "2"), owner) // while offline: only the backlog can deliver it
	waitFor(t, "resubscription", func() bool { return len(r.Subscribes()) == 2 })
	waitFor(t, "missed push", func() bool { return count() == 2 })
	r.Publish(transfer(7, "3"), owner)
	waitFor(t, "live push", func() bool { return count() == 3 })
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for i, want := range []string{"1", "2", "3"} {
		if got[i].TokenID != want {
			t.Fatalf("push %d = %s, want %s (all %+v)", i, got[i].TokenID, want, got)
		}
	}
	if len(got) != 3 {
		t.Fatalf("%d pushes, want 3", len(got))
	}
	var p struct{ From protocol.Cursor }
	json.Unmarshal(r.Subscribes()[1], &p)
	if p.From.Block != 5 {
		t.Fatalf("resubscribed from %+v, want block 5", p.From)
	}
	if !states[0] || states[1] {
		t.Fatalf("states %v", states)
	}
}
