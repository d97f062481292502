package tickets

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
)

// Store is a small key-value cache (IndexedDB in the browser through the js layer).
// Load returns nil, nil when the key holds nothing.
type Store interface {
	Load(ctx context.Context, key string) ([]byte, error)
	Save(ctx context.Context, key string, value []byte) error
}

// MemoryStore is a Store in memory.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *MemoryStore) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.m[key]...), nil
}

func (s *MemoryStore) Save(_ context.Context, key string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = append([]byte(nil), v...)
	return nil
}

// CacheKey is where an owner's book is cached.
func CacheKey(owner string) string { return "tickets:" + strings.ToLower(owner) }

// Tracker follows one owner's tickets through a relay client and keeps the cache current.
type Tracker struct {
	client   *relayclient.Client
	store    Store
	owner    string
	onChange func()

	mu     sync.Mutex
	book   *Book
	cancel func()
}

// Open loads the cached book of owner (if any); Start begins following the relay.
// onChange (optional) is called after each change, on the client's goroutine.
func Open(ctx context.Context, client *relayclient.Client, store Store, owner string, onChange func()) *Tracker {
	t := &Tracker{client: client, store: store, owner: strings.ToLower(owner), onChange: onChange, book: NewBook(owner)}
	if b, err := store.Load(ctx, CacheKey(owner)); err == nil && len(b) > 0 {
		if bk, err := Decode(b, owner); err == nil {
			t.book = bk
		}
	}
	return t
}

// Start subscribes to the owner's topic, resuming from the cached cursor (or from the
// beginning: the relay replays the owner's whole history, from which the book is folded).
func (t *Tracker) Start() {
	sub := &relayclient.Subscription{
		Topic: protocol.TopicTickets,
		Params: func() any {
			t.mu.Lock()
			defer t.mu.Unlock()
			return map[string]any{"owner": t.owner, "from": t.book.Cursor}
		},
		OnPush: t.push,
	}
	cancel := t.client.Subscribe(sub)
	t.mu.Lock()
	t.cancel = cancel
	t.mu.Unlock()
	go t.fetchEvents()
}

// Stop ends the subscription.
func (t *Tracker) Stop() {
	t.mu.Lock()
	cancel := t.cancel
	t.cancel = nil
	t.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (t *Tracker) push(raw json.RawMessage) {
	var a protocol.Activity
	if json.Unmarshal(raw, &a) != nil {
		return
	}
	t.mu.Lock()
	changed := t.book.Apply(a)
	rec := t.book.Encode()
	t.mu.Unlock()
	if !changed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.store.Save(ctx, CacheKey(t.owner), rec)
	cancel()
	if a.Kind == protocol.KindTransfer {
		go t.fetchEvents()
	}
	if t.onChange != nil {
		t.onChange()
	}
}

// fetchEvents asks the relay for the details of events the book lacks. It never runs on
// the reader goroutine: a call waits for a reply that goroutine reads.
func (t *Tracker) fetchEvents() {
	t.mu.Lock()
	missing := t.book.MissingEvents()
	t.mu.Unlock()
	for _, ev := range missing {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		var info protocol.EventInfo
		err := t.client.Call(ctx, protocol.MethodEvent, []any{ev}, &info)
		cancel()
		if err != nil {
			continue
		}
		t.mu.Lock()
		t.book.Events[ev] = info
		rec := t.book.Encode()
		t.mu.Unlock()
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		t.store.Save(ctx, CacheKey(t.owner), rec)
		cancel()
		if t.onChange != nil {
			t.onChange()
		}
	}
}

// View is what the page shows: the tickets with their event details.
type View struct {
	Owner     string                        `json:"owner"`
	Tickets   []Ticket                      `json:"tickets"`
	Events    map[string]protocol.EventInfo `json:"events"`
	Cursor    protocol.Cursor               `json:"cursor"`
	Connected bool                          `json:"connected"`
}

// View returns the current tickets (from the cache when offline).
func (t *Tracker) View() View {
	t.mu.Lock()
	defer t.mu.Unlock()
	ev := make(map[string]protocol.EventInfo, len(t.book.Events))
	for k, v := range t.book.Events {
		ev[k] = v
	}
	return View{Owner: t.owner, Tickets: t.book.Tickets(), Events: ev, Cursor: t.book.Cursor, Connected: t.client.Connected()}
}

// Owner is the followed account.
func (t *Tracker) Owner() string { return t.owner }

// Ticket returns the held ticket (event, tokenId), if any.
func (t *Tracker) Ticket(event, tokenID string) (Ticket, bool) {
	for _, tk := range t.View().Tickets {
		if strings.EqualFold(tk.Event, event) && tk.TokenID == tokenID {
			return tk, true
		}
	}
	return Ticket{}, false
}

// Event returns cached event details.
func (t *Tracker) Event(event string) (protocol.EventInfo, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.book.Events[strings.ToLower(event)]
	return e, ok
}
