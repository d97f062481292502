package rpcserver

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Request/response over one websocket, one request at a time: the latency of a call.
func BenchmarkRoundTrip(b *testing.B) {
	e := newEnv(b, Config{})
	c := e.dial(b)
	req := []byte(`{"jsonrpc":"2.0","id":1,"method":"add","params":[2,3]}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := c.c.WriteMessage(websocket.TextMessage, req); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// Request/response over one websocket with up to `window` requests in flight: the
// throughput of one connection.
func BenchmarkPipelined(b *testing.B) {
	for _, window := range []int{16, 64} {
		b.Run("window="+strconv.Itoa(window), func(b *testing.B) {
			e := newEnv(b, Config{SendQueue: 1024})
			c := e.dial(b)
			reqs := make([][]byte, window)
			for i := range reqs {
				reqs[i] = fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"add","params":[%d,3]}`, i, i)
			}
			credits := make(chan struct{}, window)
			for range window {
				credits <- struct{}{}
			}
			done := make(chan error, 1)
			b.ReportAllocs()
			b.ResetTimer()
			n := b.N
			go func() {
				for i := range n {
					if _, data, err := c.c.ReadMessage(); err != nil {
						done <- err
						return
					} else if i == 0 {
						var m rpcMsg
						if json.Unmarshal(data, &m) != nil || m.Error != nil {
							done <- fmt.Errorf("bad reply %s", data)
							return
						}
					}
					credits <- struct{}{}
				}
				done <- nil
			}()
			for i := range n {
				<-credits
				if err := c.c.WriteMessage(websocket.TextMessage, reqs[i%window]); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// One publish to many subscribers in this process, until every subscriber has read it.
func BenchmarkFanout(b *testing.B) {
	const subscribers = 1000
	e := newEnv(b, Config{})
	clients := make([]*wsClient, subscribers)
	for i := range clients {
		clients[i] = e.dial(b)
		clients[i].subscribe("bench", nil)
		_ = clients[i].c.SetReadDeadline(time.Time{})
	}
	got := make(chan error, subscribers)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for _, c := range clients {
			go func() {
				_, _, err := c.c.ReadMessage()
				got <- err
			}()
		}
		if err := e.srv.Publish(msgN(uint64(i+1)), "feed:bench"); err != nil {
			b.Fatal(err)
		}
		for range subscribers {
			if err := <-got; err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*subscribers)/b.Elapsed().Seconds(), "deliveries/s")
}
