package rpcserver

import (
	"net"
	"sync"
	"time"
)

// tokenBucket allows rate requests per second with bursts of up to burst. It is not
// synchronised: a websocket connection's bucket belongs to its reader goroutine.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *tokenBucket) take(now time.Time) bool {
	b.fill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *tokenBucket) fill(now time.Time) {
	if b.last.IsZero() {
		b.tokens = b.burst
	} else {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
}

// ipLimiter keeps a bucket per remote IP for /rpc, where there is no connection to hang
// one on (a client may open a new one per request).
type ipLimiter struct {
	mu          sync.Mutex
	rate, burst float64
	buckets     map[string]*tokenBucket
}

// ipLimiterPrune is the map size past which idle buckets are forgotten.
const ipLimiterPrune = 4096

func newIPLimiter(rate, burst float64) *ipLimiter {
	return &ipLimiter{rate: rate, burst: burst, buckets: map[string]*tokenBucket{}}
}

// take takes one token for remoteAddr (host:port).
func (l *ipLimiter) take(remoteAddr string, now time.Time) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[host]
	if b == nil {
		if len(l.buckets) >= ipLimiterPrune {
			l.pruneLocked(now)
		}
		b = &tokenBucket{rate: l.rate, burst: l.burst}
		l.buckets[host] = b
	}
	return b.take(now)
}

// pruneLocked forgets buckets that have refilled: a fresh bucket is the same as a full one.
func (l *ipLimiter) pruneLocked(now time.Time) {
	for host, b := range l.buckets {
		if b.fill(now); b.tokens >= b.burst {
			delete(l.buckets, host)
		}
	}
}
