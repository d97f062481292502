//go:build js && wasm

package main

import (
	"strings"
	"syscall/js"
	"testing"
	"time"
)

// fakeRelayJS installs a WebSocket class that behaves like a relay for the methods the
// tickets view uses (Node 20 has no WebSocket; the page's browser does). It records what
// the wallet sent.
const fakeRelayJS = `
const sent = [];
class FakeWebSocket {
  constructor(url) {
    this.url = url;
    if (!url.startsWith('ws://relay.test/')) { setTimeout(() => { this.onerror && this.onerror({}); this.onclose && this.onclose({code: 1006}); }, 0); return; }
    setTimeout(() => this.onopen && this.onopen({}), 0);
  }
  send(s) {
    const m = JSON.parse(s); sent.push(m);
    const reply = (result) => setTimeout(() => this.onmessage({data: JSON.stringify({jsonrpc: '2.0', id: m.id, result})}), 0);
    if (m.method === 'sp_subscribe') {
      reply('0x1');
      setTimeout(() => this.onmessage({data: JSON.stringify({jsonrpc: '2.0', method: 'sp_subscription', params: {subscription: '0x1',
        result: {kind: 'transfer', event: '0x5fbdb2315678afecb367f032d93f642f64180aa3', tokenId: '4294967297',
          from: '0x0000000000000000000000000000000000000000', to: m.params[1].owner, txHash: '0x01', block: 7, logIndex: 0}}})}), 5);
    } else if (m.method === 'sp_event') {
      reply({address: m.params[0], name: 'Demo Night', tiers: [{name: 'Floor'}, {name: 'Balcony'}]});
    } else {
      setTimeout(() => this.onmessage({data: JSON.stringify({jsonrpc: '2.0', id: m.id, error: {code: -32601, message: 'no ' + m.method}})}), 0);
    }
  }
  close() { setTimeout(() => this.onclose && this.onclose({code: 1000}), 0); }
}
globalThis.WebSocket = FakeWebSocket;
const cache = new Map();
const events = [];
return {sent, events, cache: {load: async (k) => cache.has(k) ? cache.get(k) : null, save: async (k, v) => { cache.set(k, v); }},
  onEvent: (kind, data) => events.push([kind, data]), peek: (k) => cache.get(k)};
`

func TestTicketsOverBrowserWebSocket(t *testing.T) {
	env := js.Global().Get("Function").New(fakeRelayJS).Invoke()
	global := js.Global().Get("Object").New()
	api := register(global, "stagepass")
	opts := js.Global().Get("Object").New()
	opts.Set("cache", env.Get("cache"))
	opts.Set("onEvent", env.Get("onEvent"))
	if _, err := await(api.Call("init", opts)); err != nil {
		t.Fatal(err)
	}
	mustInvoke(t, api, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	if code := errorCode(t, api, "tickets", `{"account":"`+acct0+`"}`); code != "NOT_CONNECTED" {
		t.Fatalf("tickets before connect: %s", code)
	}
	mustInvoke(t, api, "connect", `{"url":"ws://relay.test/ws"}`)
	mustInvoke(t, api, "tickets", `{"account":"`+acct0+`"}`)

	deadline := time.Now().Add(5 * time.Second)
	var last js.Value
	for {
		evs := env.Get("events")
		for i := 0; i < evs.Length(); i++ {
			if e := evs.Index(i); e.Index(0).String() == "tickets" {
				last = e.Index(1)
			}
		}
		if last.Truthy() && last.Get("tickets").Length() == 1 && last.Get("events").Get("0x5fbdb2315678afecb367f032d93f642f64180aa3").Truthy() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tickets push with event details; events: %s", js.Global().Get("JSON").Call("stringify", env.Get("events")).String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	tk := last.Get("tickets").Index(0)
	if tk.Get("tier").Int() != 1 || tk.Get("state").String() != "valid" {
		t.Fatalf("ticket %s", js.Global().Get("JSON").Call("stringify", tk).String())
	}
	cached := env.Call("peek", "tickets:"+strings.ToLower(acct0))
	if !cached.Truthy() || !strings.Contains(cached.String(), "4294967297") {
		t.Fatalf("cache %v", cached)
	}
	sent := js.Global().Get("JSON").Call("stringify", env.Get("sent")).String()
	if !strings.Contains(sent, `"method":"sp_subscribe","params":["tickets",{"from":{"block":0,"logIndex":0},"owner":"`+strings.ToLower(acct0)+`"}]`) {
		t.Fatalf("subscribe frames: %s", sent)
	}
	// A relay that cannot be reached: connect succeeds (it keeps retrying), calls say OFFLINE
	// only when their time is up, and the cached tickets stay readable.
	mustInvoke(t, api, "connect", `{"url":"ws://unreachable.test/ws"}`)
	res := mustInvoke(t, api, "tickets", `{"account":"`+acct0+`"}`)
	if res.Get("connected").Bool() || res.Get("tickets").Length() != 1 {
		t.Fatalf("offline tickets %s", js.Global().Get("JSON").Call("stringify", res).String())
	}
	mustInvoke(t, api, "disconnect", `{}`)
}
