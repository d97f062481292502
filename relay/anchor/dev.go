package anchor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/ethereum/go-ethereum/common"
)

// BtcdPath finds the btcd binary: $STAGEPASS_BTCD, then btcd on PATH, then $GOPATH/bin/btcd
// (where build.sh test installs it). It returns "" when there is none.
func BtcdPath() string {
	if p := os.Getenv("STAGEPASS_BTCD"); p != "" {
		return p
	}
	if p, err := exec.LookPath("btcd"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "btcd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// DevConfig configures StartDev.
type DevConfig struct {
	// Bin is btcd (default BtcdPath()).
	Bin string
	// Dir holds the node's chain (Dir/btcd-simnet) and the anchorer's store (Dir/anchor.db),
	// both made anew on each start, as the development main chain is.
	Dir string
	// Main and Manager are the main chain and its CheckpointManager.
	Main    MainChain
	Manager common.Address
	// Poll is how often the main chain is read (default 1 s).
	Poll   time.Duration
	Logger *slog.Logger
}

// Dev is the proof-of-work side of a development platform: btcd on simnet mining to a fresh
// anchor key (100 blocks mined at start, so the first coinbase is spendable) and an Anchorer
// that anchors each checkpoint as soon as it is mined on the main chain, mining one block per
// anchor.
type Dev struct {
	Node     *Node
	BTC      *rpcclient.Client
	Anchorer *Anchorer
	cancel   context.CancelFunc
	done     chan struct{}
}

// StartDev starts btcd and the anchor loop; Close stops both.
func StartDev(ctx context.Context, cfg DevConfig) (*Dev, error) {
	if cfg.Bin == "" {
		cfg.Bin = BtcdPath()
	}
	if cfg.Bin == "" {
		return nil, errors.New("btcd not found: go install github.com/btcsuite/btcd@v0.26.2 (or set STAGEPASS_BTCD)")
	}
	if cfg.Dir == "" || cfg.Main == nil {
		return nil, errors.New("anchor: StartDev needs Dir and Main")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	nodeDir, store := filepath.Join(cfg.Dir, "btcd-simnet"), filepath.Join(cfg.Dir, "anchor.db")
	for _, p := range []string{nodeDir, store} {
		if err := os.RemoveAll(p); err != nil {
			return nil, err
		}
	}
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, err
	}
	addr, err := KeyAddress(key, &chaincfg.SimNetParams)
	if err != nil {
		return nil, err
	}
	node, err := StartSimnet(ctx, NodeOptions{Bin: cfg.Bin, Dir: nodeDir, MiningAddr: addr})
	if err != nil {
		return nil, err
	}
	d := &Dev{Node: node, done: make(chan struct{})}
	fail := func(err error) (*Dev, error) {
		if d.Anchorer != nil {
			d.Anchorer.Close()
		}
		if d.BTC != nil {
			d.BTC.Shutdown()
		}
		node.Stop()
		return nil, err
	}
	if d.BTC, err = node.Client(); err != nil {
		return fail(err)
	}
	if _, err := d.BTC.Generate(uint32(chaincfg.SimNetParams.CoinbaseMaturity)); err != nil {
		return fail(fmt.Errorf("btcd generate: %w", err))
	}
	if d.Anchorer, err = New(ctx, Config{BTC: d.BTC, Key: key, Main: cfg.Main, Manager: cfg.Manager, Store: store, Generate: 1, Logger: cfg.Logger}); err != nil {
		return fail(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() {
		defer close(d.done)
		_ = d.Anchorer.Run(runCtx, LoopConfig{Poll: cfg.Poll, Confirmations: 1})
	}()
	return d, nil
}

// Close stops the anchor loop and btcd.
func (d *Dev) Close() {
	d.cancel()
	<-d.done
	d.Anchorer.Close()
	d.BTC.Shutdown()
	d.Node.Stop()
}
