package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/google/uuid"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/anchor"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/relay/validator"
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
	mainChain := fs.Bool("mainchain", true, "also run the main chain (chain id 1338) with the staking, checkpoint and gateway contracts, "+
		"ChildGateway on the development chain (the sidechain), and in-process validators checkpointing it (--mainchain=false: the sidechain alone)")
	validators := fs.Int("validators", 4, "with --mainchain: how many validators stake and run")
	every := fs.Uint64("checkpoint-every", validator.DefaultEvery, "with --mainchain: sidechain blocks per checkpoint")
	confirmations := fs.Uint64("confirmations", validator.DefaultConfirmations, "with --mainchain: main-chain confirmations before a deposit is credited")
	minDeposit := minGaslessDepositFlag(fs, "with --mainchain: ")
	manualExits := fs.Bool("manual-exits", false, "with --mainchain: the relay pays no withdrawals' or ticket exits' main-chain side; their recipients claim them with their own gas (sp_withdrawalProof, sp_mainTxParams)")
	mainMargin := fs.Uint64("main-reorg-margin", 4, "with --mainchain: how many of the main chain's newest blocks the relay reads again at every step rather than keeping them in bridge.db "+
		"(a reorganisation may still replace them)")
	localValidators := fs.Int("local-validators", -1, "with --mainchain: how many of the validators run in-process (-1: all; the others can run as `stagepass validator`)")
	chainRPC := fs.String("chain-rpc", "", "serve the development chain's (the sidechain's) JSON-RPC over HTTP at this address, e.g. 127.0.0.1:8545")
	anchorPoW := fs.Bool("anchor", true, "with --mainchain: anchor each checkpoint in btcd simnet (proof of work) when a btcd binary is found "+
		"($STAGEPASS_BTCD, btcd on PATH or in $(go env GOPATH)/bin); --anchor=false: no anchors")
	mainChainRPC := fs.String("main-chain-rpc", "", "with --mainchain: serve the main chain's JSON-RPC over HTTP at this address, e.g. 127.0.0.1:8546")
	validatorKeys := fs.String("validator-keys", "", "with --local-validators N: write the keys of the validators not run in-process to this folder, "+
		"as keystore v3 files validator-I.json (I from N) and their password in password, for `stagepass validator --keystore … --password-file …` (development test keys)")
	exitDelay := fs.Duration("exit-delay", 10*time.Minute, "with --mainchain: ChildGateway's EXIT_DELAY, how long after an event starts its tickets may exit to the main chain "+
		"(whole seconds; short for a demo, where the contracts' own default is 1 day)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *exitDelay < time.Second {
		return fmt.Errorf("--exit-delay %v: at least 1s", *exitDelay)
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
	chain, err := devnet.Start(devnet.Config{BlockTime: *blockTime, Logger: log, MainChain: *mainChain, Validators: *validators,
		ExitDelay: *exitDelay, RPC: *chainRPC, MainRPC: *mainChainRPC})
	if err != nil {
		return err
	}
	defer chain.Close()
	if *identityHTTP {
		chain.Attest.Scheme = "http"
	}
	if *validatorKeys != "" {
		if chain.Bridge == nil || *localValidators < 0 {
			return errors.New("--validator-keys needs --mainchain and --local-validators")
		}
		if err := writeValidatorKeys(*validatorKeys, chain.Bridge.Validators[min(*localValidators, len(chain.Bridge.Validators)):], *localValidators); err != nil {
			return err
		}
	}
	sandbox, err := payments.OpenSandbox(filepath.Join(c.data, "sandbox.db"))
	if err != nil {
		return err
	}
	defer sandbox.Close()
	cfg := server.Config{
		Payments: sandbox, PaymentsKey: devPaymentsKey,
		Addr: c.addr, DataDir: c.data, Origins: c.originList(),
		Client: chain.Client, ChainID: chain.ChainID, Forwarder: chain.Forwarder, Factory: chain.Factory, USD: chain.USD,
		Relayer: chain.Relayer, Site: site.FS(), Logger: log,
		Cards: &server.CardConfig{Hub: chain.Hub, Reporter: chain.Reporter, WebhookSecret: devWebhookSecret},
	}
	if chain.Main != nil {
		cfg.Validators = &server.ValidatorConfig{
			Main: chain.Main.Client, MainChainID: chain.Main.ChainID, Root: chain.Bridge.Root, Child: chain.Bridge.Child, Submitter: chain.Submitter,
			DepositConfirmations: *confirmations, MinGaslessDeposit: minDeposit.r, MainStartBlock: chain.MainStart, ManualExits: *manualExits,
			MainReorgMargin: *mainMargin,
		}
		switch bin := anchor.BtcdPath(); {
		case !*anchorPoW:
		case bin == "":
			log.Info("no btcd found: checkpoints are not anchored in proof of work (go install github.com/btcsuite/btcd@v0.26.2 or set STAGEPASS_BTCD)")
		default:
			pow, err := anchor.StartDev(ctx, anchor.DevConfig{Bin: bin, Dir: c.data, Main: chain.Main.Client, Manager: chain.Bridge.Checkpoints, Logger: log})
			if err != nil {
				return fmt.Errorf("proof-of-work anchor (--anchor=false runs without): %w", err)
			}
			defer pow.Close()
			cfg.Validators.Anchors = pow.Anchorer
			log.Info("proof-of-work anchor running", "btcd", bin, "network", "simnet", "btcdRpc", pow.Node.RPC, "btcdUser", pow.Node.User, "btcdPass", pow.Node.Pass)
		}
	}
	relay, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	// The sandbox's webhooks go to this relay's own endpoint.
	sandbox.SetWebhook("http://"+loopback(relay.Addr())+server.WebhookPath, devWebhookSecret)
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
	if chain.Main != nil {
		// The validators, in-process: each its own key and its own clients of both chains,
		// signatures straight to the relay's validator aggregator.
		var down []int
		for i := range chain.Bridge.Validators {
			if *localValidators >= 0 && i >= *localValidators {
				down = append(down, i)
			}
		}
		vals, err := chain.StartValidators(oracleCtx, func(int) validator.Relay { return relay.Validators() },
			validator.NodeConfig{Every: *every, Confirmations: *confirmations}, log, down...)
		if err != nil {
			return err
		}
		log.Info("validators running", "validators", len(vals), "checkpointEvery", *every, "confirmations", *confirmations, "exitDelay", *exitDelay,
			"mainChainId", chain.Main.ChainID, "rootGateway", chain.Bridge.Root, "childGateway", chain.Bridge.Child)
	}
	fmt.Fprintf(stderr, "\nStagepass is running at http://%s (development chain, chain id %s). Ctrl-C stops it.\n\n", relay.Addr(), chain.ChainID)
	return waitAndShutdown(ctx, relay)
}

// devValidatorPassword encrypts the keystores --validator-keys writes: a well-known
// development secret for well-known test keys, like devPaymentsKey.
const devValidatorPassword = "stagepass-dev-validator"

// writeValidatorKeys writes each of vals (the bridge's validators from index first on) as
// dir/validator-I.json, keystore v3, encrypted with devValidatorPassword, which goes to
// dir/password.
func writeValidatorKeys(dir string, vals []*devchain.Account, first int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--validator-keys: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "password"), []byte(devValidatorPassword+"\n"), 0o600); err != nil {
		return fmt.Errorf("--validator-keys: %w", err)
	}
	for i, v := range vals {
		ks, err := keystore.EncryptKey(&keystore.Key{Id: uuid.New(), Address: v.Address, PrivateKey: v.Key}, devValidatorPassword,
			keystore.LightScryptN, keystore.LightScryptP)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("validator-%d.json", first+i)), ks, 0o600); err != nil {
			return fmt.Errorf("--validator-keys: %w", err)
		}
	}
	return nil
}

// devPaymentsKey is the embedded sandbox processor's API key in `stagepass dev`: a
// well-known development secret, like the dev mnemonic.
const devPaymentsKey = "sk_test_stagepass_dev"

// devWebhookSecret signs the sandbox's webhooks to the relay in `stagepass dev`: a
// well-known development secret, like devPaymentsKey.
const devWebhookSecret = "whsec_stagepass_dev"

// loopback is addr with an unspecified host (":8080", "0.0.0.0:8080") as 127.0.0.1.
func loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

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
