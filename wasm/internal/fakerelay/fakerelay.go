// Package fakerelay is an in-process websocket server speaking the few relay methods and
// topics the wallet uses, for native tests (the real relay cannot be imported from wasm/).
// Dial is a relayclient.Dialer on gorilla/websocket. Tests only: the wasm never imports it.
package fakerelay

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
	"github.com/stagepass/stagepass/wasm/relayclient/wsconn"
)

// Dial opens a gorilla websocket as a relayclient.Conn.
var Dial relayclient.Dialer = wsconn.Dial

// Handler answers a method; returning an *Error sends that JSON-RPC error.
type Handler func(params []json.RawMessage) (any, error)

// Error is a JSON-RPC error reply.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

type entry struct {
	act    protocol.Activity
	owners []string
}

type sub struct {
	conn  *serverConn
	id    string
	topic string
	key   string
}

type serverConn struct {
	ws *websocket.Conn
	mu sync.Mutex
}

func (c *serverConn) send(v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws.WriteJSON(v)
}

// Relay is the fake relay.
type Relay struct {
	URL string // ws://…/ws
	srv *httptest.Server

	mu         sync.Mutex
	log        []entry
	subs       []*sub
	conns      map[*serverConn]bool
	nextSub    int
	handlers   map[string]Handler
	subscribes []json.RawMessage
}

// Subscribes returns the params of every sp_subscribe so far, in order.
func (r *Relay) Subscribes() []json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]json.RawMessage(nil), r.subscribes...)
}

// Active counts the live subscriptions to topic whose owner (tickets), event or request id
// is key (case-insensitive).
func (r *Relay) Active(topic, key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	key = strings.ToLower(key)
	if topic == protocol.TopicEvent {
		key = "event:" + key
	}
	n := 0
	for _, s := range r.subs {
		if s.topic == topic && strings.ToLower(s.key) == key {
			n++
		}
	}
	return n
}

// New starts a fake relay; Close it when done.
func New() *Relay {
	r := &Relay{conns: map[*serverConn]bool{}, handlers: map[string]Handler{}}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ws, err := up.Upgrade(w, req, nil)
		if err != nil {
			return
		}
		c := &serverConn{ws: ws}
		r.mu.Lock()
		r.conns[c] = true
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			delete(r.conns, c)
			var keep []*sub
			for _, s := range r.subs {
				if s.conn != c {
					keep = append(keep, s)
				}
			}
			r.subs = keep
			r.mu.Unlock()
			ws.Close()
		}()
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			r.handle(c, b)
		}
	}))
	r.URL = "ws" + strings.TrimPrefix(r.srv.URL, "http") + "/ws"
	return r
}

// Close stops the server.
func (r *Relay) Close() {
	r.Kick()
	r.srv.Close()
}

// Kick drops every connection (a network failure).
func (r *Relay) Kick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.ws.Close()
	}
}

// Handle sets the handler of method.
func (r *Relay) Handle(method string, h Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handlers[method] = h
}

// Publish appends an activity for owners and pushes it to their "tickets" subscribers and
// to the "event" subscribers of its event; with removed set it is a retraction.
func (r *Relay) Publish(a protocol.Activity, owners ...string) {
	r.mu.Lock()
	for i := range owners {
		owners[i] = strings.ToLower(owners[i])
	}
	owners = append(owners, "event:"+strings.ToLower(a.Event))
	if a.Removed {
		for i := len(r.log) - 1; i >= 0; i-- {
			if r.log[i].act.Cursor == a.Cursor {
				r.log = append(r.log[:i], r.log[i+1:]...)
				break
			}
		}
	} else {
		r.log = append(r.log, entry{a, owners})
	}
	var to []*sub
	for _, s := range r.subs {
		for _, o := range owners {
			if (s.topic == protocol.TopicTickets || s.topic == protocol.TopicEvent) && s.key == o {
				to = append(to, s)
			}
		}
	}
	r.mu.Unlock()
	for _, s := range to {
		s.conn.send(push(s.id, a))
	}
}

// PushRequest sends a request-topic status to its subscribers.
func (r *Relay) PushRequest(st protocol.RequestStatus) {
	r.mu.Lock()
	var to []*sub
	for _, s := range r.subs {
		if s.topic == protocol.TopicRequest && s.key == st.ID {
			to = append(to, s)
		}
	}
	r.mu.Unlock()
	for _, s := range to {
		s.conn.send(push(s.id, st))
	}
}

func push(id string, v any) any {
	return map[string]any{"jsonrpc": "2.0", "method": protocol.MethodSubscription,
		"params": map[string]any{"subscription": id, "result": v}}
}

func (r *Relay) handle(c *serverConn, b []byte) {
	var req struct {
		ID     json.RawMessage   `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return
	}
	reply := func(res any, err error) {
		m := map[string]any{"jsonrpc": "2.0", "id": req.ID}
		if err != nil {
			e, ok := err.(*Error)
			if !ok {
				e = &Error{-32603, err.Error()}
			}
			m["error"] = e
		} else {
			m["result"] = res
		}
		c.send(m)
	}
	r.mu.Lock()
	h := r.handlers[req.Method]
	r.mu.Unlock()
	switch req.Method {
	case protocol.MethodSubscribe:
		r.subscribe(c, req.Params, reply)
		return
	case protocol.MethodUnsubscribe:
		var id string
		if len(req.Params) > 0 {
			json.Unmarshal(req.Params[0], &id)
		}
		r.mu.Lock()
		found := false
		for i, s := range r.subs {
			if s.conn == c && s.id == id {
				r.subs = append(r.subs[:i:i], r.subs[i+1:]...)
				found = true
				break
			}
		}
		r.mu.Unlock()
		reply(found, nil)
		return
	}
	if h == nil {
		reply(nil, &Error{-32601, fmt.Sprintf("the method %s does not exist", req.Method)})
		return
	}
	reply(h(req.Params))
}

func (r *Relay) subscribe(c *serverConn, params []json.RawMessage, reply func(any, error)) {
	if len(params) != 2 {
		reply(nil, &Error{-32602, "subscribe takes [topic, params]"})
		return
	}
	var topic string
	json.Unmarshal(params[0], &topic)
	var p struct {
		Owner string           `json:"owner"`
		Event string           `json:"event"`
		ID    string           `json:"id"`
		From  *protocol.Cursor `json:"from"`
	}
	json.Unmarshal(params[1], &p)
	r.mu.Lock()
	r.subscribes = append(r.subscribes, params[1])
	r.nextSub++
	s := &sub{conn: c, id: fmt.Sprintf("0x%x", r.nextSub), topic: topic}
	switch topic {
	case protocol.TopicTickets:
		s.key = strings.ToLower(p.Owner)
	case protocol.TopicEvent:
		s.key = "event:" + strings.ToLower(p.Event)
	case protocol.TopicRequest:
		s.key = p.ID
	default:
		r.mu.Unlock()
		reply(nil, &Error{-32602, "unknown topic " + topic})
		return
	}
	var backlog []protocol.Activity
	if p.From != nil {
		for _, e := range r.log {
			for _, o := range e.owners {
				if o == s.key && p.From.Less(e.act.Cursor) {
					backlog = append(backlog, e.act)
					break
				}
			}
		}
	}
	r.subs = append(r.subs, s)
	// Reply, then backlog, under the lock so a concurrent Publish comes after both.
	reply(s.id, nil)
	for _, a := range backlog {
		c.send(push(s.id, a))
	}
	r.mu.Unlock()
}
