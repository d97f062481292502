package browsertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stagepass/stagepass/wasm/protocol"
)

// TestBrowserIssuerVerifiesDomain (issue 8): the demo issuer (development account 1) types a
// domain in the issuer console — a local test server's 127.0.0.1:PORT — the wallet shows what
// the signature proves and makes the signed stagepass.json; the test serves what the page
// shows at /.well-known/stagepass.json, the issuer asks the oracles, and the console then
// shows the domain verified (stagepass dev runs with --identity-http, so the oracle nodes read
// it over http). The event statistics show the category mix. The issuer creates an event with
// a superfan and a fan presale (a superfan presale ending after the fan presale is refused on
// the page; the preview says both in words). In the fan app a new wallet's "My buyer category"
// says unclassified with the fact why and nothing attested; the issuer's events say "verified:
// 127.0.0.1:PORT"; the presale event says who may buy now and from when this fan may, and a
// purchase is refused in words before anything is signed.
func TestBrowserIssuerVerifiesDomain(t *testing.T) {
	setup(t)
	var mu sync.Mutex
	var file []byte
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/.well-known/stagepass.json" || file == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(file)
	}))
	defer site.Close()
	domain := strings.TrimPrefix(site.URL, "http://")

	ctx, done := browser(t)
	defer done()
	const password = "correct horse battery"
	step(t, ctx, "open the console, wallet ready", 60*time.Second,
		chromedp.Navigate(env.url+"issuer.html"),
		waitFor(`document.body.dataset.view === 'restore'`, 45*time.Second))
	step(t, ctx, "restore, account 2 (the demo issuer)", 60*time.Second,
		restoreDev(false),
		waitFor(`document.body.dataset.view === 'app' && document.body.dataset.eventsFor === '`+strings.ToLower(devAccount0)+`'`, 45*time.Second),
		chromedp.Click(css("#btn-add-account")),
		waitFor(`document.body.dataset.eventsFor === '`+strings.ToLower(devAccount1)+`' && document.querySelector('#category-mix')`, 30*time.Second))
	mix := eval[[]string](t, ctx, `[...document.querySelectorAll('#category-mix tbody tr')].map((tr) => tr.innerText.replace(/\s+/g, ' '))`)
	if len(mix) != 5 || !strings.HasPrefix(mix[0], "Unclassified buyers") || !strings.HasPrefix(mix[4], "Bots") {
		t.Errorf("category mix rows: %q", mix)
	}
	if st := eval[string](t, ctx, `document.getElementById('verify-status').textContent`); !strings.Contains(st, "Not verified") {
		t.Errorf("verify status before: %q", st)
	}
	step(t, ctx, "show the category mix", 5*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.getElementById('category-mix').scrollIntoView({ block: 'center' })`))
	shot(t, ctx, "issuer-category-mix")

	step(t, ctx, "a domain with a path is refused", 10*time.Second,
		setField("#verify-domain", domain+"/tickets"),
		chromedp.Click(css("#btn-verify-file")),
		waitFor(`!document.getElementById('verify-error').hidden`, 5*time.Second))
	if eval[bool](t, ctx, `!document.getElementById('sheet').hidden`) {
		t.Fatal("a domain with a path reached the signing step")
	}
	step(t, ctx, "the wallet's summary", 30*time.Second,
		setField("#verify-domain", "http://"+domain+"/"),
		chromedp.Click(css("#btn-verify-file")),
		chromedp.WaitVisible(css("#btn-approve")))
	summary := eval[string](t, ctx, `document.getElementById('sheet').innerText`)
	t.Logf("summary:\n%s", summary)
	for _, want := range []string{"Prove you publish tickets for " + domain, "publishes Stagepass tickets for " + domain, "Stagepass issuer verification"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	shot(t, ctx, "issuer-verify-summary")
	step(t, ctx, "sign: the stagepass.json", 30*time.Second,
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.issuerFile`, 20*time.Second))
	shown := eval[string](t, ctx, `document.getElementById('verify-file').textContent`)
	var f protocol.IssuerFile
	if err := json.Unmarshal([]byte(shown), &f); err != nil || !strings.EqualFold(f.Address, devAccount1) || f.Domain != domain || len(f.Signature) != 132 {
		t.Fatalf("the page's stagepass.json: %s (%v)", shown, err)
	}
	if url := eval[string](t, ctx, `document.getElementById('verify-url').textContent`); url != "https://"+domain+"/.well-known/stagepass.json" {
		t.Errorf("where to publish it: %q", url)
	}
	shot(t, ctx, "issuer-verify-file")
	mu.Lock()
	file = []byte(shown)
	mu.Unlock()
	step(t, ctx, "ask the oracles: verified", 90*time.Second,
		chromedp.Click(css("#btn-verify-ask")),
		waitFor(`document.body.dataset.verifyAsked`, 10*time.Second),
		waitFor(`document.body.dataset.verified === `+jsString(domain), 80*time.Second),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('verify-box').scrollIntoView({ block: 'start' })`))
	shot(t, ctx, "issuer-verified")
	audit(t, ctx, "issuer: verify your domain")

	// An event with presale windows: the superfan presale must end no later than the fan one.
	name := "Presale night " + time.Now().Format("150405")
	at := func(id string, days int) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const f = document.getElementById(%q);
			const s = new Date(Date.now() + %d * 86400e3);
			const p = (n) => String(n).padStart(2, '0');
			f.value = s.getFullYear() + '-' + p(s.getMonth() + 1) + '-' + p(s.getDate()) + 'T' + p(s.getHours()) + ':' + p(s.getMinutes());
			f.dispatchEvent(new Event('input', { bubbles: true })); })()`, id, days))
	}
	step(t, ctx, "fill in a presale event", 20*time.Second,
		chromedp.Click(css("#tab-create")),
		setField("#ev-name", name),
		setField("#ev-venue", "Warehouse 9"),
		setField("#tiers .tier-row:nth-child(1) .tier-face", "30"),
		setField("#tiers .tier-row:nth-child(1) .tier-supply", "100"),
		at("ev-superfan-presale", 3), at("ev-presale", 2),
		waitFor(`/superfan presale must end no later than the fan presale/.test(document.getElementById('problems').innerText)`, 5*time.Second))
	step(t, ctx, "presale windows in order", 10*time.Second,
		at("ev-superfan-presale", 1),
		waitFor(`document.body.dataset.problems === '0' && document.getElementById('preview-rules')`, 5*time.Second))
	preview := eval[string](t, ctx, `document.getElementById('preview-rules').innerText`)
	for _, want := range []string{"Superfan presale until", "only the artist's superfans may buy new tickets", "Fan presale until", "only the artist's fans and superfans"} {
		if !strings.Contains(preview, want) {
			t.Errorf("preview lacks %q:\n%s", want, preview)
		}
	}
	step(t, ctx, "show the preview", 5*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('.preview').scrollIntoView({ block: 'end' })`))
	shot(t, ctx, "issuer-presale-preview")
	step(t, ctx, "sign the presale event, mined", 90*time.Second,
		chromedp.Click(css("#btn-create-event")),
		chromedp.WaitVisible(css("#btn-approve")),
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 60*time.Second))
	if s := eval[string](t, ctx, `document.getElementById('sheet-content').innerText`); !strings.Contains(s, "Superfan presale") {
		t.Errorf("the wallet's summary shows no presale:\n%s", s)
	}
	step(t, ctx, "the relay lists the presale event", 30*time.Second,
		chromedp.Click(css("#btn-done")),
		waitFor(`document.querySelector('#stats h3') && document.querySelector('#stats h3').textContent === `+jsString(name), 25*time.Second))

	// A new fan: unclassified, and why; the issuer verified; the presale in words.
	fan, fanDone := browser(t)
	defer fanDone()
	step(t, fan, "a new wallet in the fan app", 90*time.Second,
		chromedp.Navigate(env.url),
		waitFor(`document.body.dataset.view === 'onboard'`, 45*time.Second),
		chromedp.SendKeys(css("#create-password"), password),
		chromedp.Click(css("#btn-create")),
		waitFor(`document.body.dataset.view === 'app' && document.body.dataset.category`, 45*time.Second))
	evSel := `[...document.querySelectorAll('#events .event')].find((e) => e.querySelector('h3').textContent === ` + jsString(name) + `)`
	step(t, fan, "the presale event is listed", 30*time.Second, waitFor(evSel, 25*time.Second))
	step(t, fan, "my buyer category", 20*time.Second,
		chromedp.Click(css("#category-box summary")),
		waitFor(`document.getElementById('category-name') && document.querySelector('#category-facts li')`, 15*time.Second),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('category-box').scrollIntoView({ block: 'start' })`))
	if got := eval[string](t, fan, `document.getElementById('category-name').textContent`); got != "unclassified" {
		t.Errorf("a new wallet's category: %q", got)
	}
	facts := eval[string](t, fan, `document.getElementById('category-facts').innerText`)
	attested := eval[string](t, fan, `document.getElementById('category-attested').innerText`)
	t.Logf("facts: %s; on the chain: %s", facts, attested)
	if !strings.Contains(attested, "Nothing attested yet") || facts == "" {
		t.Errorf("category panel: facts %q, attested %q", facts, attested)
	}
	shot(t, fan, "my-category")
	audit(t, fan, "fan: my buyer category")
	checkTouchTargets(t, fan)

	badge := eval[string](t, fan, `(`+evSel+`).querySelector('.issuer').textContent`)
	if badge != "✓ verified: "+domain {
		t.Errorf("the issuer's event says %q", badge)
	}
	if n := eval[int](t, fan, `[...document.querySelectorAll('#events .event .issuer.verified')].filter((b) => b.textContent.endsWith('verified: `+domain+`')).length`); n < 2 {
		t.Errorf("%d events show the verified issuer (the demo event and the presale event)", n)
	}
	presale := eval[string](t, fan, `(`+evSel+`).querySelector('.presale').textContent`)
	if !strings.Contains(presale, "Superfan presale: only the artist's superfans may buy now") || !strings.Contains(presale, "You may buy from") || !strings.Contains(presale, "unclassified") {
		t.Errorf("presale line: %q", presale)
	}
	step(t, fan, "buying in the presale is refused before signing", 20*time.Second,
		chromedp.Evaluate[chromedp.Void](`(`+evSel+`).querySelector('.pay-token') && (`+evSel+`).querySelector('.pay-token').click()`),
		chromedp.Evaluate[chromedp.Void](`(`+evSel+`).querySelector('button.buy').click()`),
		waitFor(`!(`+evSel+`).querySelector('.buy-error').hidden`, 5*time.Second),
		chromedp.Sleep(300*time.Millisecond),
		chromedp.Evaluate[chromedp.Void](`(`+evSel+`).querySelector('.presale').scrollIntoView({ block: 'start' })`))
	if eval[bool](t, fan, `!document.getElementById('sheet').hidden`) {
		t.Fatal("a purchase the presale refuses reached the signing step")
	}
	if msg := eval[string](t, fan, `(`+evSel+`).querySelector('.buy-error').textContent`); !strings.Contains(msg, "You may buy from") || !strings.Contains(msg, "Nothing was signed") {
		t.Errorf("refusal: %q", msg)
	}
	shot(t, fan, "presale-refused")
	audit(t, fan, "fan: presale refused")
}
