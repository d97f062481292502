// Package wsconn is a relayclient.Dialer on gorilla/websocket, for native programs (oracle
// nodes) and tests; the wasm wallet dials with the browser's WebSocket instead and never
// imports this package.
package wsconn

import (
	"context"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/stagepass/stagepass/wasm/relayclient"
)

// Dial opens a gorilla websocket as a relayclient.Conn.
func Dial(ctx context.Context, url string) (relayclient.Conn, error) {
	c, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	return &conn{c: c}, nil
}

type conn struct {
	c  *websocket.Conn
	mu sync.Mutex
}

func (c *conn) Read(context.Context) ([]byte, error) {
	_, b, err := c.c.ReadMessage()
	return b, err
}

func (c *conn) Write(_ context.Context, b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c.WriteMessage(websocket.TextMessage, b)
}

func (c *conn) Close() error { return c.c.Close() }
