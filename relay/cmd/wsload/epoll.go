//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// reader reads every connection's pushes from one epoll loop instead of a goroutine per
// connection: the client's cost per delivery is then one read(2), small next to the
// server's, and 10,000 goroutine wake-ups do not land on the cores the server needs.
// gorilla/websocket does the handshake and the subscribe; after that the server only
// sends small unmasked frames, which are parsed here.
type reader struct {
	epfd  int
	conns []*rawConn
	l     *load
}

type rawConn struct {
	ws   *websocket.Conn // owns the fd
	fd   int
	rest []byte // a partial frame from the last read
	dead bool
}

func newReader(l *load, conns []*websocket.Conn) (*reader, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	r := &reader{epfd: epfd, l: l}
	for i, c := range conns {
		sc, err := c.NetConn().(syscall.Conn).SyscallConn()
		if err != nil {
			return nil, fmt.Errorf("connection %d: %w", i, err)
		}
		fd := -1
		if err := sc.Control(func(p uintptr) { fd = int(p) }); err != nil {
			return nil, fmt.Errorf("connection %d: %w", i, err)
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(i)}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return nil, fmt.Errorf("epoll_ctl connection %d: %w", i, err)
		}
		r.conns = append(r.conns, &rawConn{ws: c, fd: fd})
	}
	return r, nil
}

// run reads until stop is closed.
func (r *reader) run(stop <-chan struct{}) {
	events := make([]syscall.EpollEvent, 512)
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-stop:
			syscall.Close(r.epfd)
			return
		default:
		}
		n, err := syscall.EpollWait(r.epfd, events, 100)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			panic(fmt.Sprintf("epoll_wait: %v", err))
		}
		for _, ev := range events[:n] {
			c := r.conns[ev.Fd]
			if c.dead {
				continue
			}
			m, err := syscall.Read(c.fd, buf)
			now := time.Now().UnixNano()
			switch {
			case errors.Is(err, syscall.EAGAIN):
			case err != nil || m == 0:
				r.kill(c)
			default:
				r.frames(c, int(ev.Fd), buf[:m], now)
			}
		}
	}
}

func (r *reader) kill(c *rawConn) {
	c.dead = true
	_ = syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	r.l.dead.Add(1)
}

// frames handles the complete frames in rest+data and keeps the remainder.
func (r *reader) frames(c *rawConn, i int, data []byte, now int64) {
	if len(c.rest) > 0 {
		data = append(c.rest, data...)
		c.rest = nil
	}
	for len(data) >= 2 {
		op, n, h := data[0]&0x0f, int(data[1]&0x7f), 2
		switch n {
		case 126:
			if len(data) < 4 {
				break
			}
			n, h = int(binary.BigEndian.Uint16(data[2:4])), 4
		case 127:
			if len(data) < 10 {
				break
			}
			n, h = int(binary.BigEndian.Uint64(data[2:10])), 10
		}
		if n > 1<<20 {
			r.kill(c)
			return
		}
		if len(data) < h+n || (h == 2 && data[1]&0x7f >= 126) {
			break
		}
		payload := data[h : h+n]
		switch op {
		case websocket.TextMessage:
			r.l.record(i, payload, now)
		case websocket.PingMessage:
			r.pong(c, payload)
		case websocket.CloseMessage:
			r.kill(c)
			return
		}
		data = data[h+n:]
	}
	if len(data) > 0 {
		c.rest = append([]byte(nil), data...)
	}
}

// pong answers a ping with a masked frame, as a client must.
func (r *reader) pong(c *rawConn, payload []byte) {
	frame := make([]byte, 6+len(payload))
	frame[0], frame[1] = 0x80|websocket.PongMessage, 0x80|byte(len(payload))
	binary.LittleEndian.PutUint32(frame[2:6], rand.Uint32())
	for j, b := range payload {
		frame[6+j] = b ^ frame[2+j%4]
	}
	if _, err := syscall.Write(c.fd, frame); err != nil {
		r.kill(c)
	}
}
