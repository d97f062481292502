package browsertest

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserClaimOnMainChain: a `stagepass dev --manual-exits` of its own (the relay pays
// no exit on the main chain). The fan's account deposits 30 TestUSD on the main chain and
// is credited 30 spUSD; the Main chain panel says withdrawals must be claimed; the fan
// withdraws 12.5, and once a checkpoint carries it the withdrawal offers "Claim on the main
// chain (you pay the gas)" (reached with Tab, focus shown); its summary names the amount,
// the checkpoint and the gas the fan pays from their account; approved (signed in the
// wallet for the main chain, sent through the relay), the withdrawal reaches "Paid on the
// main chain". axe-core finds nothing serious at 360 px with the claim shown.
func TestBrowserClaimOnMainChain(t *testing.T) {
	setup(t)
	url, _, _, g := devWithBridge(t, "--manual-exits")
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
	step(t, ctx, "the main chain panel: 30 spUSD, claims needed", 30*time.Second,
		waitFor(`!document.getElementById('mainchain').hidden && document.getElementById('bridge-balance').textContent === '30.00 spUSD'`, 25*time.Second),
		waitFor(`!document.getElementById('claim-needed').hidden`, 10*time.Second))
	step(t, ctx, "withdraw 12.5: mined", 60*time.Second,
		typeInto("withdraw-amount", "12.5"),
		chromedp.Click(css("#btn-withdraw")),
		chromedp.WaitVisible(css("#btn-approve")),
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 50*time.Second),
		chromedp.Click(css("#btn-done")))
	row := `#withdrawals li[data-kind="token"]`
	step(t, ctx, "checkpointed: the claim offered", 90*time.Second,
		waitFor(`!!document.querySelector('`+row+`[data-stage="checkpointed"] .claim-btn')`, 85*time.Second))
	text := eval[string](t, ctx, `document.querySelector('`+row+`').textContent`)
	t.Logf("withdrawal: %s", text)
	for _, want := range []string{"Checkpointed on the main chain (#", "does not pay this on the main chain: claim it", "Claim on the main chain (you pay the gas)"} {
		if !strings.Contains(text, want) {
			t.Errorf("the checkpointed withdrawal lacks %q: %s", want, text)
		}
	}
	step(t, ctx, "the claim in view", 5*time.Second, chromedp.ScrollIntoView(css(row)))
	shot(t, ctx, "mainchain-claim")
	checkTouchTargets(t, ctx)
	audit(t, ctx, "main chain, claim offered")
	if n := tabTo(t, ctx, row+" .claim-btn", 80); n == 0 {
		t.Error("Tab does not reach the claim button")
	}
	step(t, ctx, "claim: the summary (Enter on the focused button)", 20*time.Second,
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(css("#btn-approve")))
	summary := eval[string](t, ctx, `document.getElementById('sheet-content').innerText`)
	t.Logf("claim summary:\n%s", summary)
	for _, want := range []string{"12.5 spUSD", "on the main chain (id 1338)", "paid by you from", "RootGateway", "until you claim"} {
		if !strings.Contains(summary, want) {
			t.Errorf("claim summary lacks %q", want)
		}
	}
	if title := eval[string](t, ctx, `document.getElementById('sheet-title').textContent`); title != "Claim 12.5 spUSD on the main chain" {
		t.Errorf("claim sheet title %q", title)
	}
	step(t, ctx, "claim: sent, then paid on the main chain", 90*time.Second,
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 30*time.Second),
		waitFor(`document.getElementById('progress').textContent.includes('gas paid by you')`, 5*time.Second),
		chromedp.Click(css("#btn-done")),
		waitFor(`(document.querySelector('`+row+`[data-stage="exited"]') || {}).textContent?.includes('Paid on the main chain')`, 60*time.Second))
	if eval[bool](t, ctx, `!!document.querySelector('`+row+` .claim-btn')`) {
		t.Error("a paid withdrawal still offers its claim")
	}
	step(t, ctx, "the paid withdrawal in view", 5*time.Second, chromedp.ScrollIntoView(css(row)))
	shot(t, ctx, "mainchain-claim-paid")
	audit(t, ctx, "main chain, claim paid")
}
