package rpcserver

import "sync"

// outMsg is one message waiting to be written.
type outMsg struct {
	sub  string // subscription id when data is a push's result; empty when data is a whole message
	data []byte
}

type pushResult int

const (
	pushed pushResult = iota
	pushFull
	pushClosed
)

// sendQueue is a connection's bounded outgoing queue. It is a slice that grows on demand
// rather than a buffered channel, so an idle connection holds no queue memory at all. The
// writer takes everything at once; nobody holds the lock while writing to the socket.
type sendQueue struct {
	mu      sync.Mutex
	room    sync.Cond // broadcast when the writer takes items or leaves
	items   []outMsg
	limit   int
	working int  // requests running on the connection: their replies are still to come
	closing bool // start nothing new; the writer finishes the running work, then closes
	killed  bool // stop now: the writer leaves without writing anything more
	done    bool // the writer has left; nothing is accepted any more
	wake    chan struct{}
}

func (q *sendQueue) init(limit int) {
	q.limit = limit
	q.room.L = &q.mu
	q.wake = make(chan struct{}, 1)
}

func (q *sendQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push queues m unless the queue is full or the writer has left; it never waits, so the
// hub can use it.
func (q *sendQueue) push(m outMsg) pushResult {
	q.mu.Lock()
	switch {
	case q.done:
		q.mu.Unlock()
		return pushClosed
	case len(q.items) >= q.limit:
		q.mu.Unlock()
		return pushFull
	}
	q.items = append(q.items, m)
	q.mu.Unlock()
	q.signal()
	return pushed
}

// pushWait queues m, waiting while the queue is at least half full. A backlog may be
// longer than the queue; waiting (only this connection's request goroutine waits) sends
// it at the client's pace, and the free half leaves room for live pushes on the
// connection's other subscriptions, so a resuming client is not dropped for the backlog it
// asked for. It reports false once the writer has left.
func (q *sendQueue) pushWait(m outMsg) bool {
	q.mu.Lock()
	for !q.done && len(q.items) >= max(1, q.limit/2) {
		q.room.Wait()
	}
	if q.done {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, m)
	q.mu.Unlock()
	q.signal()
	return true
}

// take returns everything queued. finished reports that the connection is closing and no
// request is running any more: after these items, nothing else will come. killed reports
// that the writer must leave at once.
func (q *sendQueue) take() (items []outMsg, finished, killed bool) {
	q.mu.Lock()
	items, q.items = q.items, nil
	finished = q.closing && q.working == 0
	killed = q.killed
	q.mu.Unlock()
	if len(items) > 0 {
		q.room.Broadcast()
	}
	return items, finished, killed
}

// recycle gives a written batch's slice back if it is small, so that a connection that
// gets one push at a time does not allocate for each.
func (q *sendQueue) recycle(items []outMsg) {
	if cap(items) > 4 {
		return
	}
	clear(items)
	q.mu.Lock()
	if q.items == nil && !q.done {
		q.items = items[:0]
	}
	q.mu.Unlock()
}

// kill makes the writer leave without writing anything more.
func (q *sendQueue) kill() {
	q.mu.Lock()
	q.killed = true
	q.mu.Unlock()
	q.signal()
}

// begin counts a request that will reply; it reports false when the connection is closing.
func (q *sendQueue) begin() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing || q.done {
		return false
	}
	q.working++
	return true
}

func (q *sendQueue) end() {
	q.mu.Lock()
	q.working--
	last := q.working == 0 && q.closing
	q.mu.Unlock()
	if last {
		q.signal()
	}
}

func (q *sendQueue) isClosing() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closing
}

func (q *sendQueue) close() {
	q.mu.Lock()
	q.closing = true
	q.mu.Unlock()
	q.signal()
}

// finish is called by the writer as it leaves.
func (q *sendQueue) finish() {
	q.mu.Lock()
	q.done, q.closing, q.items = true, true, nil
	q.mu.Unlock()
	q.room.Broadcast()
}
