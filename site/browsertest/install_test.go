package browsertest

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Chromium finds the fan app installable: its manifest parses without errors (names, start
// URL, display, icons it could fetch) and Page.getInstallabilityErrors reports none once the
// service worker runs, so the browser offers "Install app" / "Add to Home screen".
func TestBrowserInstallable(t *testing.T) {
	setup(t)
	ctx, done := browser(t)
	defer done()
	step(t, ctx, "open the site, service worker ready", 60*time.Second,
		chromedp.Navigate(env.url),
		waitFor(`document.body.dataset.view === 'onboard' && document.body.dataset.offlineReady === 'true'`, 45*time.Second))
	m, err := chromedp.Call(ctx, page.GetAppManifest, page.GetAppManifestParams{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Errors {
		t.Errorf("manifest %s: %s", m.URL, e.Message)
	}
	if m.Manifest == nil || m.Manifest.Name != "Stagepass" || len(m.Manifest.Icons) < 3 {
		t.Fatalf("manifest as Chromium read it: %+v", m.Manifest)
	}
	// The icons are fetched (and the manifest re-checked) asynchronously: ask until it settles.
	var problems []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := chromedp.Call(ctx, page.GetInstallabilityErrors, cdp.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		problems = problems[:0]
		for _, e := range res.InstallabilityErrors {
			var args []string
			for _, a := range e.ErrorArguments {
				args = append(args, a.Name+"="+a.Value)
			}
			problems = append(problems, e.ErrorID+" "+strings.Join(args, " "))
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(problems) > 0 {
		t.Errorf("not installable: %v", problems)
	}
	t.Logf("manifest %s: %d icons, display %s", m.URL, len(m.Manifest.Icons), m.Manifest.Display)
}
