package browsertest

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A fan acts for each account of the wallet in turn: account 0 buys a ticket; "Add the next
// account" derives account 1 and switches to it (no tickets, its own TestUSD balance); it
// buys; switching back shows account 0's ticket only; a reload keeps the chosen account; an
// imported keystore account is offered after the import and switched to. Its own relay, so
// account 1 starts with no tickets whatever the other tests gift it.
func TestBrowserAccountSwitch(t *testing.T) {
	setup(t)
	var logs bytes.Buffer
	url, relay, err := startDev(&logs)
	defer stopDev(relay)
	if err != nil {
		t.Fatal(err)
	}
	ctx, done := browser(t)
	defer done()
	_, token0 := restoreAndBuy(t, ctx, url)
	acct0, acct1 := strings.ToLower(devAccount0), strings.ToLower(devAccount1)

	// shows waits until the app shows account a: its tickets (n of them) and its balance.
	shows := func(a string, n int) chromedp.Action[chromedp.Void] {
		return waitFor(`document.body.dataset.account === '`+a+`' && document.body.dataset.ticketsFor === '`+a+`'
			&& document.querySelectorAll('#tickets .ticket').length === `+strconv.Itoa(n)+`
			&& document.getElementById('account-select').value.toLowerCase() === '`+a+`'
			&& !!document.getElementById('balance').dataset.raw`, 30*time.Second)
	}
	// balance is what the relay says a holds of the events' stablecoin, once the page shows
	// the same (the page refreshes it after each mined request, a moment after the push).
	balance := func(a string) string {
		t.Helper()
		var info struct{ Balance string }
		token := eval[string](t, ctx, `document.getElementById('balance').dataset.tokens`)
		var shown string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			mustRPC(t, url, "sp_permitInfo", []any{token, a}, &info)
			if shown = eval[string](t, ctx, `document.getElementById('balance').dataset.raw`); shown == info.Balance {
				return info.Balance
			}
			if time.Now().After(deadline) {
				t.Fatalf("balance shown for %s: %s, the relay says %s", a, shown, info.Balance)
			}
		}
	}
	step(t, ctx, "account 0 with its balance", 30*time.Second, shows(acct0, 1))
	bal0 := balance(acct0)
	if n := eval[int](t, ctx, `document.querySelectorAll('#account-select option').length`); n != 1 {
		t.Fatalf("%d accounts listed, want 1", n)
	}

	step(t, ctx, "add account 1: switched to it", 60*time.Second,
		clickSettled("#btn-add-account"),
		shows(acct1, 0))
	if bal1 := balance(acct1); bal1 == bal0 {
		t.Fatalf("account 1 shows account 0's balance %s", bal0)
	}
	if !eval[bool](t, ctx, `!document.getElementById('tickets-empty').hidden`) {
		t.Fatal("account 1's My tickets does not say it is empty")
	}
	step(t, ctx, "account 1 buys, mined", 120*time.Second,
		chromedp.Click(css("#tab-events")),
		clickSettled("#events .event button.buy"),
		chromedp.WaitVisible(css("#btn-approve")),
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 60*time.Second),
		chromedp.Click(css("#btn-done")),
		shows(acct1, 1))
	token1 := eval[string](t, ctx, `document.querySelector('#tickets .ticket').dataset.token`)
	if token1 == token0 {
		t.Fatalf("account 1 shows account 0's ticket #%s", token0)
	}
	balance(acct1)

	// The picker is a labelled select: the keyboard's change works as a click's.
	pick := func(a string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById('account-select');
			s.focus(); s.value = [...s.options].find((o) => o.value.toLowerCase() === '` + a + `').value;
			s.dispatchEvent(new Event('change', { bubbles: true })); })()`)
	}
	step(t, ctx, "switch back to account 0", 30*time.Second,
		pick(acct0), shows(acct0, 1),
		waitFor(`document.querySelector('#tickets .ticket').dataset.token === '`+token0+`'`, 5*time.Second))
	balance(acct0)

	step(t, ctx, "switch to account 1, reload: kept", 90*time.Second,
		pick(acct1), shows(acct1, 1),
		chromedp.Reload(),
		waitFor(`document.body.dataset.view === 'unlock'`, 45*time.Second),
		chromedp.SendKeys(css("#unlock-password"), "correct horse battery"),
		chromedp.Click(css("#btn-unlock")),
		shows(acct1, 1),
		waitFor(`document.querySelector('#tickets .ticket').dataset.token === '`+token1+`'`, 5*time.Second))
	if n := eval[int](t, ctx, `document.querySelectorAll('#account-select option').length`); n != 2 {
		t.Fatalf("%d accounts listed after the reload, want 2", n)
	}

	// A keystore account made by go-ethereum: imported, listed as imported, offered, used.
	addr, path := keystoreFile(t, "file password")
	imported := strings.ToLower(addr.Hex())
	step(t, ctx, "import a keystore account, use it", 90*time.Second,
		clickSettled("#wallet-settings summary"),
		clickSettled("#btn-import-keystore"),
		chromedp.SetUploadFiles(css("#keystore-file"), []string{path}),
		waitFor(`document.getElementById('keystore-text').value.includes('"version":3')`, 10*time.Second),
		chromedp.SendKeys(css("#keystore-password"), "file password"),
		chromedp.SendKeys(css("#import-password"), "correct horse battery"),
		chromedp.Click(css("#btn-import")),
		chromedp.WaitVisible(css("#btn-use-imported")),
		chromedp.Click(css("#btn-use-imported")),
		shows(imported, 0))
	if bal := balance(imported); bal != "0" {
		t.Fatalf("the new imported account holds %s", bal)
	}
	opts := eval[string](t, ctx, `[...document.querySelectorAll('#account-select option')].map((o) => o.textContent).join('|')`)
	if !strings.Contains(opts, "Account 0: ") || !strings.Contains(opts, "Account 1: ") || !strings.Contains(opts, "Imported: ") {
		t.Fatalf("accounts listed: %s", opts)
	}
	t.Logf("accounts listed: %s", opts)
	audit(t, ctx, "account switch")
	step(t, ctx, "the picker in view", 5*time.Second,
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`), chromedp.Sleep(200*time.Millisecond))
	shot(t, ctx, "account-switch")
}
