package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/wasm/vault"
	"github.com/stagepass/stagepass/wasm/wallet"
)

// TestBrowserGatewayWithdrawAndSouvenir: a `stagepass dev` of its own with its main chain
// (1 s blocks, so the chains' clocks stay near the page's; EXIT_DELAY 2 s). The fan's account
// deposits 30 TestUSD on the main chain and the validators credit 30 spUSD on the sidechain.
// In the page the "Main chain" panel shows the balance; the fan withdraws 12.5 (summary →
// approve → mined) and sees it go "Waiting for a checkpoint" → "Paid on the main chain".
// An event made to be over soon (from Go: account 1 creates it with account 2 as its gate,
// the fan's account buys a ticket, the gate checks it in) shows, once over, "Keep it as a
// souvenir on the main chain" on the ticket; the fan exits it and sees it kept there.
func TestBrowserGatewayWithdrawAndSouvenir(t *testing.T) {
	setup(t)
	url, mainRPC, root, g := devWithBridge(t, "--exit-delay", "2s")

	// The organiser and the door, from Go: an event over in ~45 s, a ticket for the fan.
	issuer := g.call("addAccount", `{}`)["address"].(string)
	gate := g.call("addAccount", `{}`)["address"].(string)
	ci := g.call("chainInfo", `{}`)
	now := time.Now().Unix()
	starts := now + 45
	cfg, _ := json.Marshal(map[string]any{"account": issuer, "config": map[string]any{
		"name": "Souvenir night", "venue": "Dock 7", "startsAt": starts, "doorsOpenAt": now, "resaleClosesAt": starts,
		"currency": ci["currency"], "maxPerBuyer": 4, "maxResaleMarkupBps": 1000, "sellerMarkupShareBps": 2500,
		"tiers":     []map[string]any{{"name": "Standing", "faceValue": "1000000", "supply": 10}},
		"splits":    []map[string]any{{"account": issuer, "bps": 10000, "role": 0}},
		"discounts": []map[string]any{}, "categoryQuotaBps": []int{10000, 10000, 10000, 10000, 10000},
		"gates": []string{gate},
	}})
	g.approve("prepareCreateEvent", string(cfg))
	var event string
	// Account 1 is also the demo event's organiser in `stagepass dev`: wait for this event by
	// name, not for the issuer's latest.
	g.wait("the event", func() bool {
		var evs []map[string]any
		g.into("issuerEvents", `{"issuer":"`+issuer+`"}`, &evs)
		for _, ev := range evs {
			if ev["name"] == "Souvenir night" {
				event = ev["address"].(string)
			}
		}
		return event != ""
	})
	g.call("tickets", `{"account":"`+devAccount0+`"}`)
	g.approve("prepareBuy", `{"account":"`+devAccount0+`","event":"`+event+`","tier":0,"quantity":1}`)
	var id string
	g.wait("the fan's ticket", func() bool {
		for _, x := range g.call("tickets", `{"account":"`+devAccount0+`"}`)["tickets"].([]any) {
			if m := x.(map[string]any); strings.EqualFold(m["event"].(string), event) {
				id = m["tokenId"].(string)
			}
		}
		return id != ""
	})

	g.wait("the deposit credited", func() bool {
		return g.call("bridgeBalance", `{"account":"`+devAccount0+`"}`)["balance"] == "30000000"
	})

	ctx, done := browser(t)
	defer done()
	step(t, ctx, "restore the dev wallet", 90*time.Second,
		chromedp.Navigate(url),
		waitFor(`document.body.dataset.view === 'onboard'`, 45*time.Second),
		restoreDev(true),
		waitFor(`document.body.dataset.view === 'app'`, 45*time.Second))
	step(t, ctx, "the main chain panel: 30 spUSD", 30*time.Second,
		waitFor(`!document.getElementById('mainchain').hidden && document.getElementById('bridge-balance').textContent === '30.00 spUSD'`, 25*time.Second))
	checkTouchTargets(t, ctx)
	audit(t, ctx, "main chain panel")

	// Withdraw 12.5 spUSD: refused above the balance on the wallet's word, then signed.
	if msg := refused(t, ctx, "withdraw 31: refused", "withdraw-amount", "31", "btn-withdraw", "withdraw-error"); !strings.Contains(msg, "more than you have") {
		t.Errorf("withdrawing 31 of 30 says %q", msg)
	}
	step(t, ctx, "withdraw 12.5: the summary", 20*time.Second,
		typeInto("withdraw-amount", "12.5"),
		chromedp.Click(css("#btn-withdraw")),
		chromedp.WaitVisible(css("#btn-approve")))
	summary := eval[string](t, ctx, `document.getElementById('sheet-content').innerText`)
	t.Logf("withdrawal summary:\n%s", summary)
	for _, want := range []string{"12.5 spUSD", "on the main chain (id 1338)", "17.5 spUSD", "paid by Stagepass"} {
		if !strings.Contains(summary, want) {
			t.Errorf("withdrawal summary lacks %q", want)
		}
	}
	step(t, ctx, "the relay pushes the bridge's stages", 15*time.Second,
		waitFor(`document.body.dataset.bridge === 'push'`, 10*time.Second))
	step(t, ctx, "withdraw 12.5: mined", 60*time.Second,
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 50*time.Second),
		chromedp.Click(css("#btn-done")),
		waitFor(`document.querySelector('#withdrawals li[data-kind="token"]')`, 15*time.Second))
	t.Logf("withdrawal: %s", eval[string](t, ctx, `document.querySelector('#withdrawals li[data-kind="token"]').textContent`))
	// From the exit on the main chain (RootGateway.exited, read every 100 ms) to the page
	// showing it: pushed, well within the 30 s fallback poll.
	index, ok := new(big.Int).SetString(eval[string](t, ctx, `document.querySelector('#withdrawals li[data-kind="token"]').dataset.index`), 10)
	if !ok {
		t.Fatal("the withdrawal's index")
	}
	main, err := ethclient.Dial("http://" + mainRPC)
	if err != nil {
		t.Fatal(err)
	}
	defer main.Close()
	rootABI := mainchain.NewRootGateway()
	exitedAt := onChain(t, func() bool {
		out, err := main.CallContract(context.Background(), ethereum.CallMsg{To: &root, Data: rootABI.PackExited(index)}, nil)
		if err != nil {
			return false
		}
		done, err := rootABI.UnpackExited(out)
		return err == nil && done
	})
	shownAt := watchDOM(t, ctx, `#withdrawals li[data-kind="token"][data-stage="exited"]`)
	step(t, ctx, "paid on the main chain", 90*time.Second,
		waitFor(`(document.querySelector('#withdrawals li[data-kind="token"][data-stage="exited"]') || {}).textContent?.includes('Paid on the main chain')`, 85*time.Second),
		waitFor(`document.getElementById('bridge-balance').textContent === '17.50 spUSD'`, 10*time.Second))
	pushedWithin(t, "the exit", exitedAt, shownAt())
	shot(t, ctx, "mainchain-withdrawal")

	// The door checks the fan in (from Go, the gate's scanner); once the event is over the
	// ticket offers to be kept as a souvenir.
	g.call("scannerOpen", `{"account":"`+gate+`","event":"`+event+`"}`)
	pass := g.call("makePass", fmt.Sprintf(`{"account":%q,"chainId":%v,"event":%q,"tokenId":%q}`, devAccount0, ci["chainId"], event, id))
	if v := g.call("scan", `{"payload":"`+pass["payload"].(string)+`"}`); v["ok"] != true {
		t.Fatalf("scan: %v", v)
	}
	ticket := `#tickets .ticket[data-token="` + id + `"]`
	step(t, ctx, "the ticket checked in", 45*time.Second,
		chromedp.Click(css("#tab-tickets")),
		waitFor(`document.querySelector('`+ticket+`[data-state="checkedIn"]')`, 40*time.Second))
	if eval[bool](t, ctx, `!!document.querySelector('`+ticket+` .exit-btn')`) && time.Now().Unix() < starts+2 {
		t.Error("the ticket offers to exit before its event is over")
	}
	step(t, ctx, "the event is over: keep it as a souvenir", time.Until(time.Unix(starts+30, 0)),
		waitFor(`(document.querySelector('`+ticket+` .exit-btn') || {}).textContent === 'Keep it as a souvenir on the main chain'`, time.Until(time.Unix(starts+25, 0))),
		chromedp.Click(css(ticket+" .exit-btn")),
		chromedp.WaitVisible(css("#btn-approve")))
	summary = eval[string](t, ctx, `document.getElementById('sheet-content').innerText`)
	t.Logf("exit summary:\n%s", summary)
	if !strings.Contains(summary, "Souvenir night") || !strings.Contains(summary, "cannot come back") {
		t.Errorf("exit summary:\n%s", summary)
	}
	step(t, ctx, "exit: mined, then kept on the main chain", 120*time.Second,
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 50*time.Second),
		chromedp.Click(css("#btn-done")),
		waitFor(`(document.querySelector('`+ticket+` .exit[data-stage="exited"]') || {}).textContent === 'Main chain: Kept on the main chain as a souvenir'`, 90*time.Second))
	shot(t, ctx, "mainchain-souvenir")
	audit(t, ctx, "main chain, souvenir kept")
	if n := tabTo(t, ctx, "#btn-withdraw", 60); n == 0 {
		t.Error("Tab does not reach the withdraw button")
	}
}

// devWithBridge starts a `stagepass dev` of its own with its main chain (1 s blocks, so the
// chains' clocks stay near the page's; a checkpoint every 4 blocks, 2 confirmations, no
// anchor) and the extra flags, deposits 30 TestUSD of the fan's account (development account
// 0) on the main chain, and returns the site's URL, the main chain's JSON-RPC address,
// RootGateway and a Go wallet connected to the relay; the validators credit the deposit
// meanwhile. The process stops when the test ends, and its log is printed if the test failed.
func devWithBridge(t *testing.T, extra ...string) (url, mainRPC string, root common.Address, g *goWalletT) {
	t.Helper()
	mainRPC = devchain.MustFreeAddr(t)
	var logs bytes.Buffer
	url, cmd, err := startDev(&logs, append([]string{"--block-time", "1s", "--main-chain-rpc", mainRPC,
		"--checkpoint-every", "4", "--confirmations", "2", "--anchor=false"}, extra...)...)
	t.Cleanup(func() {
		stopDev(cmd)
		if t.Failed() {
			t.Logf("stagepass dev %v (main chain) log:\n%s", extra, logs.String())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Bridge struct {
			RootGateway string `json:"rootGateway"`
		} `json:"bridge"`
	}
	res, err := http.Get(url + "healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(res.Body).Decode(&health)
	res.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root = common.HexToAddress(health.Bridge.RootGateway)
	if err := devnet.Deposit(ctx, "http://"+mainRPC, root, 0, common.HexToAddress(devAccount0), devchain.USDC(30)); err != nil {
		t.Fatal(err)
	}
	return url, mainRPC, root, goWallet(t, strings.Replace(url, "http://", "ws://", 1)+"ws")
}

// goWallet is the wallet package, connected to a relay, for what the test does outside the
// page.
// onChain calls done every 100 ms until it reports true and returns a function that waits
// for that and gives the time it first did (the chain event's time, to 100 ms).
func onChain(t *testing.T, done func() bool) func() time.Time {
	t.Helper()
	at := make(chan time.Time, 1)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			if done() {
				at <- time.Now()
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() time.Time {
		select {
		case v := <-at:
			return v
		case <-time.After(30 * time.Second):
			t.Fatal("the chain event was not seen")
			return time.Time{}
		}
	}
}

// watchDOM notes when selector first matches on the page from now on, with a
// MutationObserver (called on every change of the page, never throttled as a timer in a
// busy or background page can be); the returned function reads that time (zero if it has
// not matched yet).
func watchDOM(t *testing.T, ctx context.Context, selector string) func() time.Time {
	t.Helper()
	sel, _ := json.Marshal(selector)
	eval[bool](t, ctx, `(() => { window.__shownAt = 0;
		const seen = () => { if (!window.__shownAt && document.querySelector(`+string(sel)+`)) { window.__shownAt = Date.now(); return true; } return false; };
		if (!seen()) { const o = new MutationObserver(() => { if (seen()) o.disconnect(); });
			o.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true }); }
		return true; })()`)
	return func() time.Time {
		ms := eval[float64](t, ctx, `window.__shownAt`)
		if ms == 0 {
			return time.Time{}
		}
		return time.UnixMilli(int64(ms))
	}
}

// pushedWithin checks that the page showed a stage change (at shown) less than 10 s after
// its chain event (chain): the relay's push, not the page's 30 s fallback poll.
func pushedWithin(t *testing.T, what string, chain func() time.Time, shown time.Time) {
	t.Helper()
	at := chain()
	if shown.IsZero() {
		t.Fatalf("%s: the page's change was not seen", what)
	}
	d := shown.Sub(at)
	t.Logf("%s: on the page %v after the chain event (fallback poll: 30 s)", what, d.Round(time.Millisecond))
	if d >= 10*time.Second {
		t.Errorf("%s shown %v after the chain event: not pushed", what, d)
	}
}

type goWalletT struct {
	t *testing.T
	s *wallet.Service
}

func goWallet(t *testing.T, wsURL string) *goWalletT {
	t.Helper()
	g := &goWalletT{t: t, s: wallet.New(&vault.MemoryStore{}, nil)}
	g.s.Dial = dialGorilla
	t.Cleanup(func() { g.s.Call(context.Background(), "disconnect", []byte(`{}`)) })
	g.call("restore", `{"mnemonic":"`+devMnemonic+`","password":"correct horse battery"}`)
	g.call("connect", `{"url":"`+wsURL+`"}`)
	return g
}

func (g *goWalletT) into(method, params string, out any) {
	g.t.Helper()
	res, err := g.s.Call(context.Background(), method, []byte(params))
	if err != nil {
		g.t.Fatalf("%s: %v", method, err)
	}
	b, _ := json.Marshal(res)
	_ = json.Unmarshal(b, out)
}

func (g *goWalletT) call(method, params string) map[string]any {
	g.t.Helper()
	var m map[string]any
	g.into(method, params, &m)
	return m
}

// approve prepares, approves and waits until the request is mined.
func (g *goWalletT) approve(method, params string) {
	g.t.Helper()
	id := g.call("approve", `{"id":"`+g.call(method, params)["id"].(string)+`"}`)["request"].(map[string]any)["id"].(string)
	g.wait(method+" mined", func() bool {
		st := g.call("requestStatus", `{"id":"`+id+`"}`)
		if st["state"] == "failed" {
			g.t.Fatalf("%s failed: %v", method, st["reason"])
		}
		return st["state"] == "mined"
	})
}

func (g *goWalletT) wait(what string, cond func() bool) {
	g.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			g.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
