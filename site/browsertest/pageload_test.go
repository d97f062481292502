package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// The network profile of the page-load benchmark: Chrome DevTools' "Fast 4G" preset
// (9 Mbps down and 1.5 Mbps up, each × 0.9, and 60 ms × 2.75 of latency), and a 4× slower
// CPU (DevTools' "4× slowdown").
//
// The network profile is applied by the benchmark's proxy (meter), not by DevTools'
// Network.emulateNetworkConditionsByRule: DevTools throttles the page's own requests, but
// not those of the wallet's Web Worker nor of the service worker — with it, the page had
// its wallet ready 1.87 s after navigating, sooner than 2.1 MB of wallet.wasm can cross
// 1,012,500 B/s. The proxy holds every response's headers back by the latency and paces all
// response bytes through one shared 1,012,500 B/s budget, whoever asked.
const (
	fast4GLatencyMs = 165
	fast4GDown      = 9e6 / 8 * 0.9 // bytes/s: 1,012,500 (the 1.5 Mbps upload is not applied: the page sends only requests)
	cpuSlowdown     = 4
)

// meter is a reverse proxy in front of `stagepass dev` that counts what the browser
// downloads over HTTP: each response's status line, headers and body as sent (the wallet
// precompressed, the rest as the relay sends it). Websocket traffic after the upgrade is
// not counted (it is the wallet's API, not the page).
type meter struct {
	url   string
	srv   *httptest.Server
	mu    sync.Mutex
	reqs  []metered
	shape *shaper // nil: no network profile
}

// shaper paces bytes through one budget of rate bytes a second shared by every connection.
type shaper struct {
	rate    float64
	latency time.Duration
	mu      sync.Mutex
	next    time.Time // when the budget is free again
}

func (s *shaper) wait(n int) {
	s.mu.Lock()
	now := time.Now()
	if s.next.Before(now) {
		s.next = now
	}
	s.next = s.next.Add(time.Duration(float64(n) / s.rate * float64(time.Second)))
	until := s.next
	s.mu.Unlock()
	time.Sleep(time.Until(until))
}

type metered struct {
	Path, Encoding string
	Status         int
	Bytes          int64
	Took           time.Duration
}

func newMeter(t testing.TB, target string) *meter {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	m := &meter{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		cw := &countingWriter{ResponseWriter: w, shape: m.shape}
		if m.shape != nil {
			time.Sleep(m.shape.latency)
		}
		proxy.ServeHTTP(cw, r)
		m.mu.Lock()
		m.reqs = append(m.reqs, metered{r.URL.Path, cw.Header().Get("Content-Encoding"), cw.status, cw.n, time.Since(start)})
		m.mu.Unlock()
	}))
	t.Cleanup(m.srv.Close)
	m.url = m.srv.URL + "/"
	return m
}

// take returns the requests counted since the last take and their bytes.
func (m *meter) take() ([]metered, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	reqs := m.reqs
	m.reqs = nil
	var n int64
	for _, r := range reqs {
		n += r.Bytes
	}
	return reqs, n
}

type countingWriter struct {
	http.ResponseWriter
	shape  *shaper
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(code int) {
	c.status = code
	var h strings.Builder
	_ = c.Header().Write(&h)
	c.n += int64(len(fmt.Sprintf("HTTP/1.1 %d %s\r\n\r\n", code, http.StatusText(code))) + h.Len())
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.shape == nil {
		n, err := c.ResponseWriter.Write(b)
		c.n += int64(n)
		return n, err
	}
	written := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), 8<<10)]
		c.shape.wait(len(chunk))
		n, err := c.ResponseWriter.Write(chunk)
		written += n
		c.n += int64(n)
		if err != nil {
			return written, err
		}
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		b = b[len(chunk):]
	}
	return written, nil
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// slowCPU applies the benchmark's CPU slowdown to the page through the DevTools protocol
// (Emulation.setCPUThrottlingRate; Chromium throttles the page's main thread).
func slowCPU(t testing.TB, ctx context.Context, rate float64) {
	t.Helper()
	if _, err := chromedp.Call(ctx, emulation.SetCPUThrottlingRate, emulation.SetCPUThrottlingRateParams{Rate: rate}); err != nil {
		t.Fatalf("CPU throttling: %v", err)
	}
}

// visit navigates to url and waits for the wallet to be ready (the page's
// `stagepass:wallet-ready` mark, set when the worker has the wasm running); it returns the
// mark's time from the start of the navigation.
func visit(t testing.TB, ctx context.Context, what, url string) float64 {
	t.Helper()
	step(t, ctx, what, 120*time.Second,
		chromedp.Navigate(url),
		waitFor(`performance.getEntriesByName('stagepass:wallet-ready').length > 0 && document.body.dataset.ready === 'true'`, 110*time.Second))
	return eval[float64](t, ctx, `performance.getEntriesByName('stagepass:wallet-ready')[0].startTime`)
}

func logRequests(t testing.TB, what string, reqs []metered) {
	t.Helper()
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].Bytes > reqs[j].Bytes })
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "\n\t%-32s %d %-4s %9d B %6d ms", r.Path, r.Status, r.Encoding, r.Bytes, r.Took.Milliseconds())
	}
	t.Logf("%s: %d requests%s", what, len(reqs), b.String())
}

// The fan app's load on a phone-like budget — DevTools' Fast 4G profile and a 4× slower CPU
// — and, for comparison, each alone and neither. For each run, a fresh Chromium (empty cache, no
// service worker): the first visit to the wallet ready (bytes and time), then what the
// service worker's install adds (it keeps the app and the wallet for offline use); then a
// repeat visit in the same browser.
//
//	go test ./site/browsertest -run '^$' -bench BrowserPageLoad -benchtime 3x -v
func BenchmarkBrowserPageLoad(b *testing.B) {
	setup(b)
	for _, profile := range []struct {
		name  string
		shape *shaper
		cpu   float64
	}{
		{"fast4g-cpu4x", &shaper{rate: fast4GDown, latency: fast4GLatencyMs * time.Millisecond}, cpuSlowdown},
		{"fast4g", &shaper{rate: fast4GDown, latency: fast4GLatencyMs * time.Millisecond}, 1},
		{"cpu4x", nil, cpuSlowdown},
		{"unthrottled", nil, 1},
	} {
		b.Run(profile.name, func(b *testing.B) {
			m := newMeter(b, env.url)
			m.shape = profile.shape
			var firstMs, firstBytes, installBytes, repeatMs, repeatBytes float64
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				ctx, done := browser(b)
				slowCPU(b, ctx, profile.cpu)
				m.take()
				b.StartTimer()
				ms := visit(b, ctx, "first visit: wallet ready", m.url)
				b.StopTimer()
				reqs, first := m.take()
				firstMs += ms
				firstBytes += float64(first)
				if i == 0 {
					logRequests(b, "first visit", reqs)
				}
				step(b, ctx, "service worker: app and wallet kept", 180*time.Second,
					waitFor(`document.body.dataset.offlineReady === 'true'`, 60*time.Second),
					waitFor(`caches.open('stagepass-v1').then((c) => c.match('wallet/wallet.wasm')).then((r) => !!r)`, 170*time.Second))
				reqs, install := m.take()
				installBytes += float64(install)
				if i == 0 {
					logRequests(b, "service worker install", reqs)
				}
				b.StartTimer()
				rms := visit(b, ctx, "repeat visit: wallet ready", m.url)
				b.StopTimer()
				reqs, repeat := m.take()
				repeatMs += rms
				repeatBytes += float64(repeat)
				if i == 0 {
					logRequests(b, "repeat visit", reqs)
				}
				b.Logf("run %d: first visit %.0f ms, %d B to the wallet ready, %d B more for the service worker; repeat visit %.0f ms, %d B",
					i+1, ms, first, install, rms, repeat)
				done()
			}
			runs := float64(b.N)
			b.ReportMetric(firstMs/runs, "ms-first-ready")
			b.ReportMetric(firstBytes/runs, "B-first")
			b.ReportMetric(installBytes/runs, "B-sw-install")
			b.ReportMetric(repeatMs/runs, "ms-repeat-ready")
			b.ReportMetric(repeatBytes/runs, "B-repeat")
		})
	}
}
