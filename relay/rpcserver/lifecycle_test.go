package rpcserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A flood from one connection is refused, then disconnected, while another connection's
// requests go through at full speed.
func TestRateLimit(t *testing.T) {
	e := newEnv(t, Config{RatePerSecond: 100, RateBurst: 10, SendQueue: 4096})
	flood, calm := e.dial(t), e.dial(t)

	// A burst over the bucket: the first RateBurst pass, most of the rest are refused.
	for i := range 30 {
		flood.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"echo"}`, i))
	}
	ok, limited := 0, 0
	for range 30 {
		m := flood.read()
		switch {
		case m.Error == nil:
			ok++
		case m.Error.Code == CodeLimitExceeded:
			limited++
		default:
			t.Fatalf("unexpected %+v", m)
		}
	}
	if ok < 10 || limited < 10 {
		t.Fatalf("%d passed and %d refused of 30, want the burst of 10 to pass and most others refused", ok, limited)
	}

	// A sustained flood: the connection is closed with 1008 while calm stays fast.
	floodDone := make(chan error, 1)
	go func() {
		_ = flood.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, _, err := flood.c.ReadMessage(); err != nil {
				floodDone <- err
				return
			}
		}
	}()
	go func() {
		for i := 0; ; i++ {
			if flood.c.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"echo"}`)) != nil {
				return
			}
		}
	}()
	var slowest time.Duration
	for range 20 {
		start := time.Now()
		if m := calm.call("add", []int{1, 2}); m.Error != nil {
			t.Fatalf("calm connection refused during the flood: %+v", m)
		}
		slowest = max(slowest, time.Since(start))
		time.Sleep(20 * time.Millisecond) // calm stays under its own rate
	}
	if slowest > 250*time.Millisecond {
		t.Errorf("calm connection's slowest call took %v during the flood", slowest)
	}
	err := <-floodDone
	if ce, ok := errors.AsType[*websocket.CloseError](err); !ok || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("flooding connection ended with %v, want close 1008", err)
	}
	if st := e.srv.Stats(); st.Floods != 1 || st.RateLimited == 0 {
		t.Fatalf("stats %+v", st)
	}
	if m := calm.call("add", []int{2, 2}); string(m.Result) != "4" {
		t.Fatalf("calm after the flood: %+v", m)
	}
}

func TestHTTPRateLimitPerIP(t *testing.T) {
	e := newEnv(t, Config{RatePerSecond: 1, RateBurst: 3})
	statuses := map[int]int{}
	for range 6 {
		status, body := e.postRPC(t, `{"jsonrpc":"2.0","id":1,"method":"echo"}`, nil)
		statuses[status]++
		if status == http.StatusTooManyRequests && !strings.Contains(string(body), fmt.Sprint(CodeLimitExceeded)) {
			t.Fatalf("429 body %s", body)
		}
	}
	if statuses[http.StatusOK] != 3 || statuses[http.StatusTooManyRequests] != 3 {
		t.Fatalf("statuses %v, want 3 × 200 then 3 × 429", statuses)
	}
}

// Shutdown lets running requests finish and their replies go out, then closes with 1001,
// and refuses new clients.
func TestShutdownDrains(t *testing.T) {
	e := newEnv(t, Config{})
	started := make(chan struct{})
	e.srv.Register("work", func(ctx context.Context, _ *Request) (any, error) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		return "done", nil
	})
	c := e.dial(t)
	idle := e.dial(t)
	c.sendRaw(`{"jsonrpc":"2.0","id":1,"method":"work"}`)
	<-started

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown <- e.srv.Shutdown(ctx)
	}()
	if m := c.read(); string(m.Result) != `"done"` {
		t.Fatalf("running request: %+v", m)
	}
	for _, cl := range []*wsClient{c, idle} {
		_ = cl.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := cl.c.ReadMessage()
		if ce, ok := errors.AsType[*websocket.CloseError](err); !ok || ce.Code != websocket.CloseGoingAway {
			t.Fatalf("after the reply: %v, want close 1001", err)
		}
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := e.srv.Stats().Connections; n != 0 {
		t.Fatalf("%d connections after Shutdown", n)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(e.wsURL(), nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after Shutdown: %v %v, want 503", err, resp)
	}
	if status, _ := e.postRPC(t, `{"jsonrpc":"2.0","id":1,"method":"echo"}`, nil); status != http.StatusServiceUnavailable {
		t.Fatalf("/rpc after Shutdown: %d, want 503", status)
	}
	if err := e.srv.Publish(msgN(1), "feed:x"); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Publish after Shutdown: %v", err)
	}
}

// When the deadline passes first, Shutdown cuts the connections and says so.
func TestShutdownDeadline(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.dial(t)
	c.sendRaw(`{"jsonrpc":"2.0","id":1,"method":"sleep","params":[60000]}`)
	waitFor(t, "the request to start", 5*time.Second, func() bool { return e.srv.Stats().Connections == 1 })
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	if n := e.srv.Stats().Connections; n != 0 {
		t.Fatalf("%d connections after Shutdown", n)
	}
}

// The server pings; a client that answers stays, a client that does not is closed after
// PongWait.
func TestPingPong(t *testing.T) {
	e := newEnv(t, Config{PingInterval: 50 * time.Millisecond, PongWait: 200 * time.Millisecond})
	alive, silent := e.dial(t), e.dial(t)
	pings := make(chan struct{}, 100)
	alive.c.SetPingHandler(func(data string) error {
		pings <- struct{}{}
		return alive.c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // gorilla answers pings while reading
		defer wg.Done()
		for {
			if _, _, err := alive.c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	waitFor(t, "the silent client to be closed", 3*time.Second, func() bool { return e.srv.Stats().Connections == 1 })
	time.Sleep(400 * time.Millisecond) // two more PongWaits
	if n := e.srv.Stats().Connections; n != 1 {
		t.Fatalf("%d connections, want the answering one kept", n)
	}
	if len(pings) < 5 {
		t.Fatalf("%d pings in ~600ms at a 50ms interval", len(pings))
	}
	_ = silent.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		_, _, err := silent.c.ReadMessage()
		if err == nil {
			continue
		}
		if strings.Contains(err.Error(), "timeout") {
			t.Fatalf("silent client not closed: %v", err)
		}
		break
	}
	alive.c.Close()
	wg.Wait()
}

// Every goroutine the server starts is gone after Shutdown.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		e := newEnv(t, Config{SendQueue: 4})
		clients := make([]*wsClient, 10)
		for i := range clients {
			clients[i] = e.dial(t)
			clients[i].subscribe("g", &Cursor{})
			clients[i].call("add", []int{i, i})
		}
		clients[0].c.Close() // a client that leaves
		clients[1].sendRaw(`{"jsonrpc":"2.0","id":1,"method":"sleep","params":[50]}`)
		// A client that stops reading and is dropped.
		for n := uint64(1); n <= 200; n++ {
			e.feeds.add("g", Message{Cursor: Cursor{Block: n}, Data: strings.Repeat("y", 64<<10)})
		}
		e.postRPC(t, `{"jsonrpc":"2.0","id":1,"method":"echo"}`, nil)
		waitFor(t, "drops", 5*time.Second, func() bool { return e.srv.Stats().Dropped > 0 })
		e.close()
		for _, c := range clients {
			c.c.Close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Handlers see who is calling.
func TestPeer(t *testing.T) {
	e := newEnv(t, Config{})
	e.srv.Register("whoami", func(_ context.Context, req *Request) (any, error) { return req.Peer, nil })
	a, b := e.dial(t), e.dial(t)
	var pa1, pa2, pb, ph Peer
	_ = json.Unmarshal(a.call("whoami", nil).Result, &pa1)
	_ = json.Unmarshal(a.call("whoami", nil).Result, &pa2)
	_ = json.Unmarshal(b.call("whoami", nil).Result, &pb)
	_, body := e.postRPC(t, `{"jsonrpc":"2.0","id":1,"method":"whoami"}`, nil)
	var m rpcMsg
	_ = json.Unmarshal(body, &m)
	_ = json.Unmarshal(m.Result, &ph)
	if pa1.ID == 0 || pa1 != pa2 || pa1.ID == pb.ID || pa1.Transport != "ws" || !strings.HasPrefix(pa1.RemoteAddr, "127.0.0.1:") {
		t.Fatalf("ws peers %+v %+v %+v", pa1, pa2, pb)
	}
	if ph.Transport != "http" || ph.ID == 0 || ph.ID == pa1.ID || ph.ID == pb.ID {
		t.Fatalf("http peer %+v", ph)
	}
}
