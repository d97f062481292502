package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/relay/server"
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
	submitterFile := fs.String("submitter-keystore", "", "with --main-rpc: keystore v3 file of the wallet that submits checkpoints and deposits on both chains (same password)")
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
	password := os.Getenv("STAGEPASS_PASSWORD")
	if *passFile != "" {
		b, err := os.ReadFile(*passFile)
		if err != nil {
			return fmt.Errorf("read password file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	keyJSON, err := os.ReadFile(*keyFile)
	if err != nil {
		return fmt.Errorf("read keystore: %w", err)
	}
	key, err := keystore.DecryptKey(keyJSON, password)
	if err != nil {
		if errors.Is(err, keystore.ErrDecrypt) {
			return fmt.Errorf("keystore %s: wrong password", *keyFile)
		}
		return fmt.Errorf("keystore %s: %w", *keyFile, err)
	}
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", c.data, err)
	}
	client, err := ethclient.DialContext(ctx, *rpcURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", *rpcURL, err)
	}
	defer client.Close()
	chainID, err := client.ChainID(ctx)
	if err != nil {
		return fmt.Errorf("chain id from %s: %w", *rpcURL, err)
	}
	cfg := server.Config{
		Addr: c.addr, DataDir: c.data, Origins: c.originList(),
		Client: client, ChainID: chainID, Forwarder: common.HexToAddress(*forwarder), Factory: common.HexToAddress(*factory),
		StartBlock: *startBlock, Relayer: key.PrivateKey, Site: site.FS(), Logger: log,
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
		mainClient, err := ethclient.DialContext(ctx, *mainRPC)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", *mainRPC, err)
		}
		defer mainClient.Close()
		mainID, err := mainClient.ChainID(ctx)
		if err != nil {
			return fmt.Errorf("chain id from %s: %w", *mainRPC, err)
		}
		cfg.Validators = &server.ValidatorConfig{
			Main: mainClient, MainChainID: mainID, Root: common.HexToAddress(*rootGW), Child: common.HexToAddress(*childGW), Submitter: submitter,
		}
	}
	relay, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "\nStagepass relay at http://%s for chain %s via %s. Ctrl-C stops it.\n\n", relay.Addr(), chainID, *rpcURL)
	return waitAndShutdown(ctx, relay)
}
