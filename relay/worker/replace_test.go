//go:build !js

package main

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// TestWorkerReplacesStuck: two requests whose transactions (consecutive hot-wallet nonces)
// are priced under geth's base fee by a fee ceiling (MAX_FEE_CAP) stay sent; with a higher
// ceiling that is still under the base fee each is replaced once under the same nonce
// (sp_requestStatus shows the new transaction) and still stays sent; with the ceiling
// lifted both are replaced again and mined, each exactly once, by the third transaction.
// geth --dev's base fee never falls below 7 wei (it drops by base fee / 8 per empty block,
// in integers), so fee caps of 1 and 5 wei cannot be mined.
func TestWorkerReplacesStuck(t *testing.T) {
	bin := wranglerPath(t)
	p := newPlatform(t)
	fan2 := p.c.Accounts[4]
	p.c.FundUSD(p.event, devchain.USDC(1000), fan2)
	ec, err := ethclient.Dial(p.url)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	ctx := context.Background()
	hotNonce := func() uint64 {
		t.Helper()
		n, err := ec.NonceAt(ctx, p.relayer, nil)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	startNonce := hotNonce()
	dir, persist := buildWorker(t), t.TempDir()
	run := func(maxFeeCap string) *wrangler {
		vars := maps.Clone(p.vars)
		vars["STUCK_SECONDS"] = "2"
		if maxFeeCap != "" {
			vars["MAX_FEE_CAP"] = maxFeeCap
		}
		w, _, _ := startWrangler(t, bin, dir, persist, vars, "--test-scheduled")
		// Miniflare does not keep the Outbox's alarm across a restart: the cron trigger,
		// the sender's backstop, runs it here, every 2 s as long as this run lasts.
		stop := make(chan struct{})
		t.Cleanup(func() { close(stop) })
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-w.done:
					return
				case <-time.After(2 * time.Second):
				}
				if resp, err := http.Get(w.url + "/__scheduled"); err == nil {
					resp.Body.Close()
				}
			}
		}()
		return w
	}
	// statuses waits until every request satisfies ok, and returns their statuses.
	statuses := func(w *wrangler, ids []string, within time.Duration, what string, ok func(protocol.RequestStatus) bool) []protocol.RequestStatus {
		t.Helper()
		for deadline := time.Now().Add(within); ; time.Sleep(500 * time.Millisecond) {
			var out []protocol.RequestStatus
			all := true
			for _, id := range ids {
				st := w.status(t, id)
				out = append(out, st)
				all = all && ok(st)
			}
			if all {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s: %+v\n%s", what, within, out, w.logs)
			}
		}
	}

	// 1 wei: both sent, neither minable; at the ceiling nothing is re-priced.
	w := run("1")
	var ids []string
	for _, fan := range []*devchain.Account{p.fan, fan2} {
		req, sig, id := p.buy(t, fan, p.event)
		if _, rerr := w.call(t, protocol.MethodSendForward, submission(req, sig)); rerr != nil {
			t.Fatalf("sp_sendForward: %+v", rerr)
		}
		ids = append(ids, id)
	}
	sent := func(st protocol.RequestStatus) bool { return st.State == "sent" && st.TxHash != "" }
	first := statuses(w, ids, 60*time.Second, "sent", sent)
	time.Sleep(8 * time.Second) // four stuck periods, several sender passes
	for i, st := range statuses(w, ids, 0, "still sent at 1 wei", sent) {
		if st.TxHash != first[i].TxHash {
			t.Fatalf("request %d re-priced above the 1 wei ceiling: %s, then %s", i, first[i].TxHash, st.TxHash)
		}
	}
	if n := hotNonce(); n != startNonce {
		t.Fatalf("the hot wallet's nonce moved from %d to %d at a 1 wei fee cap", startNonce, n)
	}
	w.stop()

	// 5 wei, still under the base fee: each is replaced (a new transaction shows) and stays sent.
	w = run("5")
	second := statuses(w, ids, 60*time.Second, "replaced at 5 wei", func(st protocol.RequestStatus) bool {
		return sent(st) && st.TxHash != first[0].TxHash && st.TxHash != first[1].TxHash
	})
	if n := hotNonce(); n != startNonce {
		t.Fatalf("the hot wallet's nonce moved from %d to %d at a 5 wei fee cap", startNonce, n)
	}
	w.stop()

	// No ceiling: both replaced again and mined.
	w = run("")
	mined := statuses(w, ids, 90*time.Second, "mined", func(st protocol.RequestStatus) bool {
		return st.State == "mined" || st.State == "failed"
	})
	for i, st := range mined {
		if st.State != "mined" {
			t.Fatalf("request %d: %+v", i, st)
		}
		if st.TxHash == first[i].TxHash || st.TxHash == second[i].TxHash {
			t.Fatalf("request %d mined by %s, a transaction priced under the base fee (%s, %s)", i, st.TxHash, first[i].TxHash, second[i].TxHash)
		}
		tx, _, err := ec.TransactionByHash(ctx, common.HexToHash(st.TxHash))
		if err != nil {
			t.Fatalf("request %d's transaction %s: %v", i, st.TxHash, err)
		}
		if tx.Nonce() != startNonce+uint64(i) || tx.GasFeeCap().Int64() <= 5 {
			t.Fatalf("request %d mined with nonce %d (want %d), fee cap %s", i, tx.Nonce(), startNonce+uint64(i), tx.GasFeeCap())
		}
		for _, h := range []string{first[i].TxHash, second[i].TxHash} {
			if _, err := ec.TransactionReceipt(ctx, common.HexToHash(h)); !errors.Is(err, ethereum.NotFound) {
				t.Fatalf("request %d's replaced transaction %s: receipt error %v", i, h, err)
			}
		}
	}
	if n := hotNonce(); n != startNonce+2 {
		t.Fatalf("the hot wallet sent %d transactions, want 2", n-startNonce)
	}
	for _, fan := range []*devchain.Account{p.fan, fan2} {
		if n := p.forwarderNonce(t, fan.Address); n != 1 {
			t.Fatalf("forwarder nonce of %s: %d, want 1 (executed exactly once)", fan.Address, n)
		}
	}
}
