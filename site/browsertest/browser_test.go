package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// The well-known development mnemonic: `stagepass dev` funds its accounts with coin and
// TestUSD, so a wallet restored from it can buy gaslessly (a permit + forward request,
// the relay pays the gas). Account 0 is 0xf39F…2266.
const (
	devMnemonic = "test test test test test test test test test test test junk"
	devAccount0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	devAccount1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
	chromium    = "/usr/bin/chromium"
)

var env struct {
	once    sync.Once
	err     error
	skip    string
	url     string
	root    string
	browser string
	cmd     *exec.Cmd
	bin     string
	temp    []string // the stagepass binary and its data folder, removed at the end
	logs    bytes.Buffer
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopDev(env.cmd)
	for _, p := range env.temp {
		_ = os.RemoveAll(p)
	}
	os.Exit(code)
}

// setup finds Chromium, builds the wallet into the site (go generate ./site), builds
// stagepass and starts `stagepass dev` on a free port, once for all tests.
func setup(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the browser tests build the wallet and stagepass and drive Chromium (~30 s)")
	}
	env.once.Do(func() {
		env.browser = os.Getenv("STAGEPASS_CHROMIUM")
		if env.browser == "" {
			env.browser = chromium
		}
		if _, err := os.Stat(env.browser); err != nil {
			env.skip = fmt.Sprintf("no Chromium at %s (install Debian's: apt-get install -y chromium; ./build.sh test does)", env.browser)
			return
		}
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			env.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		env.root = filepath.Dir(strings.TrimSpace(string(out)))
		start := time.Now()
		gen := exec.Command("go", "generate", "./site")
		gen.Dir = env.root
		if b, err := gen.CombinedOutput(); err != nil {
			env.err = fmt.Errorf("go generate ./site: %v\n%s", err, b)
			return
		}
		bin := filepath.Join(os.TempDir(), fmt.Sprintf("stagepass-browsertest-%d", os.Getpid()))
		env.temp = append(env.temp, bin)
		build := exec.Command("go", "build", "-o", bin, "./relay/cmd/stagepass")
		build.Dir = env.root
		if b, err := build.CombinedOutput(); err != nil {
			env.err = fmt.Errorf("build stagepass: %v\n%s", err, b)
			return
		}
		fmt.Fprintf(os.Stderr, "browsertest: wallet.wasm and stagepass built in %s\n", time.Since(start).Round(time.Millisecond))
		env.bin = bin
		env.url, env.cmd, env.err = startDev(&env.logs)
	})
	if env.skip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browser tests need Chromium under CI: %s", env.skip)
		}
		t.Skip(env.skip)
	}
	if env.err != nil {
		t.Fatal(env.err)
	}
}

// startDev starts `stagepass dev` (500 ms blocks) on a free port and waits for /healthz;
// extra flags follow the usual ones (a later flag wins).
func startDev(logs *bytes.Buffer, extra ...string) (string, *exec.Cmd, error) {
	addr, err := devchain.FreeAddr()
	if err != nil {
		return "", nil, err
	}
	data, err := os.MkdirTemp("", "stagepass-browsertest-data")
	if err != nil {
		return "", nil, err
	}
	env.temp = append(env.temp, data)
	// --identity-http: the oracle nodes read issuers' stagepass.json from a local test server
	// over http (TestBrowserIssuerVerifiesDomain).
	cmd := exec.Command(env.bin, append([]string{"dev", "--addr", addr, "--data", data, "--block-time", "500ms", "--log-level", "warn", "--identity-http"}, extra...)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	url := "http://" + addr + "/"
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url + "healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return url, cmd, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return url, cmd, fmt.Errorf("stagepass dev did not answer /healthz in 60 s:\n%s", logs.String())
}

// stopDev stops a `stagepass dev` started by startDev.
func stopDev(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// browser starts a fresh headless Chromium (its own profile) at a 360×740 phone screen
// and collects console errors (except those containing one of expected); the returned
// func reports them as test errors.
func browser(t testing.TB, expected ...string) (context.Context, func()) {
	t.Helper()
	return browserWith(t, nil, expected...)
}

// browserWith is browser with more Chromium flags (a fake camera, …).
func browserWith(t testing.TB, flags []chromedp.ExecAllocatorOption, expected ...string) (context.Context, func()) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(env.browser),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	opts = append(opts, flags...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(1), chromedp.EmulateMobile)); err != nil {
		cancelC()
		cancelA()
		t.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	var problems []string
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if (m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException) && !matchesAny(m.String(), expected) {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	return ctx, func() {
		mu.Lock()
		for _, p := range problems {
			t.Errorf("console: %s", p)
		}
		mu.Unlock()
		cancelC()
		cancelA()
	}
}

func matchesAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// step runs actions with a timeout, failing the test with what was being done.
func step(t testing.TB, ctx context.Context, what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		shot(t, ctx, "failed-"+strings.ReplaceAll(what, " ", "-"))
		t.Fatalf("%s: %v\nrelay log:\n%s", what, err, env.logs.String())
	}
	t.Logf("%-32s %6d ms", what, time.Since(start).Milliseconds())
}

func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it is truthy.
func waitFor(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond))
}

// shot saves a 360×740 screenshot as site/screenshots/NAME.png (failures go to the
// test's temp folder instead).
func shot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	dir := filepath.Join(env.root, "site", "screenshots")
	if strings.HasPrefix(name, "failed-") {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot %s (%d bytes)", path, len(b))
}

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// A new fan opens the site, creates a wallet with a password in one step, is reminded to
// back up the recovery phrase, and sees the demo event with its rules in plain words.
func TestBrowserCreateWallet(t *testing.T) {
	setup(t)
	ctx, done := browser(t)
	defer done()
	step(t, ctx, "open the site, wallet ready", 60*time.Second,
		chromedp.Navigate(env.url),
		waitFor(`document.body.dataset.view === 'onboard'`, 45*time.Second))
	shot(t, ctx, "onboarding")
	step(t, ctx, "create a wallet", 60*time.Second,
		chromedp.SendKeys(css("#create-password"), "correct horse battery"),
		chromedp.Click(css("#btn-create")),
		waitFor(`document.body.dataset.view === 'app' && document.querySelector('#events .event')`, 45*time.Second))
	account := eval[string](t, ctx, `document.getElementById('account').textContent`)
	if !strings.HasPrefix(account, "0x") || len(account) != 42 {
		t.Fatalf("account shown = %q", account)
	}
	if hidden := eval[bool](t, ctx, `document.getElementById('backup-reminder').hidden`); hidden {
		t.Error("no backup reminder after creating a wallet")
	}
	step(t, ctx, "open the event's rules", 10*time.Second,
		chromedp.Click(css("#events .event details summary")),
		waitFor(`document.querySelector('#events .rules li')`, 5*time.Second))
	rules := eval[string](t, ctx, `document.querySelector('#events .rules').innerText`)
	for _, want := range []string{"Resale allowed up to", "per buyer", "Who gets paid"} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules lack %q:\n%s", want, rules)
		}
	}
	t.Logf("rules:\n%s", rules)
	shot(t, ctx, "events")
	checkTouchTargets(t, ctx)

	// The backup reminder leads to the recovery phrase, behind the password.
	step(t, ctx, "back up the recovery phrase", 30*time.Second,
		chromedp.Click(css("#btn-backup")),
		chromedp.SendKeys(css("#backup-password"), "correct horse battery"),
		chromedp.Click(css("#btn-reveal")),
		waitFor(`document.getElementById('phrase')`, 20*time.Second))
	if words := strings.Fields(eval[string](t, ctx, `document.getElementById('phrase').textContent`)); len(words) != 12 {
		t.Errorf("recovery phrase has %d words", len(words))
	}
	if !eval[bool](t, ctx, `document.getElementById('backup-reminder').hidden`) {
		t.Error("the reminder stays after the backup")
	}

	// Back on the site later: the wallet is on this device, locked; a wrong password is
	// told apart, the right one opens it.
	step(t, ctx, "reload, wrong password", 60*time.Second,
		chromedp.Reload(),
		waitFor(`document.body.dataset.view === 'unlock'`, 45*time.Second),
		chromedp.SendKeys(css("#unlock-password"), "not my password"),
		chromedp.Click(css("#btn-unlock")),
		waitFor(`!document.getElementById('error').hidden && /not right/.test(document.getElementById('error').textContent)`, 20*time.Second))
	shot(t, ctx, "unlock")
	step(t, ctx, "unlock", 60*time.Second,
		typeInto("unlock-password", "correct horse battery"),
		chromedp.Click(css("#btn-unlock")),
		waitFor(`document.body.dataset.view === 'app' && document.getElementById('account').textContent === `+strconv.Quote(account), 30*time.Second))
}

// The relay built with the wallet serves wallet.wasm as application/wasm (streaming
// compilation) and wasm_exec.js from the same Go release as the wasm.
func TestBrowserRelayServesWallet(t *testing.T) {
	setup(t)
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	wantExec, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"wallet/wallet.wasm": "application/wasm", "wallet/wasm_exec.js": "text/javascript"} {
		res, err := http.Get(env.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != want && !strings.HasPrefix(res.Header.Get("Content-Type"), want+";") {
			t.Errorf("GET /%s: %d %q, want %s", path, res.StatusCode, res.Header.Get("Content-Type"), want)
		}
		if path == "wallet/wasm_exec.js" && !bytes.Equal(body, wantExec) {
			t.Error("wasm_exec.js is not the one of this Go release")
		}
		t.Logf("/%s: %d bytes, %s", path, len(body), res.Header.Get("Content-Type"))
	}
}

// checkTouchTargets: every visible button and input is at least 44 px tall, and nothing is
// wider than the 360 px screen.
func checkTouchTargets(t *testing.T, ctx context.Context) {
	t.Helper()
	small := eval[[]string](t, ctx, `[...document.querySelectorAll('button, input, select, textarea')]
		.filter((e) => e.offsetParent !== null && e.getBoundingClientRect().height < 44)
		.map((e) => e.id || e.className || e.tagName)`)
	if len(small) > 0 {
		t.Errorf("touch targets under 44 px: %v", small)
	}
	if w := eval[float64](t, ctx, `document.documentElement.scrollWidth`); w > 360 {
		t.Errorf("page is %v px wide on a 360 px screen", w)
	}
	unlabelled := eval[[]string](t, ctx, `[...document.querySelectorAll('input, select, textarea')]
		.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.id)`)
	if len(unlabelled) > 0 {
		t.Errorf("inputs without a label: %v", unlabelled)
	}
}

// A fan restores the development wallet, buys a ticket with TestUSD without gas (summary →
// approve → accepted → sent → mined), sees it in My tickets, opens the door pass (the QR
// carries a pass the door's verifier accepts for this holder and ticket), and starts a
// resale: the range and the payout split show before signing, a price above the cap is
// refused before signing, and a price within it is listed on-chain.
func TestBrowserBuyTicketAndDoorPass(t *testing.T) {
	setup(t)
	ctx, done := browser(t)
	defer done()
	event, token := restoreAndBuy(t, ctx, env.url)
	step(t, ctx, "see the ticket (again)", 5*time.Second, waitFor(`document.querySelector('#tickets .ticket')`, 5*time.Second))
	// Its purchase's block gets checkpointed on the main chain (16 blocks of 500 ms).
	step(t, ctx, "the ticket is checkpointed on the main chain", 45*time.Second,
		waitFor(`/^(checkpointed|anchored)$/.test((document.querySelector('#tickets .ticket .finality') || { dataset: {} }).dataset.stage)`, 40*time.Second))
	t.Logf("finality: %s", eval[string](t, ctx, `document.querySelector('#tickets .ticket .finality').textContent`))
	shot(t, ctx, "tickets")
	checkTouchTargets(t, ctx)

	step(t, ctx, "open the door pass", 20*time.Second,
		chromedp.Click(css("#tickets .ticket button.pass-btn")),
		waitFor(`document.getElementById('pass-qr').dataset.payload`, 15*time.Second))
	payload := eval[string](t, ctx, `document.getElementById('pass-qr').dataset.payload`)
	v := protocol.Verifier{ChainID: 1337, Events: []ethcrypto.Address{ethcrypto.MustParseAddress(event)}}
	pass, err := v.Verify(payload, time.Now())
	if err != nil {
		t.Fatalf("the QR's pass does not verify: %v (%q)", err, payload)
	}
	if pass.Holder != ethcrypto.MustParseAddress(devAccount0) || pass.TokenID.String() != token {
		t.Fatalf("pass for %s #%s, want %s #%s", pass.Holder, pass.TokenID, devAccount0, token)
	}
	// The canvas holds a QR: black modules on white, sized for the modules and quiet zone.
	dark := eval[float64](t, ctx, `(() => { const c = document.getElementById('pass-qr');
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
		for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n / (c.width * c.height); })()`)
	modules := eval[string](t, ctx, `document.getElementById('pass-qr').dataset.modules`)
	if dark < 0.2 || dark > 0.7 {
		t.Errorf("QR canvas is %.0f%% dark", dark*100)
	}
	t.Logf("pass payload %d chars, QR %s modules, %.0f%% dark", len(payload), modules, dark*100)
	shot(t, ctx, "door-pass")
	// The pass rotates with the 15 s window while it is open.
	window := eval[string](t, ctx, `document.getElementById('pass').dataset.window`)
	step(t, ctx, "the pass rotates", 20*time.Second,
		waitFor(`document.getElementById('pass').dataset.window !== `+strconv.Quote(window), 17*time.Second))
	next := eval[string](t, ctx, `document.getElementById('pass-qr').dataset.payload`)
	if next == payload {
		t.Error("the window changed but the QR did not")
	}
	if _, err := v.Verify(next, time.Now()); err != nil {
		t.Errorf("the rotated pass does not verify: %v", err)
	}
	step(t, ctx, "close the pass", 10*time.Second,
		chromedp.Click(css("#btn-pass-close")),
		waitFor(`document.getElementById('pass').hidden`, 5*time.Second))

	// Resale: the range and the split before signing.
	step(t, ctx, "open resale", 20*time.Second,
		chromedp.Click(css("#tickets .ticket button.resell-btn")),
		waitFor(`document.querySelector('#resell-preview dl')`, 10*time.Second))
	split := eval[string](t, ctx, `document.getElementById('sheet-content').innerText`)
	t.Logf("resale sheet:\n%s", split)
	for _, want := range []string{"Allowed price: up to", "You receive"} {
		if !strings.Contains(split, want) {
			t.Errorf("resale sheet lacks %q", want)
		}
	}
	shot(t, ctx, "resell")
	step(t, ctx, "a price above the cap is refused", 10*time.Second,
		typeInto("resell-price", "100000"),
		waitFor(`/Too high/.test(document.getElementById('resell-preview').innerText)`, 5*time.Second),
		chromedp.Click(css("#btn-resell-next")),
		chromedp.Sleep(300*time.Millisecond))
	if eval[bool](t, ctx, `!!document.getElementById('btn-approve')`) {
		t.Fatal("a price above the cap reached the signing step")
	}
	step(t, ctx, "list at the cap, mined", 90*time.Second,
		typeInto("resell-price", capText(t, ctx)),
		chromedp.Click(css("#btn-resell-next")),
		chromedp.WaitVisible(css("#btn-approve")),
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.lastRequest = ''`),
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 60*time.Second),
		chromedp.Click(css("#btn-done")),
		waitFor(`document.querySelector('#tickets .ticket[data-state="listed"]')`, 25*time.Second))
	shot(t, ctx, "listed")
	step(t, ctx, "stop selling, mined", 90*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.lastRequest = ''`),
		chromedp.Click(css("#tickets .ticket button.unlist-btn")),
		chromedp.WaitVisible(css("#btn-approve")),
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 60*time.Second),
		chromedp.Click(css("#btn-done")),
		waitFor(`document.querySelector('#tickets .ticket[data-state="valid"]')`, 25*time.Second))

	// Gift it (the demo event allows gifts): a bad address is refused on the page, then the
	// ticket goes to account 1 and leaves My tickets.
	step(t, ctx, "gift: a bad address is refused", 10*time.Second,
		chromedp.Click(css("#tickets .ticket button.gift-btn")),
		chromedp.SendKeys(css("#gift-to"), "0x1234"),
		chromedp.Click(css("#btn-gift-next")),
		waitFor(`!document.getElementById('sheet-error').hidden`, 5*time.Second))
	shot(t, ctx, "gift")
	step(t, ctx, "gift to account 1, mined", 90*time.Second,
		typeInto("gift-to", devAccount1),
		chromedp.Click(css("#btn-gift-next")),
		chromedp.WaitVisible(css("#btn-approve")),
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.lastRequest = ''`),
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 60*time.Second),
		chromedp.Click(css("#btn-done")),
		waitFor(`!document.querySelector('#tickets .ticket[data-token="`+token+`"]')`, 25*time.Second))
}

// clickSettled clicks sel (a real mouse click) once it has stayed in place, scrolled into
// view, for 300 ms: the fan app fills panels above the settings as their data arrives
// (events, the main chain's balance and withdrawals), and a click whose point was computed
// before such a shift lands on whatever moved under it.
func clickSettled(sel string) chromedp.Action[chromedp.Void] {
	settled := fmt.Sprintf(`(() => {
		const e = document.querySelector(%q);
		if (!e) return false;
		e.scrollIntoView({ block: 'center' });
		const y = e.getBoundingClientRect().top, now = performance.now();
		if (window.__settleSel !== %q || window.__settleY !== y) {
			window.__settleSel = %q; window.__settleY = y; window.__settleAt = now;
			return false;
		}
		return now - window.__settleAt >= 300;
	})()`, sel, sel, sel)
	return chromedp.Steps(waitFor(settled, 30*time.Second), chromedp.Click(css(sel)))
}

// restoreDev fills the restore form with the development phrase and the tests' password and
// submits it; openBox first opens the fan app's "restore" box (the scanner and the issuer
// console show the form at once).
func restoreDev(openBox bool) chromedp.Action[chromedp.Void] {
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.SendKeys(css("#restore-phrase"), devMnemonic),
		chromedp.SendKeys(css("#restore-password"), "correct horse battery"),
		chromedp.Click(css("#btn-restore")),
	}
	if openBox {
		steps = append([]chromedp.Action[chromedp.Void]{chromedp.Click(css("#restore-box summary"))}, steps...)
	}
	return chromedp.Steps(steps...)
}

// typeInto replaces an input's value as typing would (an input event follows).
func typeInto(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Focus(css("#"+id)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const i = document.getElementById(%q); i.select(); })()`, id)),
		chromedp.KeyEvent("\b"),
		chromedp.SendKeys(css("#"+id), value))
}

// refused types value into the field id, presses button and waits for the form's error
// errID to show; it returns the error's text (the page refused before anything was signed).
func refused(t *testing.T, ctx context.Context, what, id, value, button, errID string) string {
	t.Helper()
	step(t, ctx, what, 20*time.Second,
		typeInto(id, value),
		chromedp.Click(css("#"+button)),
		waitFor(`!document.getElementById('`+errID+`').hidden`, 15*time.Second))
	return eval[string](t, ctx, `document.getElementById('`+errID+`').textContent`)
}

// restoreAndBuy opens the site at url, restores the development wallet and buys one ticket
// of the first tier with TestUSD (summary → approve → accepted → sent → mined), and returns
// the event and the token id shown in My tickets.
func restoreAndBuy(t *testing.T, ctx context.Context, url string) (event, token string) {
	t.Helper()
	step(t, ctx, "open the site, wallet ready", 60*time.Second,
		chromedp.Navigate(url),
		waitFor(`document.body.dataset.view === 'onboard'`, 45*time.Second))
	step(t, ctx, "restore the dev wallet", 60*time.Second,
		restoreDev(true),
		waitFor(`document.body.dataset.view === 'app' && document.querySelector('#events .event button.buy:not([disabled])')`, 45*time.Second))
	if got := eval[string](t, ctx, `document.getElementById('account').textContent`); !strings.EqualFold(got, devAccount0) {
		t.Fatalf("restored account %s, want %s", got, devAccount0)
	}
	event = eval[string](t, ctx, `document.querySelector('#events .event').dataset.event`)
	step(t, ctx, "prepare the purchase", 30*time.Second,
		chromedp.Click(css("#events .event button.buy")),
		chromedp.WaitVisible(css("#btn-approve")))
	summary := eval[string](t, ctx, `document.getElementById('sheet-content').innerText`)
	t.Logf("purchase summary:\n%s", summary)
	if !strings.Contains(summary, "tUSD") && !strings.Contains(summary, "USD") {
		t.Errorf("summary shows no TestUSD amount:\n%s", summary)
	}
	shot(t, ctx, "buy-summary")
	step(t, ctx, "approve, accepted → mined", 90*time.Second,
		chromedp.Click(css("#btn-approve")),
		waitFor(`document.querySelector('#progress li.done')`, 30*time.Second),
		waitFor(`document.body.dataset.lastRequest === 'mined'`, 60*time.Second))
	steps := eval[int](t, ctx, `document.querySelectorAll('#progress li.done').length`)
	if steps != 3 {
		t.Errorf("%d of 3 progress steps done", steps)
	}
	shot(t, ctx, "buy-mined")
	step(t, ctx, "see the ticket", 30*time.Second,
		chromedp.Click(css("#btn-done")),
		waitFor(`document.querySelector('#tickets .ticket[data-state="valid"]')`, 25*time.Second))
	token = eval[string](t, ctx, `document.querySelector('#tickets .ticket').dataset.token`)
	return event, token

}

// capText reads the cap the sheet shows ("up to 60.00 tUSD") as the number to type.
func capText(t *testing.T, ctx context.Context) string {
	t.Helper()
	s := eval[string](t, ctx, `(/up to ([0-9.]+)/.exec(document.getElementById('sheet-content').innerText) || [])[1] || ''`)
	if s == "" {
		t.Fatal("no cap shown on the resale sheet")
	}
	return s
}

// Once visited, the site opens with the relay gone: the service worker serves the app and
// wallet.wasm, the wallet unlocks, My tickets comes from its cache, and the door pass is
// signed on the device.
func TestBrowserOfflineAfterLoad(t *testing.T) {
	setup(t)
	var logs bytes.Buffer
	url, relay, err := startDev(&logs)
	defer stopDev(relay)
	if err != nil {
		t.Fatal(err)
	}
	ctx, done := browser(t, "WebSocket connection to", "Failed to load resource", "ERR_CONNECTION_REFUSED")
	defer done()
	event, token := restoreAndBuy(t, ctx, url)
	step(t, ctx, "service worker ready", 30*time.Second,
		waitFor(`document.body.dataset.offlineReady === 'true'`, 25*time.Second),
		waitFor(`caches.open('stagepass-v1').then((c) => c.match('wallet/wallet.wasm')).then((r) => !!r)`, 20*time.Second))
	stopDev(relay)
	step(t, ctx, "reload with the relay gone", 60*time.Second,
		chromedp.Reload(),
		waitFor(`document.body.dataset.view === 'unlock'`, 45*time.Second),
		chromedp.SendKeys(css("#unlock-password"), "correct horse battery"),
		chromedp.Click(css("#btn-unlock")),
		waitFor(`document.body.dataset.view === 'app' && document.querySelector('#tickets .ticket[data-token="`+token+`"]')`, 30*time.Second))
	step(t, ctx, "door pass offline", 20*time.Second,
		chromedp.Click(css("#tab-tickets")),
		chromedp.Click(css("#tickets .ticket button.pass-btn")),
		waitFor(`document.getElementById('pass-qr').dataset.payload`, 15*time.Second))
	payload := eval[string](t, ctx, `document.getElementById('pass-qr').dataset.payload`)
	v := protocol.Verifier{ChainID: 1337, Events: []ethcrypto.Address{ethcrypto.MustParseAddress(event)}}
	if pass, err := v.Verify(payload, time.Now()); err != nil || pass.TokenID.String() != token {
		t.Fatalf("offline pass: %v, %+v", err, pass)
	}
}
