package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
	"github.com/stagepass/stagepass/wasm/vault"
	"github.com/stagepass/stagepass/wasm/wallet"
)

// payJS fills the processor's hosted checkout (in the page's frame) with a card and pays.
func payJS(number string) string {
	return fmt.Sprintf(`(() => { const d = document.getElementById('checkout-frame').contentDocument;
		d.getElementById('number').value = %q; d.getElementById('exp').value = '12/34'; d.getElementById('cvc').value = '123';
		d.querySelector('form').requestSubmit(); })()`, number)
}

const checkoutReady = `(() => { const f = document.getElementById('checkout-frame');
	const d = f && f.contentDocument; return !!(d && d.readyState === 'complete' && d.getElementById('number')); })()`

// A new fan (a fresh wallet: no TestUSD) buys a ticket by card: the summary, approve
// (requestPurchase, gasless) → the processor's checkout in the page; a declined card is
// shown and the fan may try another; a reload in the middle resumes the purchase; 4242…
// pays; the oracles' progress shows (paid → k of n → minted); the ticket is in My tickets
// and its door pass verifies for this fan.
func TestBrowserCardPurchase(t *testing.T) {
	setup(t)
	// The processor's page answers a declined card with 402 Payment Required, as Stripe's does.
	ctx, done := browser(t, "status of 402")
	defer done()
	step(t, ctx, "open the site, wallet ready", 60*time.Second,
		chromedp.Navigate(env.url),
		waitFor(`document.body.dataset.view === 'onboard'`, 45*time.Second))
	step(t, ctx, "create a wallet", 60*time.Second,
		chromedp.SendKeys(css("#create-password"), "correct horse battery"),
		chromedp.Click(css("#btn-create")),
		waitFor(`document.body.dataset.view === 'app' && document.querySelector('#events .event button.pay-card')`, 45*time.Second))
	account := eval[string](t, ctx, `document.getElementById('account').textContent`)
	event := eval[string](t, ctx, `document.querySelector('#events .event').dataset.event`)
	checkTouchTargets(t, ctx)

	step(t, ctx, "pay by card: the summary", 30*time.Second,
		chromedp.Click(css("#events .event button.pay-card")),
		waitFor(`document.querySelector('#events .event button.pay-card').getAttribute('aria-pressed') === 'true'`, 5*time.Second),
		chromedp.Click(css("#events .event button.buy")),
		chromedp.WaitVisible(css("#btn-approve")))
	summary := eval[string](t, ctx, `document.getElementById('sheet-content').innerText`)
	t.Logf("card summary:\n%s", summary)
	for _, want := range []string{"Card charge", "USD 45.00", "Pays Originator", "Gas", "paid by Stagepass"} {
		if !strings.Contains(summary, want) {
			t.Errorf("card summary lacks %q", want)
		}
	}
	if title := eval[string](t, ctx, `document.getElementById('sheet-title').textContent`); !strings.Contains(title, "by card") {
		t.Errorf("sheet title %q", title)
	}
	shot(t, ctx, "card-summary")
	step(t, ctx, "approve: request on chain, checkout", 60*time.Second,
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.querySelector('#progress li[data-step="request"].done')`, 45*time.Second),
		waitFor(checkoutReady, 15*time.Second))
	step(t, ctx, "a declined card", 20*time.Second,
		chromedp.Evaluate[chromedp.Void](payJS("4000 0000 0000 0002")),
		waitFor(`/declined/i.test(document.getElementById('sheet-error').textContent) && !document.getElementById('sheet-error').hidden`, 15*time.Second))
	t.Logf("after the declined card: %s (payment states %s)", eval[string](t, ctx, `document.getElementById('sheet-error').textContent`),
		eval[string](t, ctx, `document.body.dataset.paymentStates`))
	shot(t, ctx, "card-declined")

	// The page reloads mid-purchase: after unlock the purchase comes back with its checkout.
	step(t, ctx, "reload, unlock, the purchase resumes", 60*time.Second,
		chromedp.Reload(),
		waitFor(`document.body.dataset.view === 'unlock'`, 45*time.Second),
		chromedp.SendKeys(css("#unlock-password"), "correct horse battery"),
		chromedp.Click(css("#btn-unlock")),
		waitFor(checkoutReady, 30*time.Second))
	step(t, ctx, "fill in another card", 5*time.Second,
		chromedp.Evaluate[chromedp.Void](`(() => { const d = document.getElementById('checkout-frame').contentDocument;
			d.getElementById('number').value = '4242 4242 4242 4242'; d.getElementById('exp').value = '12/34'; d.getElementById('cvc').value = '123'; })()`))
	shot(t, ctx, "checkout")
	var states string
	step(t, ctx, "pay with 4242: oracles confirming", 60*time.Second,
		chromedp.Evaluate[chromedp.Void](payJS("4242 4242 4242 4242")),
		waitFor(`/(verifying|submitted) [1-9]|minted/.test(document.body.dataset.paymentStates || '')`, 45*time.Second))
	shot(t, ctx, "card-progress")
	step(t, ctx, "minted", 60*time.Second, waitFor(`document.body.dataset.lastPayment === 'minted'`, 45*time.Second))
	states = eval[string](t, ctx, `document.body.dataset.paymentStates`)
	t.Logf("payment states the page showed: %s", states)
	if !regexp.MustCompile(`(verifying|submitted) [12]/3`).MatchString(states) {
		t.Errorf("no intermediate oracle state (1/3 or 2/3) among %q", states)
	}
	oracles := eval[string](t, ctx, `document.querySelector('#progress li[data-step="oracles"]').textContent`)
	if !strings.Contains(oracles, "of 3 signed") {
		t.Errorf("oracle step says %q", oracles)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#progress li.done').length`); n != 4 {
		t.Errorf("%d of 4 card steps done", n)
	}
	shot(t, ctx, "card-minted")
	step(t, ctx, "see the ticket", 30*time.Second,
		chromedp.Click(css("#btn-done")),
		waitFor(`document.querySelector('#tickets .ticket[data-state="valid"]')`, 25*time.Second))
	if pending := eval[string](t, ctx, `localStorage.getItem('stagepass.cardPayments')`); pending != "[]" {
		t.Errorf("pending card payments left: %s", pending)
	}
	token := eval[string](t, ctx, `document.querySelector('#tickets .ticket').dataset.token`)
	step(t, ctx, "open the door pass", 20*time.Second,
		chromedp.Click(css("#tickets .ticket button.pass-btn")),
		waitFor(`document.getElementById('pass-qr').dataset.payload`, 15*time.Second))
	payload := eval[string](t, ctx, `document.getElementById('pass-qr').dataset.payload`)
	v := protocol.Verifier{ChainID: 1337, Events: []ethcrypto.Address{ethcrypto.MustParseAddress(event)}}
	pass, err := v.Verify(payload, time.Now())
	if err != nil {
		t.Fatalf("the card ticket's pass does not verify: %v", err)
	}
	if pass.Holder != ethcrypto.MustParseAddress(account) || pass.TokenID.String() != token {
		t.Fatalf("pass for %s #%s, want %s #%s", pass.Holder, pass.TokenID, account, token)
	}
}

// A development account lists two tickets (from Go, through the wallet package against the
// relay); a fan on the page sees them under Resale with their price, the cap and the split,
// buys one with TestUSD gaslessly (summary → approve → mined) and finds it in My tickets;
// a new fan (no TestUSD) buys the other by card (requestResale; the checkout in the tab
// itself, back to the app, which resumes the purchase after unlock; oracles).
func TestBrowserBuyResale(t *testing.T) {
	setup(t)
	// Its own chain: development account 0 (the page's) still has its full TestUSD
	// allowance to the demo event (a permit purchase elsewhere would have used it up).
	var logs bytes.Buffer
	url, relay, err := startDev(&logs)
	defer stopDev(relay)
	if err != nil {
		t.Fatal(err)
	}
	ids := sellFromGo(t, "ws"+strings.TrimPrefix(url, "http")+"ws", 6, 2, "54000000")
	id, cardID := ids[0], ids[1]

	ctx, done := browser(t)
	defer done()
	step(t, ctx, "open the site, restore the dev wallet", 90*time.Second,
		chromedp.Navigate(url),
		waitFor(`document.body.dataset.view === 'onboard'`, 45*time.Second),
		restoreDev(true),
		waitFor(`document.querySelector('#events .listing[data-token="`+id+`"] button.buy-listed')`, 45*time.Second))
	listing := eval[string](t, ctx, `document.querySelector('#events .listing[data-token="`+id+`"]').innerText`)
	t.Logf("listing:\n%s", listing)
	for _, want := range []string{"54.00 tUSD", "allowed up to 54.00 tUSD", "Seller gets 49.50 tUSD", "Originator 2.25 tUSD", "Buy for 54.00 tUSD"} {
		if !strings.Contains(listing, want) {
			t.Errorf("listing lacks %q", want)
		}
	}
	step(t, ctx, "show the listing", 5*time.Second,
		chromedp.ScrollIntoView(css(`#events .listing[data-token="`+id+`"]`)))
	shot(t, ctx, "resale-listing")
	checkTouchTargets(t, ctx)
	step(t, ctx, "buy it: the summary", 30*time.Second,
		chromedp.Click(css(`#events .listing[data-token="`+id+`"] button.buy-listed`)),
		chromedp.WaitVisible(css("#btn-approve")))
	summary := eval[string](t, ctx, `document.getElementById('sheet-content').innerText`)
	t.Logf("resale summary:\n%s", summary)
	for _, want := range []string{"Buy resale ticket #" + id, "Seller receives", "49.5", "Pays Originator", "paid by Stagepass"} {
		if !strings.Contains(summary+eval[string](t, ctx, `document.getElementById('sheet-title').textContent`), want) {
			t.Errorf("resale summary lacks %q", want)
		}
	}
	shot(t, ctx, "resale-summary")
	step(t, ctx, "approve → mined → My tickets", 90*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.lastRequest = ''`),
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 60*time.Second),
		chromedp.Click(css("#btn-done")),
		waitFor(`document.querySelector('#tickets .ticket[data-token="`+id+`"][data-state="valid"]')`, 25*time.Second))

	// The sandbox's checkout page, opened as the tab itself, has no icon link: Chromium asks
	// for /favicon.ico, which the relay does not serve (404).
	fan, done2 := browser(t, "status of 404")
	defer done2()
	step(t, fan, "a new fan: buy the other listing by card", 90*time.Second,
		chromedp.Navigate(url),
		waitFor(`document.body.dataset.view === 'onboard'`, 45*time.Second),
		chromedp.SendKeys(css("#create-password"), "correct horse battery"),
		chromedp.Click(css("#btn-create")),
		waitFor(`document.querySelector('#events .listing[data-token="`+cardID+`"] button.buy-listed-card')`, 45*time.Second),
		chromedp.Click(css(`#events .listing[data-token="`+cardID+`"] button.buy-listed-card`)),
		chromedp.WaitVisible(css("#btn-approve")))
	summary = eval[string](t, fan, `document.getElementById('sheet-content').innerText`)
	for _, want := range []string{"Seller receives", "49.5 USD", "USD 54.00", "requestResale"} {
		if !strings.Contains(summary, want) {
			t.Errorf("card resale summary lacks %q:\n%s", want, summary)
		}
	}
	// This fan takes the checkout in the tab itself (what a processor whose page refuses
	// frames needs): the processor's page, then back to the app, which resumes the purchase
	// from localStorage once the wallet is unlocked.
	step(t, fan, "approve, the checkout in this tab, pay with 4242", 120*time.Second,
		chromedp.Click(css("#btn-approve")),
		waitFor(checkoutReady, 45*time.Second),
		chromedp.Click(css("#card-pay a")),
		chromedp.Sleep(1500*time.Millisecond), // the navigation (a poll across it loses its context)
		waitFor(`location.pathname.startsWith('/sandbox/checkout/') && document.readyState === 'complete' && document.getElementById('number')`, 20*time.Second),
		chromedp.Evaluate[chromedp.Void](`(() => { document.getElementById('number').value = '4242 4242 4242 4242';
			document.getElementById('exp').value = '12/34'; document.getElementById('cvc').value = '123';
			document.querySelector('form').requestSubmit(); })()`),
		chromedp.Sleep(2*time.Second),
		waitFor(`location.pathname === '/' && document.body.dataset.view === 'unlock'`, 45*time.Second),
		chromedp.SendKeys(css("#unlock-password"), "correct horse battery"),
		chromedp.Click(css("#btn-unlock")),
		waitFor(`document.body.dataset.lastPayment === 'minted'`, 60*time.Second),
		chromedp.Click(css("#btn-done")),
		waitFor(`document.querySelector('#tickets .ticket[data-token="`+cardID+`"][data-state="valid"]')`, 25*time.Second))
	t.Logf("card resale payment states: %s", eval[string](t, fan, `document.body.dataset.paymentStates`))
}

// sellFromGo buys qty tickets with development account `index` (TestUSD, permit) and lists
// them at price, through the wallet package connected to the relay at wsURL; returns their ids.
func sellFromGo(t *testing.T, wsURL string, index, qty int, price string) []string {
	t.Helper()
	s := wallet.New(&vault.MemoryStore{}, nil)
	s.Dial = dialGorilla
	defer s.Call(context.Background(), "disconnect", []byte(`{}`))
	call := func(method, params string) map[string]any {
		t.Helper()
		res, err := s.Call(context.Background(), method, []byte(params))
		if err != nil {
			t.Fatalf("seller %s: %v", method, err)
		}
		b, _ := json.Marshal(res)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	}
	call("restore", `{"mnemonic":"`+devMnemonic+`","password":"correct horse battery"}`)
	var seller string
	for i := 0; i < index; i++ {
		seller = call("addAccount", `{}`)["address"].(string)
	}
	call("connect", `{"url":"`+wsURL+`"}`)
	events, err := s.Call(context.Background(), "events", []byte(`{}`))
	if err != nil || len(events.([]protocol.EventInfo)) == 0 {
		t.Fatalf("events: %v", err)
	}
	event := events.([]protocol.EventInfo)[0].Address
	tickets := func(cond func(map[string]string) bool) map[string]string {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			view := call("tickets", `{"account":"`+seller+`"}`)
			st := map[string]string{}
			list, _ := view["tickets"].([]any)
			for _, x := range list {
				m := x.(map[string]any)
				st[m["tokenId"].(string)] = m["state"].(string)
			}
			if cond(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("seller's tickets: %v", st)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	approve := func(method, params string) {
		t.Helper()
		p := call(method, params)
		call("approve", `{"id":"`+p["id"].(string)+`"}`)
	}
	approve("prepareBuy", `{"account":"`+seller+`","event":"`+event+`","tier":0,"quantity":`+fmt.Sprint(qty)+`}`)
	var ids []string
	for k := range tickets(func(st map[string]string) bool { return len(st) == qty }) {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	for _, id := range ids {
		approve("prepareList", `{"account":"`+seller+`","event":"`+event+`","tokenId":"`+id+`","price":"`+price+`"}`)
	}
	tickets(func(st map[string]string) bool {
		for _, id := range ids {
			if st[id] != "listed" {
				return false
			}
		}
		return true
	})
	t.Logf("development account %d (%s) listed tickets %v at %s", index, seller, ids, price)
	return ids
}

// dialGorilla is the wallet's websocket outside the browser (gorilla/websocket).
func dialGorilla(ctx context.Context, url string) (relayclient.Conn, error) {
	c, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	return &gorillaConn{c: c}, nil
}

type gorillaConn struct {
	c  *websocket.Conn
	mu sync.Mutex
}

func (g *gorillaConn) Read(context.Context) ([]byte, error) {
	_, b, err := g.c.ReadMessage()
	return b, err
}

func (g *gorillaConn) Write(_ context.Context, b []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.c.WriteMessage(websocket.TextMessage, b)
}

func (g *gorillaConn) Close() error { return g.c.Close() }
