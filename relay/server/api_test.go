package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/gorilla/websocket"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/site"
	"github.com/stagepass/stagepass/wasm/protocol"
)

type env struct {
	t     *testing.T
	chain *devnet.Devnet
	relay *server.Relay
	base  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	chain, err := devnet.Start(devnet.Config{BlockTime: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chain.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	relay, err := server.Start(context.Background(), server.Config{
		Listener: ln, DataDir: t.TempDir(), Client: chain.Client, ChainID: chain.ChainID,
		Forwarder: chain.Forwarder, Factory: chain.Factory, USD: chain.USD, Relayer: chain.Relayer, Site: site.FS(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = relay.Shutdown(ctx)
	})
	return &env{t: t, chain: chain, relay: relay, base: "http://" + relay.Addr()}
}

type rpcResponse struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// call makes one JSON-RPC call over HTTP POST /rpc.
func (e *env) call(method string, params any) rpcResponse {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	res, err := http.Post(e.base+"/rpc", "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out rpcResponse
	raw, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		e.t.Fatalf("%s: %v: %s", method, err, raw)
	}
	return out
}

func (e *env) result(method string, params any, v any) {
	e.t.Helper()
	r := e.call(method, params)
	if r.Error != nil {
		e.t.Fatalf("%s: error %d %s", method, r.Error.Code, r.Error.Message)
	}
	if err := json.Unmarshal(r.Result, v); err != nil {
		e.t.Fatalf("%s: %v", method, err)
	}
}

// waitFor polls until cond holds (the watcher indexes within a few blocks), slowly enough
// to stay inside the relay's per-client rate limit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func (e *env) buy(from *devchain.Account, qty int64) {
	e.t.Helper()
	e.chain.MustTransact(from, e.chain.Demo, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(qty), devchain.USDC(100)), nil)
}

func TestReadMethods(t *testing.T) {
	e := newEnv(t)
	var info protocol.ChainInfo
	e.result(protocol.MethodChainInfo, []any{}, &info)
	if info.ChainID != 1337 || !strings.EqualFold(info.Factory, e.chain.Factory.Hex()) {
		t.Fatalf("chain info %+v", info)
	}
	var evs []protocol.EventInfo
	e.result(protocol.MethodEvents, []any{}, &evs)
	if len(evs) != 1 || !strings.EqualFold(evs[0].Address, e.chain.Demo.Hex()) || len(evs[0].Tiers) != 2 || evs[0].Tiers[1].Name != "VIP balcony" {
		t.Fatalf("events %+v", evs)
	}
	var ev protocol.EventInfo
	e.result(protocol.MethodEvent, []any{e.chain.Demo.Hex()}, &ev)
	if ev.Name != evs[0].Name || len(ev.Splits) != 4 {
		t.Fatalf("event %+v", ev)
	}

	fan := e.chain.Accounts[6]
	e.buy(fan, 2)
	var mine []protocol.TicketInfo
	waitFor(t, "the purchase to be indexed", func() bool {
		e.result(protocol.MethodTicketsByOwner, []any{fan.Address.Hex()}, &mine)
		return len(mine) == 2
	})
	e.chain.MustTransact(fan, e.chain.Demo, devchain.Ticket.PackList(big.NewInt(1), devchain.USDC(50)), nil)
	var listings []protocol.TicketInfo
	waitFor(t, "the listing", func() bool {
		e.result(protocol.MethodListings, []any{e.chain.Demo.Hex()}, &listings)
		return len(listings) == 1 && listings[0].ListingPrice == devchain.USDC(50).String()
	})

	// The door's snapshot of owners, the next forwarder nonce, and what a permit needs.
	var snap protocol.EventTickets
	e.result(protocol.MethodEventTickets, []any{e.chain.Demo.Hex()}, &snap)
	if len(snap.Tickets) != 2 || snap.Cursor.Block == 0 || !strings.EqualFold(snap.Tickets[0].Owner, fan.Address.Hex()) {
		t.Fatalf("event tickets %+v", snap)
	}
	var nonce string
	e.result(protocol.MethodForwarderNonce, []any{fan.Address.Hex()}, &nonce)
	if nonce != "0" {
		t.Fatalf("forwarder nonce %q", nonce)
	}
	var permit protocol.PermitInfo
	e.result(protocol.MethodPermitInfo, []any{e.chain.USD.Hex(), fan.Address.Hex()}, &permit)
	if permit.Name != "Test USD" || permit.Version != "1" || permit.Decimals != 6 || permit.Symbol != "tUSD" || permit.Nonce != "0" {
		t.Fatalf("permit info %+v", permit)
	}

	// Bad params get clear JSON-RPC errors.
	for _, tc := range []struct {
		method string
		params any
		want   string
	}{
		{protocol.MethodEvent, []any{"0x1234"}, "20-byte hex address"},
		{protocol.MethodEvent, []any{common.HexToAddress("0xdead").Hex()}, "no Stagepass event"},
		{protocol.MethodTicketsByOwner, []any{}, "takes 1 params"},
		{protocol.MethodTicketsByOwner, map[string]any{"owner": fan.Address.Hex()}, "params array"},
		{protocol.MethodListings, []any{42}, "hex address"},
		{protocol.MethodSendRawTransaction, []any{"0x1234"}, "not a signed transaction"},
		{protocol.MethodPermitInfo, []any{e.chain.Factory.Hex(), fan.Address.Hex()}, "not a currency of any Stagepass event"},
		{protocol.MethodEventTickets, []any{fan.Address.Hex()}, "no Stagepass event"},
	} {
		r := e.call(tc.method, tc.params)
		if r.Error == nil || r.Error.Code != -32602 || !strings.Contains(r.Error.Message, tc.want) {
			t.Errorf("%s %v: got %+v, want invalid params saying %q", tc.method, tc.params, r.Error, tc.want)
		}
	}
}

func TestSendRawTransaction(t *testing.T) {
	e := newEnv(t)
	fan := e.chain.Accounts[7]
	sign := func(to common.Address, data []byte) string {
		nonce, err := e.chain.Client.PendingNonceAt(context.Background(), fan.Address)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := types.SignNewTx(fan.Key, types.LatestSignerForChainID(e.chain.ChainID), &types.DynamicFeeTx{
			ChainID: e.chain.ChainID, Nonce: nonce, GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(100 * params.GWei),
			Gas: 400_000, To: &to, Data: data,
		})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := tx.MarshalBinary()
		return fmt.Sprintf("0x%x", raw)
	}
	r := e.call(protocol.MethodSendRawTransaction, []any{sign(common.HexToAddress("0xdead"), nil)})
	if r.Error == nil || !strings.Contains(r.Error.Message, "only sends transactions to Stagepass contracts") {
		t.Fatalf("transaction to a stranger: %+v", r.Error)
	}
	var hash string
	e.result(protocol.MethodSendRawTransaction, []any{sign(e.chain.Demo, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(100)))}, &hash)
	waitFor(t, "the self-paid purchase", func() bool {
		var mine []protocol.TicketInfo
		e.result(protocol.MethodTicketsByOwner, []any{fan.Address.Hex()}, &mine)
		return len(mine) == 1
	})
}

// wsClient is a minimal JSON-RPC websocket client.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	id   int
}

func (e *env) dial() *wsClient {
	e.t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+e.relay.Addr()+"/ws", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return &wsClient{t: e.t, conn: conn}
}

type wsMessage = wsMessageOf[protocol.Activity]

type wsMessageOf[T any] struct {
	ID     *int            `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Params struct {
		Subscription string `json:"subscription"`
		Result       T      `json:"result"`
	} `json:"params"`
}

// subscribeRequest follows a forward request's status.
func (c *wsClient) subscribeRequest(id string) (string, []protocol.RequestStatus) {
	c.t.Helper()
	c.id++
	if err := c.conn.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": protocol.MethodSubscribe, "params": []any{protocol.TopicRequest, map[string]any{"id": id}}}); err != nil {
		c.t.Fatal(err)
	}
	var early []protocol.RequestStatus
	for {
		m := c.readRaw(5 * time.Second)
		if m.Method == protocol.MethodSubscription {
			early = append(early, m.Params.Result)
			continue
		}
		if m.Error != nil {
			c.t.Fatalf("subscribe request: %d %s", m.Error.Code, m.Error.Message)
		}
		var sid string
		_ = json.Unmarshal(m.Result, &sid)
		return sid, early
	}
}

func (c *wsClient) readRaw(timeout time.Duration) wsMessageOf[protocol.RequestStatus] {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	var m wsMessageOf[protocol.RequestStatus]
	if err := c.conn.ReadJSON(&m); err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

// subscribe sends sp_subscribe and returns the subscription id, collecting any pushes that
// arrive before the answer into the returned slice.
func (c *wsClient) subscribe(topic string, params any) (string, []protocol.Activity) {
	c.t.Helper()
	c.id++
	if err := c.conn.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": protocol.MethodSubscribe, "params": []any{topic, params}}); err != nil {
		c.t.Fatal(err)
	}
	var early []protocol.Activity
	for {
		m := c.read(5 * time.Second)
		if m.Method == protocol.MethodSubscription {
			early = append(early, m.Params.Result)
			continue
		}
		if m.Error != nil {
			c.t.Fatalf("subscribe %s: %d %s", topic, m.Error.Code, m.Error.Message)
		}
		var id string
		_ = json.Unmarshal(m.Result, &id)
		return id, early
	}
}

func (c *wsClient) read(timeout time.Duration) wsMessage {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	var m wsMessage
	if err := c.conn.ReadJSON(&m); err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

// pushes reads pushes until `n` have arrived.
func (c *wsClient) pushes(n int) []protocol.Activity {
	c.t.Helper()
	var out []protocol.Activity
	for len(out) < n {
		m := c.read(10 * time.Second)
		if m.Method == protocol.MethodSubscription {
			out = append(out, m.Params.Result)
		}
	}
	return out
}

func kinds(acts []protocol.Activity) string {
	var k []string
	for _, a := range acts {
		k = append(k, a.Kind)
	}
	return strings.Join(k, ",")
}

func TestSubscriptionsAndResume(t *testing.T) {
	e := newEnv(t)
	fan := e.chain.Accounts[8]
	c := e.dial()
	if _, early := c.subscribe(protocol.TopicTickets, map[string]any{"owner": fan.Address.Hex()}); len(early) != 0 {
		t.Fatalf("pushes before anything happened: %+v", early)
	}
	e.buy(fan, 1)
	got := c.pushes(2) // the mint's transfer and the purchase
	if kinds(got) != "transfer,purchased" || got[0].TokenID != "1" || !strings.EqualFold(got[0].To, fan.Address.Hex()) {
		t.Fatalf("pushes %+v", got)
	}
	last := got[1].Cursor

	// The wallet goes away; meanwhile the fan buys again and lists a ticket.
	c.conn.Close()
	e.buy(fan, 1)
	e.chain.MustTransact(fan, e.chain.Demo, devchain.Ticket.PackList(big.NewInt(1), devchain.USDC(50)), nil)
	waitFor(t, "the listing to be indexed", func() bool {
		var l []protocol.TicketInfo
		e.result(protocol.MethodListings, []any{e.chain.Demo.Hex()}, &l)
		return len(l) == 1
	})
	// It reconnects from its last cursor and gets exactly what it missed, in order.
	c2 := e.dial()
	_, early := c2.subscribe(protocol.TopicTickets, map[string]any{"owner": fan.Address.Hex(), "from": last})
	missed := append(early, c2.pushes(3-len(early))...)
	if kinds(missed) != "transfer,purchased,listed" || missed[0].TokenID != "2" {
		t.Fatalf("missed %+v", missed)
	}
	// The event's feed carries everyone's activity: a second fan's purchase shows there.
	c3 := e.dial()
	c3.subscribe(protocol.TopicEvent, map[string]any{"event": e.chain.Demo.Hex()})
	other := e.chain.Accounts[9]
	e.buy(other, 1)
	evFeed := c3.pushes(2)
	if kinds(evFeed) != "transfer,purchased" || !strings.EqualFold(evFeed[1].To, other.Address.Hex()) {
		t.Fatalf("event feed %+v", evFeed)
	}
	// A topic with bad params is refused clearly.
	c2.id++
	_ = c2.conn.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": c2.id, "method": protocol.MethodSubscribe, "params": []any{protocol.TopicEvent, map[string]any{"event": "0x00000000000000000000000000000000000000aa"}}})
	for {
		m := c2.read(5 * time.Second)
		if m.ID != nil && *m.ID == c2.id {
			if m.Error == nil || !strings.Contains(m.Error.Message, "no Stagepass event") {
				t.Fatalf("subscribe to a stranger: %+v", m)
			}
			break
		}
	}
}
