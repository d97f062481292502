package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/stagepass/stagepass/relay/anchor"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/relay/validator"
	"github.com/stagepass/stagepass/site"
)

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", "Runs the relay against an EVM JSON-RPC endpoint (geth, a layer 2, a hosted node) where "+
		"the Stagepass contracts are deployed. The relay's hot wallet, which pays the gas of\n"+
		"forwarded requests, comes from a keystore v3 file.", stderr)
	var c sharedFlags
	c.register(fs, "stagepass-data")
	rpcURL := fs.String("rpc", "", "the chain's JSON-RPC endpoint (http, https, ws or wss) (required)")
	keyFile := fs.String("keystore", "", "keystore v3 JSON file of the relay's hot wallet (required)")
	passFile := fs.String("password-file", "", "file holding the keystore's password (default: $STAGEPASS_PASSWORD)")
	forwarder := fs.String("forwarder", "", "address of the StagepassForwarder (required)")
	factory := fs.String("factory", "", "address of the EventFactory (required)")
	startBlock := fs.Uint64("start-block", 0, "block the factory was deployed in (where indexing starts)")
	hub := fs.String("hub", "", "address of the OracleHub: turns on card purchases (sp_createPayment, the oracle report aggregator)")
	reporterFile := fs.String("reporter-keystore", "", "keystore v3 file of the wallet that submits oracle reports (same password; required with --hub)")
	sandboxKey := fs.String("sandbox-key", "", "with --hub: run the embedded sandbox card processor under /sandbox/ with this API key (development and tests)")
	procURL := fs.String("processor-url", "", "with --hub and no --sandbox-key: base URL of the Stripe-shaped payment API")
	procKey := fs.String("processor-key", "", "the payment API's secret key (better as $STAGEPASS_PROCESSOR_KEY)")
	mainRPC := fs.String("main-rpc", "", "the main chain's JSON-RPC endpoint: turns on the validators' aggregator (checkpoints, deposits); --rpc is then the sidechain")
	rootGW := fs.String("root-gateway", "", "with --main-rpc: address of RootGateway on the main chain")
	childGW := fs.String("child-gateway", "", "with --main-rpc: address of ChildGateway on the sidechain")
	mainStart := fs.Uint64("main-start-block", 0, "with --main-rpc: RootGateway's deployment block (where the relay starts reading the bridge's main-chain logs: exits and deposits)")
	mainMargin := fs.Uint64("main-reorg-margin", 4, "with --main-rpc: how many of the main chain's newest blocks the relay reads again at every step rather than keeping them in bridge.db "+
		"(a reorganisation may still replace them; a deeper one is seen by its block hash and read again): 4 suits a development chain; on Ethereum mainnet use 64 (two epochs, finality)")
	depositConfs := fs.Uint64("deposit-confirmations", validator.DefaultConfirmations, "with --main-rpc: the main-chain confirmations the validators wait for before crediting a deposit (what sp_deposits and sp_mainPermitInfo tell fans)")
	minDeposit := minGaslessDepositFlag(fs, "with --main-rpc: ")
	manualExits := fs.Bool("manual-exits", false, "with --main-rpc: do not pay fans' withdrawals and ticket exits on the main chain from the submitter wallet; only serve their proofs (sp_withdrawalProof)")
	submitterFile := fs.String("submitter-keystore", "", "with --main-rpc: keystore v3 file of the wallet that submits checkpoints and deposits on both chains (same password)")
	// With --main-rpc and --btcd-rpc, the relay also anchors each checkpoint in a
	// proof-of-work chain (the flags of `stagepass anchor`, prefixed "anchor-"), and
	// sp_finality reports the anchors.
	var btcd btcdFlags
	btcd.register(fs, false)
	var anc anchorerFlags
	anc.register(fs, "anchor-", " (required with --btcd-rpc; stagepass anchor --print-address --key-file FILE makes one)", "",
		" (default: anchor.db in --data)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var missing []string
	for name, v := range map[string]string{"--rpc": *rpcURL, "--keystore": *keyFile, "--forwarder": *forwarder, "--factory": *factory} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		fs.Usage()
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	for name, v := range map[string]string{"--forwarder": *forwarder, "--factory": *factory} {
		if !common.IsHexAddress(v) {
			return fmt.Errorf("%s %q is not an address", name, v)
		}
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	key, err := readKeystore(*keyFile, *passFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", c.data, err)
	}
	client, chainID, err := dialChain(ctx, "--rpc", *rpcURL)
	if err != nil {
		return err
	}
	defer client.Close()
	cfg := server.Config{
		Addr: c.addr, DataDir: c.data, Origins: c.originList(),
		Client: client, ChainID: chainID, Forwarder: common.HexToAddress(*forwarder), Factory: common.HexToAddress(*factory),
		StartBlock: *startBlock, Relayer: key, Site: site.FS(), Logger: log,
	}
	if *hub != "" {
		if !common.IsHexAddress(*hub) {
			return fmt.Errorf("--hub %q is not an address", *hub)
		}
		if *reporterFile == "" {
			return errors.New("--hub needs --reporter-keystore")
		}
		reporter, err := readKeystore(*reporterFile, *passFile)
		if err != nil {
			return err
		}
		// STAGEPASS_WEBHOOK_SECRET, the processor's webhook signing secret (a secret, so not a
		// flag), turns on POST /webhooks/processor.
		cfg.Cards = &server.CardConfig{Hub: common.HexToAddress(*hub), Reporter: reporter, WebhookSecret: os.Getenv("STAGEPASS_WEBHOOK_SECRET")}
		switch {
		case *sandboxKey != "":
			sandbox, err := payments.OpenSandbox(filepath.Join(c.data, "sandbox.db"))
			if err != nil {
				return err
			}
			defer sandbox.Close()
			cfg.Payments, cfg.PaymentsKey = sandbox, *sandboxKey
		case *procURL != "" && *procKey != "":
			cfg.Cards.Processor = &payments.Client{BaseURL: *procURL, APIKey: *procKey}
			cfg.Cards.CheckoutURL = strings.TrimRight(*procURL, "/") + "/checkout/"
		default:
			return errors.New("--hub needs a card processor: --sandbox-key, or --processor-url and --processor-key")
		}
	}
	if *mainRPC != "" {
		if !common.IsHexAddress(*rootGW) || !common.IsHexAddress(*childGW) {
			return errors.New("--main-rpc needs --root-gateway and --child-gateway addresses")
		}
		if *submitterFile == "" {
			return errors.New("--main-rpc needs --submitter-keystore")
		}
		submitter, err := readKeystore(*submitterFile, *passFile)
		if err != nil {
			return err
		}
		mainClient, mainID, err := dialChain(ctx, "--main-rpc", *mainRPC)
		if err != nil {
			return err
		}
		defer mainClient.Close()
		cfg.Validators = &server.ValidatorConfig{
			Main: mainClient, MainChainID: mainID, Root: common.HexToAddress(*rootGW), Child: common.HexToAddress(*childGW), Submitter: submitter,
			ManualExits: *manualExits, DepositConfirmations: *depositConfs, MinGaslessDeposit: minDeposit.r, MainStartBlock: *mainStart,
			MainReorgMargin: *mainMargin,
		}
		if btcd.rpc != "" {
			anchorer, stopAnchor, err := startServeAnchor(ctx, &btcd, &anc, c.data, mainClient, cfg.Validators.Root, log)
			if err != nil {
				return err
			}
			defer stopAnchor()
			cfg.Validators.Anchors = anchorer
		}
	} else if btcd.rpc != "" {
		return errors.New("--btcd-rpc anchors the main chain's checkpoints: it needs --main-rpc")
	}
	relay, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "\nStagepass relay at http://%s for chain %s via %s. Ctrl-C stops it.\n\n", relay.Addr(), chainID, *rpcURL)
	return waitAndShutdown(ctx, relay)
}

// startServeAnchor opens the anchorer of the main chain's CheckpointManager (read from
// RootGateway `root`) on the btcd node b names and runs its loop until stop is called.
func startServeAnchor(ctx context.Context, b *btcdFlags, a *anchorerFlags, dataDir string, main *ethclient.Client, root common.Address,
	log *slog.Logger) (_ *anchor.Anchorer, stop func(), _ error) {
	params, err := a.params()
	if err != nil {
		return nil, nil, err
	}
	if a.keyFile == "" {
		return nil, nil, errors.New("--btcd-rpc needs --anchor-key-file (stagepass anchor --print-address --key-file FILE makes a key)")
	}
	key, err := a.key(params)
	if err != nil {
		return nil, nil, err
	}
	if a.store == "" {
		a.store = filepath.Join(dataDir, "anchor.db")
	}
	contracts, err := validator.ReadContracts(ctx, main, root, common.Address{})
	if err != nil {
		return nil, nil, err
	}
	btc, err := b.dial()
	if err != nil {
		return nil, nil, err
	}
	anc, err := a.open(ctx, params, key, btc, main, contracts.Checkpoints, log)
	if err != nil {
		btc.Shutdown()
		return nil, nil, fmt.Errorf("proof-of-work anchor: %w", err)
	}
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := anc.Run(loopCtx, a.loop()); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("proof-of-work anchor stopped", "err", err)
		}
	}()
	log.Info("proof-of-work anchor running", "checkpoints", contracts.Checkpoints, "btcd", b.rpc, "network", params.Name, "address", anc.Address())
	return anc, func() {
		cancel()
		<-done
		anc.Close()
		btc.Shutdown()
	}, nil
}
