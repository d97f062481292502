package wallet

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/internal/fakerelay"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
	"github.com/stagepass/stagepass/wasm/tickets"
	"github.com/stagepass/stagepass/wasm/vault"
)

var (
	onlineNow = time.Unix(1_800_000_000, 0)
	demoEvent = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
	testUSD   = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"
	fwdAddr   = ethcrypto.MustParseAddress(forwarder)
)

// fakeChain plays the relay and the event contract for the wallet's online methods: it
// verifies each forward request's signature and nonce, decodes its calldata, applies it to
// a small ticket model, publishes the resulting activities and reports the request mined.
type fakeChain struct {
	t      *testing.T
	relay  *fakerelay.Relay
	mu     sync.Mutex
	block  uint64
	nonces map[string]int64
	owner  map[string]string // token id → owner (lowercase)
	listed map[string]string
	in     map[string]bool
	sold   [2]uint32
	reqs   int
	snap   bool // serve sp_eventTickets
}

func demoInfo() protocol.EventInfo {
	starts := uint64(onlineNow.Unix()) + 30*86400
	return protocol.EventInfo{
		Address: demoEvent, Name: "Stagepass Live: Opening Night", Venue: "Harbour Hall", StartsAt: starts,
		DoorsOpenAt: starts - 7200, ResaleClosesAt: starts - 3*3600, Currency: testUSD,
		MaxPerBuyer: 6, MaxResaleMarkupBps: 2000, SellerMarkupShareBps: 5000, GiftsAllowed: true,
		Tiers: []protocol.TierInfo{{Name: "General admission", FaceValue: "45000000", Supply: 2000},
			{Name: "VIP balcony", FaceValue: "120000000", Supply: 150}},
		Splits: []protocol.SplitInfo{{Account: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", Bps: 5000},
			{Account: "0x90f79bf6eb2c4f870365e785982e1f101e93b906", Bps: 5000, Role: 1}},
	}
}

func newFakeChain(t *testing.T) *fakeChain {
	c := &fakeChain{t: t, relay: fakerelay.New(), block: 10, nonces: map[string]int64{},
		owner: map[string]string{}, listed: map[string]string{}, in: map[string]bool{}}
	t.Cleanup(c.relay.Close)
	r := c.relay
	r.Handle(protocol.MethodChainInfo, func([]json.RawMessage) (any, error) {
		return protocol.ChainInfo{ChainID: 1337, Block: c.block, Forwarder: forwarder, Currency: testUSD}, nil
	})
	r.Handle(protocol.MethodEvent, func(p []json.RawMessage) (any, error) {
		var ev string
		json.Unmarshal(p[0], &ev)
		if !strings.EqualFold(ev, demoEvent) {
			return nil, &fakerelay.Error{Code: -32602, Message: "no Stagepass event at " + ev}
		}
		info := demoInfo()
		c.mu.Lock()
		info.Tiers[0].Sold, info.Tiers[1].Sold = c.sold[0], c.sold[1]
		c.mu.Unlock()
		return info, nil
	})
	r.Handle(protocol.MethodForwarderNonce, func(p []json.RawMessage) (any, error) {
		var a string
		json.Unmarshal(p[0], &a)
		c.mu.Lock()
		defer c.mu.Unlock()
		return fmt.Sprint(c.nonces[strings.ToLower(a)]), nil
	})
	r.Handle(protocol.MethodPermitInfo, func([]json.RawMessage) (any, error) {
		return protocol.PermitInfo{Token: testUSD, Name: "Test USD", Version: "1", Symbol: "TUSD", Decimals: 6, Nonce: "0"}, nil
	})
	r.Handle(protocol.MethodTicketsByOwner, func(p []json.RawMessage) (any, error) {
		var a string
		json.Unmarshal(p[0], &a)
		c.mu.Lock()
		defer c.mu.Unlock()
		out := []protocol.TicketInfo{}
		for id, o := range c.owner {
			if o == strings.ToLower(a) {
				out = append(out, protocol.TicketInfo{Event: demoEvent, TokenID: id, Owner: o, CheckedIn: c.in[id]})
			}
		}
		return out, nil
	})
	r.Handle(protocol.MethodEventTickets, func([]json.RawMessage) (any, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.snap {
			return nil, &fakerelay.Error{Code: -32601, Message: "the method sp_eventTickets does not exist"}
		}
		out := protocol.EventTickets{Event: demoEvent, Cursor: protocol.Cursor{Block: c.block}}
		for id, o := range c.owner {
			out.Tickets = append(out.Tickets, protocol.TicketInfo{Event: demoEvent, TokenID: id, Owner: o, CheckedIn: c.in[id]})
		}
		return out, nil
	})
	r.Handle(protocol.MethodSendForward, c.sendForward)
	return c
}

// mint gives tickets to an owner directly (an earlier purchase).
func (c *fakeChain) mint(owner string, tier int) string {
	c.mu.Lock()
	c.sold[tier]++
	id := new(big.Int).Or(new(big.Int).Lsh(big.NewInt(int64(tier)), 32), big.NewInt(int64(c.sold[tier]))).String()
	c.block++
	c.owner[id] = strings.ToLower(owner)
	a := protocol.Activity{Kind: protocol.KindTransfer, Event: demoEvent, TokenID: id, From: "0x0000000000000000000000000000000000000000",
		To: strings.ToLower(owner), TxHash: "0x01", Cursor: protocol.Cursor{Block: c.block}}
	c.mu.Unlock()
	c.relay.Publish(a, owner)
	return id
}

func (c *fakeChain) sendForward(p []json.RawMessage) (any, error) {
	var sub protocol.ForwardSubmission
	if err := json.Unmarshal(p[0], &sub); err != nil {
		return nil, &fakerelay.Error{Code: -32602, Message: err.Error()}
	}
	req, err := sub.Request.Parse()
	if err != nil {
		return nil, &fakerelay.Error{Code: -32602, Message: err.Error()}
	}
	sig, _ := hex.DecodeString(strings.TrimPrefix(sub.Signature, "0x"))
	if err := protocol.VerifyForwardRequest(req, protocol.ForwarderDomain(1337, fwdAddr), sig); err != nil {
		return nil, &fakerelay.Error{Code: -32602, Message: err.Error()}
	}
	from := strings.ToLower(req.From.Hex())
	call, err := actions.Decode(req.Data)
	if err != nil {
		return nil, &fakerelay.Error{Code: -32602, Message: err.Error()}
	}
	c.mu.Lock()
	if req.Nonce.Int64() != c.nonces[from] {
		c.mu.Unlock()
		return nil, &fakerelay.Error{Code: -32602, Message: fmt.Sprintf("wrong nonce %s, want %d", req.Nonce, c.nonces[from])}
	}
	var acts []protocol.Activity
	var owners [][]string
	emit := func(a protocol.Activity, who ...string) {
		c.block++
		a.Event, a.TxHash, a.Cursor = demoEvent, "0x02", protocol.Cursor{Block: c.block}
		acts, owners = append(acts, a), append(owners, who)
	}
	revert := ""
	switch call.Sig {
	case actions.SigBuyWithPermit:
		tier := int(call.Tier.Int64())
		for i := int64(0); i < call.Qty.Int64(); i++ {
			c.sold[tier]++
			id := new(big.Int).Or(new(big.Int).Lsh(big.NewInt(int64(tier)), 32), big.NewInt(int64(c.sold[tier]))).String()
			c.owner[id] = from
			emit(protocol.Activity{Kind: protocol.KindTransfer, TokenID: id, From: "0x0000000000000000000000000000000000000000", To: from}, from)
		}
	case actions.SigList:
		id := call.TokenID.String()
		if c.owner[id] != from {
			revert = "NotTicketOwner"
			break
		}
		c.listed[id] = call.Price.String()
		emit(protocol.Activity{Kind: protocol.KindListed, TokenID: id, From: from, Price: call.Price.String()}, from)
	case actions.SigTransferFrom:
		id := call.TokenID.String()
		to := strings.ToLower(call.To.Hex())
		c.owner[id] = to
		emit(protocol.Activity{Kind: protocol.KindTransfer, TokenID: id, From: from, To: to}, from, to)
	case actions.SigCheckIn, actions.SigCheckInBatch:
		ids := call.TokenIDs
		if call.Sig == actions.SigCheckIn {
			ids = []*big.Int{call.TokenID}
			if c.in[call.TokenID.String()] {
				revert = fmt.Sprintf("TicketCheckedIn(tokenId=%s)", call.TokenID)
			}
		}
		for _, x := range ids {
			if id := x.String(); !c.in[id] && revert == "" {
				c.in[id] = true
				emit(protocol.Activity{Kind: protocol.KindCheckedIn, TokenID: id, Account: from}, c.owner[id])
			}
		}
	default:
		revert = "unexpected call " + call.Sig
	}
	if revert != "" {
		c.mu.Unlock()
		return nil, &fakerelay.Error{Code: -32602, Message: "forward: request would revert: " + revert}
	}
	c.nonces[from]++
	c.reqs++
	st := protocol.RequestStatus{ID: fmt.Sprintf("0x%064x", c.reqs), State: protocol.RequestAccepted, From: from, Nonce: req.Nonce.Uint64()}
	c.mu.Unlock()
	go func() {
		time.Sleep(20 * time.Millisecond)
		for i, a := range acts {
			c.relay.Publish(a, owners[i]...)
		}
		mined := st
		mined.State, mined.TxHash = protocol.RequestMined, "0x02"
		for i := 0; i < 50; i++ { // until the wallet has subscribed to the request topic
			c.relay.PushRequest(mined)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return st, nil
}

type events struct {
	mu   sync.Mutex
	seen []string
	last map[string]any
}

func (e *events) note(kind string, data any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, kind)
	if e.last == nil {
		e.last = map[string]any{}
	}
	e.last[kind] = data
}

func (e *events) count(kind string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, k := range e.seen {
		if k == kind {
			n++
		}
	}
	return n
}

// flakyDial is a Dialer the test can switch off (the door loses its network).
type flakyDial struct{ down atomic.Bool }

func (f *flakyDial) dial(ctx context.Context, url string) (relayclient.Conn, error) {
	if f.down.Load() {
		return nil, fmt.Errorf("network down")
	}
	return fakerelay.Dial(ctx, url)
}

func onlineService(t *testing.T, c *fakeChain, cache tickets.Store) (*Service, *events, *flakyDial) {
	s := New(&vault.MemoryStore{}, fastKDF{})
	s.Now = func() time.Time { return onlineNow }
	ev := &events{}
	d := &flakyDial{}
	s.Dial, s.Notify, s.Cache = d.dial, ev.note, cache
	t.Cleanup(s.disconnect)
	call(t, s, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	call(t, s, "connect", `{"url":"`+c.relay.URL+`"}`)
	return s, ev, d
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ticketStates(t *testing.T, s *Service, account string) map[string]string {
	res := call(t, s, "tickets", `{"account":"`+account+`"}`)
	out := map[string]string{}
	list, _ := res["tickets"].([]any)
	for _, x := range list {
		m := x.(map[string]any)
		out[m["tokenId"].(string)] = m["state"].(string)
	}
	return out
}

func summaryText(res map[string]any) string {
	b, _ := json.Marshal(res["summary"])
	return string(b)
}

// TestGaslessActionsUpdateTickets: buy two tickets with a permit, list one, give the other
// away; each is summarised from its calldata, signed, sent with sp_sendForward, followed to
// "mined", and the ticket list follows the pushes.
func TestGaslessActionsUpdateTickets(t *testing.T) {
	c := newFakeChain(t)
	cache := &tickets.MemoryStore{}
	s, ev, _ := onlineService(t, c, cache)
	acct := strings.ToLower(acct0)
	if got := ticketStates(t, s, acct0); len(got) != 0 {
		t.Fatalf("tickets before buying: %v", got)
	}

	buy := call(t, s, "prepareBuy", `{"account":"`+acct0+`","event":"`+demoEvent+`","tier":0,"quantity":2}`)
	for _, want := range []string{"Stagepass Live: Opening Night", "General admission", "Total", "90 TUSD", "Pays Originator", "45 TUSD", "paid by Stagepass"} {
		if !strings.Contains(summaryText(buy), want) {
			t.Errorf("buy summary lacks %q: %s", want, summaryText(buy))
		}
	}
	res := call(t, s, "approve", `{"id":"`+buy["id"].(string)+`"}`)
	if st := res["request"].(map[string]any); st["state"] != protocol.RequestAccepted {
		t.Fatalf("approve: %v", res)
	}
	waitUntil(t, "two valid tickets", func() bool {
		st := ticketStates(t, s, acct0)
		return st["1"] == "valid" && st["2"] == "valid"
	})
	waitUntil(t, "request mined notice", func() bool { return ev.count("request") > 0 && ev.count("tickets") >= 2 })

	if code := callErr(t, s, "prepareList", `{"account":"`+acct0+`","event":"`+demoEvent+`","tokenId":1,"price":"60000000"}`); code != "PRICE_OUT_OF_RANGE" {
		t.Fatalf("list above cap: %s", code)
	}
	if code := callErr(t, s, "prepareList", `{"account":"`+acct0+`","event":"`+demoEvent+`","tokenId":77,"price":"50000000"}`); code != "INVALID_REQUEST" {
		t.Fatalf("list a ticket not held: %s", code)
	}
	list := call(t, s, "prepareList", `{"account":"`+acct0+`","event":"`+demoEvent+`","tokenId":1,"price":"50000000"}`)
	if !strings.Contains(summaryText(list), "45 TUSD – 54 TUSD") {
		t.Fatalf("list summary lacks the allowed range: %s", summaryText(list))
	}
	call(t, s, "approve", `{"id":"`+list["id"].(string)+`"}`)
	gift := call(t, s, "prepareGift", `{"account":"`+acct0+`","event":"`+demoEvent+`","tokenId":"2","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}`)
	if !strings.Contains(summaryText(gift), "0x70997970C51812dc3A010C7d01b50e0d17dc79C8") {
		t.Fatalf("gift summary: %s", summaryText(gift))
	}
	call(t, s, "approve", `{"id":"`+gift["id"].(string)+`"}`)
	waitUntil(t, "listed ticket 1, ticket 2 gone", func() bool {
		st := ticketStates(t, s, acct0)
		return len(st) == 1 && st["1"] == "listed"
	})

	// The cache holds the same list for a wallet that starts offline.
	s.disconnect()
	off := New(&vault.MemoryStore{}, fastKDF{})
	off.Dial = (&flakyDial{}).dial
	off.Cache = cache
	off.Dial = func(context.Context, string) (relayclient.Conn, error) { return nil, fmt.Errorf("offline") }
	call(t, off, "connect", `{"url":"ws://127.0.0.1:1/ws"}`)
	defer off.disconnect()
	view := call(t, off, "tickets", `{"account":"`+acct+`"}`)
	if view["connected"] != false || len(view["tickets"].([]any)) != 1 {
		t.Fatalf("offline view %v", view)
	}
	if evs := view["events"].(map[string]any); evs[demoEvent] == nil {
		t.Fatalf("offline view lacks event details: %v", view)
	}
	if code := callErr(t, off, "prepareBuy", `{"account":"`+acct0+`","event":"`+demoEvent+`","tier":0,"quantity":1}`); code != "LOCKED" {
		t.Fatalf("prepareBuy on a locked wallet: %s", code)
	}
}

// TestDoor: a gate account scans passes: online (the fresh owner lookup, a check-in mined
// through the relay), rejections with reasons, then offline (the snapshot, the queue),
// then back online, the queue synced in one checkInBatch.
func TestDoor(t *testing.T) {
	for _, snap := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot=%v", snap), func(t *testing.T) { testDoor(t, snap) })
	}
}

func testDoor(t *testing.T, snapshotMethod bool) {
	c := newFakeChain(t)
	c.snap = snapshotMethod
	m, _ := keys.FromMnemonic(keys.DevMnemonic, "")
	fan, _ := m.Account(3)
	buyer, _ := m.Account(4)
	t1 := c.mint(fan.Address().Hex(), 0)
	t2 := c.mint(fan.Address().Hex(), 0)
	t3 := c.mint(fan.Address().Hex(), 1)
	t4 := c.mint(fan.Address().Hex(), 1)
	sold := c.mint(fan.Address().Hex(), 0)
	// The fan sold `sold` on: a transfer after the mint.
	c.mu.Lock()
	c.block++
	c.owner[sold] = strings.ToLower(buyer.Address().Hex())
	resale := protocol.Activity{Kind: protocol.KindTransfer, Event: demoEvent, TokenID: sold, From: strings.ToLower(fan.Address().Hex()),
		To: strings.ToLower(buyer.Address().Hex()), TxHash: "0x03", Cursor: protocol.Cursor{Block: c.block}}
	c.mu.Unlock()
	c.relay.Publish(resale, fan.Address().Hex(), buyer.Address().Hex())

	cache := &tickets.MemoryStore{}
	s, ev, net := onlineService(t, c, cache)
	gate := call(t, s, "addAccount", `{}`)["address"].(string) // account 1 is this door's gate
	stats := call(t, s, "scannerOpen", `{"account":"`+gate+`","event":"`+demoEvent+`"}`)
	if stats["event"] != demoEvent {
		t.Fatalf("scannerOpen %v", stats)
	}
	waitUntil(t, "owners of 5 tickets", func() bool { return call(t, s, "scannerStatus", `{}`)["tickets"].(float64) == 5 })

	pass := func(k *ethcrypto.PrivateKey, id string) string {
		x, _ := new(big.Int).SetString(id, 10)
		p, _, err := protocol.MakePass(k, 1337, ethcrypto.MustParseAddress(demoEvent), x, onlineNow)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	scan := func(payload string) map[string]any { return call(t, s, "scan", `{"payload":"`+payload+`"}`) }

	v := scan(pass(fan, t1))
	if v["code"] != "ADMITTED" || v["checkIn"] != "mined" {
		t.Fatalf("online scan %v", v)
	}
	for _, tc := range []struct {
		name, payload, want string
	}{
		{"same ticket again", pass(fan, t1), "PASS_REPLAYED"},
		{"sold ticket, old holder", pass(fan, sold), "PASS_NOT_OWNER"},
		{"forged", "NOT A PASS", "PASS_MALFORMED"},
	} {
		if v := scan(tc.payload); v["code"] != tc.want || v["reason"] == "" {
			t.Errorf("%s: %v, want %s", tc.name, v, tc.want)
		}
	}
	if v := scan(pass(buyer, sold)); v["code"] != "ADMITTED" {
		t.Fatalf("new owner %v", v)
	}
	// Another door checked t2 in while our snapshot still thinks it is not: the chain refuses.
	c.mu.Lock()
	c.in[t2] = true
	c.mu.Unlock()
	if v := scan(pass(fan, t2)); v["code"] != "ALREADY_CHECKED_IN" {
		t.Fatalf("checked in elsewhere %v", v)
	}

	// The door loses its network: scans run against the snapshot and queue.
	net.down.Store(true)
	c.relay.Kick()
	waitUntil(t, "disconnected", func() bool { return !s.on.client.Connected() })
	v = scan(pass(fan, t3))
	if v["code"] != "ADMITTED" || v["checkIn"] != "queued" {
		t.Fatalf("offline scan %v", v)
	}
	if v := scan(pass(fan, t3)); v["code"] != "PASS_REPLAYED" {
		t.Fatalf("offline replay %v", v)
	}
	if v := scan(pass(fan, t4)); v["checkIn"] != "queued" {
		t.Fatalf("offline scan %v", v)
	}
	if q := call(t, s, "scannerStatus", `{}`)["queued"].(float64); q != 2 {
		t.Fatalf("queued %v", q)
	}
	net.down.Store(false)
	waitUntil(t, "reconnected", func() bool { return s.on.client.Connected() })
	sync := call(t, s, "scannerSync", `{}`)
	if sync["sent"].(float64) != 2 {
		t.Fatalf("sync %v", sync)
	}
	waitUntil(t, "queue drained and t3 checked in", func() bool {
		c.mu.Lock()
		done := c.in[t3] && c.in[t4]
		c.mu.Unlock()
		return done && call(t, s, "scannerStatus", `{}`)["queued"].(float64) == 0
	})
	if ev.count("scanner") == 0 {
		t.Fatal("no scanner notifications")
	}

	// The door restarts with no network: it opens from its cache and remembers admissions.
	s.disconnect()
	off := New(&vault.MemoryStore{}, fastKDF{})
	off.Now = func() time.Time { return onlineNow }
	off.Cache = cache
	off.Dial = func(context.Context, string) (relayclient.Conn, error) { return nil, fmt.Errorf("offline") }
	t.Cleanup(off.disconnect)
	call(t, off, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	call(t, off, "addAccount", `{}`)
	call(t, off, "connect", `{"url":"ws://127.0.0.1:1/ws"}`)
	start := time.Now()
	stats = call(t, off, "scannerOpen", `{"account":"`+gate+`","event":"`+demoEvent+`"}`)
	if stats["tickets"].(float64) != 5 || stats["admitted"].(float64) < 4 {
		t.Fatalf("offline scannerOpen %v", stats)
	}
	if d := time.Since(start); d > 2*OfflineWait {
		t.Fatalf("offline scannerOpen took %v", d)
	}
	if v := call(t, off, "scan", `{"payload":"`+pass(fan, t3)+`"}`); v["code"] != "PASS_REPLAYED" {
		t.Fatalf("after restart %v", v)
	}
}
