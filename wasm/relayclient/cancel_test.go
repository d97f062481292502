package relayclient_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stagepass/stagepass/wasm/internal/fakerelay"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
)

// A subscription cancelled before the relay's reply (the fan app switching accounts
// quickly) must not stay open on the relay unread: the client ends it when the reply comes.
// One cancelled after its reply is ended at once. Either way the relay ends with none.
func TestCancelledSubscriptionLeavesNoneOnTheRelay(t *testing.T) {
	r := fakerelay.New()
	defer r.Close()
	c := relayclient.New(relayclient.Config{URL: r.URL, Dial: fakerelay.Dial, MinBackoff: 10 * time.Millisecond})
	defer c.Close()
	c.Start()
	waitFor(t, "connection", c.Connected)
	sub := func(onSend func()) func() {
		return c.Subscribe(&relayclient.Subscription{Topic: protocol.TopicTickets,
			Params: func() any { onSend(); return map[string]any{"owner": owner} }, OnPush: func(json.RawMessage) {}})
	}
	for i := 0; i < 10; i++ {
		sub(func() {})() // cancelled at once, before its subscribe is sent: never sent
	}
	for i := 0; i < 10; i++ {
		var cancel func()
		ready := make(chan struct{})
		cancel = sub(func() { <-ready; cancel() }) // cancelled as its subscribe is sent
		close(ready)
	}
	waitFor(t, "the 10 subscribes cancelled in flight", func() bool { return len(r.Subscribes()) == 10 })
	cancel := sub(func() {})
	waitFor(t, "the live subscription", func() bool { return len(r.Subscribes()) == 11 })
	waitFor(t, "only the live subscription on the relay", func() bool { return r.Active(protocol.TopicTickets, owner) == 1 })
	cancel()
	waitFor(t, "no subscription left", func() bool { return r.Active(protocol.TopicTickets, owner) == 0 })
}
