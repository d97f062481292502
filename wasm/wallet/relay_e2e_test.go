package wallet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/internal/fakerelay"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/tickets"
	"github.com/stagepass/stagepass/wasm/vault"
)

// startRealRelay builds `stagepass` from this tree (a binary left in bin/ may be stale) and
// runs `stagepass dev` on a free port.
func startRealRelay(t *testing.T, flags ...string) string {
	t.Helper()
	root, _ := filepath.Abs("../..")
	bin := filepath.Join(t.TempDir(), "stagepass")
	build := exec.Command("go", "build", "-o", bin, "./relay/cmd/stagepass")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build stagepass: %v\n%s", err, out)
	}
	addr := devchain.MustFreeAddr(t)
	cmd := exec.Command(bin, append([]string{"dev", "--addr", addr, "--data", t.TempDir(), "--block-time", "500ms", "--log-level", "warn"}, flags...)...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("stagepass logs:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stagepass dev did not come up:\n%s", logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// gapProxy stands between the wallet and the real relay and answers the two methods the
// relay does not serve yet (protocol.MethodForwarderNonce, MethodPermitInfo). The nonce
// comes from the relay itself: a probe request with an impossible nonce, signed with the
// development key, is refused with "the next for this signer is N". Test-only glue.
func gapProxy(t *testing.T, relay string, keysByAddr map[string]*ethcrypto.PrivateKey, chain protocol.ChainInfo, event string) string {
	up := websocket.Upgrader{}
	nextRe := regexp.MustCompile(`the next for this signer is (\d+)`)
	rpc := func(method string, params []any) (json.RawMessage, string) {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
		resp, err := http.Post("http://"+relay+"/rpc", "application/json", bytes.NewReader(b))
		if err != nil {
			return nil, err.Error()
		}
		defer resp.Body.Close()
		var m struct {
			Result json.RawMessage
			Error  *struct{ Message string }
		}
		json.NewDecoder(resp.Body).Decode(&m)
		if m.Error != nil {
			return nil, m.Error.Message
		}
		return m.Result, ""
	}
	nonce := func(addr string) (any, error) {
		k := keysByAddr[strings.ToLower(addr)]
		if k == nil {
			return nil, fmt.Errorf("no key for %s", addr)
		}
		data, _ := (&actions.Call{Sig: actions.SigCancelListing, TokenID: big.NewInt(1)}).Encode()
		req := &protocol.ForwardRequest{From: k.Address(), To: ethcrypto.MustParseAddress(event), Value: new(big.Int),
			Gas: big.NewInt(100_000), Nonce: big.NewInt(1 << 40), Deadline: uint64(time.Now().Add(time.Hour).Unix()), Data: data}
		d, _ := req.Digest(protocol.ForwarderDomain(chain.ChainID, ethcrypto.MustParseAddress(chain.Forwarder)))
		sig, _ := k.Sign(d[:])
		sig[64] += 27
		_, msg := rpc(protocol.MethodSendForward, []any{protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}})
		m := nextRe.FindStringSubmatch(msg)
		if m == nil {
			return nil, fmt.Errorf("nonce probe: %s", msg)
		}
		return m[1], nil
	}
	// Once the relay serves a method itself, the proxy steps aside for it.
	missing := map[string]bool{}
	for _, m := range []string{protocol.MethodForwarderNonce, protocol.MethodPermitInfo} {
		_, msg := rpc(m, []any{"0x0000000000000000000000000000000000000001", "0x0000000000000000000000000000000000000001"})
		missing[m] = strings.Contains(msg, "does not exist") || strings.Contains(msg, "not found") || strings.Contains(msg, "unknown method")
	}
	t.Logf("answered by the test proxy: %v", missing)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer client.Close()
		upstream, _, err := websocket.DefaultDialer.Dial("ws://"+relay+"/ws", nil)
		if err != nil {
			return
		}
		defer upstream.Close()
		toClient := make(chan []byte, 256)
		go func() {
			for {
				_, b, err := upstream.ReadMessage()
				if err != nil {
					client.Close()
					return
				}
				toClient <- b
			}
		}()
		go func() {
			for b := range toClient {
				client.WriteMessage(websocket.TextMessage, b)
			}
		}()
		for {
			_, b, err := client.ReadMessage()
			if err != nil {
				return
			}
			var req struct {
				ID     json.RawMessage
				Method string
				Params []string
			}
			json.Unmarshal(b, &req)
			var res any
			var ferr error
			if !missing[req.Method] {
				req.Method = "" // the relay answers it
			}
			switch req.Method {
			case protocol.MethodForwarderNonce:
				res, ferr = nonce(req.Params[0])
			case protocol.MethodPermitInfo: // a fresh dev chain: TestUSD, no permit used yet
				res = protocol.PermitInfo{Token: req.Params[0], Name: "Test USD", Version: "1", Symbol: "TUSD", Decimals: 6, Nonce: "0"}
			default:
				upstream.WriteMessage(websocket.TextMessage, b)
				continue
			}
			m := map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": res}
			if ferr != nil {
				m = map[string]any{"jsonrpc": "2.0", "id": req.ID, "error": map[string]any{"code": -32000, "message": ferr.Error()}}
			}
			out, _ := json.Marshal(m)
			toClient <- out
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

// TestAgainstRealRelay: the wallet against `stagepass dev` (the real relay, contracts and
// chain): a gasless purchase with a permit, a listing and a gift through sp_sendForward,
// the ticket list following the real pushes, and the door verifying with the real owner
// data (the relay refuses the check-in: the demo event's doors open in 30 days).
func TestAgainstRealRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts stagepass dev")
	}
	addr := startRealRelay(t)
	m, _ := keys.FromMnemonic(keys.DevMnemonic, "")
	byAddr := map[string]*ethcrypto.PrivateKey{}
	for i := uint32(0); i < 10; i++ {
		k, _ := m.Account(i)
		byAddr[strings.ToLower(k.Address().Hex())] = k
	}
	var chain protocol.ChainInfo
	var evs []protocol.EventInfo
	for method, out := range map[string]any{protocol.MethodChainInfo: &chain, protocol.MethodEvents: &evs} {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": []any{}})
		resp, err := http.Post("http://"+addr+"/rpc", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var r struct{ Result json.RawMessage }
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		json.Unmarshal(r.Result, out)
	}
	if len(evs) == 0 {
		t.Fatal("no demo event")
	}
	event := strings.ToLower(evs[0].Address)
	url := gapProxy(t, addr, byAddr, chain, event)

	s := New(&vault.MemoryStore{}, fastKDF{})
	s.Dial, s.Cache = fakerelay.Dial, &tickets.MemoryStore{}
	t.Cleanup(s.disconnect)
	call(t, s, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	call(t, s, "addAccount", `{}`)
	gate := call(t, s, "addAccount", `{}`)["address"].(string) // account 2: the demo event's gate
	call(t, s, "connect", `{"url":"`+url+`"}`)
	before := len(ticketStates(t, s, acct0))

	wait := func(what string, cond func(map[string]string) bool) map[string]string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := ticketStates(t, s, acct0)
			if cond(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; tickets %v", what, st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	approve := func(method, params string) {
		t.Helper()
		p := call(t, s, method, params)
		res := call(t, s, "approve", `{"id":"`+p["id"].(string)+`"}`)
		if st, _ := res["request"].(map[string]any); st == nil || st["id"] == "" {
			t.Fatalf("%s approve: %v", method, res)
		}
	}

	approve("prepareBuy", `{"account":"`+acct0+`","event":"`+event+`","tier":0,"quantity":2}`)
	st := wait("two new tickets", func(st map[string]string) bool { return len(st) == before+2 })
	var ids []string
	for id, state := range st {
		if state != "valid" {
			t.Fatalf("ticket %s is %s", id, state)
		}
		ids = append(ids, id)
	}
	listID, giftID := ids[0], ids[1]
	approve("prepareList", `{"account":"`+acct0+`","event":"`+event+`","tokenId":"`+listID+`","price":"50000000"}`)
	approve("prepareGift", `{"account":"`+acct0+`","event":"`+event+`","tokenId":"`+giftID+`","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}`)
	wait("listed and gifted", func(st map[string]string) bool { _, still := st[giftID]; return st[listID] == "listed" && !still })

	// The door: no sp_eventTickets on this relay, so the scanner replays the event topic.
	call(t, s, "scannerOpen", `{"account":"`+gate+`","event":"`+event+`"}`)
	deadline := time.Now().Add(20 * time.Second)
	for call(t, s, "scannerStatus", `{}`)["tickets"].(float64) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("scanner never learned the owners: %v", call(t, s, "scannerStatus", `{}`))
		}
		time.Sleep(100 * time.Millisecond)
	}
	pass := func(id string) string {
		return call(t, s, "makePass", `{"account":"`+acct0+`","chainId":`+fmt.Sprint(chain.ChainID)+`,"event":"`+event+`","tokenId":"`+id+`"}`)["payload"].(string)
	}
	if v := call(t, s, "scan", `{"payload":"`+pass(giftID)+`"}`); v["code"] != "PASS_NOT_OWNER" {
		t.Fatalf("gifted ticket's old holder: %v", v)
	}
	v := call(t, s, "scan", `{"payload":"`+pass(listID)+`"}`)
	if v["code"] != "CHECK_IN_REFUSED" || !strings.Contains(fmt.Sprint(v["detail"]), "DoorsNotOpen") {
		t.Fatalf("check-in before doors open: %v", v)
	}
	t.Logf("bought %s and %s; door verdict %v", listID, giftID, v)
	if v := call(t, s, "scan", `{"payload":"`+pass(listID)+`"}`); v["code"] == "PASS_REPLAYED" {
		t.Fatalf("a refused check-in must not count as admitted: %v", v)
	}
}
