package browsertest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserGatewayDepositFromTheMainChain: a `stagepass dev` of its own with its main
// chain (the default 6 confirmations, which the relay reports too). The fan (development account 0, 5,000 TestUSD on the main chain and nothing on the
// sidechain) sees its main-chain balance in the "Main chain" panel and the relay's minimum
// (1 TestUSD), is refused below that and above its balance,
// brings 12.5 over (the summary → approve: the wallet signs a permit, the relay sends the
// main-chain transaction), and sees the deposit go "Waiting for N main-chain
// confirmations" → "Credited", its balance here 12.50 spUSD and on the main chain 4987.50.
func TestBrowserGatewayDepositFromTheMainChain(t *testing.T) {
	setup(t)
	var logs bytes.Buffer
	url, cmd, err := startDev(&logs, "--block-time", "1s", "--checkpoint-every", "4", "--anchor=false")
	defer stopDev(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("stagepass dev (main chain) log:\n%s", logs.String())
		}
	}()
	ctx, done := browser(t)
	defer done()
	step(t, ctx, "restore the dev wallet", 90*time.Second,
		chromedp.Navigate(url),
		waitFor(`document.body.dataset.view === 'onboard'`, 45*time.Second),
		restoreDev(true),
		waitFor(`document.body.dataset.view === 'app'`, 45*time.Second))
	step(t, ctx, "the main chain panel: 5000 TestUSD there, nothing here", 30*time.Second,
		waitFor(`!document.getElementById('mainchain').hidden && document.getElementById('main-balance').textContent === '5000.00 tUSD'`, 25*time.Second),
		waitFor(`document.getElementById('bridge-balance').textContent === '0.00 spUSD'`, 10*time.Second))

	if hint := eval[string](t, ctx, `document.getElementById('deposit-min').textContent`); hint != "At least 1.00 tUSD: Stagepass pays the main-chain gas." {
		t.Errorf("the deposit's minimum reads %q", hint)
	}
	if msg := refused(t, ctx, "bring 0.5: below the relay's minimum", "deposit-amount", "0.5", "btn-deposit", "deposit-error"); msg != "Stagepass brings at least 1 tUSD over for you; 0.5 tUSD is less." {
		t.Errorf("bringing 0.5 says %q", msg)
	}
	if msg := refused(t, ctx, "bring 5001: refused", "deposit-amount", "5001", "btn-deposit", "deposit-error"); !strings.Contains(msg, "more than you have") {
		t.Errorf("bringing 5001 of 5000 says %q", msg)
	}
	step(t, ctx, "bring 12.5: the summary", 20*time.Second,
		typeInto("deposit-amount", "12.5"),
		chromedp.Click(css("#btn-deposit")),
		chromedp.WaitVisible(css("#btn-approve")))
	if title := eval[string](t, ctx, `document.getElementById('sheet-title').textContent`); title != "Bring 12.50 tUSD from the main chain to Stagepass" {
		t.Errorf("deposit sheet title %q", title)
	}
	summary := eval[string](t, ctx, `document.getElementById('sheet-content').innerText`)
	t.Logf("deposit summary:\n%s", summary)
	for _, want := range []string{"12.5 tUSD", "4987.5 tUSD", "after 6 main-chain confirmations", "paid by Stagepass"} {
		if !strings.Contains(summary, want) {
			t.Errorf("deposit summary lacks %q", want)
		}
	}
	step(t, ctx, "the relay pushes the bridge's stages", 15*time.Second,
		waitFor(`document.body.dataset.bridge === 'push'`, 10*time.Second))
	// From the deposit credited on the sidechain (sp_deposits, which reads
	// ChildGateway.depositMinted, every 100 ms) to the page showing it: pushed, well within
	// the 30 s fallback poll.
	creditedAt := onChain(t, func() bool {
		var out struct {
			Result []struct {
				Stage string `json:"stage"`
			} `json:"result"`
		}
		res, err := http.Post(url+"rpc", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"sp_deposits","params":["`+devAccount0+`"]}`))
		if err != nil {
			return false
		}
		defer res.Body.Close()
		return json.NewDecoder(res.Body).Decode(&out) == nil && len(out.Result) == 1 && out.Result[0].Stage == "credited"
	})
	shownAt := watchDOM(t, ctx, `#deposits li.deposit[data-stage="credited"]`)
	step(t, ctx, "bring 12.5: sent", 30*time.Second,
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 25*time.Second),
		chromedp.Click(css("#btn-done")),
		waitFor(`(document.querySelector('#deposits li.deposit[data-stage="pending"]') || {}).textContent?.includes('main-chain confirmation')`, 15*time.Second))
	t.Logf("deposit: %s", eval[string](t, ctx, `document.querySelector('#deposits li.deposit').textContent`))
	shot(t, ctx, "mainchain-deposit-pending")
	step(t, ctx, "credited", 60*time.Second,
		waitFor(`(document.querySelector('#deposits li.deposit[data-stage="credited"]') || {}).textContent === '12.50 tUSD: Credited'`, 55*time.Second),
		waitFor(`document.getElementById('bridge-balance').textContent === '12.50 spUSD'`, 10*time.Second),
		waitFor(`document.getElementById('main-balance').textContent === '4987.50 tUSD'`, 10*time.Second))
	pushedWithin(t, "the deposit credited", creditedAt, shownAt())
	shot(t, ctx, "mainchain-deposit-credited")
	audit(t, ctx, "main chain, deposit credited")
	if n := tabTo(t, ctx, "#btn-deposit", 60); n == 0 {
		t.Error("Tab does not reach the deposit button")
	}
}
