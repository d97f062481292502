//go:build linux

// Command wsload measures a websocket JSON-RPC server under many idle subscribers: the
// server's memory per connection and the latency of one publish fanned out to all of them.
// The load runs as its own process because the open-file limit is per process.
//
//	wsload serve [-addr 127.0.0.1:8546] [-bare]
//	wsload run -url ws://127.0.0.1:8546/ws -n 10000 [-publishes 10] [-interval 1s]
//
// serve is a small test server: relay/rpcserver with the topic "bench" and the method
// bench_publish([seq]), which publishes {"seq":seq,"ts":unix-nanos} on it; GET /stats
// reports the process's RSS. -bare serves the same wire shapes from a server shaped like
// gorilla/websocket's chat example (hub, two goroutines and a 256-message channel per
// connection, 1 KiB buffers), the baseline to compare with.
//
// run opens n connections, subscribes each (sp_subscribe([topic, params])), reads the
// server's /stats before and after to get RSS per connection, then asks for publishes
// (bench_publish over /rpc) one at a time and reports each one's delivery latency over
// all subscribers (receive time minus the "ts" the push carries). Both sides run on one
// machine, so their clocks agree. Loads stay on loopback addresses.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stagepass/stagepass/relay/rpcserver"
)

// maxConns stays under the 20,000 open files this machine allows a process.
const maxConns = 19000

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		err = serveCmd(ctx, os.Args[2:], nil)
	case "run":
		err = runCmd(ctx, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		log.Fatalf("wsload %s: %v", os.Args[1], err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: wsload serve [-addr 127.0.0.1:8546] [-bare]\n       wsload run -url ws://127.0.0.1:8546/ws -n 10000 [-publishes 10]\nrun either with -h for its flags")
	os.Exit(2)
}

func requireLoopback(what, hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s %q: loads stay on loopback addresses", what, hostport)
	}
	return nil
}

// ---- serve ----

// benchPush is the published message: the fan-out latency is measured from ts.
type benchPush struct {
	Seq uint64 `json:"seq"`
	TS  int64  `json:"ts"`
}

// serveCmd serves until ctx ends; ready, if set, gets the listening address.
func serveCmd(ctx context.Context, args []string, ready func(addr string)) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8546", "listen address (loopback only)")
	bare := fs.Bool("bare", false, "serve from a bare gorilla chat-shaped server instead of rpcserver (the baseline)")
	_ = fs.Parse(args)
	if err := requireLoopback("-addr", *addr); err != nil {
		return err
	}
	mux := http.NewServeMux()
	var conns func() int64
	var shutdown func(context.Context) error
	if *bare {
		h := newBareHub()
		go h.run()
		mux.HandleFunc("/ws", h.serveWS)
		mux.HandleFunc("/rpc", h.servePublish)
		conns = h.count.Load
		shutdown = func(context.Context) error { return nil }
	} else {
		srv := rpcserver.New(rpcserver.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		srv.RegisterTopic("bench", func(context.Context, *rpcserver.Request) (rpcserver.Feed, error) {
			return rpcserver.Feed{Key: "bench"}, nil
		})
		srv.Register("bench_publish", func(_ context.Context, req *rpcserver.Request) (any, error) {
			var p [1]uint64
			if err := req.DecodeParams(&p); err != nil {
				return nil, err
			}
			m := rpcserver.Message{Cursor: rpcserver.Cursor{Block: p[0]}, Data: benchPush{Seq: p[0], TS: time.Now().UnixNano()}}
			if err := srv.Publish(m, "bench"); err != nil {
				return nil, fmt.Errorf("publish %d: %w", p[0], err)
			}
			return srv.Stats().Subscriptions, nil
		})
		mux.Handle("/ws", srv.WebSocketHandler())
		mux.Handle("/rpc", srv.HTTPHandler())
		conns = func() int64 { return srv.Stats().Connections }
		shutdown = srv.Shutdown
	}
	// Profiles of the server under load (loopback only, like everything here).
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("gc") == "1" {
			runtime.GC()
			debug.FreeOSMemory()
		}
		st, err := readServerStats(conns())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
	hs := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Printf("wsload serve: %s on %s (pid %d)", map[bool]string{true: "bare chat-shaped server", false: "rpcserver"}[*bare], ln.Addr(), os.Getpid())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	return shutdown(sctx)
}

type serverStats struct {
	RSSBytes    uint64 `json:"rss_bytes"`
	HeapInuse   uint64 `json:"heap_inuse"`
	StackInuse  uint64 `json:"stack_inuse"`
	Goroutines  int    `json:"goroutines"`
	Connections int64  `json:"connections"`
	CPUNanos    int64  `json:"cpu_ns"` // user + system time of the process so far
}

func readServerStats(conns int64) (serverStats, error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := serverStats{HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Goroutines: runtime.NumGoroutine(), Connections: conns}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return st, fmt.Errorf("getrusage: %w", err)
	}
	st.CPUNanos = ru.Utime.Nano() + ru.Stime.Nano()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return st, fmt.Errorf("read RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return st, fmt.Errorf("parse VmRSS %q: %w", rest, err)
			}
			st.RSSBytes = kb << 10
			return st, nil
		}
	}
	return st, errors.New("no VmRSS in /proc/self/status")
}

// ---- the bare baseline: gorilla/websocket examples/chat, answering in our wire shapes ----

type bareClient struct {
	hub  *bareHub
	conn *websocket.Conn
	send chan []byte
}

type bareHub struct {
	clients    map[*bareClient]bool
	broadcast  chan []byte
	register   chan *bareClient
	unregister chan *bareClient
	count      atomic.Int64
}

func newBareHub() *bareHub {
	return &bareHub{
		clients: map[*bareClient]bool{}, broadcast: make(chan []byte),
		register: make(chan *bareClient), unregister: make(chan *bareClient),
	}
}

func (h *bareHub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
			h.count.Add(1)
		case c := <-h.unregister:
			if h.clients[c] {
				delete(h.clients, c)
				close(c.send)
				h.count.Add(-1)
			}
		case msg := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- msg:
				default:
					close(c.send)
					delete(h.clients, c)
					h.count.Add(-1)
				}
			}
		}
	}
}

var bareUpgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}

func (h *bareHub) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, err := bareUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &bareClient{hub: h, conn: conn, send: make(chan []byte, 256)}
	h.register <- c
	go c.writePump()
	go c.readPump()
}

// servePublish broadcasts one push stamped now.
func (h *bareHub) servePublish(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Params [1]uint64 `json:"params"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.broadcast <- fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"sp_subscription","params":{"subscription":"0x1","result":{"seq":%d,"ts":%d}}}`, req.Params[0], time.Now().UnixNano())
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":null}`)
}

func (c *bareClient) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(64 << 10)
	_ = c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(60 * time.Second)) })
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			return
		}
		// Every request is taken for a subscribe: answer with a subscription id.
		select {
		case c.send <- []byte(`{"jsonrpc":"2.0","id":1,"result":"0x1"}`):
		default:
		}
	}
}

func (c *bareClient) writePump() {
	ticker := time.NewTicker(54 * time.Second)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if !ok {
				_ = c.conn.WriteMessage(websocket.CloseMessage, nil)
				return
			}
			if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-ticker.C:
			_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// ---- run ----

type runFlags struct {
	wsURL, topic, params, rpcURL, method, statsURL string
	n, publishes, dialers                          int
	interval, settle, hold, wait                   time.Duration
}

func runCmd(ctx context.Context, args []string) error {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	fs.StringVar(&f.wsURL, "url", "ws://127.0.0.1:8546/ws", "websocket URL (loopback only)")
	fs.IntVar(&f.n, "n", 1000, fmt.Sprintf("connections to open, each with one subscription (at most %d)", maxConns))
	fs.StringVar(&f.topic, "topic", "bench", "topic to subscribe to")
	fs.StringVar(&f.params, "params", "", "topic params (JSON), if any")
	fs.StringVar(&f.rpcURL, "rpc", "", "JSON-RPC URL that triggers a publish (default: /rpc next to -url)")
	fs.StringVar(&f.method, "method", "bench_publish", "method called with [seq] to publish a push carrying {\"ts\": unix-nanos}")
	fs.StringVar(&f.statsURL, "stats", "", "server stats URL for RSS (default: /stats next to -url; \"-\" for none)")
	fs.IntVar(&f.publishes, "publishes", 10, "publishes to measure, one at a time")
	fs.DurationVar(&f.interval, "interval", time.Second, "pause between publishes")
	fs.DurationVar(&f.settle, "settle", 5*time.Second, "pause after connecting, before measuring memory")
	fs.DurationVar(&f.wait, "wait", 10*time.Second, "how long to wait for one publish to reach everyone")
	fs.DurationVar(&f.hold, "hold", 0, "keep the connections open this long at the end")
	fs.IntVar(&f.dialers, "dialers", 32, "connections opened concurrently")
	_ = fs.Parse(args)

	u, err := url.Parse(f.wsURL)
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	if err := requireLoopback("-url", u.Host); err != nil {
		return err
	}
	if f.n < 1 || f.n > maxConns {
		return fmt.Errorf("-n %d: between 1 and %d", f.n, maxConns)
	}
	base := url.URL{Scheme: strings.Replace(u.Scheme, "ws", "http", 1), Host: u.Host}
	if f.rpcURL == "" {
		f.rpcURL = base.JoinPath("rpc").String()
	}
	if f.statsURL == "" {
		f.statsURL = base.JoinPath("stats").String()
	}
	for _, s := range []string{f.rpcURL, f.statsURL} {
		if s == "-" {
			continue
		}
		if pu, err := url.Parse(s); err != nil || requireLoopback(s, pu.Host) != nil {
			return fmt.Errorf("%s: loads stay on loopback addresses", s)
		}
	}

	before, haveStats := fetchStats(f.statsURL, false)
	l := &load{lat: make([][]atomic.Int64, f.publishes+1), got: make([]atomic.Int64, f.publishes+1)}
	for i := range l.lat {
		l.lat[i] = make([]atomic.Int64, f.n)
	}
	start := time.Now()
	conns, err := l.open(ctx, f)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return err
	}
	fmt.Printf("opened %d subscribed connections in %v\n", len(conns), time.Since(start).Round(time.Millisecond))
	rd, err := newReader(l, conns)
	if err != nil {
		return err
	}
	stopReading := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		rd.run(stopReading)
	}()
	defer func() {
		close(stopReading)
		<-readerDone
	}()

	sleep(ctx, f.settle)
	if haveStats {
		after, _ := fetchStats(f.statsURL, false)
		gc, _ := fetchStats(f.statsURL, true)
		per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(f.n) / 1024 }
		fmt.Printf("server: %d connections, %d goroutines; RSS %.1f MiB -> %.1f MiB\n", after.Connections, after.Goroutines, float64(before.RSSBytes)/(1<<20), float64(after.RSSBytes)/(1<<20))
		fmt.Printf("per connection: RSS %.1f KiB (after a forced GC: %.1f KiB); heap in use %.1f KiB, stacks %.1f KiB\n",
			per(after.RSSBytes, before.RSSBytes), per(gc.RSSBytes, before.RSSBytes), per(after.HeapInuse, before.HeapInuse), per(after.StackInuse, before.StackInuse))
	}

	cpuBefore, _ := fetchStats(f.statsURL, false)
	var p50s, p99s []time.Duration
	incomplete := 0
	for seq := 1; seq <= f.publishes && ctx.Err() == nil; seq++ {
		if err := callPublish(f.rpcURL, f.method, seq); err != nil {
			return err
		}
		deadline := time.Now().Add(f.wait)
		for l.got[seq].Load() < int64(f.n)-l.dead.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		got := int(l.got[seq].Load())
		if got < f.n {
			incomplete++
		}
		var lats []int64
		for i := range l.lat[seq] {
			if v := l.lat[seq][i].Load(); v > 0 {
				lats = append(lats, v)
			}
		}
		slices.Sort(lats)
		q := func(p float64) time.Duration {
			if len(lats) == 0 {
				return 0
			}
			return time.Duration(lats[min(len(lats)-1, int(p*float64(len(lats))))])
		}
		fmt.Printf("publish %2d: delivered %d/%d  p50 %v  p90 %v  p99 %v  max %v\n", seq, got, f.n,
			q(0.50).Round(10*time.Microsecond), q(0.90).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), q(1).Round(10*time.Microsecond))
		p50s, p99s = append(p50s, q(0.50)), append(p99s, q(0.99))
		sleep(ctx, f.interval)
	}
	if cpuAfter, ok := fetchStats(f.statsURL, false); ok && len(p99s) > 0 {
		cpu := time.Duration(cpuAfter.CPUNanos - cpuBefore.CPUNanos)
		fmt.Printf("server CPU: %v per publish, %.1f µs per delivery (the publish phase, pauses included)\n",
			(cpu / time.Duration(len(p99s))).Round(100*time.Microsecond), float64(cpu.Microseconds())/float64(len(p99s)*f.n))
	}
	if len(p99s) > 0 {
		slices.Sort(p50s)
		slices.Sort(p99s)
		fmt.Printf("over %d publishes to %d subscribers: median p50 %v, median p99 %v, worst p99 %v; connections lost %d\n",
			len(p99s), f.n, p50s[len(p50s)/2].Round(10*time.Microsecond), p99s[len(p99s)/2].Round(10*time.Microsecond), p99s[len(p99s)-1].Round(10*time.Microsecond), l.dead.Load())
	}
	sleep(ctx, f.hold)
	if incomplete > 0 {
		return fmt.Errorf("%d of %d publishes did not reach all %d subscribers within %v", incomplete, len(p99s), f.n, f.wait)
	}
	return nil
}

type load struct {
	lat  [][]atomic.Int64 // [seq][connection] latency in ns; 0 = not received
	got  []atomic.Int64   // [seq] deliveries
	dead atomic.Int64     // connections that failed after subscribing
}

// open dials and subscribes n connections, dialers at a time.
func (l *load) open(ctx context.Context, f runFlags) ([]*websocket.Conn, error) {
	dialer := websocket.Dialer{ReadBufferSize: 1024, WriteBufferSize: 1024, HandshakeTimeout: 10 * time.Second}
	params := []any{f.topic}
	if f.params != "" {
		params = append(params, json.RawMessage(f.params))
	}
	sub, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "sp_subscribe", "params": params})
	if err != nil {
		return nil, fmt.Errorf("subscribe request: %w", err)
	}
	conns := make([]*websocket.Conn, f.n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range f.dialers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= f.n || ctx.Err() != nil {
					return
				}
				c, err := l.subscribe(ctx, &dialer, f.wsURL, sub)
				if err != nil {
					mu.Lock()
					firstErr = firstOf(firstErr, fmt.Errorf("connection %d: %w", i, err))
					mu.Unlock()
					return
				}
				conns[i] = c
				if (i+1)%2000 == 0 {
					fmt.Printf("  %d connected\n", i+1)
				}
			}
		})
	}
	wg.Wait()
	conns = slices.DeleteFunc(conns, func(c *websocket.Conn) bool { return c == nil })
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return conns, firstErr
}

func firstOf(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (l *load) subscribe(ctx context.Context, d *websocket.Dialer, u string, req []byte) (*websocket.Conn, error) {
	c, _, err := d.DialContext(ctx, u, nil)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, req); err != nil {
		c.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, reply, err := c.ReadMessage()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("subscribe reply: %w", err)
	}
	if bytes.Contains(reply, []byte(`"error"`)) {
		c.Close()
		return nil, fmt.Errorf("subscribe refused: %s", reply)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, nil
}

var (
	seqKey = []byte(`"seq":`)
	tsKey  = []byte(`"ts":`)
)

// record notes the latency of a push on connection i. It looks the two numbers up in the
// frame instead of decoding it, so the client's own work stays small.
func (l *load) record(i int, data []byte, now int64) {
	seq, ok1 := numberAfter(data, seqKey)
	ts, ok2 := numberAfter(data, tsKey)
	if !ok1 || !ok2 || seq < 1 || seq >= int64(len(l.lat)) {
		return
	}
	l.lat[seq][i].Store(max(1, now-ts))
	l.got[seq].Add(1)
}

func numberAfter(data, key []byte) (int64, bool) {
	i := bytes.Index(data, key)
	if i < 0 {
		return 0, false
	}
	rest := data[i+len(key):]
	j := 0
	for j < len(rest) && (rest[j] >= '0' && rest[j] <= '9' || rest[j] == '-') {
		j++
	}
	n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return n, err == nil
}

func callPublish(rpcURL, method string, seq int) error {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":[%d]}`, seq, method, seq)
	resp, err := http.Post(rpcURL, "application/json", strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("publish %d: %w", seq, err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK || bytes.Contains(reply, []byte(`"error"`)) {
		return fmt.Errorf("publish %d: %s %s", seq, resp.Status, reply)
	}
	return nil
}

func fetchStats(statsURL string, gc bool) (serverStats, bool) {
	var st serverStats
	if statsURL == "-" {
		return st, false
	}
	if gc {
		statsURL += "?gc=1"
	}
	resp, err := http.Get(statsURL)
	if err != nil {
		log.Printf("no server stats (%v): RSS not measured", err)
		return st, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		log.Printf("no server stats (%s): RSS not measured", resp.Status)
		return st, false
	}
	return st, true
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
