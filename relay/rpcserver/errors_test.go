package rpcserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Every error class, the same over /ws and /rpc.
func TestErrorClasses(t *testing.T) {
	e := newEnv(t, Config{MaxBatch: 3})
	tests := []struct {
		name    string
		req     string
		wantID  string // "" for no check
		code    int    // 0: a result is expected
		result  string
		message string // a substring of the error message
	}{
		{"ok", `{"jsonrpc":"2.0","id":1,"method":"add","params":[2,3]}`, "1", 0, "5", ""},
		{"string id", `{"jsonrpc":"2.0","id":"a","method":"echo","params":{"x":1}}`, `"a"`, 0, `{"x":1}`, ""},
		{"no params", `{"jsonrpc":"2.0","id":1,"method":"echo"}`, "1", 0, "null", ""},
		{"malformed JSON", `{"jsonrpc":"2.0","id":1,"method":"echo"`, "null", CodeParseError, "", "not valid JSON"},
		{"not JSON at all", `hello`, "null", CodeParseError, "", "not valid JSON"},
		{"wrong version", `{"jsonrpc":"1.0","id":7,"method":"echo"}`, "7", CodeInvalidRequest, "", `"jsonrpc" must be "2.0"`},
		{"missing version", `{"id":7,"method":"echo"}`, "7", CodeInvalidRequest, "", `"jsonrpc"`},
		{"method not a string", `{"jsonrpc":"2.0","id":7,"method":5}`, "7", CodeInvalidRequest, "", `"method"`},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"echo"}`, "null", CodeInvalidRequest, "", "id must be"},
		{"scalar request", `42`, "null", CodeInvalidRequest, "", "object or an array"},
		{"empty batch", `[]`, "null", CodeInvalidRequest, "", "empty batch"},
		{"batch over the cap", `[{"jsonrpc":"2.0","id":1,"method":"echo"},{"jsonrpc":"2.0","id":2,"method":"echo"},{"jsonrpc":"2.0","id":3,"method":"echo"},{"jsonrpc":"2.0","id":4,"method":"echo"}]`, "null", CodeInvalidRequest, "", "exceeds the limit of 3"},
		{"unknown method", `{"jsonrpc":"2.0","id":1,"method":"nope"}`, "1", CodeMethodNotFound, "", `"nope" does not exist`},
		{"params not structured", `{"jsonrpc":"2.0","id":1,"method":"echo","params":"x"}`, "1", CodeInvalidParams, "", "array or an object"},
		{"params of the wrong shape", `{"jsonrpc":"2.0","id":1,"method":"add","params":["a",1]}`, "1", CodeInvalidParams, "", "invalid params for add"},
		{"params missing", `{"jsonrpc":"2.0","id":1,"method":"add"}`, "1", CodeInvalidParams, "", "add needs params"},
		{"typed error, wrapped", `{"jsonrpc":"2.0","id":1,"method":"wrapped"}`, "1", -32001, "", "event not found"},
		{"untyped error stays inside", `{"jsonrpc":"2.0","id":1,"method":"fail"}`, "1", CodeInternalError, "", "internal error"},
		{"panic", `{"jsonrpc":"2.0","id":1,"method":"panic"}`, "1", CodeInternalError, "", "internal error"},
		{"subscribe, unknown topic", `{"jsonrpc":"2.0","id":1,"method":"sp_subscribe","params":["nope"]}`, "1", CodeInvalidParams, "", `unknown topic "nope"`},
		{"subscribe, bad shape", `{"jsonrpc":"2.0","id":1,"method":"sp_subscribe","params":{"topic":"feed"}}`, "1", CodeInvalidParams, "", `want ["topic"]`},
		{"subscribe, topic rejects params", `{"jsonrpc":"2.0","id":1,"method":"sp_subscribe","params":["feed",{"name":""}]}`, "1", CodeInvalidParams, "", "name is required"},
		{"subscribe, unknown field", `{"jsonrpc":"2.0","id":1,"method":"sp_subscribe","params":["feed",{"nme":"x"}]}`, "1", CodeInvalidParams, "", "unknown field"},
		{"unsubscribe, unknown id", `{"jsonrpc":"2.0","id":1,"method":"sp_unsubscribe","params":["0x99"]}`, "1", CodeInvalidParams, "", "no subscription"},
	}
	check := func(t *testing.T, body []byte, tt struct {
		name, req, wantID string
		code              int
		result, message   string
	}) {
		t.Helper()
		var m rpcMsg
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		if m.Version != "2.0" {
			t.Errorf("jsonrpc = %q in %s", m.Version, body)
		}
		if tt.wantID != "" && string(m.ID) != tt.wantID {
			t.Errorf("id = %s, want %s (%s)", m.ID, tt.wantID, body)
		}
		if tt.code == 0 {
			if m.Error != nil || string(m.Result) != tt.result {
				t.Errorf("got %s, want result %s", body, tt.result)
			}
			return
		}
		if m.Error == nil || m.Error.Code != tt.code || !strings.Contains(m.Error.Message, tt.message) {
			t.Errorf("got %s, want error %d containing %q", body, tt.code, tt.message)
		}
		if strings.Contains(string(body), "hunter2") {
			t.Errorf("internal error detail leaked: %s", body)
		}
	}
	c := e.dial(t)
	for _, tt := range tests {
		t.Run("ws/"+tt.name, func(t *testing.T) {
			c.t = t
			c.sendRaw(tt.req)
			check(t, c.readRaw(), tt)
		})
		t.Run("http/"+tt.name, func(t *testing.T) {
			status, body := e.postRPC(t, tt.req, nil)
			if status != http.StatusOK {
				t.Errorf("status %d, want 200", status)
			}
			if strings.Contains(tt.req, "sp_") {
				// Subscriptions need a websocket.
				tt.code, tt.message = CodeMethodNotFound, "needs a websocket"
			}
			check(t, body, tt)
		})
	}
	// A panicking handler did not take the connection down.
	c.t = t
	if m := c.call("add", []int{1, 1}); string(m.Result) != "2" {
		t.Fatalf("after the errors: %+v", m)
	}
}

func TestBatch(t *testing.T) {
	e := newEnv(t, Config{})
	req := `[
		{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]},
		{"jsonrpc":"2.0","method":"add","params":[5,5]},
		{"jsonrpc":"2.0","id":"x","method":"nope"},
		1,
		{"jsonrpc":"2.0","id":3,"method":"echo","params":["hi"]}
	]`
	want := []struct {
		id   string
		code int
	}{{"1", 0}, {`"x"`, CodeMethodNotFound}, {"null", CodeInvalidRequest}, {"3", 0}}
	check := func(t *testing.T, body []byte) {
		var got []rpcMsg
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d responses, want %d (the notification gets none): %s", len(got), len(want), body)
		}
		for i, w := range want {
			code := 0
			if got[i].Error != nil {
				code = got[i].Error.Code
			}
			if string(got[i].ID) != w.id || code != w.code {
				t.Errorf("response %d: id %s code %d, want id %s code %d", i, got[i].ID, code, w.id, w.code)
			}
		}
	}
	t.Run("ws", func(t *testing.T) {
		c := e.dial(t)
		c.sendRaw(req)
		check(t, c.readRaw())
		// Notifications alone get nothing back: the next message is the next reply.
		c.sendRaw(`[{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","method":"echo"}]`)
		c.sendRaw(`{"jsonrpc":"2.0","method":"echo"}`)
		if m := c.call("add", []int{2, 2}); string(m.Result) != "4" {
			t.Errorf("after notifications: %+v", m)
		}
	})
	t.Run("http", func(t *testing.T) {
		status, body := e.postRPC(t, req, nil)
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		check(t, body)
		if status, body := e.postRPC(t, `{"jsonrpc":"2.0","method":"echo"}`, nil); status != http.StatusNoContent || len(body) != 0 {
			t.Errorf("notification over HTTP: %d %s, want 204 and no body", status, body)
		}
	})
}

func TestOversizedMessage(t *testing.T) {
	e := newEnv(t, Config{MaxMessageBytes: 1024})
	big := `{"jsonrpc":"2.0","id":1,"method":"echo","params":["` + strings.Repeat("x", 2000) + `"]}`
	fits := `{"jsonrpc":"2.0","id":1,"method":"echo","params":["` + strings.Repeat("x", 900) + `"]}`

	t.Run("ws frame closes with 1009", func(t *testing.T) {
		c := e.dial(t)
		c.sendRaw(fits)
		if m := c.read(); m.Error != nil {
			t.Fatalf("a frame under the limit: %+v", m)
		}
		c.sendRaw(big)
		_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.c.ReadMessage()
		if ce, ok := errors.AsType[*websocket.CloseError](err); !ok || ce.Code != websocket.CloseMessageTooBig {
			t.Fatalf("read after an oversized frame: %v, want close 1009", err)
		}
	})
	t.Run("http body gets 413", func(t *testing.T) {
		status, body := e.postRPC(t, big, nil)
		var m rpcMsg
		if status != http.StatusRequestEntityTooLarge || json.Unmarshal(body, &m) != nil || m.Error == nil || m.Error.Code != CodeInvalidRequest || !strings.Contains(m.Error.Message, "exceeds 1024 bytes") {
			t.Fatalf("got %d %s, want 413 with a JSON-RPC error", status, body)
		}
		if status, _ := e.postRPC(t, fits, nil); status != http.StatusOK {
			t.Fatalf("a body under the limit: %d", status)
		}
	})
	waitFor(t, "the closed connection to go", 5*time.Second, func() bool { return e.srv.Stats().Connections == 0 })
}

func TestHTTPRequestShape(t *testing.T) {
	e := newEnv(t, Config{})
	tests := []struct {
		name   string
		method string
		ctype  string
		status int
	}{
		{"POST json", http.MethodPost, "application/json", http.StatusOK},
		{"POST json with charset", http.MethodPost, "application/json; charset=utf-8", http.StatusOK},
		{"GET", http.MethodGet, "", http.StatusMethodNotAllowed},
		{"POST form", http.MethodPost, "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"POST no type", http.MethodPost, "", http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, e.hs.URL+"/rpc", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"echo"}`))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := e.hs.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m rpcMsg
			if resp.StatusCode != tt.status || json.NewDecoder(resp.Body).Decode(&m) != nil || (tt.status != http.StatusOK && m.Error == nil) {
				t.Errorf("status %d (want %d), body %+v", resp.StatusCode, tt.status, m)
			}
		})
	}
}

func TestOriginCheck(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		origin  string
		ok      bool
	}{
		{"no origin (not a browser)", nil, "", true},
		{"same host", nil, "http://HOST", true},
		{"other origin, no allowlist", nil, "https://evil.example", false},
		{"listed", []string{"https://stagepass.example"}, "https://stagepass.example", true},
		{"listed, other case", []string{"https://stagepass.example"}, "https://StagePass.example", true},
		{"not listed", []string{"https://stagepass.example"}, "https://evil.example", false},
		{"same host but not listed", []string{"https://stagepass.example"}, "http://HOST", false},
		{"wildcard", []string{"*"}, "https://anything.example", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{AllowedOrigins: tt.allowed})
			hdr := http.Header{}
			origin := strings.ReplaceAll(tt.origin, "HOST", strings.TrimPrefix(e.hs.URL, "http://"))
			if origin != "" {
				hdr.Set("Origin", origin)
			}
			c, resp, err := websocket.DefaultDialer.Dial(e.wsURL(), hdr)
			if tt.ok {
				if err != nil {
					t.Fatalf("ws dial: %v", err)
				}
				c.Close()
			} else if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("ws dial from %s: err %v, resp %v, want 403", origin, err, resp)
			}
			status, _ := e.postRPC(t, `{"jsonrpc":"2.0","id":1,"method":"echo"}`, map[string]string{"Origin": origin})
			if want := map[bool]int{true: http.StatusOK, false: http.StatusForbidden}[tt.ok]; status != want {
				t.Fatalf("/rpc from %s: %d, want %d", origin, status, want)
			}
		})
	}
}
