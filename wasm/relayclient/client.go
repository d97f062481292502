// Package relayclient is the wallet's connection to a Stagepass relay: JSON-RPC 2.0 over
// one websocket, subscriptions that are renewed with a resume point after every reconnect,
// and reconnection with backoff. The socket itself is a small Conn interface: the browser's
// WebSocket in the js/wasm entry, gorilla/websocket in native tests, so all the logic here
// runs under plain `go test`.
package relayclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stagepass/stagepass/wasm/protocol"
)

// Conn is one open websocket carrying text frames. Read blocks until a frame arrives or
// the socket closes (then it returns an error); Close makes a blocked Read return.
type Conn interface {
	Read(ctx context.Context) ([]byte, error)
	Write(ctx context.Context, msg []byte) error
	Close() error
}

// Dialer opens a websocket to url (ws:// or wss://, ending in /ws).
type Dialer func(ctx context.Context, url string) (Conn, error)

// Sentinel errors callers branch on.
var (
	ErrClosed  = errors.New("relayclient: client closed")
	ErrOffline = errors.New("relayclient: not connected to the relay")
)

// RPCError is a JSON-RPC error the relay answered with.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("relay error %d: %s", e.Code, e.Message) }

// Config configures a Client.
type Config struct {
	URL  string
	Dial Dialer
	// MinBackoff and MaxBackoff bound the wait between reconnection attempts, which doubles
	// after each failure (defaults 500 ms and 30 s).
	MinBackoff, MaxBackoff time.Duration
	// OnState is told when the connection comes up (true) or goes down (false).
	OnState func(connected bool)
}

// Subscription is a topic followed across reconnects.
type Subscription struct {
	Topic string
	// Params returns the topic parameters for each (re)subscription; a tickets subscription
	// puts its latest cursor in "from" here so nothing is missed or repeated.
	Params func() any
	// OnPush receives each pushed result, in order, on the client's reader goroutine.
	OnPush func(result json.RawMessage)
	// OnError is told when (re)subscribing fails (optional).
	OnError func(error)
}

type call struct {
	done  chan struct{}
	res   json.RawMessage
	err   error
	onRes func(json.RawMessage) // runs on the reader goroutine before the next frame
}

// Client keeps one connection to the relay.
type Client struct {
	cfg Config

	mu        sync.Mutex
	conn      Conn
	connected chan struct{} // closed while connected; replaced when the connection drops
	nextID    int64
	pending   map[int64]*call
	subs      map[*Subscription]string // local → server subscription id on this connection
	byServer  map[string]*Subscription
	closed    bool
	stop      context.CancelFunc
	stopped   chan struct{}
}

// New returns a client; Start connects it.
func New(cfg Config) *Client {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = 30 * time.Second
	}
	return &Client{cfg: cfg, connected: make(chan struct{}), pending: map[int64]*call{},
		subs: map[*Subscription]string{}, byServer: map[string]*Subscription{}}
}

// Start connects in the background and keeps reconnecting until Close.
func (c *Client) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.mu.Lock()
	c.stop = cancel
	c.stopped = make(chan struct{})
	c.mu.Unlock()
	go c.run(ctx)
}

// Close stops the client and fails the calls in flight.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	stop, stopped, conn := c.stop, c.stopped, c.conn
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	if conn != nil {
		conn.Close()
	}
	if stopped != nil {
		<-stopped
	}
}

// Connected reports whether the socket is up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

func (c *Client) run(ctx context.Context) {
	defer close(c.stopped)
	backoff := c.cfg.MinBackoff
	for ctx.Err() == nil {
		conn, err := c.cfg.Dial(ctx, c.cfg.URL)
		if err == nil {
			backoff = c.cfg.MinBackoff
			c.serve(ctx, conn)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff *= 2; backoff > c.cfg.MaxBackoff {
			backoff = c.cfg.MaxBackoff
		}
	}
}

// serve runs one connection: it resubscribes, then reads until the socket fails.
func (c *Client) serve(ctx context.Context, conn Conn) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		conn.Close()
		return
	}
	c.conn = conn
	close(c.connected)
	subs := make([]*Subscription, 0, len(c.subs))
	for s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	if c.cfg.OnState != nil {
		c.cfg.OnState(true)
	}

	readErr := make(chan error, 1)
	go func() { readErr <- c.readLoop(ctx, conn) }()
	for _, s := range subs {
		c.subscribeOn(ctx, conn, s)
	}
	<-readErr

	conn.Close()
	c.mu.Lock()
	c.conn = nil
	c.connected = make(chan struct{})
	for id, p := range c.pending {
		p.err = ErrOffline
		close(p.done)
		delete(c.pending, id)
	}
	for s := range c.subs {
		c.subs[s] = ""
	}
	c.byServer = map[string]*Subscription{}
	c.mu.Unlock()
	if c.cfg.OnState != nil {
		c.cfg.OnState(false)
	}
}

type message struct {
	ID     *int64          `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
	Params struct {
		Subscription string          `json:"subscription"`
		Result       json.RawMessage `json:"result"`
	} `json:"params"`
}

func (c *Client) readLoop(ctx context.Context, conn Conn) error {
	for {
		b, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		var m message
		if json.Unmarshal(b, &m) != nil {
			continue // not for us to crash on
		}
		if m.Method == protocol.MethodSubscription {
			c.mu.Lock()
			s := c.byServer[m.Params.Subscription]
			c.mu.Unlock()
			if s != nil && s.OnPush != nil {
				s.OnPush(m.Params.Result)
			}
			continue
		}
		if m.ID == nil {
			continue
		}
		c.mu.Lock()
		p := c.pending[*m.ID]
		delete(c.pending, *m.ID)
		c.mu.Unlock()
		if p == nil {
			continue
		}
		if m.Error != nil {
			p.err = m.Error
		} else {
			p.res = m.Result
			if p.onRes != nil {
				p.onRes(m.Result)
			}
		}
		close(p.done)
	}
}

// Call sends one request and decodes its result into result (nil: discard). It waits for
// the connection while ctx allows.
func (c *Client) Call(ctx context.Context, method string, params []any, result any) error {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return ErrClosed
		}
		conn, up := c.conn, c.connected
		c.mu.Unlock()
		if conn == nil {
			select {
			case <-up:
				continue
			case <-ctx.Done():
				return fmt.Errorf("%w: %v", ErrOffline, ctx.Err())
			}
		}
		res, err := c.callOn(ctx, conn, method, params, nil)
		if err != nil {
			return err
		}
		if result != nil {
			if err := json.Unmarshal(res, result); err != nil {
				return fmt.Errorf("relayclient: decode %s result: %w", method, err)
			}
		}
		return nil
	}
}

func (c *Client) callOn(ctx context.Context, conn Conn, method string, params []any, onRes func(json.RawMessage)) (json.RawMessage, error) {
	if params == nil {
		params = []any{}
	}
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	p := &call{done: make(chan struct{}), onRes: onRes}
	c.pending[id] = p
	c.mu.Unlock()
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err == nil {
		err = conn.Write(ctx, b)
	}
	if err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, fmt.Errorf("relayclient: send %s: %w", method, err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			return nil, fmt.Errorf("relayclient: %s: %w", method, p.err)
		}
		return p.res, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, fmt.Errorf("relayclient: %s: %w", method, ctx.Err())
	}
}

// Subscribe follows s from now on, across reconnects, until the returned cancel is called.
func (c *Client) Subscribe(s *Subscription) (cancel func()) {
	c.mu.Lock()
	c.subs[s] = ""
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		go c.subscribeOn(context.Background(), conn, s)
	}
	return func() {
		c.mu.Lock()
		id, ok := c.subs[s]
		delete(c.subs, s)
		delete(c.byServer, id)
		conn := c.conn
		c.mu.Unlock()
		if ok && id != "" && conn != nil {
			ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
			defer done()
			c.callOn(ctx, conn, protocol.MethodUnsubscribe, []any{id}, nil)
		}
	}
}

func (c *Client) subscribeOn(ctx context.Context, conn Conn, s *Subscription) {
	c.mu.Lock()
	_, live := c.subs[s]
	c.mu.Unlock()
	if !live {
		return // cancelled before it was sent
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := c.callOn(ctx, conn, protocol.MethodSubscribe, []any{s.Topic, s.Params()}, func(res json.RawMessage) {
		var id string
		if json.Unmarshal(res, &id) != nil {
			return
		}
		// Registered here, on the reader goroutine, so the first push (which the relay sends
		// after this reply) already finds its subscription.
		c.mu.Lock()
		_, live := c.subs[s]
		if live && c.conn == conn {
			c.subs[s] = id
			c.byServer[id] = s
		}
		cancelled := !live && c.conn == conn
		c.mu.Unlock()
		if cancelled {
			// Cancelled while its subscribe was in flight: the relay holds a subscription no
			// one reads; end it (not waiting here, on the reader goroutine, for the reply).
			go func() {
				ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
				defer done()
				c.callOn(ctx, conn, protocol.MethodUnsubscribe, []any{id}, nil)
			}()
		}
	})
	if err != nil && s.OnError != nil {
		s.OnError(err)
	}
}
