package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/site"
)

func runDev(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("dev", "Runs the whole platform on one machine: an in-process EVM chain with blocks on a timer, "+
		"the contracts deployed, a demo event, funded development accounts (the well-known\n"+
		"'test test ... junk' mnemonic), and the relay serving the site.", stderr)
	var c sharedFlags
	c.register(fs, filepath.Join(os.TempDir(), "stagepass-dev"))
	blockTime := fs.Duration("block-time", time.Second, "how often the development chain commits a block")
	identityHTTP := fs.Bool("identity-http", false, "for tests only: the oracle nodes read issuers' stagepass.json over plain http:// "+
		"(a local test server) instead of https://")
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	// The development chain is new at every start, so relay state from an earlier run
	// would refer to a chain that no longer exists.
	if err := os.RemoveAll(c.data); err != nil {
		return fmt.Errorf("reset %s: %w", c.data, err)
	}
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", c.data, err)
	}
	chain, err := devnet.Start(devnet.Config{BlockTime: *blockTime, Logger: log})
	if err != nil {
		return err
	}
	defer chain.Close()
	if *identityHTTP {
		chain.Attest.Scheme = "http"
	}
	sandbox, err := payments.OpenSandbox(filepath.Join(c.data, "sandbox.db"))
	if err != nil {
		return err
	}
	defer sandbox.Close()
	relay, err := server.Start(ctx, server.Config{
		Payments: sandbox, PaymentsKey: devPaymentsKey,
		Addr: c.addr, DataDir: c.data, Origins: c.originList(),
		Client: chain.Client, ChainID: chain.ChainID, Forwarder: chain.Forwarder, Factory: chain.Factory, USD: chain.USD,
		Relayer: chain.Relayer, Site: site.FS(), Logger: log,
		Cards: &server.CardConfig{Hub: chain.Hub, Reporter: chain.Reporter},
	})
	if err != nil {
		return err
	}
	// The hub's n oracle nodes, in-process: each its own key (the development chain's
	// oracle set), its own client of the sandbox's HTTP API, reports straight to the
	// aggregator.
	oracleCtx, stopOracles := context.WithCancel(ctx)
	defer stopOracles()
	sandboxURL := "http://" + relay.Addr() + "/sandbox"
	nodes, err := chain.StartOracles(oracleCtx, func(int) oracle.Relay { return relay.Aggregator() }, func(int) payments.Processor {
		return &payments.Client{BaseURL: sandboxURL, APIKey: devPaymentsKey}
	}, log)
	if err != nil {
		return err
	}
	log.Info("oracle nodes running", "nodes", len(nodes), "threshold", chain.OracleThreshold, "hub", chain.Hub)
	fmt.Fprintf(stderr, "\nStagepass is running at http://%s (development chain, chain id %s). Ctrl-C stops it.\n\n", relay.Addr(), chain.ChainID)
	return waitAndShutdown(ctx, relay)
}

// devPaymentsKey is the embedded sandbox processor's API key in `stagepass dev`: a
// well-known development secret, like the dev mnemonic.
const devPaymentsKey = "sk_test_stagepass_dev"

func waitAndShutdown(ctx context.Context, relay *server.Relay) error {
	select {
	case <-ctx.Done():
	case <-relay.Done():
		return relay.Err()
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	return relay.Shutdown(sctx)
}
