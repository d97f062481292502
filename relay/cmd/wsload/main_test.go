//go:build linux

package main

import (
	"context"
	"testing"
)

// The tool end to end at a small scale, against both servers.
func TestServeAndRun(t *testing.T) {
	for _, mode := range [][]string{nil, {"-bare"}} {
		t.Run(map[bool]string{true: "bare", false: "rpcserver"}[mode != nil], func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			addr := make(chan string, 1)
			go func() {
				served <- serveCmd(ctx, append([]string{"-addr", "127.0.0.1:0"}, mode...), func(a string) { addr <- a })
			}()
			a := <-addr
			err := runCmd(ctx, []string{"-url", "ws://" + a + "/ws", "-n", "50", "-publishes", "3", "-interval", "10ms", "-settle", "0s", "-wait", "5s"})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			cancel()
			if err := <-served; err != nil {
				t.Fatalf("serve: %v", err)
			}
		})
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, args := range [][]string{
		{"-url", "ws://10.0.0.1:8546/ws"},
		{"-url", "ws://example.com/ws"},
		{"-url", "ws://127.0.0.1:8546/ws", "-rpc", "http://example.com/rpc"},
	} {
		if err := runCmd(context.Background(), args); err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
	if err := serveCmd(context.Background(), []string{"-addr", "0.0.0.0:0"}, nil); err == nil {
		t.Error("serve on 0.0.0.0: no error")
	}
}
