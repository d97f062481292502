//go:build !js

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/gorilla/websocket"

	"github.com/stagepass/stagepass/contracts/bindings/forwarder"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/devchain/gethtest"
	"github.com/stagepass/stagepass/relay/index"
	"github.com/stagepass/stagepass/relay/internal/syncbuf"
	"github.com/stagepass/stagepass/relay/payments/webhook"
	"github.com/stagepass/stagepass/relay/permit"
	"github.com/stagepass/stagepass/relay/watcher"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// wranglerPath finds wrangler: $STAGEPASS_WRANGLER (build.sh test sets it), then this
// directory's node_modules (npm ci here). Without it the test is skipped, except under CI.
func wranglerPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv("STAGEPASS_WRANGLER")
	if p == "" {
		p, _ = filepath.Abs(filepath.Join("node_modules", ".bin", "wrangler"))
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("wrangler not found at %s: ./build.sh test installs it (npm ci in relay/worker)", p)
		}
		t.Skipf("wrangler not found at %s; ./build.sh test installs it (or npm ci in relay/worker)", p)
	}
	return p
}

// buildWorker builds the worker as build.sh does, into a directory of its own with
// relay.mjs and wrangler.toml, and returns that directory.
func buildWorker(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "migrations"), 0o755); err != nil {
		t.Fatal(err)
	}
	migrations, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append([]string{"relay.mjs", "wrangler.toml"}, migrations...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(env []string, args ...string) {
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run(nil, "run", "github.com/syumai/workers/cmd/workers-assets-gen", "-mode=go", "-o", filepath.Join(dir, "build"))
	run([]string{"GOOS=js", "GOARCH=wasm"}, "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "build", "app.wasm"), ".")
	return dir
}

// wrangler is one `wrangler dev` of the worker.
type wrangler struct {
	url  string
	cmd  *exec.Cmd
	logs *syncbuf.Buffer
	done chan struct{}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startWrangler runs `wrangler dev` on dir's build with state persisted in persist, and
// waits for /healthz to answer. It returns the time from the start to that answer, and how
// long the answering request itself took (the worker's first request: the wasm module is
// compiled and the first Go instance started).
func startWrangler(t testing.TB, bin, dir, persist string, vars map[string]string, flags ...string) (w *wrangler, ready, first time.Duration) {
	t.Helper()
	// The index's tables (D1, local): applied once, remembered in the state.
	migrate := exec.Command(bin, "d1", "migrations", "apply", "stagepass-index", "--local",
		"--config", filepath.Join(dir, "wrangler.toml"), "--persist-to", persist)
	migrate.Dir = dir
	migrate.Env = append(os.Environ(), "WRANGLER_SEND_METRICS=false", "CI=true", "NO_COLOR=1", "WRANGLER_LOG_PATH="+filepath.Join(dir, "logs"))
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("wrangler d1 migrations apply: %v\n%s", err, out)
	}
	port := freePort(t)
	args := []string{"dev", "--config", filepath.Join(dir, "wrangler.toml"), "--ip", "127.0.0.1",
		"--port", fmt.Sprint(port), "--inspector-port", fmt.Sprint(freePort(t)), "--persist-to", persist, "--log-level", "info"}
	for k, v := range vars {
		args = append(args, "--var", k+":"+v)
	}
	args = append(args, flags...)
	w = &wrangler{url: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &syncbuf.Buffer{}, done: make(chan struct{})}
	w.cmd = exec.Command(bin, args...)
	w.cmd.Dir = dir
	w.cmd.Env = append(os.Environ(), "WRANGLER_SEND_METRICS=false", "CI=true", "NO_COLOR=1", "WRANGLER_LOG_PATH="+filepath.Join(dir, "logs"))
	w.cmd.Stdout, w.cmd.Stderr = w.logs, w.logs
	// Its own process group: wrangler runs node, which runs workerd; stop ends them all.
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start wrangler: %v", err)
	}
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(w.stop)
	deadline := time.Now().Add(90 * time.Second)
	for {
		sent := time.Now()
		resp, err := http.Get(w.url + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w, time.Since(start), time.Since(sent)
			}
			t.Fatalf("healthz: HTTP %d: %s\n%s", resp.StatusCode, body, w.logs)
		}
		select {
		case <-w.done:
			t.Fatalf("wrangler dev exited:\n%s", w.logs)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("wrangler dev did not answer within 90 s:\n%s", w.logs)
		}
	}
}

func (w *wrangler) stop() {
	if w.cmd.Process == nil {
		return
	}
	select {
	case <-w.done:
		return
	default:
	}
	_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
		<-w.done
	}
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// call POSTs one JSON-RPC call to /rpc.
func (w *wrangler) call(t testing.TB, method string, params ...any) (json.RawMessage, *rpcError) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	resp, err := http.Post(w.url+"/rpc", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: HTTP %d %s\n%s", method, resp.StatusCode, raw, w.logs)
	}
	return out.Result, out.Error
}

func (w *wrangler) status(t testing.TB, id string) protocol.RequestStatus {
	t.Helper()
	res, rerr := w.call(t, protocol.MethodRequestStatus, id)
	if rerr != nil {
		t.Fatalf("sp_requestStatus: %+v", rerr)
	}
	var st protocol.RequestStatus
	if err := json.Unmarshal(res, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// platform is geth --dev with the contracts, an event, a fan holding TestUSD and the
// relayer: development account 0 of the well-known mnemonic, funded with coin.
type platform struct {
	c       *devchain.Chain
	url     string
	event   common.Address
	fan     *devchain.Account
	vars    map[string]string
	relayer common.Address
}

func newPlatform(t *testing.T) *platform {
	t.Helper()
	url := gethtest.StartGeth(t)
	c, err := devchain.Dial(context.Background(), url, devchain.Options{Accounts: 5, Seed: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ev, err := c.CreateEvent(c.Accounts[0], c.DefaultConfig(c.Accounts[0].Address, c.Accounts[1].Address, c.Accounts[2].Address))
	if err != nil {
		t.Fatal(err)
	}
	fan := c.Accounts[3]
	c.FundUSD(ev, devchain.USDC(1000), fan)
	dev, err := keys.DevAccount(0) // the well-known development key, never a real one
	if err != nil {
		t.Fatal(err)
	}
	relayer := common.Address(dev.Address())
	c.MustTransact(c.Accounts[0], relayer, nil, new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18)))
	return &platform{c: c, url: url, event: ev, fan: fan, relayer: relayer, vars: map[string]string{
		"RPC_URL": url, "CHAIN_ID": c.ChainID.String(), "FORWARDER": c.Forwarder.Hex(), "FACTORY": c.Factory.Hex(),
		"RELAYER_KEY": hex.EncodeToString(dev.Bytes()), "ALLOWED_ORIGINS": "https://stagepass.example",
	}}
}

func (p *platform) forwarderNonce(t testing.TB, a common.Address) uint64 {
	t.Helper()
	fwd := forwarder.NewStagepassForwarder()
	out, err := p.c.Call(p.c.Forwarder, fwd.PackNonces(a))
	if err != nil {
		t.Fatal(err)
	}
	n, err := fwd.UnpackNonces(out)
	if err != nil {
		t.Fatal(err)
	}
	return n.Uint64()
}

// buy signs a gasless purchase of one ticket of event as fan.
func (p *platform) buy(t testing.TB, fan *devchain.Account, event common.Address) (*protocol.ForwardRequest, []byte, string) {
	t.Helper()
	req, sig := p.c.SignForward(fan, event, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(50)),
		1_500_000, uint64(time.Now().Add(time.Hour).Unix()))
	digest, err := req.Digest(protocol.ForwarderDomain(p.c.ChainID.Uint64(), ethcrypto.Address(p.c.Forwarder)))
	if err != nil {
		t.Fatal(err)
	}
	return req, sig, common.Hash(digest).Hex()
}

func submission(req *protocol.ForwardRequest, sig []byte) protocol.ForwardSubmission {
	return protocol.ForwardSubmission{Request: req.JSON(), Signature: "0x" + hex.EncodeToString(sig)}
}

// TestWorkerAgainstGeth runs the Workers build under `wrangler dev` (workerd) against
// geth --dev: a gasless purchase submitted to /rpc is mined, a websocket subscriber of the
// Fanout Durable Object receives its status pushes, the replayed request is not executed
// again and a new request reusing its nonce is refused, of two fans racing for the last
// ticket one is mined and the other fails with SoldOut, and the outbox survives a restart
// of wrangler dev.
func TestWorkerAgainstGeth(t *testing.T) {
	bin := wranglerPath(t)
	p := newPlatform(t)
	dir := buildWorker(t)
	persist := t.TempDir()
	w, _, _ := startWrangler(t, bin, dir, persist, p.vars)

	var h map[string]any
	resp, err := http.Get(w.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h["relayer"] != strings.ToLower(p.relayer.Hex()) || uint64(h["chainId"].(float64)) != p.c.ChainID.Uint64() {
		t.Fatalf("healthz %v", h)
	}

	req, sig, id := p.buy(t, p.fan, p.event)

	// The sender's route is the Outbox's alone.
	if resp, err := http.Post(w.url+"/__pump", "application/json", nil); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/__pump from outside: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// A page from another origin may not open a socket.
	wsURL := strings.Replace(w.url, "http", "ws", 1) + "/ws"
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://elsewhere.example"}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %+v", err, resp)
	}

	// Subscribe before submitting: the id is the request's EIP-712 digest.
	ws, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://stagepass.example"}})
	if err != nil {
		t.Fatalf("websocket: %v\n%s", err, w.logs)
	}
	defer ws.Close()
	if err := ws.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "sp_subscribe", "params": []any{"request", map[string]string{"id": id}}}); err != nil {
		t.Fatal(err)
	}
	var subReply struct {
		Result string    `json:"result"`
		Error  *rpcError `json:"error"`
	}
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	if err := ws.ReadJSON(&subReply); err != nil || subReply.Result == "" {
		t.Fatalf("subscribe: %+v %v", subReply, err)
	}
	// The fan's tickets, from the index: its activities are pushed as the follower finds them.
	if err := ws.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "sp_subscribe", "params": []any{"tickets", map[string]string{"owner": p.fan.Address.Hex()}}}); err != nil {
		t.Fatal(err)
	}
	var ticketsSub struct {
		ID     int       `json:"id"`
		Result string    `json:"result"`
		Error  *rpcError `json:"error"`
	}
	if err := ws.ReadJSON(&ticketsSub); err != nil || ticketsSub.ID != 2 || ticketsSub.Result == "" {
		t.Fatalf("tickets topic: %+v %v\n%s", ticketsSub, err, w.logs)
	}
	// A topic's params are checked as on the native relay: an address that is no event is refused.
	if err := ws.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": 4, "method": "sp_subscribe", "params": []any{"event", map[string]string{"event": p.fan.Address.Hex()}}}); err != nil {
		t.Fatal(err)
	}
	var refused struct {
		ID    int       `json:"id"`
		Error *rpcError `json:"error"`
	}
	if err := ws.ReadJSON(&refused); err != nil || refused.ID != 4 || refused.Error == nil || refused.Error.Code != -32602 || !strings.Contains(refused.Error.Message, "no Stagepass event") {
		t.Fatalf("event topic of a non-event: %+v %v", refused, err)
	}
	// Calls go over the same socket, to the Go worker, as on the native relay.
	if err := ws.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": 3, "method": protocol.MethodForwarderNonce, "params": []any{p.fan.Address.Hex()}}); err != nil {
		t.Fatal(err)
	}
	var nonce struct {
		ID     int       `json:"id"`
		Result string    `json:"result"`
		Error  *rpcError `json:"error"`
	}
	if err := ws.ReadJSON(&nonce); err != nil || nonce.ID != 3 || nonce.Result != "0" {
		t.Fatalf("sp_forwarderNonce over /ws: %+v %v\n%s", nonce, err, w.logs)
	}
	pushes := make(chan protocol.RequestStatus, 16)
	activities := make(chan protocol.Activity, 64)
	go func() {
		defer close(pushes)
		for {
			var n struct {
				Method string `json:"method"`
				Params struct {
					Subscription string          `json:"subscription"`
					Result       json.RawMessage `json:"result"`
				} `json:"params"`
			}
			_ = ws.SetReadDeadline(time.Now().Add(60 * time.Second))
			if err := ws.ReadJSON(&n); err != nil {
				return
			}
			if n.Method != protocol.MethodSubscription {
				continue
			}
			switch n.Params.Subscription {
			case subReply.Result:
				var st protocol.RequestStatus
				_ = json.Unmarshal(n.Params.Result, &st)
				pushes <- st
			case ticketsSub.Result:
				var a protocol.Activity
				_ = json.Unmarshal(n.Params.Result, &a)
				activities <- a
			}
		}
	}()

	// A malformed submission is refused with a clear error and nothing is stored.
	bad := submission(req, sig)
	bad.Signature = "0x1234"
	if _, rerr := w.call(t, protocol.MethodSendForward, bad); rerr == nil || rerr.Code != -32602 {
		t.Fatalf("short signature: %+v", rerr)
	}

	res, rerr := w.call(t, protocol.MethodSendForward, submission(req, sig))
	if rerr != nil {
		t.Fatalf("sp_sendForward: %+v\n%s", rerr, w.logs)
	}
	var st protocol.RequestStatus
	if err := json.Unmarshal(res, &st); err != nil || st.ID != id || st.State != "accepted" {
		t.Fatalf("sp_sendForward answered %s (%v), want %s accepted", res, err, id)
	}

	// The pushes: accepted, sent, mined, in that order.
	var seen []string
	var mined protocol.RequestStatus
	timeout := time.After(60 * time.Second)
	for mined.State == "" {
		select {
		case s, ok := <-pushes:
			if !ok {
				t.Fatalf("websocket closed after %v\n%s", seen, w.logs)
			}
			seen = append(seen, s.State)
			if s.State == "failed" {
				t.Fatalf("request failed: %+v", s)
			}
			if s.State == "mined" {
				mined = s
			}
		case <-timeout:
			t.Fatalf("no mined push within 60 s; pushes %v, status %+v\n%s", seen, w.status(t, id), w.logs)
		}
	}
	if strings.Join(seen, ",") != "accepted,sent,mined" || mined.TxHash == "" || mined.Block == 0 {
		t.Fatalf("pushes %v, mined %+v", seen, mined)
	}
	if n := p.forwarderNonce(t, p.fan.Address); n != 1 {
		t.Fatalf("forwarder nonce of the fan %d after one request", n)
	}
	rcpt, err := p.c.Client.TransactionReceipt(context.Background(), common.HexToHash(mined.TxHash))
	if err != nil || rcpt.Status != 1 || rcpt.BlockNumber.Uint64() != mined.Block {
		t.Fatalf("receipt of %s: %+v %v", mined.TxHash, rcpt, err)
	}

	// The index: the subscriber of the fan's tickets gets the mint and the purchase, and the
	// read calls answer what the native relay's index answers for the same chain.
	var kinds []string
	var firstPush protocol.Cursor
	for timeout := time.After(30 * time.Second); len(kinds) < 2; {
		select {
		case a := <-activities:
			if len(kinds) == 0 {
				firstPush = a.Cursor
			}
			if a.TxHash != mined.TxHash || a.Block != mined.Block || a.To != strings.ToLower(p.fan.Address.Hex()) {
				t.Fatalf("tickets push %+v, want the purchase %s to the fan", a, mined.TxHash)
			}
			kinds = append(kinds, a.Kind)
		case <-timeout:
			t.Fatalf("tickets pushes %v within 30 s\n%s", kinds, w.logs)
		}
	}
	if strings.Join(kinds, ",") != "transfer,purchased" {
		t.Fatalf("tickets pushes %v, want transfer,purchased", kinds)
	}
	p.waitIndexed(t, w, []common.Address{p.event}, []common.Address{p.fan.Address})
	if res, rerr := w.call(t, protocol.MethodTicketsByOwner, p.fan.Address.Hex()); rerr != nil || !strings.Contains(string(res), `"tokenId":"1"`) {
		t.Fatalf("sp_ticketsByOwner: %s %+v", res, rerr)
	}
	if _, rerr := w.call(t, protocol.MethodEvent, p.fan.Address.Hex()); rerr == nil || rerr.Code != -32602 || !strings.Contains(rerr.Message, "no Stagepass event at") {
		t.Fatalf("sp_event of a non-event: %+v", rerr)
	}
	if _, rerr := w.call(t, protocol.MethodListings, "0x12"); rerr == nil || rerr.Code != -32602 {
		t.Fatalf("sp_listings of a short address: %+v", rerr)
	}
	// Permit details of the event's currency, as the native relay reads them; nothing else.
	info, _ := p.nativeIndex(t).Event(p.event)
	currency := common.HexToAddress(info.Currency)
	permitWant, err := permit.Read(context.Background(), p.c.Client, currency, p.fan.Address)
	if err != nil {
		t.Fatal(err)
	}
	if res, rerr := w.call(t, protocol.MethodPermitInfo, currency.Hex(), p.fan.Address.Hex()); rerr != nil || string(res) != mustJSON(permitWant) {
		t.Fatalf("sp_permitInfo: %s %+v, want %s", res, rerr, mustJSON(permitWant))
	}
	if _, rerr := w.call(t, protocol.MethodPermitInfo, p.event.Hex(), p.fan.Address.Hex()); rerr == nil || rerr.Code != -32602 || !strings.Contains(rerr.Message, "not a currency") {
		t.Fatalf("sp_permitInfo of a non-currency: %+v", rerr)
	}
	// No bridge configured (no MAIN_RPC): the withdrawal calls say so, as the native relay
	// without one; sp_chainInfo shows no gateway (the site then shows no Main chain panel).
	for _, params := range [][]any{{p.fan.Address.Hex()}, {0}} {
		method := protocol.MethodWithdrawals
		if params[0] == 0 {
			method = protocol.MethodWithdrawalProof
		}
		if _, rerr := w.call(t, method, params...); rerr == nil || rerr.Code != -32602 || !strings.Contains(rerr.Message, "no bridge to withdraw through") {
			t.Fatalf("%s without a bridge: %+v", method, rerr)
		}
	}
	if _, rerr := w.call(t, protocol.MethodDeposits, p.fan.Address.Hex()); rerr == nil || rerr.Code != -32602 || !strings.Contains(rerr.Message, "no bridge to deposit through") {
		t.Fatalf("sp_deposits without a bridge: %+v", rerr)
	}
	if res, _ := w.call(t, protocol.MethodChainInfo); strings.Contains(string(res), "gateway") || strings.Contains(string(res), "mainChainId") {
		t.Fatalf("sp_chainInfo without a bridge: %s", res)
	}

	// Replays: the same signed request answers with its record and is not executed again;
	// a new request signed with the used nonce is refused.
	res, rerr = w.call(t, protocol.MethodSendForward, submission(req, sig))
	if rerr != nil || !strings.Contains(string(res), `"state":"mined"`) || !strings.Contains(string(res), mined.TxHash) {
		t.Fatalf("replay: %s %+v", res, rerr)
	}
	again := *req
	again.Deadline++
	againSig := signAs(t, p, &again)
	if _, rerr := w.call(t, protocol.MethodSendForward, submission(&again, againSig)); rerr == nil || rerr.Code != -32602 || !strings.Contains(rerr.Message, "wrong forwarder nonce") {
		t.Fatalf("a request reusing nonce 0: %+v", rerr)
	}
	if res, rerr := w.call(t, protocol.MethodForwarderNonce, p.fan.Address.Hex()); rerr != nil || string(res) != `"1"` {
		t.Fatalf("sp_forwarderNonce %s %+v", res, rerr)
	}
	time.Sleep(3 * time.Second) // a few blocks: nothing else may land
	if n := p.forwarderNonce(t, p.fan.Address); n != 1 {
		t.Fatalf("forwarder nonce of the fan %d after the replays", n)
	}

	// Two fans race for the last ticket: both requests pass the checks, one is mined, the
	// other fails with the event's own reason.
	soldOut := p.c.DefaultConfig(p.c.Accounts[0].Address, p.c.Accounts[1].Address, p.c.Accounts[2].Address)
	soldOut.Tiers[0].Supply = 1
	last, err := p.c.CreateEvent(p.c.Accounts[0], soldOut)
	if err != nil {
		t.Fatal(err)
	}
	rival := p.c.Accounts[4]
	p.c.FundUSD(last, devchain.USDC(1000), p.fan, rival)
	var ids []string
	for _, fan := range []*devchain.Account{p.fan, rival} {
		req, sig, id := p.buy(t, fan, last)
		if _, rerr := w.call(t, protocol.MethodSendForward, submission(req, sig)); rerr != nil {
			t.Fatalf("race: %+v", rerr)
		}
		ids = append(ids, id)
	}
	final := map[string]protocol.RequestStatus{}
	for deadline := time.Now().Add(60 * time.Second); len(final) < 2; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("race unfinished after 60 s: %v\n%s", final, w.logs)
		}
		for _, id := range ids {
			if st := w.status(t, id); st.State == "mined" || st.State == "failed" {
				final[st.State] = st
			}
		}
	}
	if f := final["failed"]; final["mined"].ID == "" || !strings.Contains(f.Reason, "SoldOut(") {
		t.Fatalf("race: %+v", final)
	}
	t.Logf("the race's loser: %s", final["failed"].Reason)
	events, owners := []common.Address{p.event, last}, []common.Address{p.fan.Address, rival.Address}
	p.waitIndexed(t, w, events, owners)

	// Restart wrangler dev on the same state: the outbox remembers the requests, the index
	// its events, tickets and activities.
	nonceBefore := p.forwarderNonce(t, p.fan.Address)
	ws.Close()
	w.stop()
	w2, _, _ := startWrangler(t, bin, dir, persist, p.vars)
	if diff := p.compareIndex(t, w2, events, owners); diff != "" {
		t.Fatalf("the index after restart: %s", diff)
	}
	// A wallet that resumes from a cursor gets what it missed from there, in order.
	from := firstPush
	want := p.nativeIndex(t).Since(index.OwnerKey(p.fan.Address), from)
	if len(want) == 0 {
		t.Fatalf("nothing after %+v to resume", from)
	}
	if got := w2.resume(t, p.fan.Address, from, len(want)); !equalJSON(got, want) {
		t.Fatalf("resumed from %+v: %s, want %s", from, mustJSON(got), mustJSON(want))
	}
	if st := w2.status(t, id); st.State != "mined" || st.TxHash != mined.TxHash || st.Block != mined.Block {
		t.Fatalf("after restart: %+v, want %+v", st, mined)
	}
	if f := final["failed"]; w2.status(t, f.ID).Reason != f.Reason {
		t.Fatalf("after restart: %+v, want %+v", w2.status(t, f.ID), f)
	}
	res, rerr = w2.call(t, protocol.MethodSendForward, submission(req, sig))
	if rerr != nil || !strings.Contains(string(res), `"state":"mined"`) {
		t.Fatalf("replay after restart: %s %+v", res, rerr)
	}
	if _, rerr := w2.call(t, protocol.MethodRequestStatus, common.Hash{1}.Hex()); rerr == nil || rerr.Code != -32602 {
		t.Fatalf("unknown request: %+v", rerr)
	}
	time.Sleep(3 * time.Second) // a few blocks: nothing may be sent again
	if n := p.forwarderNonce(t, p.fan.Address); n != nonceBefore {
		t.Fatalf("forwarder nonce of the fan %d after the restart, %d before", n, nonceBefore)
	}
}

// TestWorkerRetention: finished requests are dropped after RETENTION_SECONDS by the
// Outbox's alarm, and the dropped request, submitted again, meets its used nonce.
func TestWorkerRetention(t *testing.T) {
	bin := wranglerPath(t)
	p := newPlatform(t)
	p.vars["RETENTION_SECONDS"] = "3"
	w, _, _ := startWrangler(t, bin, buildWorker(t), t.TempDir(), p.vars)
	req, sig, id := p.buy(t, p.fan, p.event)
	if _, rerr := w.call(t, protocol.MethodSendForward, submission(req, sig)); rerr != nil {
		t.Fatalf("sp_sendForward: %+v", rerr)
	}
	mined := false
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not dropped within 60 s (mined: %v)\n%s", mined, w.logs)
		}
		res, rerr := w.call(t, protocol.MethodRequestStatus, id)
		if rerr != nil {
			if !mined || rerr.Code != -32602 || !strings.Contains(rerr.Message, "unknown request") {
				t.Fatalf("status (mined: %v): %+v", mined, rerr)
			}
			break
		}
		mined = mined || strings.Contains(string(res), `"state":"mined"`)
	}
	if _, rerr := w.call(t, protocol.MethodSendForward, submission(req, sig)); rerr == nil || !strings.Contains(rerr.Message, "wrong forwarder nonce") {
		t.Fatalf("the dropped request submitted again: %+v", rerr)
	}
	if n := p.forwarderNonce(t, p.fan.Address); n != 1 {
		t.Fatalf("forwarder nonce of the fan %d", n)
	}
}

// TestWorkerReorg: the worker's index follows go-ethereum's simulated chain (through a
// JSON-RPC proxy, so that the test can replace blocks), run by the cron trigger. When a
// longer side chain replaces the block of a purchase, the worker retracts its activities —
// a subscriber gets each again with "removed":true, newest first — and then agrees with
// the native relay's index of the new chain.
func TestWorkerReorg(t *testing.T) {
	bin := wranglerPath(t)
	c, err := devchain.New(devchain.Options{Accounts: 5, Seed: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	fan := c.Accounts[4]
	ev, err := c.CreateEvent(c.Accounts[0], c.DefaultConfig(c.Accounts[0].Address, c.Accounts[1].Address, c.Accounts[2].Address))
	if err != nil {
		t.Fatal(err)
	}
	c.FundUSD(ev, devchain.USDC(1000), fan)
	dev, err := keys.DevAccount(0)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"RPC_URL": serveChain(t, c), "CHAIN_ID": c.ChainID.String(), "FORWARDER": c.Forwarder.Hex(), "FACTORY": c.Factory.Hex(),
		"RELAYER_KEY": hex.EncodeToString(dev.Bytes()),
	}
	w, _, _ := startWrangler(t, bin, buildWorker(t), t.TempDir(), vars, "--test-scheduled")
	p := &platform{c: c, event: ev, fan: fan}
	scheduled := func() error { // the cron trigger: a sender pass and a follower pass
		resp, err := http.Get(w.url + "/__scheduled")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/__scheduled: HTTP %d %s\n%s", resp.StatusCode, body, w.logs)
		}
		return nil
	}
	follow := func() {
		t.Helper()
		if err := scheduled(); err != nil {
			t.Fatal(err)
		}
	}
	events, owners := []common.Address{ev}, []common.Address{fan.Address}
	follow()
	if diff := p.compareIndex(t, w, events, owners); diff != "" {
		t.Fatal(diff)
	}
	parent, err := c.Client.HeaderByNumber(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(w.url, "http", "ws", 1)+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "sp_subscribe", "params": []any{"tickets", map[string]string{"owner": fan.Address.Hex()}}}); err != nil {
		t.Fatal(err)
	}
	next := func() string { // the next push, as "kind" or "kind removed"
		t.Helper()
		for {
			var m struct {
				Method string `json:"method"`
				Params struct {
					Result protocol.Activity `json:"result"`
				} `json:"params"`
			}
			_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
			if err := ws.ReadJSON(&m); err != nil {
				t.Fatalf("tickets push: %v\n%s", err, w.logs)
			}
			if m.Method == protocol.MethodSubscription {
				if m.Params.Result.Removed {
					return m.Params.Result.Kind + " removed"
				}
				return m.Params.Result.Kind
			}
		}
	}
	c.MustTransact(fan, ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(50)), nil)
	// Two passes at once (the cron trigger's and an alarm's): one writes, the other's
	// transaction fails on the stored cursor; nothing is pushed twice.
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- scheduled() }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := next() + "," + next(); got != "transfer,purchased" {
		t.Fatalf("pushes %s", got)
	}
	if diff := p.compareIndex(t, w, events, owners); diff != "" {
		t.Fatal(diff)
	}

	// A longer side chain from before the purchase replaces it.
	if err := c.Backend.Fork(parent.Hash()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.Backend.Commit()
	}
	follow()
	if got := next() + "," + next(); got != "purchased removed,transfer removed" {
		t.Fatalf("pushes after the reorganisation %s", got)
	}
	// The next passes read the new chain (where the purchase may be mined again): the
	// worker ends agreeing with the native index.
	for range 2 {
		c.Backend.Commit()
		follow()
	}
	if diff := p.compareIndex(t, w, events, owners); diff != "" {
		t.Fatalf("after the reorganisation: %s", diff)
	}

	// A later pass changes a ticket indexed by an earlier one: the fan lists it. No cron
	// trigger now: while a socket follows the event topic, the Fanout's alarm runs the
	// follower every FOLLOW_SECONDS, and the listing is pushed.
	c.MustTransact(fan, ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(50)), nil)
	follow()
	mine := p.nativeIndex(t).TicketsByOwner(fan.Address)
	id, _ := new(big.Int).SetString(mine[len(mine)-1].TokenID, 10)
	evws, _, err := websocket.DefaultDialer.Dial(strings.Replace(w.url, "http", "ws", 1)+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer evws.Close()
	if err := evws.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "sp_subscribe", "params": []any{"event", map[string]string{"event": ev.Hex()}}}); err != nil {
		t.Fatal(err)
	}
	var evSub struct {
		Result string    `json:"result"`
		Error  *rpcError `json:"error"`
	}
	_ = evws.SetReadDeadline(time.Now().Add(20 * time.Second))
	if err := evws.ReadJSON(&evSub); err != nil || evSub.Result == "" {
		t.Fatalf("event topic: %+v %v", evSub, err)
	}
	c.MustTransact(fan, ev, devchain.Ticket.PackList(id, devchain.USDC(55)), nil)
	var listed struct {
		Params struct {
			Subscription string            `json:"subscription"`
			Result       protocol.Activity `json:"result"`
		} `json:"params"`
	}
	if err := evws.ReadJSON(&listed); err != nil || listed.Params.Subscription != evSub.Result ||
		listed.Params.Result.Kind != protocol.KindListed || listed.Params.Result.TokenID != id.String() || listed.Params.Result.Price != "55000000" {
		t.Fatalf("event push: %+v %v\n%s", listed, err, w.logs)
	}
	if diff := p.compareIndex(t, w, events, owners); diff != "" {
		t.Fatalf("after a listing: %s", diff)
	}
	if res, rerr := w.call(t, protocol.MethodListings, ev.Hex()); rerr != nil || !strings.Contains(string(res), `"listingPrice":"55000000"`) {
		t.Fatalf("sp_listings: %s %+v", res, rerr)
	}
}

// serveChain serves the simulated chain's JSON-RPC over HTTP for the worker.
func serveChain(t testing.TB, c *devchain.Chain) string {
	t.Helper()
	// simulated.Client hides its *ethclient.Client (an exported field of an unexported
	// type), whose in-process *rpc.Client this serves.
	ec, ok := reflect.ValueOf(c.Client).FieldByName("Client").Interface().(*ethclient.Client)
	if !ok {
		t.Fatal("the simulated chain's client is not an ethclient")
	}
	rc := ec.Client()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     json.RawMessage   `json:"id"`
			Method string            `json:"method"`
			Params []json.RawMessage `json:"params"`
		}
		reply := map[string]any{"jsonrpc": "2.0"}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			reply["error"] = map[string]any{"code": -32700, "message": err.Error()}
		} else {
			reply["id"] = req.ID
			args := make([]any, len(req.Params))
			for i, p := range req.Params {
				args[i] = p
			}
			var result json.RawMessage
			if err := rc.CallContext(r.Context(), &result, req.Method, args...); err != nil {
				e := map[string]any{"code": -32000, "message": err.Error()}
				var de rpc.DataError
				if errors.As(err, &de) {
					e["data"] = de.ErrorData()
				}
				reply["error"] = e
			} else {
				reply["result"] = result
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(reply)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// nativeIndex is the native relay's index of the chain (relay/index, relay/watcher), up to
// the head.
func (p *platform) nativeIndex(t testing.TB) *index.Index {
	t.Helper()
	ix := index.New(p.c.Client, p.c.Factory, nil)
	if err := watcher.New(watcher.Config{Client: p.c.Client, Sink: ix, Factory: p.c.Factory}).Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ix
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func equalJSON(a, b any) bool { return mustJSON(a) == mustJSON(b) }

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// compareIndex asks the worker the index's read calls and says how its answers differ from
// the native relay's (relay/server answers these from the index as below), "" if they do not.
func (p *platform) compareIndex(t testing.TB, w *wrangler, events, owners []common.Address) string {
	t.Helper()
	ix := p.nativeIndex(t)
	type call struct {
		method string
		param  []any
		want   any
	}
	calls := []call{{protocol.MethodEvents, nil, nonNil(ix.Events())}}
	for _, ev := range events {
		info, _ := ix.Event(ev)
		tickets, cursor := ix.EventTickets(ev)
		calls = append(calls,
			call{protocol.MethodEvent, []any{ev.Hex()}, info},
			call{protocol.MethodListings, []any{ev.Hex()}, nonNil(ix.Listings(ev))},
			call{protocol.MethodEventTickets, []any{ev.Hex()}, protocol.EventTickets{Event: strings.ToLower(ev.Hex()), Cursor: cursor, Tickets: nonNil(tickets)}})
	}
	for _, o := range owners {
		calls = append(calls, call{protocol.MethodTicketsByOwner, []any{o.Hex()}, nonNil(ix.TicketsByOwner(o))})
	}
	for _, c := range calls {
		res, rerr := w.call(t, c.method, c.param...)
		if rerr != nil {
			return fmt.Sprintf("%s %v: %+v", c.method, c.param, rerr)
		}
		var buf bytes.Buffer
		_ = json.Compact(&buf, res)
		if want := mustJSON(c.want); buf.String() != want {
			return fmt.Sprintf("%s %v: the worker answers %s, the native index %s", c.method, c.param, buf.String(), want)
		}
	}
	return ""
}

// waitIndexed waits until the worker's index answers as the native relay's (its follower
// runs after each sender pass).
func (p *platform) waitIndexed(t testing.TB, w *wrangler, events, owners []common.Address) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		diff := p.compareIndex(t, w, events, owners)
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker's index after 30 s: %s\n%s", diff, w.logs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// resume subscribes to owner's tickets from a cursor on a new socket and returns the first
// n activities pushed.
func (w *wrangler) resume(t testing.TB, owner common.Address, from protocol.Cursor, n int) []protocol.Activity {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(w.url, "http", "ws", 1)+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "sp_subscribe", "params": []any{"tickets", map[string]any{"owner": owner.Hex(), "from": from}}}); err != nil {
		t.Fatal(err)
	}
	var out []protocol.Activity
	for len(out) < n {
		var m struct {
			Error  *rpcError `json:"error"`
			Params struct {
				Result protocol.Activity `json:"result"`
			} `json:"params"`
			Method string `json:"method"`
		}
		_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		if err := ws.ReadJSON(&m); err != nil || m.Error != nil {
			t.Fatalf("resume: %v %+v after %d of %d", err, m.Error, len(out), n)
		}
		if m.Method == protocol.MethodSubscription {
			out = append(out, m.Params.Result)
		}
	}
	return out
}

func signAs(t testing.TB, p *platform, req *protocol.ForwardRequest) []byte {
	t.Helper()
	key, err := ethcrypto.PrivateKeyFromBytes(p.fan.Key.D.FillBytes(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	digest, err := req.Digest(protocol.ForwarderDomain(p.c.ChainID.Uint64(), ethcrypto.Address(p.c.Forwarder)))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := key.Sign(digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// BenchmarkWorker measures the Workers build under wrangler dev (workerd) on this machine:
//
//   - cold: wrangler dev started on fresh state until the first /healthz answer (ns/op),
//     and that first request alone (first-request-ms: the wasm module compiled, the first
//     Go instance started); with app.wasm's size raw and gzip -9 (what Cloudflare's size
//     limit counts);
//
//   - instance: a warm request that needs no subrequest (GET /rpc, refused with 405), so
//     the cost of the fresh Go program every request gets;
//
//   - healthz: a warm /healthz, which adds two subrequests (the chain's head block, the
//     Outbox's queue);
//
//   - events: a warm sp_events, one query of the index (D1, empty here).
//
//     go test ./relay/worker -run '^$' -bench Worker -benchtime 3x
func BenchmarkWorker(b *testing.B) {
	bin := wranglerPath(b)
	rpcURL := gethtest.StartGeth(b)
	dir := buildWorker(b)
	raw, err := os.ReadFile(filepath.Join(dir, "build", "app.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	dev, err := keys.DevAccount(0)
	if err != nil {
		b.Fatal(err)
	}
	vars := map[string]string{
		"RPC_URL": rpcURL, "CHAIN_ID": "1337", "FORWARDER": common.Address{1}.Hex(), "FACTORY": common.Address{2}.Hex(),
		"RELAYER_KEY": hex.EncodeToString(dev.Bytes()),
	}
	b.Run("cold", func(b *testing.B) {
		var firsts time.Duration
		for b.Loop() {
			w, _, first := startWrangler(b, bin, dir, b.TempDir(), vars)
			firsts += first
			w.stop()
		}
		b.ReportMetric(float64(firsts.Milliseconds())/float64(b.N), "first-request-ms")
		b.ReportMetric(float64(len(raw))/1e6, "wasm-MB")
		b.ReportMetric(float64(gz.Len())/1e6, "wasm-gzip-MB")
	})
	w, _, _ := startWrangler(b, bin, dir, b.TempDir(), vars)
	get := func(b *testing.B, path string, want int) {
		resp, err := http.Get(w.url + path)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			b.Fatalf("GET %s: HTTP %d, want %d\n%s", path, resp.StatusCode, want, w.logs)
		}
	}
	b.Run("instance", func(b *testing.B) {
		for b.Loop() {
			get(b, "/rpc", http.StatusMethodNotAllowed)
		}
	})
	b.Run("healthz", func(b *testing.B) {
		for b.Loop() {
			get(b, "/healthz", http.StatusOK)
		}
	})
	b.Run("events", func(b *testing.B) { // sp_events: one D1 query
		for b.Loop() {
			if _, rerr := w.call(b, protocol.MethodEvents); rerr != nil {
				b.Fatalf("sp_events: %+v", rerr)
			}
		}
	})
}

// TestWorkerWebhooks: the card processor's webhook on the worker, verified with the native
// relay's verifier. A signed payment_intent.succeeded is stored once in D1 and pushes
// "paid" to a subscriber of the payment topic (by processor id and by payment id); the same
// event delivered again pushes nothing; a bad signature is 400 and pushes nothing.
func TestWorkerWebhooks(t *testing.T) {
	bin := wranglerPath(t)
	p := newPlatform(t)
	const secret = "whsec_worker_test"
	p.vars["WEBHOOK_SECRET"] = secret
	w, _, _ := startWrangler(t, bin, buildWorker(t), t.TempDir(), p.vars)

	const pi = "pi_worker_webhook_1"
	pid := protocol.Hex32(protocol.PaymentIDOf(pi))
	type push struct{ sub, state, id string }
	pushes := make(chan push, 16)
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(w.url, "http", "ws", 1)+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	subs := map[string]string{}
	for i, id := range []string{pi, pid} {
		if err := ws.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": i + 1, "method": "sp_subscribe", "params": []any{protocol.TopicPayment, map[string]string{"id": id}}}); err != nil {
			t.Fatal(err)
		}
		var r struct {
			Result string    `json:"result"`
			Error  *rpcError `json:"error"`
		}
		if err := ws.ReadJSON(&r); err != nil || r.Error != nil {
			t.Fatalf("subscribe to payment %s: %v %+v", id, err, r.Error)
		}
		subs[r.Result] = id
	}
	if err := ws.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": 9, "method": "sp_subscribe", "params": []any{protocol.TopicPayment, map[string]string{"id": "ch_1"}}}); err != nil {
		t.Fatal(err)
	}
	var bad struct {
		Error *rpcError `json:"error"`
	}
	if err := ws.ReadJSON(&bad); err != nil || bad.Error == nil || bad.Error.Code != -32602 {
		t.Fatalf("a payment topic for ch_1: %v %+v", err, bad.Error)
	}
	go func() {
		for {
			var m struct {
				Params struct {
					Subscription string                   `json:"subscription"`
					Result       protocol.PaymentProgress `json:"result"`
				} `json:"params"`
			}
			if err := ws.ReadJSON(&m); err != nil {
				close(pushes)
				return
			}
			pushes <- push{m.Params.Subscription, m.Params.Result.State, m.Params.Result.ID}
		}
	}()

	post := func(body []byte, key string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, w.url+"/webhooks/processor", bytes.NewReader(body))
		req.Header.Set(webhook.Header, webhook.Signature(body, key, time.Now()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 == 5 || (key == secret && resp.StatusCode != http.StatusNoContent) {
			t.Fatalf("webhook: HTTP %d %s\n%s", resp.StatusCode, msg, w.logs)
		}
		return resp.StatusCode
	}
	body, err := webhook.Payload("evt_worker_1", webhook.PaymentSucceeded, time.Now().Unix(),
		webhook.Object{ID: pi, Object: "payment_intent", Amount: 9000, Currency: "usd", Status: "succeeded"})
	if err != nil {
		t.Fatal(err)
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case p := <-pushes:
			t.Fatalf("%s pushed %+v", what, p)
		case <-time.After(time.Second):
		}
	}

	if code := post(body, "whsec_forged"); code != http.StatusBadRequest {
		t.Fatalf("forged webhook: HTTP %d, want 400", code)
	}
	quiet("a forged webhook")

	if code := post(body, secret); code != http.StatusNoContent {
		t.Fatalf("signed webhook: HTTP %d", code)
	}
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case p, ok := <-pushes:
			if !ok {
				t.Fatal("the socket closed")
			}
			if p.state != protocol.PaymentPaid || p.id != pi || subs[p.sub] == "" {
				t.Fatalf("push %+v", p)
			}
			got[subs[p.sub]] = true
		case <-time.After(15 * time.Second):
			t.Fatalf("no paid push on both subscriptions (%v)\n%s", got, w.logs)
		}
	}
	if code := post(body, secret); code != http.StatusNoContent {
		t.Fatalf("the same event again: HTTP %d", code)
	}
	quiet("a redelivered event")

	// A later subscriber gets the latest push first.
	late, _, err := websocket.DefaultDialer.Dial(strings.Replace(w.url, "http", "ws", 1)+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if err := late.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "sp_subscribe", "params": []any{protocol.TopicPayment, map[string]string{"id": "0x" + strings.ToUpper(pid[2:])}}}); err != nil {
		t.Fatal(err)
	}
	_ = late.SetReadDeadline(time.Now().Add(15 * time.Second))
	var ack struct {
		Error *rpcError `json:"error"`
	}
	var first struct {
		Params struct {
			Result protocol.PaymentProgress `json:"result"`
		} `json:"params"`
	}
	if err := late.ReadJSON(&ack); err != nil || ack.Error != nil {
		t.Fatalf("a later subscriber: %v %+v", err, ack.Error)
	}
	if err := late.ReadJSON(&first); err != nil || first.Params.Result.State != protocol.PaymentPaid || first.Params.Result.PaymentID != pid {
		t.Fatalf("a later subscriber's first push: %+v %v", first.Params.Result, err)
	}
}
