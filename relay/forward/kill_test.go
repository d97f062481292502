package forward

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/stagepass/stagepass/contracts/devchain"
)

// killChild is the environment variable that makes this test binary the relay process
// TestKill9 kills; its value is the JSON childConfig.
const killChild = "STAGEPASS_FORWARD_KILL_CHILD"

type childConfig struct {
	RPC       string
	Outbox    string
	Key       string
	ChainID   *big.Int
	Forwarder common.Address
	Factory   common.Address
	Requests  []signedJSON
}

type signedJSON struct {
	Request json.RawMessage
	Sig     []byte
}

// TestKill9: a separate relay process (this test binary, on the chain through JSON-RPC
// over HTTP with go-ethereum's ethclient) acknowledges N forward requests and is killed
// with SIGKILL at once. A new Forwarder on its outbox lands all N exactly once.
func TestKill9(t *testing.T) {
	if os.Getenv(killChild) != "" {
		t.Skip("this is the child's test")
	}
	h := newHarness(t, nil)
	var fans []*devchain.Account
	for range 3 {
		fans = append(fans, h.fan())
	}
	var reqs []signedRequest
	for _, fan := range fans {
		reqs = append(reqs, h.buyWithPermit(fan, 0, 100), h.buy(fan, 1))
	}

	// The simulated backend hides its ethclient behind an unexported wrapper; the wrapper's
	// one field is it.
	url := serveRPC(t, reflect.ValueOf(h.c.Client).Field(0).Interface().(*ethclient.Client).Client())
	cfg := childConfig{
		RPC: url, Outbox: h.path, Key: hex.EncodeToString(crypto.FromECDSA(h.hot.Key)),
		ChainID: h.c.ChainID, Forwarder: h.c.Forwarder, Factory: h.c.Factory,
	}
	for _, r := range reqs {
		raw, err := json.Marshal(r.req)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Requests = append(cfg.Requests, signedJSON{Request: raw, Sig: r.sig})
	}
	env, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.v")
	cmd.Env = append(os.Environ(), killChild+"="+string(env))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var ids []common.Hash
	lines := bufio.NewScanner(out)
	for len(ids) < len(reqs) && lines.Scan() {
		if id, ok := strings.CutPrefix(lines.Text(), "ACK "); ok {
			ids = append(ids, common.HexToHash(id))
		}
	}
	// Killed the moment the last acknowledgement is read: no drain, no goodbye.
	cmd.Process.Kill()
	cmd.Wait()
	if len(ids) != len(reqs) {
		t.Fatalf("child acknowledged %d of %d requests", len(ids), len(reqs))
	}
	t.Logf("killed after %d acknowledgements with %d transactions in the pool", len(ids), h.hotNonce(true))

	f := h.open(h.config())
	h.mineUntil("all mined", h.allIn(f, ids, Mined))
	for _, fan := range fans {
		if n := h.tickets(fan.Address); n != 2 {
			t.Fatalf("fan has %d tickets, want 2", n)
		}
	}
	if n := h.hotNonce(false); n != uint64(len(reqs)) {
		t.Fatalf("hot wallet sent %d transactions for %d requests", n, len(reqs))
	}
}

// TestKill9Child is the relay process of TestKill9; it does nothing on its own.
func TestKill9Child(t *testing.T) {
	env := os.Getenv(killChild)
	if env == "" {
		t.Skip("run by TestKill9")
	}
	var cfg childConfig
	if err := json.Unmarshal([]byte(env), &cfg); err != nil {
		t.Fatal(err)
	}
	client, err := ethclient.Dial(cfg.RPC)
	if err != nil {
		t.Fatal(err)
	}
	key, err := crypto.HexToECDSA(cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(context.Background(), Config{
		Client: client, ChainID: cfg.ChainID, Forwarder: cfg.Forwarder, Factory: cfg.Factory,
		Key: key, Path: cfg.Outbox, PollInterval: 10 * time.Millisecond,
		Limits: Limits{Rate: 1000, Burst: 1000}, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cfg.Requests {
		var s signedRequest
		if err := json.Unmarshal(r.Request, &s.req); err != nil {
			t.Fatal(err)
		}
		rc, err := f.Submit(context.Background(), s.req, r.Sig)
		if err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("ACK " + rc.ID.Hex() + "\n")
	}
	time.Sleep(time.Minute) // until killed
}

// serveRPC exposes an in-process node's JSON-RPC over HTTP, one call per request (all
// ethclient sends for what the forwarder does), so another process can use the chain.
func serveRPC(t *testing.T, rc *rpc.Client) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var call struct {
			ID     json.RawMessage
			Method string
			Params []json.RawMessage
		}
		if err := json.NewDecoder(r.Body).Decode(&call); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		args := make([]any, len(call.Params))
		for i, p := range call.Params {
			args[i] = p
		}
		var result json.RawMessage
		resp := map[string]any{"jsonrpc": "2.0", "id": call.ID}
		if err := rc.CallContext(r.Context(), &result, call.Method, args...); err != nil {
			e := map[string]any{"code": -32000, "message": err.Error()}
			var re rpc.Error
			if errors.As(err, &re) {
				e["code"] = re.ErrorCode()
			}
			var de rpc.DataError
			if errors.As(err, &de) {
				e["data"] = de.ErrorData()
			}
			resp["error"] = e
		} else {
			if result == nil {
				result = json.RawMessage("null")
			}
			resp["result"] = result
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
