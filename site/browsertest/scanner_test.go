package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/common"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// The door tests need an event whose doors are open (the demo event's open in 30 days), so
// they create one through the relay as its issuer would (a gasless createEvent), with
// development account 2 as its gate, and buy tickets with the wallet's own actions — the
// chain side from Go, the door in the browser.

// relayRPC calls the relay's JSON-RPC over HTTP.
func relayRPC(url, method string, params []any, out any) error {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	res, err := http.Post(url+"rpc", "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var r struct {
		Result json.RawMessage
		Error  *struct{ Message string }
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %s", method, r.Error.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Result, out)
}

func mustRPC(t testing.TB, url, method string, params []any, out any) {
	t.Helper()
	if err := relayRPC(url, method, params, out); err != nil {
		t.Fatal(err)
	}
}

func devKey(t testing.TB, i uint32) *ethcrypto.PrivateKey {
	t.Helper()
	k, err := keys.DevAccount(i)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// actionEnv is what the wallet asks the relay before building a gasless action.
func actionEnv(t testing.TB, url string, from ethcrypto.Address) (actions.Env, protocol.ChainInfo) {
	t.Helper()
	var ci protocol.ChainInfo
	var nonce string
	mustRPC(t, url, protocol.MethodChainInfo, []any{}, &ci)
	mustRPC(t, url, protocol.MethodForwarderNonce, []any{from.Hex()}, &nonce)
	n, ok := new(big.Int).SetString(nonce, 10)
	if !ok {
		t.Fatalf("nonce %q", nonce)
	}
	return actions.Env{ChainID: ci.ChainID, Forwarder: ethcrypto.MustParseAddress(ci.Forwarder), Nonce: n, Now: time.Now()}, ci
}

// submit sends a signed forward request and waits until it is mined.
func submit(t testing.TB, url string, sub protocol.ForwardSubmission) protocol.RequestStatus {
	t.Helper()
	var st protocol.RequestStatus
	mustRPC(t, url, protocol.MethodSendForward, []any{sub}, &st)
	deadline := time.Now().Add(60 * time.Second)
	for st.State != protocol.RequestMined {
		if st.State == protocol.RequestFailed || time.Now().After(deadline) {
			t.Fatalf("request %s: %s %s", st.ID, st.State, st.Reason)
		}
		time.Sleep(200 * time.Millisecond)
		mustRPC(t, url, protocol.MethodRequestStatus, []any{st.ID}, &st)
	}
	return st
}

// doorEvent creates an event whose doors opened a day ago and whose sales close in a day,
// issued by development account 1, with development account 2 as its gate.
func doorEvent(t testing.TB, url string) protocol.EventInfo {
	t.Helper()
	issuer, gate := devKey(t, 1), devKey(t, 2)
	env, ci := actionEnv(t, url, issuer.Address())
	now := time.Now().Unix()
	day := int64(86400)
	name := "Late Show " + time.Now().Format("15:04:05.000")
	usd := big.NewInt(1_000_000)
	cfg := events.EventConfig{
		Name: name, Venue: "Harbour Hall, Side Door", BaseURI: "http://127.0.0.1/meta/",
		StartsAt: big.NewInt(now + 2*day), DoorsOpenAt: big.NewInt(now - day),
		Currency: common.HexToAddress(ci.Currency),
		Tiers:    []events.TierConfig{{Name: "General admission", FaceValue: new(big.Int).Mul(big.NewInt(30), usd), Supply: 1000}},
		Rules: events.Rules{MaxPerBuyer: 1000, MaxResaleMarkupBps: 1000, SellerMarkupShareBps: 5000, GiftsAllowed: true,
			ResaleClosesAt: big.NewInt(now + day), CategoryQuotaBps: [5]uint16{10000, 10000, 10000, 10000, 10000},
			PresaleEndsAt: new(big.Int), SuperfanPresaleEndsAt: new(big.Int)},
		Splits: []events.Split{{Account: common.Address(issuer.Address()), Bps: 10000, Role: 0}},
		Gates:  []common.Address{common.Address(gate.Address())},
	}
	req := &protocol.ForwardRequest{From: issuer.Address(), To: ethcrypto.MustParseAddress(ci.Factory), Value: new(big.Int),
		Gas: big.NewInt(2_000_000), Nonce: env.Nonce, Deadline: uint64(now + 3600), Data: events.NewEventFactory().PackCreateEvent(cfg)}
	digest, err := req.Digest(protocol.ForwarderDomain(ci.ChainID, env.Forwarder))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := issuer.Sign(digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	submit(t, url, protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)})
	deadline := time.Now().Add(30 * time.Second)
	for {
		var evs []protocol.EventInfo
		mustRPC(t, url, protocol.MethodEvents, []any{}, &evs)
		for _, ev := range evs {
			if ev.Name == name {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %q not listed by the relay", name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// buyTickets buys n tickets of the first tier for k with TestUSD, gaslessly (the wallet's
// own buy action: a permit and a forward request; up to 10 a purchase), and returns the ids
// of the tickets it bought.
func buyTickets(t testing.TB, url string, ev protocol.EventInfo, k *ethcrypto.PrivateKey, n uint64) []string {
	t.Helper()
	had := map[string]bool{}
	for _, id := range ticketsOf(t, url, ev, k.Address(), nil) {
		had[id] = true
	}
	for left := n; left > 0; {
		qty := min(left, 10)
		left -= qty
		env, _ := actionEnv(t, url, k.Address())
		var token protocol.PermitInfo
		mustRPC(t, url, protocol.MethodPermitInfo, []any{ev.Currency, k.Address().Hex()}, &token)
		a, err := actions.Buy(k.Address(), env, &ev, &token, 0, qty)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := a.Sign(k)
		if err != nil {
			t.Fatal(err)
		}
		submit(t, url, sub)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ids []string
		for _, id := range ticketsOf(t, url, ev, k.Address(), nil) {
			if !had[id] {
				ids = append(ids, id)
			}
		}
		if uint64(len(ids)) >= n {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("bought %d tickets, the relay lists %v", n, ids)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ticketsOf lists owner's tickets of ev (checked in or not, as checkedIn asks; nil: all).
func ticketsOf(t testing.TB, url string, ev protocol.EventInfo, owner ethcrypto.Address, checkedIn *bool) []string {
	t.Helper()
	var held []protocol.TicketInfo
	mustRPC(t, url, protocol.MethodTicketsByOwner, []any{owner.Hex()}, &held)
	var ids []string
	for _, tk := range held {
		if strings.EqualFold(tk.Event, ev.Address) && (checkedIn == nil || *checkedIn == tk.CheckedIn) {
			ids = append(ids, tk.TokenID)
		}
	}
	return ids
}

// checkedIn lists owner's tickets of ev that the relay's index shows checked in, waiting
// up to 10 s for n of them (the index follows the chain a moment after a request is mined).
func checkedIn(t testing.TB, url string, ev protocol.EventInfo, owner ethcrypto.Address, n int) []string {
	t.Helper()
	yes := true
	deadline := time.Now().Add(10 * time.Second)
	for {
		in := ticketsOf(t, url, ev, owner, &yes)
		if len(in) >= n || time.Now().After(deadline) {
			return in
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// doorPass is the holder's door pass for a ticket as the fan's wallet makes it at `at`.
func doorPass(t testing.TB, chainID uint64, ev protocol.EventInfo, holder *ethcrypto.PrivateKey, tokenID string, at time.Time) string {
	t.Helper()
	id, _ := new(big.Int).SetString(tokenID, 10)
	p, _, err := protocol.MakePass(holder, chainID, ethcrypto.MustParseAddress(ev.Address), id, at)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeY4M writes what Chromium's fake camera plays (--use-file-for-fake-video-capture): a
// 640×480 YUV4MPEG2 4:2:0 video whose frames show payload as a QR code, black on white,
// 8 px a module with its quiet zone (an empty payload: a white frame). It writes a new file
// and renames it into place, so a camera still reading the old one is not disturbed.
func writeY4M(t testing.TB, path, payload string) {
	t.Helper()
	const w, h = 640, 480
	y := bytes.Repeat([]byte{235}, w*h)
	if payload != "" {
		q, err := qrcode.New(payload, qrcode.Medium)
		if err != nil {
			t.Fatal(err)
		}
		bm := q.Bitmap() // with the 4-module quiet zone
		px := min(h*9/10/len(bm), 8)
		x0, y0 := (w-len(bm)*px)/2, (h-len(bm)*px)/2
		for r, row := range bm {
			for c, dark := range row {
				if !dark {
					continue
				}
				for dy := range px {
					line := (y0+r*px+dy)*w + x0 + c*px
					for dx := range px {
						y[line+dx] = 16
					}
				}
			}
		}
	}
	chroma := bytes.Repeat([]byte{128}, w/2*h/2)
	var b bytes.Buffer
	fmt.Fprintf(&b, "YUV4MPEG2 W%d H%d F10:1 Ip A1:1 C420jpeg\n", w, h)
	for range 2 {
		b.WriteString("FRAME\n")
		b.Write(y)
		b.Write(chroma)
		b.Write(chroma)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// fakeCamera is the Chromium flags that make the file at path the camera, allowed without a
// prompt.
func fakeCamera(path string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-video-capture", path),
	}
}

// openDoor opens the scanner page at url, restores the development wallet, adds accounts
// up to account 2 (the gate) and opens the door of ev.
func openDoor(t testing.TB, ctx context.Context, url string, ev protocol.EventInfo) {
	t.Helper()
	gate := strings.ToLower(devKey(t, 2).Address().Hex())
	step(t, ctx, "scanner: wallet ready", 60*time.Second,
		chromedp.Navigate(url+"scanner.html"),
		waitFor(`document.body.dataset.view === 'restore'`, 45*time.Second))
	step(t, ctx, "scanner: restore the gate wallet", 60*time.Second,
		restoreDev(false),
		waitFor(`document.body.dataset.view === 'setup'`, 45*time.Second),
		chromedp.Click(css("#btn-add-account")),
		waitFor(`document.querySelectorAll('#gate-account option').length === 2`, 10*time.Second),
		chromedp.Click(css("#btn-add-account")),
		waitFor(`document.querySelectorAll('#gate-account option').length === 3`, 10*time.Second),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			const pick = (id, v) => { const s = document.getElementById(id); s.value = [...s.options].find((o) => o.value.toLowerCase() === v).value; };
			pick('gate-account', %q); pick('door-event', %q); })()`, gate, strings.ToLower(ev.Address))))
	step(t, ctx, "scanner: open the door", 60*time.Second,
		chromedp.Click(css("#btn-open-door")),
		waitFor(`document.body.dataset.view === 'door' && document.body.dataset.online === 'true'`, 45*time.Second))
}

type verdict struct {
	Code, Word, Reason, Detail string
	Timing                     map[string]any
}

// lastVerdict waits for the page's verdict number n and reads it.
func lastVerdict(t testing.TB, ctx context.Context, what string, n int) verdict {
	t.Helper()
	step(t, ctx, what, 60*time.Second, waitFor(fmt.Sprintf(`Number(document.body.dataset.verdicts || 0) >= %d`, n), 55*time.Second))
	v := eval[verdict](t, ctx, `({code: document.getElementById('verdict').dataset.code,
		word: document.getElementById('verdict-word').textContent, reason: document.getElementById('verdict-reason').textContent,
		detail: document.getElementById('verdict-detail').textContent, timing: JSON.parse(document.body.dataset.lastTiming || '{}')})`)
	t.Logf("verdict %d: %s %s — %s (%s) %v", n, v.Word, v.Code, v.Reason, v.Detail, v.Timing)
	return v
}

func verdicts(t testing.TB, ctx context.Context) int {
	return int(eval[float64](t, ctx, `Number(document.body.dataset.verdicts || 0)`))
}

// showCamera points the scanner's camera at payload: the camera is stopped, the fake
// camera's file replaced, and the camera started again (Chromium opens the file anew).
func showCamera(t testing.TB, ctx context.Context, cam, payload string) {
	t.Helper()
	if eval[bool](t, ctx, `document.body.dataset.camera === 'on'`) {
		step(t, ctx, "stop the camera", 10*time.Second, chromedp.Click(css("#btn-camera")), waitFor(`document.body.dataset.camera === 'off'`, 5*time.Second))
	}
	writeY4M(t, cam, payload)
	step(t, ctx, "start the camera", 20*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.getElementById('btn-next').disabled || document.getElementById('btn-next').click()`),
		chromedp.Click(css("#btn-camera")), waitFor(`document.body.dataset.camera === 'on'`, 15*time.Second))
}

// The door with the camera: the test buys tickets, signs their door passes with the wallet's
// pass code and plays each as Chromium's fake camera (a y4m of the QR); the scanner page
// decodes them with jsQR (Chromium on Linux has no BarcodeDetector) and the gate's wallet
// checks them: a valid pass is admitted and checked in on the chain, the same ticket again
// is refused as already admitted, a ticket another door checked in is refused as already
// checked in, and an expired pass is refused.
func TestBrowserScannerCamera(t *testing.T) {
	setup(t)
	ev := doorEvent(t, env.url)
	holder := devKey(t, 0)
	ids := buyTickets(t, env.url, ev, holder, 3)
	var ci protocol.ChainInfo
	mustRPC(t, env.url, protocol.MethodChainInfo, []any{}, &ci)

	cam := filepath.Join(t.TempDir(), "camera.y4m")
	writeY4M(t, cam, "")
	ctx, done := browserWith(t, fakeCamera(cam))
	defer done()
	openDoor(t, ctx, env.url, ev)
	shotTop(t, ctx, "scanner-door")
	checkTouchTargets(t, ctx)

	showCamera(t, ctx, cam, doorPass(t, ci.ChainID, ev, holder, ids[0], time.Now()))
	v := lastVerdict(t, ctx, "a valid pass is admitted", 1)
	if v.Code != "ADMITTED" || v.Word != "Admitted" || !strings.Contains(v.Reason, "Checked in on the chain") {
		t.Fatalf("valid pass: %+v", v)
	}
	if got := eval[string](t, ctx, `document.body.dataset.decoder`); got != "jsQR" && got != "BarcodeDetector" {
		t.Errorf("decoder %q", got)
	}
	t.Logf("scanner time, QR in view → verdict: %v ms (decode %v ms, wallet check + check-in mined %v ms)",
		v.Timing["inViewToVerdictMs"], v.Timing["decodeMs"], v.Timing["walletMs"])
	if in := checkedIn(t, env.url, ev, holder.Address(), 1); len(in) != 1 || in[0] != ids[0] {
		t.Fatalf("checked in on the chain: %v, want [%s]", in, ids[0])
	}
	shotTop(t, ctx, "scanner-admitted")
	checkVerdictContrast(t, ctx)
	if got := eval[string](t, ctx, `document.getElementById('count-admitted').textContent`); got != "1" {
		t.Errorf("admitted counter %q", got)
	}

	// The same ticket again (a fresh code from the fan's phone): this door let it in already.
	showCamera(t, ctx, cam, doorPass(t, ci.ChainID, ev, holder, ids[0], time.Now()))
	if v := lastVerdict(t, ctx, "the same ticket again is refused", 2); v.Code != "PASS_REPLAYED" || v.Word != "Rejected" {
		t.Fatalf("second scan: %+v", v)
	}

	// A ticket another door checked in (the gate's key from Go, through the relay).
	env2, _ := actionEnv(t, env.url, devKey(t, 2).Address())
	id1, _ := new(big.Int).SetString(ids[1], 10)
	a, err := actions.CheckIn(devKey(t, 2).Address(), env2, &ev, []*big.Int{id1})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := a.Sign(devKey(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	submit(t, env.url, sub)
	showCamera(t, ctx, cam, doorPass(t, ci.ChainID, ev, holder, ids[1], time.Now()))
	if v := lastVerdict(t, ctx, "checked in at another door", 3); v.Code != "ALREADY_CHECKED_IN" || !strings.Contains(v.Reason, "already checked in") {
		t.Fatalf("ticket checked in elsewhere: %+v", v)
	}

	// An expired pass: a code from two minutes ago (screenshot, old photo).
	showCamera(t, ctx, cam, doorPass(t, ci.ChainID, ev, holder, ids[2], time.Now().Add(-2*time.Minute)))
	if v := lastVerdict(t, ctx, "an expired pass is refused", 4); v.Code != "PASS_EXPIRED" || !strings.Contains(v.Reason, "expired") {
		t.Fatalf("expired pass: %+v", v)
	}
	shotTop(t, ctx, "scanner-rejected")
	checkVerdictContrast(t, ctx)
	if got := eval[string](t, ctx, `document.getElementById('count-rejected').textContent`); got != "3" {
		t.Errorf("rejected counter %q", got)
	}
	if in := checkedIn(t, env.url, ev, holder.Address(), 2); len(in) != 2 {
		t.Errorf("checked in on the chain: %v, want 2 (the admitted one and the other door's)", in)
	}
}

// checkVerdictContrast: the verdict's words against its green or red are at least 4.5:1
// (WCAG AA for text), computed from the page's styles.
func checkVerdictContrast(t testing.TB, ctx context.Context) {
	t.Helper()
	c := eval[float64](t, ctx, `(() => {
		const lum = (css) => {
			const [r, g, b] = css.match(/[\d.]+/g).slice(0, 3).map((v) => { v = Number(v) / 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
			return 0.2126 * r + 0.7152 * g + 0.0722 * b;
		};
		const bg = lum(getComputedStyle(document.getElementById('verdict')).backgroundColor);
		return Math.min(...['verdict-word', 'verdict-reason', 'verdict-detail'].map((id) => {
			const fg = lum(getComputedStyle(document.getElementById(id)).color);
			return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
		}));
	})()`)
	state := eval[string](t, ctx, `document.getElementById('verdict').dataset.state`)
	if c < 4.5 {
		t.Errorf("verdict (%s) contrast %.1f:1, under 4.5:1", state, c)
	}
	t.Logf("verdict (%s) contrast %.1f:1", state, c)
}

// shotTop saves a screenshot of the top of the page (the verdict and the counters).
func shotTop(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`), chromedp.Sleep(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, name)
}

// setOffline cuts (or restores) the page's network through the DevTools protocol.
func setOffline(t testing.TB, ctx context.Context, offline bool) {
	t.Helper()
	cond := []*network.Conditions{{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1}}
	if !offline {
		cond = []*network.Conditions{}
	}
	if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: cond, EmulateOfflineServiceWorker: &offline}); err != nil {
		t.Fatalf("emulate network conditions: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1}); err != nil {
		t.Fatalf("override network state: %v", err)
	}
}

// typePass enters a pass code by hand (the keyboard path) and checks it.
func typePass(t testing.TB, ctx context.Context, payload string) {
	t.Helper()
	step(t, ctx, "type a pass code", 10*time.Second,
		chromedp.SendKeys(css("#manual-payload"), payload),
		chromedp.Click(css("#btn-check")))
}

// Two doors lose the network (cut through the DevTools protocol after they loaded the door
// list): both keep admitting against the door list and queue the check-ins, and the same
// ticket gets in at both. When the network returns, the first door's queue is checked in on
// the chain; the second door finds that ticket already checked in by the first and reports
// the double entry.
func TestBrowserScannerOfflineDoubleEntry(t *testing.T) {
	setup(t)
	ev := doorEvent(t, env.url)
	holder := devKey(t, 0)
	ids := buyTickets(t, env.url, ev, holder, 2)
	var ci protocol.ChainInfo
	mustRPC(t, env.url, protocol.MethodChainInfo, []any{}, &ci)
	offlineNoise := []string{"WebSocket connection to", "Failed to load resource", "ERR_INTERNET_DISCONNECTED"}
	ctx1, done1 := browser(t, offlineNoise...)
	defer done1()
	ctx2, done2 := browser(t, offlineNoise...)
	defer done2()
	openDoor(t, ctx1, env.url, ev)
	openDoor(t, ctx2, env.url, ev)
	for _, ctx := range []context.Context{ctx1, ctx2} {
		if s := eval[string](t, ctx, `document.getElementById('snapshot').textContent`); !strings.Contains(s, "Door list: 2 tickets") {
			t.Fatalf("door list: %q", s)
		}
	}

	step(t, ctx1, "door 1: service worker ready", 30*time.Second,
		waitFor(`document.body.dataset.offlineReady === 'true'`, 25*time.Second),
		waitFor(`caches.open('stagepass-v1').then((c) => Promise.all(['scanner.html', 'scanner.js', 'vendor/jsqr/jsQR.js', 'wallet/wallet.wasm'].map((u) => c.match(u)))).then((r) => r.every(Boolean))`, 25*time.Second))
	setOffline(t, ctx1, true)
	setOffline(t, ctx2, true)
	for i, ctx := range []context.Context{ctx1, ctx2} {
		step(t, ctx, fmt.Sprintf("door %d offline", i+1), 60*time.Second, waitFor(`document.body.dataset.online === 'false'`, 55*time.Second))
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch('healthz', {cache: 'no-store'}).then(() => 'reached', () => 'cut')`, chromedp.EvalAwaitPromise))
		if err != nil || got != "cut" {
			t.Fatalf("door %d: the relay is %q with the network cut (%v)", i+1, got, err)
		}
	}
	typePass(t, ctx1, doorPass(t, ci.ChainID, ev, holder, ids[0], time.Now()))
	if v := lastVerdict(t, ctx1, "door 1 admits offline", 1); v.Code != "ADMITTED" || !strings.Contains(v.Reason, "queued") {
		t.Fatalf("offline admission: %+v", v)
	}
	typePass(t, ctx1, doorPass(t, ci.ChainID, ev, holder, ids[1], time.Now()))
	lastVerdict(t, ctx1, "door 1 admits the second ticket", 2)
	typePass(t, ctx2, doorPass(t, ci.ChainID, ev, holder, ids[1], time.Now()))
	if v := lastVerdict(t, ctx2, "door 2 admits the same ticket offline", 1); v.Code != "ADMITTED" {
		t.Fatalf("door 2 offline: %+v", v)
	}
	step(t, ctx1, "door 1 queued 2", 5*time.Second, waitFor(`document.body.dataset.queued === '2'`, 5*time.Second))
	shotTop(t, ctx1, "scanner-offline")
	no := false
	if in := ticketsOf(t, env.url, ev, holder.Address(), &no); len(in) != 2 {
		t.Fatalf("checked in on the chain while the doors were offline: %v", in)
	}

	// Door 1 reloads with no network: the service worker serves the page and the wallet, and
	// the door reopens from the wallet's cache with its queue.
	step(t, ctx1, "door 1 reloads offline", 60*time.Second,
		chromedp.Reload(),
		waitFor(`document.body.dataset.view === 'unlock'`, 45*time.Second),
		chromedp.SendKeys(css("#unlock-password"), "correct horse battery"),
		chromedp.Click(css("#btn-unlock")),
		waitFor(`document.body.dataset.view === 'door' && document.body.dataset.online === 'false'`, 30*time.Second))
	if q := eval[string](t, ctx1, `document.body.dataset.queued`); q != "2" {
		t.Fatalf("door 1's queue after an offline reload: %q", q)
	}

	// The network returns to door 1: it syncs by itself.
	setOffline(t, ctx1, false)
	step(t, ctx1, "door 1 back online, synced", 90*time.Second,
		waitFor(`document.body.dataset.online === 'true'`, 45*time.Second),
		waitFor(`document.body.dataset.sync === 'mined' && document.body.dataset.queued === '0'`, 60*time.Second))
	if in := checkedIn(t, env.url, ev, holder.Address(), 2); len(in) != 2 {
		t.Fatalf("checked in on the chain after door 1's sync: %v", in)
	}
	if d := eval[string](t, ctx1, `document.body.dataset.doubleEntries`); d != "" {
		t.Errorf("door 1, first to sync, reports double entries: %q", d)
	}

	// Then to door 2: its ticket was checked in by door 1 meanwhile — a double entry.
	setOffline(t, ctx2, false)
	step(t, ctx2, "door 2 back online, double entry found", 90*time.Second,
		waitFor(`document.body.dataset.online === 'true'`, 45*time.Second),
		waitFor(`document.body.dataset.doubleEntries === `+strconv.Quote(ids[1]), 60*time.Second))
	msg := eval[string](t, ctx2, `document.getElementById('double-entries').textContent`)
	if !strings.Contains(msg, "Double entry") || !strings.Contains(msg, ids[1]) {
		t.Errorf("double entry message: %q", msg)
	}
	t.Logf("door 2: %s", msg)
	shotTop(t, ctx2, "scanner-double-entry")
}

// BenchmarkBrowserScanner measures the scanner page's time from a pass's QR in view (the
// first camera frame: the fake camera shows the code from its first frame) to the verdict
// on the screen, online (the gate's check-in mined on the dev chain, 500 ms blocks) and
// offline (the network cut: against the door list, check-in queued). Each pass is a fresh
// ticket; the camera restart between passes is not timed. Run with a fixed count:
//
//	go test ./site/browsertest -run '^$' -bench BrowserScanner -benchtime 10x
func BenchmarkBrowserScanner(b *testing.B) {
	setup(b)
	ev := doorEvent(b, env.url)
	holder := devKey(b, 0)
	var ci protocol.ChainInfo
	mustRPC(b, env.url, protocol.MethodChainInfo, []any{}, &ci)
	cam := filepath.Join(b.TempDir(), "camera.y4m")
	writeY4M(b, cam, "")
	ctx, done := browserWith(b, fakeCamera(cam), "WebSocket connection to", "Failed to load resource", "ERR_INTERNET_DISCONNECTED")
	defer done()
	openDoor(b, ctx, env.url, ev)
	for _, mode := range []string{"online", "offline"} {
		b.Run(mode, func(b *testing.B) {
			// Online, the door list learns the new tickets from the relay's feed; then the cut.
			setOffline(b, ctx, false)
			step(b, ctx, "online", 60*time.Second, waitFor(`document.body.dataset.online === 'true'`, 55*time.Second))
			ids := buyTickets(b, env.url, ev, holder, uint64(b.N))
			all := len(ticketsOf(b, env.url, ev, holder.Address(), nil))
			step(b, ctx, "the door list has them", 30*time.Second, waitFor(fmt.Sprintf(`Number(document.body.dataset.doorTickets) >= %d`, all), 25*time.Second))
			if mode == "offline" {
				setOffline(b, ctx, true)
				step(b, ctx, "offline", 60*time.Second, waitFor(`document.body.dataset.online === 'false'`, 55*time.Second))
			}
			var inView, decode, check float64
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				n := verdicts(b, ctx)
				showCamera(b, ctx, cam, doorPass(b, ci.ChainID, ev, holder, ids[i], time.Now()))
				b.StartTimer()
				v := lastVerdict(b, ctx, "verdict", n+1)
				if v.Code != "ADMITTED" {
					b.Fatalf("pass %d: %+v", i, v)
				}
				inView += v.Timing["inViewToVerdictMs"].(float64)
				decode += v.Timing["decodeMs"].(float64)
				check += v.Timing["walletMs"].(float64)
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(inView/n, "ms-in-view-to-verdict")
			b.ReportMetric(decode/n, "ms-decode")
			b.ReportMetric(check/n, "ms-check")
		})
	}
}
