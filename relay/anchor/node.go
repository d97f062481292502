package anchor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/rpcclient"
)

// Node is a btcd process on simnet started by StartSimnet: one CPU-mining node of a private
// proof-of-work chain, for development and tests.
type Node struct {
	// RPC is host:port of its JSON-RPC server (plain HTTP on loopback); User and Pass its
	// credentials.
	RPC, User, Pass string
	// Dir holds its data and log (btcd.log).
	Dir  string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// NodeOptions configure StartSimnet.
type NodeOptions struct {
	// Bin is the btcd binary (required).
	Bin string
	// Dir is where the node keeps its chain (required; kept across restarts).
	Dir string
	// MiningAddr receives the coinbase of every block `generate` mines (required).
	MiningAddr btcutil.Address
	// RPC is the loopback host:port to serve JSON-RPC on (default: a free port).
	RPC string
}

// StartSimnet starts btcd on simnet with its RPC server on loopback without TLS, waits until
// it answers and returns it. Stop ends it.
func StartSimnet(ctx context.Context, opts NodeOptions) (*Node, error) {
	if opts.Bin == "" || opts.Dir == "" || opts.MiningAddr == nil {
		return nil, fmt.Errorf("anchor: StartSimnet needs Bin, Dir and MiningAddr")
	}
	if opts.RPC == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		opts.RPC = l.Addr().String()
		l.Close()
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	// An empty config file keeps btcd from writing one into the home folder.
	conf := filepath.Join(opts.Dir, "btcd.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return nil, err
	}
	var pw [16]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, err
	}
	n := &Node{RPC: opts.RPC, User: "stagepass", Pass: hex.EncodeToString(pw[:]), Dir: opts.Dir}
	logFile, err := os.Create(filepath.Join(opts.Dir, "btcd.out"))
	if err != nil {
		return nil, err
	}
	n.log = logFile
	n.cmd = exec.Command(opts.Bin, "-C", conf, "--simnet", "--datadir", filepath.Join(opts.Dir, "data"),
		"--logdir", opts.Dir, "--rpclisten", opts.RPC, "--rpcuser", n.User, "--rpcpass", n.Pass,
		"--notls", "--nolisten", "--miningaddr", opts.MiningAddr.EncodeAddress())
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	dieWithParent(n.cmd)
	if err := n.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start btcd: %w", err)
	}
	exited := make(chan error, 1)
	n.done = make(chan struct{})
	go func() {
		exited <- n.cmd.Wait()
		close(n.done)
	}()
	c, err := n.Client()
	if err != nil {
		n.Stop()
		return nil, err
	}
	defer c.Shutdown()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.GetBlockCount()
		if err == nil {
			return n, nil
		}
		select {
		case werr := <-exited:
			out, _ := os.ReadFile(logFile.Name())
			n.Stop()
			return nil, fmt.Errorf("btcd exited (%v): %s", werr, out)
		case <-ctx.Done():
			n.Stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logFile.Name())
			n.Stop()
			return nil, fmt.Errorf("btcd did not answer at %s within 30 s: %v\n%s", opts.RPC, err, out)
		}
	}
}

// Client connects a JSON-RPC client to the node.
func (n *Node) Client() (*rpcclient.Client, error) {
	return Dial(n.RPC, n.User, n.Pass, "")
}

// Stop ends the node cleanly (SIGINT: btcd flushes its UTXO cache), killing it after 10 s,
// and waits until it has.
func (n *Node) Stop() {
	_ = n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	n.log.Close()
}

// Dial connects to a btcd JSON-RPC server at host:port over HTTP POST; with certFile, over
// TLS with that certificate (btcd's rpc.cert), else plain HTTP (btcd allows that on loopback
// only).
func Dial(host, user, pass, certFile string) (*rpcclient.Client, error) {
	cfg := &rpcclient.ConnConfig{Host: host, User: user, Pass: pass, HTTPPostMode: true, DisableTLS: certFile == ""}
	if certFile != "" {
		cert, err := os.ReadFile(certFile)
		if err != nil {
			return nil, fmt.Errorf("btcd certificate: %w", err)
		}
		cfg.Certificates = cert
	}
	return rpcclient.New(cfg, nil)
}
