package rpcserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
)

// note is one published message, encoded once for all its subscribers.
type note struct {
	cursor Cursor
	data   []byte
}

func encodeNote(m Message) (*note, error) {
	data, err := json.Marshal(m.Data)
	if err != nil {
		return nil, fmt.Errorf("encode message at %d/%d: %w", m.Cursor.Block, m.Cursor.LogIndex, err)
	}
	return &note{cursor: m.Cursor, data: data}, nil
}

func encodeNotes(msgs []Message) ([]*note, error) {
	out := make([]*note, len(msgs))
	for i, m := range msgs {
		n, err := encodeNote(m)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// subscription is one client's interest in a fan-out key. After construction, every
// field but id, key, conn and the cancel lock belongs to the hub goroutine.
type subscription struct {
	id   string
	key  string
	conn *wsConn

	// cancelled is set under mu by sp_unsubscribe before it replies, and checked under mu
	// before each backlog push, so no backlog push can follow the reply.
	mu        sync.Mutex
	cancelled bool

	live    bool
	removed bool
	held    []*note // published while the backlog was read and sent
	// recent are backlog messages whose live copy may still come (nil once matched), last
	// the backlog's last cursor. A live message identical to one of them is that copy.
	recent []*note
	last   Cursor
}

// recentWindow is how many of the backlog's newest messages are remembered once the
// subscription is live. Copies published before it went live were all held and are
// matched against the whole backlog; later ones can only be the few messages the publisher
// had stored but not yet published when the backlog was read, the backlog's newest.
const recentWindow = 64

// backlogCopy reports whether n is the live copy of a message the backlog already sent.
// A message at a backlog cursor that differs (a reorg retraction) is delivered, and
// consumes the entry, so the block's replacement is delivered too.
func (s *subscription) backlogCopy(n *note) bool {
	if len(s.recent) == 0 {
		return false
	}
	if s.last.Less(n.cursor) {
		// Past the backlog: each key is published in cursor order, so every copy has gone by.
		s.recent = nil
		return false
	}
	// Copies are of the backlog's newest messages: look from the end.
	for i := len(s.recent) - 1; i >= 0; i-- {
		if r := s.recent[i]; r != nil && r.cursor == n.cursor {
			s.recent[i] = nil
			return bytes.Equal(r.data, n.data)
		}
	}
	return false
}

func newSubID(s *Server) string { return "0x" + strconv.FormatUint(s.nextSub.Add(1), 16) }

type opKind int

const (
	opPublish     opKind = iota
	opRegister           // add a subscription, holding its live messages
	opLive               // the backlog is queued: deliver what was held, then live
	opUnsubscribe        // remove one subscription of a connection
	opUnregister         // the connection is gone: remove all of its subscriptions
	opDrop               // the connection's send queue is full: cut it
)

type hubOp struct {
	kind    opKind
	keys    []string
	note    *note
	conn    *wsConn
	sub     *subscription
	id      string
	backlog []*note
	reply   chan hubReply
}

type hubReply struct {
	sub *subscription
	err *Error
}

// hub owns the subscriptions. Everything reaches it through one FIFO channel so that a
// subscription goes live exactly after the publishes that preceded it, and it never
// writes to a socket: it only appends to send queues, which never block.
type hub struct {
	s     *Server
	ops   chan hubOp
	quit  chan struct{}
	done  chan struct{}
	byKey map[string]map[*subscription]struct{}
}

func newHub(s *Server) *hub {
	return &hub{
		s:     s,
		ops:   make(chan hubOp, 1024),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
		byKey: map[string]map[*subscription]struct{}{},
	}
}

func (h *hub) run() {
	defer close(h.done)
	for {
		select {
		case op := <-h.ops:
			h.apply(op)
		case <-h.quit:
			return
		}
	}
}

func (h *hub) stop() {
	close(h.quit)
	<-h.done
}

// send queues op for the hub; false once the hub has stopped.
func (h *hub) send(op hubOp) bool {
	select {
	case <-h.quit:
		return false
	default:
	}
	select {
	case h.ops <- op:
		return true
	case <-h.quit:
		return false
	}
}

// ask sends op and waits for the hub's answer.
func (h *hub) ask(op hubOp) hubReply {
	op.reply = make(chan hubReply, 1)
	closed := hubReply{err: Errorf(CodeUnavailable, "server is shutting down")}
	if !h.send(op) {
		return closed
	}
	select {
	case r := <-op.reply:
		return r
	case <-h.quit:
		return closed
	}
}

func (h *hub) register(sub *subscription) *Error {
	return h.ask(hubOp{kind: opRegister, sub: sub, conn: sub.conn}).err
}

// unsubscribe removes subscription id of c and returns it.
func (h *hub) unsubscribe(c *wsConn, id string) (*subscription, *Error) {
	r := h.ask(hubOp{kind: opUnsubscribe, conn: c, id: id})
	return r.sub, r.err
}

func (h *hub) apply(op hubOp) {
	switch op.kind {
	case opPublish:
		for _, key := range op.keys {
			for sub := range h.byKey[key] {
				h.deliver(sub, op.note)
			}
		}
	case opRegister:
		op.reply <- hubReply{err: h.add(op.sub)}
	case opLive:
		sub := op.sub
		if sub.removed {
			return
		}
		if n := len(op.backlog); n > 0 {
			sub.last = op.backlog[n-1].cursor
			sub.recent = op.backlog
		}
		sub.live = true
		held := sub.held
		sub.held = nil
		for _, n := range held {
			if sub.removed {
				return
			}
			h.deliver(sub, n)
		}
		if len(sub.recent) > recentWindow {
			sub.recent = sub.recent[len(sub.recent)-recentWindow:]
		}
	case opUnsubscribe:
		sub := op.conn.subs[op.id]
		if sub == nil {
			op.reply <- hubReply{err: InvalidParams("invalid params: no subscription %q on this connection", op.id)}
			return
		}
		h.remove(sub)
		op.reply <- hubReply{sub: sub}
	case opUnregister:
		h.forget(op.conn)
	case opDrop:
		h.drop(op.conn)
	}
}

func (h *hub) add(sub *subscription) *Error {
	c := sub.conn
	if c.gone {
		return Errorf(CodeUnavailable, "connection is closing")
	}
	if len(c.subs) >= h.s.cfg.MaxSubscriptions {
		return Errorf(CodeLimitExceeded, "limit exceeded: %d subscriptions per connection", h.s.cfg.MaxSubscriptions)
	}
	if c.subs == nil {
		c.subs = map[string]*subscription{}
	}
	c.subs[sub.id] = sub
	set := h.byKey[sub.key]
	if set == nil {
		set = map[*subscription]struct{}{}
		h.byKey[sub.key] = set
	}
	set[sub] = struct{}{}
	h.s.counters.subs.Add(1)
	return nil
}

func (h *hub) deliver(sub *subscription, n *note) {
	if !sub.live {
		if len(sub.held) >= h.s.cfg.SendQueue {
			h.drop(sub.conn)
			return
		}
		sub.held = append(sub.held, n)
		return
	}
	if sub.backlogCopy(n) {
		return
	}
	if sub.conn.q.push(outMsg{sub: sub.id, data: n.data}) == pushFull {
		h.drop(sub.conn)
	}
	// pushClosed: the connection is finishing and its reader will unregister it.
}

func (h *hub) remove(sub *subscription) {
	if sub.removed {
		return
	}
	sub.removed = true
	sub.held, sub.recent = nil, nil
	delete(sub.conn.subs, sub.id)
	if set := h.byKey[sub.key]; set != nil {
		delete(set, sub)
		if len(set) == 0 {
			delete(h.byKey, sub.key)
		}
	}
	h.s.counters.subs.Add(-1)
}

// forget removes every subscription of a connection that is going away.
func (h *hub) forget(c *wsConn) {
	c.gone = true
	for _, sub := range c.subs {
		h.remove(sub)
	}
	c.subs = nil
}

// drop disconnects a client that does not keep up, without a close frame: it would only
// queue behind the messages the client is not reading. The client reconnects and resumes
// from the last cursor it saw.
func (h *hub) drop(c *wsConn) {
	if c.gone {
		return
	}
	h.forget(c)
	h.s.counters.dropped.Add(1)
	h.s.log.Warn("rpcserver: send queue full, dropping client", "peer", c.peer.ID, "remote", c.peer.RemoteAddr)
	c.kill()
}
