//go:build js && wasm

package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall/js"

	"github.com/stagepass/stagepass/wasm/relayclient"
)

// maxQueued frames may wait for the Go reader; a relay that floods past it is dropped (and
// the client reconnects and resumes), as the relay drops a slow client.
const maxQueued = 4096

var errSocketClosed = errors.New("websocket closed")

// wsConn is the browser's (or worker's) WebSocket as a relayclient.Conn. The JS callbacks
// never block: they hand frames to a buffered channel.
type wsConn struct {
	ws     js.Value
	in     chan []byte
	closed chan struct{}
	once   sync.Once
	funcs  []js.Func
	reason string
}

func dialWebSocket(ctx context.Context, url string) (relayclient.Conn, error) {
	ctor := js.Global().Get("WebSocket")
	if ctor.Type() != js.TypeFunction {
		return nil, errors.New("this runtime has no WebSocket")
	}
	var ws js.Value
	if err := catch(func() { ws = ctor.New(url) }); err != nil {
		return nil, fmt.Errorf("websocket %s: %w", url, err)
	}
	c := &wsConn{ws: ws, in: make(chan []byte, maxQueued), closed: make(chan struct{})}
	opened := make(chan struct{})
	var openOnce sync.Once
	on := func(name string, f func(ev js.Value)) {
		fn := js.FuncOf(func(_ js.Value, a []js.Value) any { f(arg0(a)); return nil })
		c.funcs = append(c.funcs, fn)
		ws.Set(name, fn)
	}
	on("onopen", func(js.Value) { openOnce.Do(func() { close(opened) }) })
	on("onmessage", func(ev js.Value) {
		data := ev.Get("data")
		if data.Type() != js.TypeString {
			return // the relay speaks text frames only
		}
		select {
		case c.in <- []byte(data.String()):
		default:
			c.shut("too many unread frames")
		}
	})
	on("onerror", func(js.Value) { c.shut("websocket error") })
	on("onclose", func(ev js.Value) { c.shut(fmt.Sprintf("websocket closed (%v)", ev.Get("code"))) })
	select {
	case <-opened:
		return c, nil
	case <-c.closed:
		return nil, fmt.Errorf("websocket %s: %s", url, c.reason)
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
}

// shut marks the socket closed (once), detaches the handlers and closes the JS side.
func (c *wsConn) shut(reason string) {
	c.once.Do(func() {
		c.reason = reason
		close(c.closed)
		for _, name := range []string{"onopen", "onmessage", "onerror", "onclose"} {
			c.ws.Set(name, js.Null())
		}
		catch(func() { c.ws.Call("close") })
		go c.release() // not from inside the handler that may be running now
	})
}

func (c *wsConn) release() {
	for _, f := range c.funcs {
		f.Release()
	}
	c.funcs = nil
}

func (c *wsConn) Read(ctx context.Context) ([]byte, error) {
	select {
	case b := <-c.in:
		return b, nil
	default:
	}
	select {
	case b := <-c.in:
		return b, nil
	case <-c.closed:
		return nil, fmt.Errorf("%w: %s", errSocketClosed, c.reason)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *wsConn) Write(_ context.Context, b []byte) error {
	select {
	case <-c.closed:
		return fmt.Errorf("%w: %s", errSocketClosed, c.reason)
	default:
	}
	return catch(func() { c.ws.Call("send", string(b)) })
}

func (c *wsConn) Close() error {
	c.shut("closed by the wallet")
	return nil
}

// catch turns a JavaScript exception thrown inside f into an error.
func catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}
