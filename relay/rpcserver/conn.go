package rpcserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// closeGrace is how long a closing connection waits for the client's close frame (and the
// longest a close frame may take to write) before the socket is closed.
const closeGrace = 2 * time.Second

// WebSocketHandler serves JSON-RPC over websockets (mount it at /ws).
func (s *Server) WebSocketHandler() http.Handler { return http.HandlerFunc(s.serveWS) }

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.isClosing() {
		writeHTTPError(w, http.StatusServiceUnavailable, Errorf(CodeUnavailable, "server is shutting down"))
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error (403 for a foreign origin)
	}
	c := newConn(s, ws, Peer{ID: s.nextPeer.Add(1), Transport: "ws", RemoteAddr: r.RemoteAddr})
	s.connMu.Lock()
	if s.closing {
		s.connMu.Unlock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(closeGrace))
		_ = ws.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(2)
	s.connMu.Unlock()
	s.counters.conns.Add(1)
	// The handler returns and lets net/http drop its per-request state; the connection
	// lives on in its two goroutines, as in gorilla's chat example.
	go c.writePump()
	go c.readPump()
}

// originAllowed is the Origin check of websocket upgrades and /rpc.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser: browsers always send Origin on these requests
	}
	if len(s.cfg.AllowedOrigins) == 0 {
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// wsConn is one websocket client. Its reader goroutine parses requests and starts them,
// its writer goroutine alone writes to the socket, and the hub reaches it only through
// the send queue, so a slow socket holds up nobody else.
type wsConn struct {
	s      *Server
	ws     *websocket.Conn
	peer   Peer
	ctx    context.Context // ends when the connection goes: the requests' context
	cancel context.CancelFunc
	q      sendQueue
	slots  chan struct{} // maxInFlight request slots
	alive  atomic.Int32  // reader and writer still running; the last one closes the socket

	closeOnce sync.Once
	closeCode int // the close frame the writer sends when it finishes; set before q.close
	closeText string
	killOnce  sync.Once

	deadlineMu  sync.Mutex
	readClosing bool // a close is under way: the read deadline no longer moves

	// Reader-owned.
	rate       tokenBucket
	floodStart time.Time
	floodCount int

	// Hub-owned.
	subs map[string]*subscription
	gone bool // unregistered or dropped: no new subscriptions
}

func newConn(s *Server, ws *websocket.Conn, peer Peer) *wsConn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &wsConn{
		s: s, ws: ws, peer: peer, ctx: ctx, cancel: cancel,
		slots: make(chan struct{}, maxInFlight),
		rate:  tokenBucket{rate: s.cfg.RatePerSecond, burst: float64(s.cfg.RateBurst)},
	}
	c.q.init(s.cfg.SendQueue)
	c.alive.Store(2)
	return c
}

// readPump reads requests until the connection fails or finishes closing.
func (c *wsConn) readPump() {
	defer c.s.connWG.Done()
	c.ws.SetReadLimit(c.s.cfg.MaxMessageBytes)
	c.extendRead()
	c.ws.SetPongHandler(func(string) error { c.extendRead(); return nil })
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.logReadError(err)
			break
		}
		c.handle(data)
		// Any frame shows the client is alive; handle may also have waited for a slot.
		c.extendRead()
	}
	c.cancel()
	// Gorilla has already answered a client's close frame, and sent 1009 for an oversized
	// one; otherwise this is the frame the writer sends after the queued replies.
	c.closeWith(websocket.CloseGoingAway, "")
	c.s.hub.send(hubOp{kind: opUnregister, conn: c})
	c.release()
}

func (c *wsConn) logReadError(err error) {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF):
	case errors.Is(err, websocket.ErrReadLimit):
		c.s.log.Info("rpcserver: frame over the size limit, closing", "peer", c.peer.ID, "remote", c.peer.RemoteAddr)
	case errors.As(err, &ne) && ne.Timeout():
		if !c.q.isClosing() {
			c.s.log.Info("rpcserver: client silent past PongWait, closing", "peer", c.peer.ID, "remote", c.peer.RemoteAddr)
		}
	default:
		c.s.log.Info("rpcserver: read failed", "peer", c.peer.ID, "remote", c.peer.RemoteAddr, "err", err)
	}
}

// handle parses one frame, applies the rate limit and starts the requests.
func (c *wsConn) handle(data []byte) {
	if c.q.isClosing() {
		// The close frame is on its way or sent; the reader only waits for the client's.
		// Nothing new starts, and a flood that got the connection closed costs no more work.
		return
	}
	calls, batch, perr := parseMessage(data, c.s.cfg.MaxBatch)
	if perr != nil {
		// A malformed message costs a token like a request, so garbage floods too.
		if c.admit(1) == 0 {
			perr = errRateLimited()
		}
		c.send(encodeResponse(nil, nil, perr))
		return
	}
	refused := 0
	for i := range calls {
		if c.admit(1) == 0 {
			calls[i].err = errRateLimited()
		}
		if calls[i].err != nil {
			refused++
		}
	}
	if refused == len(calls) {
		// Nothing to run: answer here rather than start a goroutine per refused message.
		c.refuse(calls, batch)
		return
	}
	select {
	case c.slots <- struct{}{}:
	case <-c.ctx.Done():
		return
	}
	if !c.q.begin() {
		<-c.slots
		c.refuse(calls, batch)
		return
	}
	c.s.workWG.Add(1)
	go c.run(calls, batch)
}

func errRateLimited() *Error {
	return Errorf(CodeLimitExceeded, "rate limit exceeded: slow down")
}

// refuse answers requests that will not run: refused by the rate limit, or caught by a
// close that began while the reader waited for a slot.
func (c *wsConn) refuse(calls []call, batch bool) {
	for i := range calls {
		if calls[i].err == nil {
			calls[i].err = Errorf(CodeUnavailable, "connection is closing")
		}
	}
	if reply, _ := c.s.runCalls(c.ctx, c.peer, calls, batch, c); reply != nil {
		c.send(reply)
	}
}

// admit takes n tokens from the connection's bucket and returns how many it got. A client
// that stays over the limit is closed: past a point, answering every refused request is
// work the flood makes us do.
func (c *wsConn) admit(n int) int {
	if c.s.cfg.RatePerSecond <= 0 {
		return n
	}
	now := time.Now()
	got := 0
	for range n {
		if c.rate.take(now) {
			got++
			continue
		}
		c.s.counters.rateLimited.Add(1)
		if now.Sub(c.floodStart) > time.Second {
			c.floodStart, c.floodCount = now, 0
		}
		c.floodCount++
		if c.floodCount == int(math.Max(float64(c.s.cfg.RateBurst), math.Ceil(c.s.cfg.RatePerSecond)))+1 {
			c.s.counters.floods.Add(1)
			c.s.log.Warn("rpcserver: client flooding, closing", "peer", c.peer.ID, "remote", c.peer.RemoteAddr)
			c.closeWith(websocket.ClosePolicyViolation, "rate limit exceeded")
		}
	}
	return got
}

// run handles one message on its own goroutine.
func (c *wsConn) run(calls []call, batch bool) {
	defer c.s.workWG.Done()
	defer func() { <-c.slots }()
	defer c.q.end()
	reply, after := c.s.runCalls(c.ctx, c.peer, calls, batch, c)
	if reply != nil && !c.send(reply) {
		return
	}
	for _, f := range after {
		f()
	}
}

// send queues a reply; a client too slow to take its replies is dropped.
func (c *wsConn) send(data []byte) bool {
	switch c.q.push(outMsg{data: data}) {
	case pushFull:
		c.s.hub.send(hubOp{kind: opDrop, conn: c})
		return false
	case pushClosed:
		return false
	}
	return true
}

// writePump is the connection's only writer.
func (c *wsConn) writePump() {
	defer c.s.connWG.Done()
	ping := time.NewTicker(c.s.cfg.PingInterval)
	defer ping.Stop()
	graceful := false
loop:
	for {
		select {
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.s.cfg.WriteWait)); err != nil {
				break loop
			}
		case <-c.q.wake:
			items, finished, killed := c.q.take()
			if killed {
				break loop
			}
			if err := c.write(items); err != nil {
				break loop
			}
			c.q.recycle(items)
			if finished {
				graceful = true
				break loop
			}
		}
	}
	c.q.finish()
	if graceful {
		// The close frame goes after every reply, then the client gets a moment to answer
		// it before the reader stops waiting and the socket closes.
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeText), time.Now().Add(closeGrace))
		c.limitRead(closeGrace)
	} else {
		c.limitRead(0)
	}
	c.release()
}

// scratch holds pushes while they are assembled: one WriteMessage per push is gorilla's
// allocation-free path, and a fan-out to many connections allocates nothing per push.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

func (c *wsConn) write(items []outMsg) error {
	for _, m := range items {
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteWait))
		if m.sub == "" {
			if err := c.ws.WriteMessage(websocket.TextMessage, m.data); err != nil {
				return err
			}
			continue
		}
		bp := scratch.Get().(*[]byte)
		b := append((*bp)[:0], pushPrefix...)
		b = append(b, m.sub...)
		b = append(b, pushMiddle...)
		b = append(b, m.data...)
		b = append(b, pushSuffix...)
		err := c.ws.WriteMessage(websocket.TextMessage, b)
		if cap(b) <= 64<<10 { // big pushes are rare; do not keep their buffers around
			*bp = b
			scratch.Put(bp)
		}
		if err != nil {
			return err
		}
	}
	c.s.counters.frames.Add(uint64(len(items)))
	return nil
}

// extendRead moves the read deadline PongWait ahead, unless a close is under way.
func (c *wsConn) extendRead() {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	if !c.readClosing {
		_ = c.ws.NetConn().SetReadDeadline(time.Now().Add(c.s.cfg.PongWait))
	}
}

// limitRead lets the reader wait at most d more, for the client's close frame.
func (c *wsConn) limitRead(d time.Duration) {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	c.readClosing = true
	_ = c.ws.NetConn().SetReadDeadline(time.Now().Add(d))
}

// closeWith starts a graceful close: no new requests, then the writer sends what is
// queued and the running requests' replies, then a close frame with code and text.
func (c *wsConn) closeWith(code int, text string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText = code, text
		c.q.close()
	})
}

// kill cuts the connection now: for a client too slow to take its messages (a close frame
// would only queue behind them) and when Shutdown runs out of time.
func (c *wsConn) kill() {
	c.killOnce.Do(func() {
		c.q.kill()
		c.cancel()
		_ = c.ws.NetConn().Close()
	})
}

// release is called by the reader and the writer as they leave; the last one closes.
func (c *wsConn) release() {
	if c.alive.Add(-1) > 0 {
		return
	}
	c.cancel()
	_ = c.ws.Close()
	c.s.connMu.Lock()
	delete(c.s.conns, c)
	c.s.connMu.Unlock()
	c.s.counters.conns.Add(-1)
}

// subscribe implements sp_subscribe(["topic", params]).
func (c *wsConn) subscribe(ctx context.Context, params json.RawMessage) (json.RawMessage, func(), *Error) {
	var args []json.RawMessage
	if err := json.Unmarshal(params, &args); err != nil || len(args) < 1 || len(args) > 2 {
		return nil, nil, InvalidParams(`invalid params: want ["topic"] or ["topic", params]`)
	}
	var name string
	if err := json.Unmarshal(args[0], &name); err != nil {
		return nil, nil, InvalidParams("invalid params: the topic must be a string")
	}
	topic := c.s.topic(name)
	if topic == nil {
		return nil, nil, InvalidParams("invalid params: unknown topic %q", name)
	}
	req := &Request{Method: name, Peer: c.peer}
	if len(args) == 2 && string(args[1]) != "null" {
		req.Params = args[1]
	}
	feed, err := topic(ctx, req)
	if err != nil {
		return nil, nil, c.s.rpcError(ctx, name, err)
	}
	if feed.Key == "" {
		c.s.log.Error("rpcserver: topic returned an empty fan-out key", "topic", name)
		return nil, nil, Errorf(CodeInternalError, "internal error")
	}
	sub := &subscription{id: newSubID(c.s), key: feed.Key, conn: c}
	if rerr := c.s.hub.register(sub); rerr != nil {
		return nil, nil, rerr
	}
	// Registered and holding back live messages: whatever is published from here on is
	// either in the backlog read below or delivered after it.
	var backlog []*note
	if feed.Backlog != nil {
		msgs, err := feed.Backlog(ctx)
		if err == nil {
			backlog, err = encodeNotes(msgs)
		}
		if err != nil {
			_, _ = c.s.hub.unsubscribe(c, sub.id)
			return nil, nil, c.s.rpcError(ctx, name+" backlog", err)
		}
	}
	id, _ := json.Marshal(sub.id)
	after := func() {
		for _, n := range backlog {
			sub.mu.Lock()
			ok := !sub.cancelled && c.q.pushWait(outMsg{sub: sub.id, data: n.data})
			sub.mu.Unlock()
			if !ok {
				return
			}
		}
		c.s.hub.send(hubOp{kind: opLive, sub: sub, backlog: backlog})
	}
	return id, after, nil
}

// unsubscribe implements sp_unsubscribe([id]). Once it has replied, the subscription
// pushes nothing more.
func (c *wsConn) unsubscribe(params json.RawMessage) (json.RawMessage, *Error) {
	var args []string
	if err := json.Unmarshal(params, &args); err != nil || len(args) != 1 {
		return nil, InvalidParams(`invalid params: want ["subscription id"]`)
	}
	sub, rerr := c.s.hub.unsubscribe(c, args[0])
	if rerr != nil {
		return nil, rerr
	}
	// The hub pushes nothing more; a backlog still being sent stops before this reply.
	sub.mu.Lock()
	sub.cancelled = true
	sub.mu.Unlock()
	return json.RawMessage("true"), nil
}
