package rpcserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stagepass/stagepass/wasm/protocol"
)

// Config sets the server's limits. Zero values take the defaults in brackets.
type Config struct {
	// MaxMessageBytes caps one websocket frame and one /rpc body [64 KiB]. A bigger frame
	// closes the connection with code 1009; a bigger body gets HTTP 413.
	MaxMessageBytes int64
	// MaxBatch caps the requests in one batch [100].
	MaxBatch int
	// SendQueue bounds the messages waiting to be written to one connection [256]. A client
	// whose queue is full is disconnected rather than allowed to hold anyone else up.
	SendQueue int
	// MaxSubscriptions caps the subscriptions of one connection [100].
	MaxSubscriptions int
	// RatePerSecond and RateBurst are a token bucket per websocket connection, and per
	// remote IP for /rpc [20/s, burst 40]. A request over the rate gets a CodeLimitExceeded
	// error; a connection that keeps going (more refused requests in one second than
	// max(RateBurst, RatePerSecond)) is closed with code 1008. A negative rate disables it.
	RatePerSecond float64
	RateBurst     int
	// AllowedOrigins are the browser origins ("https://stagepass.example") that may open a
	// websocket or POST to /rpc; others get HTTP 403. Empty allows only the server's own
	// host. Requests without an Origin header (not from a browser) are always allowed.
	// "*" allows every origin (development only).
	AllowedOrigins []string
	// PingInterval [30s] is how often the server pings; a connection that sends nothing,
	// not even a pong, for PongWait [60s] is closed. WriteWait [10s] bounds each write.
	PingInterval time.Duration
	PongWait     time.Duration
	WriteWait    time.Duration
	// Logger receives connection errors and handler failures [slog.Default()].
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	setDefault(&c.MaxMessageBytes, 64<<10)
	setDefault(&c.MaxBatch, 100)
	setDefault(&c.SendQueue, 256)
	setDefault(&c.MaxSubscriptions, 100)
	setDefault(&c.RatePerSecond, 20)
	setDefault(&c.RateBurst, 2*int(math.Ceil(c.RatePerSecond)))
	setDefault(&c.PongWait, 60*time.Second)
	setDefault(&c.PingInterval, c.PongWait/2)
	setDefault(&c.WriteWait, 10*time.Second)
	if c.RatePerSecond > 0 && c.RateBurst < 1 {
		c.RateBurst = 1
	}
	if c.PingInterval >= c.PongWait {
		c.PingInterval = c.PongWait * 9 / 10
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func setDefault[T int | int64 | float64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// maxInFlight is how many requests of one connection run at once; the next one waits for
// a slot, so a pipelining client is throttled instead of spawning goroutines without bound.
const maxInFlight = 16

// Handler answers one request. The context ends when the client disconnects or the server
// is forced to stop. Return an *Error (see Errorf, InvalidParams) for anything the client
// should read; other errors become CodeInternalError.
type Handler func(ctx context.Context, req *Request) (any, error)

// Request is one call.
type Request struct {
	Method string
	Params json.RawMessage // the params array or object; nil when absent
	Peer   Peer
}

// Peer identifies where a request came from, so the application can add its own limits
// (per connection, per signer).
type Peer struct {
	ID         uint64 // unique per websocket connection; every /rpc request gets its own
	Transport  string // "ws" or "http"
	RemoteAddr string // host:port of the TCP peer (a proxy, if there is one)
}

// DecodeParams decodes the params into v, rejecting unknown fields, and reports a failure
// as a CodeInvalidParams error that names the problem.
func (r *Request) DecodeParams(v any) error {
	if len(r.Params) == 0 {
		return InvalidParams("invalid params: %s needs params", r.Method)
	}
	dec := json.NewDecoder(bytes.NewReader(r.Params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return InvalidParams("invalid params for %s: %v", r.Method, err)
	}
	return nil
}

// Cursor is a position in the chain's log order, shared with the wallet.
type Cursor = protocol.Cursor

// Message is one push on a fan-out key. Data is encoded once per Publish, whatever the
// number of subscribers. The cursor is not added to the push: put it in Data
// (protocol.Activity embeds it) so the client can resume from it.
type Message struct {
	Cursor Cursor
	Data   any
}

// TopicFunc turns the params of sp_subscribe(["topic", params]) into a Feed. req.Method is
// the topic name and req.Params the topic's params (nil when absent). Validate them here
// and return InvalidParams errors; the resume point, if the topic has one, is the
// application's to parse (protocol's topics carry it as "from").
type TopicFunc func(ctx context.Context, req *Request) (Feed, error)

// Feed is what one subscription follows.
type Feed struct {
	// Key is the fan-out key: every Publish on it reaches the subscription.
	Key string
	// Backlog, if set, returns the messages the client missed since its resume point, in
	// cursor order. It runs after the subscription is registered: what is published while
	// it runs is held back, then delivered after the backlog without the copies of
	// messages the backlog already had, so nothing is lost or sent twice.
	Backlog func(ctx context.Context) ([]Message, error)
}

// ErrServerClosed is returned by Publish after Shutdown.
var ErrServerClosed = errors.New("rpcserver: server closed")

// Server is a JSON-RPC 2.0 server over websockets and HTTP. Build it with New, register
// methods and topics, serve WebSocketHandler and HTTPHandler, and stop it with Shutdown.
type Server struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader
	hub      *hub
	httpRate *ipLimiter

	regMu   sync.RWMutex
	methods map[string]Handler
	topics  map[string]TopicFunc

	connMu   sync.Mutex
	conns    map[*wsConn]struct{}
	closing  bool
	connWG   sync.WaitGroup // the reader and writer of every connection
	workWG   sync.WaitGroup // requests being handled
	stopOnce sync.Once

	nextPeer atomic.Uint64
	nextSub  atomic.Uint64
	counters counters
}

type counters struct {
	conns, subs                                    atomic.Int64
	requests, rateLimited, dropped, floods, frames atomic.Uint64
}

// Stats are the server's counters, for /metrics.
type Stats struct {
	Connections   int64  // open websocket connections
	Subscriptions int64  // active subscriptions
	Requests      uint64 // calls handled over /ws and /rpc, refused ones included
	RateLimited   uint64 // calls refused by a rate limit
	Dropped       uint64 // connections closed because their send queue was full
	Floods        uint64 // connections closed for staying over the rate limit
	MessagesSent  uint64 // websocket messages written: responses and pushes
}

// New returns a server ready to serve. Its hub goroutine runs until Shutdown.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		methods: map[string]Handler{},
		topics:  map[string]TopicFunc{},
		conns:   map[*wsConn]struct{}{},
	}
	s.upgrader = websocket.Upgrader{
		// Small read buffers and pooled write buffers keep an idle connection cheap; a
		// frame bigger than the read buffer is still read, just in more than one go.
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     s.originAllowed,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			writeHTTPError(w, status, Errorf(CodeInvalidRequest, "%v", reason))
		},
	}
	if cfg.RatePerSecond > 0 {
		s.httpRate = newIPLimiter(cfg.RatePerSecond, float64(cfg.RateBurst))
	}
	s.hub = newHub(s)
	go s.hub.run()
	return s
}

var reserved = map[string]bool{protocol.MethodSubscribe: true, protocol.MethodUnsubscribe: true, protocol.MethodSubscription: true}

// Register makes method callable over /ws and /rpc. It panics on a reserved or duplicate
// name, which is a programming error.
func (s *Server) Register(method string, h Handler) {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if reserved[method] || s.methods[method] != nil || h == nil {
		panic(fmt.Sprintf("rpcserver: Register(%q): reserved, duplicate or nil handler", method))
	}
	s.methods[method] = h
}

// RegisterTopic makes name subscribable with sp_subscribe over /ws. It panics on a
// duplicate name.
func (s *Server) RegisterTopic(name string, t TopicFunc) {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if s.topics[name] != nil || t == nil {
		panic(fmt.Sprintf("rpcserver: RegisterTopic(%q): duplicate or nil topic", name))
	}
	s.topics[name] = t
}

func (s *Server) handler(method string) Handler {
	s.regMu.RLock()
	defer s.regMu.RUnlock()
	return s.methods[method]
}

func (s *Server) topic(name string) TopicFunc {
	s.regMu.RLock()
	defer s.regMu.RUnlock()
	return s.topics[name]
}

// Publish sends m to every subscription on each key, encoding m.Data once. Publish each
// key's messages in cursor order from one goroutine (reorg retractions, which reuse a
// cursor, excepted), and only once the message is visible to the topic's Backlog: the
// server relies on both to deliver every message exactly once across a resume.
func (s *Server) Publish(m Message, keys ...string) error {
	n, err := encodeNote(m)
	if err != nil {
		return fmt.Errorf("publish on %v: %w", keys, err)
	}
	if !s.hub.send(hubOp{kind: opPublish, keys: keys, note: n}) {
		return ErrServerClosed
	}
	return nil
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	c := &s.counters
	return Stats{
		Connections: c.conns.Load(), Subscriptions: c.subs.Load(),
		Requests: c.requests.Load(), RateLimited: c.rateLimited.Load(),
		Dropped: c.dropped.Load(), Floods: c.floods.Load(), MessagesSent: c.frames.Load(),
	}
}

// Shutdown stops accepting connections and closes the open ones gracefully: each finishes
// the requests it is running, writes what is queued, sends a close frame (1001) and waits
// briefly for the client's. When ctx ends first, the remaining connections are cut. It
// returns once every connection goroutine has exited. Shut the http.Server down too: it
// owns the listener and the /rpc requests.
func (s *Server) Shutdown(ctx context.Context) error {
	s.connMu.Lock()
	s.closing = true
	conns := s.snapshotLocked()
	s.connMu.Unlock()
	for _, c := range conns {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		s.workWG.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("rpcserver shutdown: %w", ctx.Err())
		s.connMu.Lock()
		conns = s.snapshotLocked()
		s.connMu.Unlock()
		for _, c := range conns {
			c.kill()
		}
		// Connection goroutines exit at once when their socket closes; handlers that ignore
		// their context are not waited for.
		s.connWG.Wait()
	}
	s.stopOnce.Do(s.hub.stop)
	return err
}

func (s *Server) snapshotLocked() []*wsConn {
	out := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

func (s *Server) isClosing() bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	return s.closing
}

// runCalls runs the calls of one message in order and returns the encoded reply (nil when
// there is nothing to send) and what must happen after the reply is queued (a
// subscription's backlog). conn is nil for /rpc.
func (s *Server) runCalls(ctx context.Context, peer Peer, calls []call, batch bool, conn *wsConn) (reply []byte, after []func()) {
	var resps [][]byte
	for i := range calls {
		resp, then := s.runCall(ctx, peer, &calls[i], conn)
		if resp != nil {
			resps = append(resps, resp)
		}
		if then != nil {
			after = append(after, then)
		}
	}
	s.counters.requests.Add(uint64(len(calls)))
	switch {
	case len(resps) == 0:
		return nil, after
	case !batch:
		return resps[0], after
	default:
		return joinBatch(resps), after
	}
}

func (s *Server) runCall(ctx context.Context, peer Peer, c *call, conn *wsConn) (resp []byte, after func()) {
	if c.err != nil {
		if c.notify {
			return nil, nil
		}
		return encodeResponse(c.id, nil, c.err), nil
	}
	result, after, rerr := s.invoke(ctx, peer, c, conn)
	if c.notify {
		return nil, after
	}
	return encodeResponse(c.id, result, rerr), after
}

func (s *Server) invoke(ctx context.Context, peer Peer, c *call, conn *wsConn) (result json.RawMessage, after func(), rerr *Error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("rpcserver: handler panicked", "method", c.method, "panic", p, "stack", string(debug.Stack()))
			result, after, rerr = nil, nil, Errorf(CodeInternalError, "internal error")
		}
	}()
	switch c.method {
	case protocol.MethodSubscribe, protocol.MethodUnsubscribe:
		if conn == nil {
			return nil, nil, Errorf(CodeMethodNotFound, "%s needs a websocket: connect to /ws", c.method)
		}
		if c.method == protocol.MethodSubscribe {
			return conn.subscribe(ctx, c.params)
		}
		result, rerr = conn.unsubscribe(c.params)
		return result, nil, rerr
	}
	h := s.handler(c.method)
	if h == nil {
		return nil, nil, Errorf(CodeMethodNotFound, "method %q does not exist", c.method)
	}
	v, err := h(ctx, &Request{Method: c.method, Params: c.params, Peer: peer})
	if err != nil {
		return nil, nil, s.rpcError(ctx, c.method, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("rpcserver: encode result", "method", c.method, "err", err)
		return nil, nil, Errorf(CodeInternalError, "internal error: the result could not be encoded")
	}
	return b, nil, nil
}

// rpcError maps a handler's error to what the client sees.
func (s *Server) rpcError(ctx context.Context, method string, err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	if ctx.Err() != nil {
		return Errorf(CodeUnavailable, "%s was cancelled: the connection is closing", method)
	}
	s.log.Error("rpcserver: handler failed", "method", method, "err", err)
	return Errorf(CodeInternalError, "internal error")
}

func writeHTTPError(w http.ResponseWriter, status int, rerr *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(encodeResponse(nil, nil, rerr))
}

// Subscription pushes are written straight from these pieces and the shared encoded data,
// so a fan-out to many subscribers encodes nothing per subscriber.
var (
	pushPrefix = []byte(`{"jsonrpc":"2.0","method":` + strconv.Quote(protocol.MethodSubscription) + `,"params":{"subscription":"`)
	pushMiddle = []byte(`","result":`)
	pushSuffix = []byte(`}}`)
)
