package rpcserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testEnv is a Server with a few methods and the "feed" topic behind an httptest server.
type testEnv struct {
	t     testing.TB
	srv   *Server
	hs    *httptest.Server
	feeds *feedStore
}

func newEnv(t testing.TB, cfg Config) *testEnv {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RatePerSecond == 0 {
		cfg.RatePerSecond = -1 // only the rate-limit tests are limited
	}
	s := New(cfg)
	e := &testEnv{t: t, srv: s, feeds: &feedStore{srv: s}}
	s.Register("echo", func(_ context.Context, req *Request) (any, error) { return req.Params, nil })
	s.Register("add", func(_ context.Context, req *Request) (any, error) {
		var p [2]int
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		return p[0] + p[1], nil
	})
	s.Register("fail", func(context.Context, *Request) (any, error) {
		return nil, errors.New("database password is hunter2")
	})
	s.Register("wrapped", func(context.Context, *Request) (any, error) {
		return nil, fmt.Errorf("lookup: %w", Errorf(-32001, "event not found"))
	})
	s.Register("panic", func(context.Context, *Request) (any, error) { panic("handler bug") })
	s.Register("sleep", func(ctx context.Context, req *Request) (any, error) {
		var p [1]int
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		select {
		case <-time.After(time.Duration(p[0]) * time.Millisecond):
			return "slept", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	s.RegisterTopic("feed", e.feeds.topic)
	mux := http.NewServeMux()
	mux.Handle("/ws", s.WebSocketHandler())
	mux.Handle("/rpc", s.HTTPHandler())
	e.hs = httptest.NewServer(mux)
	t.Cleanup(e.close)
	return e
}

func (e *testEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		e.t.Errorf("Shutdown: %v", err)
	}
	e.hs.Close()
}

func (e *testEnv) wsURL() string { return "ws" + strings.TrimPrefix(e.hs.URL, "http") + "/ws" }

// feedStore is a topic backed by an in-memory log, written before it is published as the
// relay's index does.
type feedStore struct {
	srv  *Server
	mu   sync.Mutex
	msgs map[string][]Message
}

type feedParams struct {
	Name string  `json:"name"`
	From *Cursor `json:"from"`
}

type feedData struct {
	N       uint64 `json:"n"`
	Removed bool   `json:"removed,omitempty"`
	Pad     string `json:"pad,omitempty"`
}

func (f *feedStore) topic(_ context.Context, req *Request) (Feed, error) {
	var p feedParams
	if err := req.DecodeParams(&p); err != nil {
		return Feed{}, err
	}
	if p.Name == "" {
		return Feed{}, InvalidParams("invalid params: name is required")
	}
	feed := Feed{Key: "feed:" + p.Name}
	if p.From != nil {
		from := *p.From
		feed.Backlog = func(context.Context) ([]Message, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			var out []Message
			for _, m := range f.msgs[p.Name] {
				if from.Less(m.Cursor) {
					out = append(out, m)
				}
			}
			return out, nil
		}
	}
	return feed, nil
}

// store records a message without publishing it.
func (f *feedStore) store(name string, m Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.msgs == nil {
		f.msgs = map[string][]Message{}
	}
	f.msgs[name] = append(f.msgs[name], m)
}

// add stores then publishes, like the index: the publish may lag the store.
func (f *feedStore) add(name string, m Message) {
	f.store(name, m)
	if err := f.srv.Publish(m, "feed:"+name); err != nil {
		panic(err)
	}
}

func msgN(n uint64) Message { return Message{Cursor: Cursor{Block: n}, Data: feedData{N: n}} }

// rpcMsg is anything the server sends.
type rpcMsg struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *Error          `json:"error"`
	Method  string          `json:"method"`
	Params  struct {
		Subscription string          `json:"subscription"`
		Result       json.RawMessage `json:"result"`
	} `json:"params"`
}

type wsClient struct {
	t      testing.TB
	c      *websocket.Conn
	nextID int
}

func (e *testEnv) dial(t testing.TB) *wsClient {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(e.wsURL(), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return &wsClient{t: t, c: c}
}

func (c *wsClient) sendRaw(s string) {
	c.t.Helper()
	if err := c.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readRaw reads one message; a deadline keeps a broken test from hanging.
func (c *wsClient) readRaw() []byte {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.c.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return data
}

func (c *wsClient) read() rpcMsg {
	c.t.Helper()
	data := c.readRaw()
	var m rpcMsg
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("decode %s: %v", data, err)
	}
	if m.Version != "2.0" {
		c.t.Fatalf("message without jsonrpc 2.0: %s", data)
	}
	return m
}

// call sends a request and returns its response; it fails on any push in between.
func (c *wsClient) call(method string, params any) rpcMsg {
	c.t.Helper()
	c.nextID++
	req, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.nextID, "method": method, "params": params})
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(req))
	m := c.read()
	if string(m.ID) != fmt.Sprint(c.nextID) {
		c.t.Fatalf("%s: got %+v, want the response to id %d", method, m, c.nextID)
	}
	return m
}

// subscribe subscribes to feed name, from a cursor or live, and returns the id.
func (c *wsClient) subscribe(name string, from *Cursor) string {
	c.t.Helper()
	m := c.call("sp_subscribe", []any{"feed", feedParams{Name: name, From: from}})
	var id string
	if m.Error != nil || json.Unmarshal(m.Result, &id) != nil || id == "" {
		c.t.Fatalf("subscribe: %+v", m)
	}
	return id
}

// readPush reads a push and decodes its result.
func (c *wsClient) readPush() (sub string, d feedData) {
	c.t.Helper()
	m := c.read()
	if m.Method != "sp_subscription" {
		c.t.Fatalf("got %+v, want a push", m)
	}
	if err := json.Unmarshal(m.Params.Result, &d); err != nil {
		c.t.Fatalf("push result %s: %v", m.Params.Result, err)
	}
	return m.Params.Subscription, d
}

// postRPC posts body to /rpc.
func (e *testEnv) postRPC(t testing.TB, body string, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.hs.URL+"/rpc", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.hs.Client().Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, buf.Bytes()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
