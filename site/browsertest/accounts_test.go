package browsertest

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// A fan acts for each account of the wallet in turn: account 0 buys a ticket; "Add the next
// account" derives account 1 and switches to it (no tickets, its own TestUSD balance); it
// buys; switching back shows account 0's ticket only; a reload keeps the chosen account; an
// imported keystore account is offered after the import and switched to. Then names and
// removal: the imported account named by keyboard, account 0 by pointer (a blank name
// refused first), both names still there after a reload; "Remove this imported account"
// offered for the imported one only, a wrong password removing nothing, the right one
// removing it and the app acting for account 0 again. All along the relay holds no more
// subscriptions than with account 0 alone shown: the wallet follows the account shown
// only. Its own relay, so account 1 starts with no tickets whatever the other tests gift
// it, and the relay's subscription count is this page's.
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
	// The relay's live subscriptions with the page following account 0 (the wallet's one
	// ticket feed, and whatever else the relay's own parts hold).
	base := subscriptions(t, url)
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

	// Only the account shown is followed: the relay holds as many subscriptions as when
	// account 0 alone had been shown (before, each account viewed kept its feed).
	followsOne := func(when string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for n := subscriptions(t, url); n != base; n = subscriptions(t, url) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the relay holds %d subscriptions, %d when the page followed account 0 alone", when, n, base)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("%s: relay subscriptions %d, as with account 0 alone", when, base)
	}
	followsOne("accounts 0, 1 and the imported one shown in turn")

	// Names. The imported account by keyboard: Tab to "Rename this account", Enter, type, Enter.
	tabTo(t, ctx, "#btn-rename-account", 8)
	step(t, ctx, "name the imported account by keyboard", 20*time.Second,
		chromedp.KeyEvent(kb.Enter),
		waitFor(`!document.getElementById('sheet').hidden && document.activeElement && document.activeElement.id === 'account-name'`, 5*time.Second),
		chromedp.KeyEvent("Old phone"),
		chromedp.KeyEvent(kb.Enter),
		waitFor(`document.getElementById('sheet').hidden && document.activeElement.id === 'btn-rename-account'`, 10*time.Second))
	label := func(a string) string {
		return eval[string](t, ctx, `[...document.querySelectorAll('#account-select option')].find((o) => o.value.toLowerCase() === '`+a+`').textContent`)
	}
	short := func(a string) string { return a[:6] + "…" + a[len(a)-4:] }
	if got, want := label(imported), "Old phone — "+short(addr.Hex()); got != want {
		t.Fatalf("the imported account is listed as %q, want %q", got, want)
	}
	// Account 0 by pointer: a blank name is refused in words, then "Concerts".
	step(t, ctx, "account 0: a blank name is refused", 40*time.Second,
		pick(acct0), shows(acct0, 1),
		clickSettled("#btn-rename-account"),
		chromedp.WaitVisible(css("#account-name")),
		typeInto("account-name", "   "),
		chromedp.Click(css("#btn-save-name")),
		waitFor(`!document.getElementById('sheet-error').hidden && document.getElementById('sheet-error').textContent.includes('1 to 32 characters')`, 10*time.Second))
	checkTouchTargets(t, ctx)
	audit(t, ctx, "rename an account")
	step(t, ctx, "account 0 named", 20*time.Second,
		typeInto("account-name", "Concerts"),
		chromedp.Click(css("#btn-save-name")),
		waitFor(`document.getElementById('sheet').hidden`, 10*time.Second))
	if got, want := label(acct0), "Concerts — "+short(devAccount0); got != want {
		t.Fatalf("account 0 is listed as %q, want %q", got, want)
	}
	step(t, ctx, "reload: the names are kept", 90*time.Second,
		chromedp.Reload(),
		waitFor(`document.body.dataset.view === 'unlock'`, 45*time.Second),
		chromedp.SendKeys(css("#unlock-password"), "correct horse battery"),
		chromedp.Click(css("#btn-unlock")),
		shows(acct0, 1))
	if got := []string{label(acct0), label(acct1), label(imported)}; got[0] != "Concerts — "+short(devAccount0) ||
		got[1] != "Account 1: "+short(devAccount1) || got[2] != "Old phone — "+short(addr.Hex()) {
		t.Fatalf("accounts listed after the reload: %q", got)
	}

	// Removing: offered for the imported account only, confirmed with the password.
	if !eval[bool](t, ctx, `document.getElementById('btn-remove-account').hidden`) {
		t.Fatal("account 0 (from the recovery phrase) offers to be removed")
	}
	step(t, ctx, "account 1, then the imported account", 40*time.Second,
		pick(acct1), shows(acct1, 1), pick(imported), shows(imported, 0))
	followsOne("after the reload, accounts 0, 1 and the imported one shown in turn")
	step(t, ctx, "the imported account offers removal", 40*time.Second,
		waitFor(`!document.getElementById('btn-remove-account').hidden`, 5*time.Second),
		clickSettled("#btn-remove-account"),
		chromedp.WaitVisible(css("#remove-password")))
	if warn := eval[string](t, ctx, `document.getElementById('remove-warning').textContent`); !strings.Contains(warn, "gone from this wallet") || !strings.Contains(warn, "keystore file") {
		t.Fatalf("the confirmation says: %s", warn)
	}
	checkTouchTargets(t, ctx)
	audit(t, ctx, "remove an imported account")
	shot(t, ctx, "account-remove")
	step(t, ctx, "a wrong password removes nothing", 40*time.Second,
		chromedp.SendKeys(css("#remove-password"), "not the password"),
		chromedp.Click(css("#btn-confirm-remove")),
		waitFor(`!document.getElementById('sheet-error').hidden && document.getElementById('sheet-error').textContent.includes('not right')`, 30*time.Second))
	if n := eval[int](t, ctx, `document.querySelectorAll('#account-select option').length`); n != 3 {
		t.Fatalf("%d accounts listed after a wrong password, want 3", n)
	}
	step(t, ctx, "removed: acting for account 0 again", 60*time.Second,
		typeInto("remove-password", "correct horse battery"),
		chromedp.Click(css("#btn-confirm-remove")),
		waitFor(`document.body.dataset.removed === '`+imported+`'`, 30*time.Second),
		shows(acct0, 1))
	if opts := eval[string](t, ctx, `[...document.querySelectorAll('#account-select option')].map((o) => o.textContent).join('|')`); strings.Contains(opts, "Old phone") ||
		strings.Count(opts, "|") != 1 {
		t.Fatalf("accounts listed after the removal: %s", opts)
	}
	audit(t, ctx, "after removing an account")
	step(t, ctx, "the picker in view", 5*time.Second,
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`), chromedp.Sleep(200*time.Millisecond))
	shot(t, ctx, "account-names")

	followsOne("the imported account removed, account 0 shown")
}

// subscriptions reads the relay's live subscriptions from its /metrics.
func subscriptions(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url + "metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "stagepass_ws_subscriptions "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("metrics: %s", line)
			}
			return n
		}
	}
	t.Fatalf("no stagepass_ws_subscriptions in /metrics:\n%s", b)
	return 0
}
