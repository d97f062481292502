package browsertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/bindings/testusd"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Development accounts of `test test … junk` in this test: 3 the artist, 5 the venue, 2 a
// door scanner, 9 a second fan who buys the resale (paying its own gas).
const (
	devAccount2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
	devAccount3 = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
	devAccount5 = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
)

// setField sets a form field's value as a user would (an input event follows).
func setField(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const f = document.querySelector(%q);
		if (!f) throw new Error('no field ' + %q);
		if (f.type === 'checkbox') f.checked = %q === 'true'; else f.value = %q;
		f.dispatchEvent(new Event('input', { bubbles: true })); })()`, sel, sel, value, value))
}

// TestBrowserIssuerCreatesEvent: the demo issuer (development account 1) restores its
// wallet in the issuer console, fills in an event — two tiers, resale cap, seller's share,
// per-buyer limit, no gifts, a discount step, three parties — is told the shares do not add
// up, sees the fan's preview in the fan app's words, signs after the wallet's summary, and
// sees the event mined; adds a door scanner (a malformed address refused on the page). In
// the fan app the event shows the same rules in words; the fan buys a ticket, is refused a
// price above the cap before signing, lists at the cap; a second fan buys it; the console
// shows each party's share of that resale, as the contract paid it.
func TestBrowserIssuerCreatesEvent(t *testing.T) {
	setup(t)
	ctx, done := browser(t)
	defer done()
	const password = "correct horse battery"
	step(t, ctx, "open the console, wallet ready", 60*time.Second,
		chromedp.Navigate(env.url+"issuer.html"),
		waitFor(`document.body.dataset.view === 'restore'`, 45*time.Second))
	step(t, ctx, "restore, pick account 2 of the wallet", 60*time.Second,
		restoreDev(false),
		waitFor(`document.body.dataset.view === 'app' && document.getElementById('ev-name')`, 45*time.Second),
		waitFor(`document.body.dataset.eventsFor === '`+strings.ToLower(devAccount0)+`'`, 20*time.Second),
		chromedp.Click(css("#btn-add-account")),
		waitFor(`document.getElementById('account').textContent.toLowerCase() === '`+strings.ToLower(devAccount1)+`'`, 20*time.Second),
		// The demo event is this account's.
		waitFor(`document.querySelector('#stats h3')`, 20*time.Second))
	shot(t, ctx, "issuer-console")
	checkTouchTargets(t, ctx)

	name := fmt.Sprintf("Harbour Lights %d", time.Now().Unix()%100000)
	step(t, ctx, "fill in the event", 20*time.Second,
		chromedp.Click(css("#tab-create")),
		setField("#ev-name", name),
		setField("#ev-venue", "Pier 4, Open Air Stage"),
		setField("#tiers .tier-row:nth-child(1) .tier-name", "Early bird"),
		setField("#tiers .tier-row:nth-child(1) .tier-face", "40"),
		setField("#tiers .tier-row:nth-child(1) .tier-supply", "200"),
		chromedp.Click(css("#btn-add-tier")),
		setField("#tiers .tier-row:nth-child(2) .tier-name", "Front row"),
		setField("#tiers .tier-row:nth-child(2) .tier-face", "90"),
		setField("#tiers .tier-row:nth-child(2) .tier-supply", "20"),
		setField("#ev-cap", "25"),
		setField("#ev-share", "40"),
		setField("#ev-limit", "3"),
		setField("#ev-gifts", "false"),
		chromedp.Click(css("#btn-add-discount")),
		chromedp.Evaluate[chromedp.Void](`(() => { const f = document.querySelector('#discounts .disc-from');
			const s = new Date(document.getElementById('ev-starts').value); s.setDate(s.getDate() - 5);
			const p = (n) => String(n).padStart(2, '0');
			f.value = s.getFullYear() + '-' + p(s.getMonth() + 1) + '-' + p(s.getDate()) + 'T' + p(s.getHours()) + ':' + p(s.getMinutes());
			f.dispatchEvent(new Event('input', { bubbles: true })); })()`),
		setField("#discounts .disc-pct", "10"),
		setField("#splits .split-row:nth-child(1) .split-pct", "60"),
		chromedp.Click(css("#btn-add-split")),
		setField("#splits .split-row:nth-child(2) .split-account", devAccount3),
		setField("#splits .split-row:nth-child(2) .split-pct", "30"),
		waitFor(`/add up to 90%/.test(document.getElementById('problems').innerText)`, 5*time.Second))
	// Signing is refused while the shares do not add up.
	step(t, ctx, "shares of 90% are refused", 10*time.Second,
		chromedp.Click(css("#btn-create-event")),
		chromedp.Sleep(300*time.Millisecond))
	if eval[bool](t, ctx, `!document.getElementById('sheet').hidden`) {
		t.Fatal("a configuration whose shares add up to 90% reached the signing step")
	}
	step(t, ctx, "show the problem", 5*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.getElementById('problems').scrollIntoView({ block: 'end' })`))
	shot(t, ctx, "issuer-create-problems")
	step(t, ctx, "add the venue: 100%", 10*time.Second,
		chromedp.Click(css("#btn-add-split")),
		setField("#splits .split-row:nth-child(3) .split-account", devAccount5),
		setField("#splits .split-row:nth-child(3) .split-role", "3"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#splits .split-row:nth-child(3) .split-role').dispatchEvent(new Event('change', { bubbles: true }))`),
		setField("#splits .split-row:nth-child(3) .split-pct", "10"),
		waitFor(`document.body.dataset.problems === '0' && document.getElementById('preview-rules')`, 5*time.Second))
	checkTouchTargets(t, ctx) // the whole form: every field labelled, nothing small, no sideways scroll
	if wide := eval[[]string](t, ctx, `[...document.querySelectorAll('#panel-create *')].filter((e) => e.getBoundingClientRect().right > 361)
		.map((e) => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))`); len(wide) > 0 {
		t.Errorf("wider than the screen: %v", wide)
	}
	preview := eval[[]string](t, ctx, `[...document.querySelectorAll('#preview-rules li')].map((li) => li.textContent)`)
	t.Logf("preview:\n%s", strings.Join(preview, "\n"))
	previewText := strings.Join(preview, "\n")
	for _, want := range []string{"up to 25% above face value (at most 50.00 tUSD for Early bird)", "the seller keeps 40% of the markup",
		"At most 3 tickets per buyer.", "Tickets cannot be gifted.", "Who gets paid: Originator 60%, Artist 30%, Venue 10%.", "Resale closes"} {
		if !strings.Contains(previewText, want) {
			t.Errorf("preview lacks %q", want)
		}
	}
	step(t, ctx, "show the preview", 5*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('.preview').scrollIntoView({ block: 'end' })`))
	shot(t, ctx, "issuer-create-preview")

	step(t, ctx, "the wallet's summary", 30*time.Second,
		chromedp.Click(css("#btn-create-event")),
		chromedp.WaitVisible(css("#btn-approve")))
	summary := eval[string](t, ctx, `document.getElementById('sheet-content').innerText`)
	t.Logf("create summary:\n%s", summary)
	for _, want := range []string{name, "Pier 4, Open Air Stage", "Early bird: face value 40 tUSD, 200 tickets", "Front row: face value 90 tUSD, 20 tickets",
		"up to 25% above face value (at most 50 tUSD for Early bird, 112.5 tUSD for Front row)", "40% of a resale markup", "3 ticket(s)",
		"not allowed", "60% to " + devAccount1, "30% to " + devAccount3, "10% to " + devAccount5, "10% below face value", "paid by Stagepass"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	shot(t, ctx, "issuer-summary")
	step(t, ctx, "approve, mined, listed", 90*time.Second,
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 60*time.Second),
		chromedp.Click(css("#btn-done")),
		waitFor(`document.querySelector('#stats h3') && document.querySelector('#stats h3').textContent === `+jsString(name), 30*time.Second))
	event := eval[string](t, ctx, `document.body.dataset.event`)

	step(t, ctx, "a malformed scanner address is refused", 10*time.Second,
		setField("#gate-address", "0x1234"),
		chromedp.Click(css("#btn-gate")),
		waitFor(`!document.getElementById('gate-error').hidden`, 5*time.Second))
	if eval[bool](t, ctx, `!document.getElementById('sheet').hidden`) {
		t.Fatal("a malformed gate reached the signing step")
	}
	step(t, ctx, "add a door scanner, mined", 90*time.Second,
		setField("#gate-address", devAccount2),
		chromedp.Click(css("#btn-gate")),
		chromedp.WaitVisible(css("#btn-approve")),
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 60*time.Second),
		chromedp.Click(css("#btn-done")),
		waitFor(`document.querySelector('#gates li[data-gate="`+strings.ToLower(devAccount2)+`"]')`, 20*time.Second))

	// The fan app shows the same rules, in the same words.
	evSel := `#events .event[data-event="` + event + `"]`
	step(t, ctx, "the fan app lists the event", 60*time.Second,
		chromedp.Navigate(env.url),
		waitFor(`document.body.dataset.view === 'unlock'`, 45*time.Second),
		chromedp.SendKeys(css("#unlock-password"), password),
		chromedp.Click(css("#btn-unlock")),
		waitFor(`document.querySelector('`+evSel+` button.buy:not([disabled])')`, 45*time.Second))
	fanRules := eval[[]string](t, ctx, `[...document.querySelectorAll('`+evSel+` .rules li')].map((li) => li.textContent)`)
	if strings.Join(fanRules, "\n") != previewText {
		t.Errorf("the fan app's rules differ from the preview:\n%s\n---\n%s", strings.Join(fanRules, "\n"), previewText)
	}

	// The fan buys an early bird ticket and resells it within the cap.
	step(t, ctx, "buy an early bird ticket, mined", 90*time.Second,
		chromedp.Click(css(evSel+" button.buy")),
		chromedp.WaitVisible(css("#btn-approve")),
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 60*time.Second),
		chromedp.Click(css("#btn-done")),
		waitFor(`document.querySelector('#tickets .ticket[data-event="`+event+`"][data-state="valid"]')`, 25*time.Second))
	ticketSel := `#tickets .ticket[data-event="` + event + `"]`
	token := eval[string](t, ctx, `document.querySelector('`+ticketSel+`').dataset.token`)
	step(t, ctx, "open resale", 20*time.Second,
		chromedp.Click(css(ticketSel+" button.resell-btn")),
		waitFor(`document.querySelector('#resell-preview dl')`, 10*time.Second))
	step(t, ctx, "a price above the cap is refused", 10*time.Second,
		typeInto("resell-price", "50.01"),
		waitFor(`/Too high/.test(document.getElementById('resell-preview').innerText)`, 5*time.Second),
		chromedp.Click(css("#btn-resell-next")),
		chromedp.Sleep(300*time.Millisecond))
	if eval[bool](t, ctx, `!!document.getElementById('btn-approve')`) {
		t.Fatal("a price above the cap reached the signing step")
	}
	step(t, ctx, "list at the cap (50), mined", 90*time.Second,
		typeInto("resell-price", "50"),
		chromedp.Click(css("#btn-resell-next")),
		chromedp.WaitVisible(css("#btn-approve")),
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.lastRequest = ''`),
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 60*time.Second),
		chromedp.Click(css("#btn-done")),
		waitFor(`document.querySelector('`+ticketSel+`[data-state="listed"]')`, 25*time.Second))

	// The console open, live: a second fan (development account 9, paying its own gas) buys
	// the listing, and the figures change without a reload (the event topic's push).
	step(t, ctx, "the console, before the resale", 60*time.Second,
		chromedp.Navigate(env.url+"issuer.html"),
		waitFor(`document.body.dataset.view === 'unlock'`, 45*time.Second),
		chromedp.SendKeys(css("#unlock-password"), password),
		chromedp.Click(css("#btn-unlock")),
		waitFor(`document.querySelector('#stats h3') && document.querySelector('#stats h3').textContent === `+jsString(name), 30*time.Second),
		waitFor(`document.getElementById('stat-listed').textContent === '1'`, 30*time.Second))
	if got := eval[string](t, ctx, `document.getElementById('stat-resales').textContent`); got != "0" {
		t.Fatalf("resales before the resale: %s", got)
	}
	buyResale(t, common.HexToAddress(event), token, big.NewInt(50_000_000))
	// The resale's markup (10) less the seller's 40% (4) is split 60/30/10.
	step(t, ctx, "the resale split shows up live", 30*time.Second,
		waitFor(`document.getElementById('stat-resales').textContent === '1' && document.getElementById('stat-listed').textContent === '0'`, 20*time.Second))
	type row struct{ Account, Primary, Resale, Total string }
	rows := eval[[]row](t, ctx, `[...document.querySelectorAll('#payouts tbody tr')].map((tr) => ({ Account: tr.dataset.account,
		Primary: tr.querySelector('.primary-amount').textContent, Resale: tr.querySelector('.resale-amount').textContent,
		Total: tr.querySelector('.total-amount').textContent }))`)
	want := []row{
		{strings.ToLower(devAccount1), "24.00", "3.60", "27.60"},
		{strings.ToLower(devAccount3), "12.00", "1.80", "13.80"},
		{strings.ToLower(devAccount5), "4.00", "0.60", "4.60"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("payouts per party %v, want %v", rows, want)
	}
	if got := eval[string](t, ctx, `document.getElementById('to-sellers').textContent`); !strings.Contains(got, "44.00 tUSD") {
		t.Errorf("sellers' part: %q", got)
	}
	checkTouchTargets(t, ctx) // the figures and the door scanners form
	step(t, ctx, "show the figures", 5*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.getElementById('payouts').scrollIntoView({ block: 'center' })`))
	shot(t, ctx, "issuer-stats")

	// On a desk: the form and the preview side by side.
	step(t, ctx, "desktop layout", 10*time.Second,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Click(css("#tab-create")),
		setField("#ev-name", "Desk view"),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.getElementById('form-event').offsetTop - 60)`))
	if side := eval[bool](t, ctx, `document.querySelector('.preview').getBoundingClientRect().left > document.getElementById('tiers').getBoundingClientRect().right`); !side {
		t.Error("on a desk the preview is not beside the form")
	}
	shot(t, ctx, "issuer-desktop")
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// buyResale has development account 9 approve TestUSD to the event and buy the listed
// ticket with its own transactions, sent through the relay's sp_sendRawTransaction.
func buyResale(t *testing.T, event common.Address, tokenID string, price *big.Int) {
	t.Helper()
	m, err := keys.FromMnemonic(devMnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Account(9)
	if err != nil {
		t.Fatal(err)
	}
	key, err := crypto.ToECDSA(k.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	rpc := func(method string, params ...any) (json.RawMessage, string) {
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
		res, err := http.Post(env.url+"rpc", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct {
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		if out.Error != nil {
			return nil, out.Error.Message
		}
		return out.Result, ""
	}
	var info protocol.ChainInfo
	raw, msg := rpc(protocol.MethodChainInfo)
	if msg != "" || json.Unmarshal(raw, &info) != nil {
		t.Fatalf("chain info: %s", msg)
	}
	id, _ := new(big.Int).SetString(tokenID, 10)
	usd := common.HexToAddress(info.Currency)
	// The relay is not a general RPC: the account's nonce is the lowest one the node accepts.
	nonce := uint64(0)
	send := func(to common.Address, data []byte) {
		for ; nonce < 64; nonce++ {
			tx, err := types.SignNewTx(key, types.LatestSignerForChainID(big.NewInt(int64(info.ChainID))), &types.DynamicFeeTx{
				ChainID: big.NewInt(int64(info.ChainID)), Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9),
				Gas: 500_000, To: &to, Data: data,
			})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := tx.MarshalBinary()
			if _, msg := rpc(protocol.MethodSendRawTransaction, fmt.Sprintf("0x%x", b)); msg == "" {
				nonce++
				return
			} else if !strings.Contains(msg, "nonce too low") {
				t.Fatalf("send to %s: %s", to, msg)
			}
		}
		t.Fatal("no nonce accepted")
	}
	send(usd, testusd.NewTestUSD().PackApprove(event, price))
	send(event, events.NewEventTicket().PackBuyListed(id, price))
	deadline := time.Now().Add(30 * time.Second)
	for {
		raw, msg := rpc(protocol.MethodTicketsByOwner, crypto.PubkeyToAddress(key.PublicKey).Hex())
		var held []protocol.TicketInfo
		if msg == "" && json.Unmarshal(raw, &held) == nil {
			for _, h := range held {
				if strings.EqualFold(h.Event, event.Hex()) && h.TokenID == tokenID {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resale to account 9 was not indexed: %s", msg)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
