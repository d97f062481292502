package rpcserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/stagepass/stagepass/relay/rpcserver"
)

// A method, a topic with resume, and a client that calls, subscribes with a cursor, gets
// the backlog and then a live push.
func Example() {
	srv := rpcserver.New(rpcserver.Config{Logger: slog.New(slog.DiscardHandler)})

	srv.Register("sp_hello", func(_ context.Context, req *rpcserver.Request) (any, error) {
		var args [1]string
		if err := req.DecodeParams(&args); err != nil {
			return nil, err // a -32602 that names the problem
		}
		return "hello " + args[0], nil
	})

	// The application's store: written before it is published.
	var mu sync.Mutex
	var blocks []rpcserver.Message
	publish := func(n uint64) {
		m := rpcserver.Message{Cursor: rpcserver.Cursor{Block: n}, Data: map[string]uint64{"block": n}}
		mu.Lock()
		blocks = append(blocks, m)
		mu.Unlock()
		if err := srv.Publish(m, "blocks"); err != nil {
			panic(err)
		}
	}
	srv.RegisterTopic("blocks", func(_ context.Context, req *rpcserver.Request) (rpcserver.Feed, error) {
		var p struct {
			From *rpcserver.Cursor `json:"from"`
		}
		if req.Params != nil {
			if err := req.DecodeParams(&p); err != nil {
				return rpcserver.Feed{}, err
			}
		}
		feed := rpcserver.Feed{Key: "blocks"}
		if p.From != nil {
			feed.Backlog = func(context.Context) ([]rpcserver.Message, error) {
				mu.Lock()
				defer mu.Unlock()
				var out []rpcserver.Message
				for _, m := range blocks {
					if p.From.Less(m.Cursor) {
						out = append(out, m)
					}
				}
				return out, nil
			}
		}
		return feed, nil
	})

	mux := http.NewServeMux()
	mux.Handle("/ws", srv.WebSocketHandler())
	mux.Handle("/rpc", srv.HTTPHandler())
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	publish(1)
	publish(2)

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", nil)
	if err != nil {
		panic(err)
	}
	defer ws.Close()
	send := func(req string) { _ = ws.WriteMessage(websocket.TextMessage, []byte(req)) }
	recv := func() {
		_, msg, _ := ws.ReadMessage()
		fmt.Println(string(msg))
	}

	send(`{"jsonrpc":"2.0","id":1,"method":"sp_hello","params":["fan"]}`)
	recv()
	send(`{"jsonrpc":"2.0","id":2,"method":"sp_hello","params":{}}`)
	recv()
	// Resume after block 1: the reply, then block 2 from the backlog, then block 3 live.
	send(`{"jsonrpc":"2.0","id":3,"method":"sp_subscribe","params":["blocks",{"from":{"block":1,"logIndex":0}}]}`)
	recv()
	recv()
	publish(3)
	recv()

	// The same methods over HTTP.
	resp, err := http.Post(hs.URL+"/rpc", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":4,"method":"sp_hello","params":["web"]}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var reply json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&reply)
	fmt.Println(resp.StatusCode, string(reply))

	// Output:
	// {"jsonrpc":"2.0","id":1,"result":"hello fan"}
	// {"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"invalid params for sp_hello: json: cannot unmarshal object into Go value of type [1]string"}}
	// {"jsonrpc":"2.0","id":3,"result":"0x1"}
	// {"jsonrpc":"2.0","method":"sp_subscription","params":{"subscription":"0x1","result":{"block":2}}}
	// {"jsonrpc":"2.0","method":"sp_subscription","params":{"subscription":"0x1","result":{"block":3}}}
	// 200 {"jsonrpc":"2.0","id":4,"result":"hello web"}
}
