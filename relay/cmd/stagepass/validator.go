package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/relay/validator"
)

func runValidator(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("validator", "Runs one sidechain validator: it follows the sidechain and the main chain on its own "+
		"connections, signs (EIP-712, its own key from a keystore v3 file) the checkpoint of each\n"+
		"next sidechain block range and each RootGateway deposit once it has M main-chain confirmations, "+
		"and sends the signatures to the relay (sp_submitReport), which submits them at 2/3 of the stake.", stderr)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	var keyFile string
	fs.StringVar(&keyFile, "keystore", "", "keystore v3 JSON file of the validator's signing key (required)")
	fs.StringVar(&keyFile, "key", "", "the same as --keystore")
	passFile := fs.String("password-file", "", "file holding the keystore's password (default: $STAGEPASS_PASSWORD)")
	mainRPC := fs.String("main-rpc", "", "the main chain's JSON-RPC endpoint (required)")
	sideRPC := fs.String("side-rpc", "", "the sidechain's JSON-RPC endpoint (required)")
	root := fs.String("root-gateway", "", "address of RootGateway on the main chain (required)")
	child := fs.String("child-gateway", "", "address of ChildGateway on the sidechain (required)")
	relayURL := fs.String("relay", "", "the relay's websocket, e.g. ws://127.0.0.1:8080/ws, or its HTTP JSON-RPC endpoint http://127.0.0.1:8080/rpc (required)")
	every := fs.Uint64("checkpoint-every", validator.DefaultEvery, "sidechain blocks per checkpoint")
	maxWait := fs.Duration("checkpoint-wait", 0, "if set, a checkpoint also closes before the first block stamped this long after its first block")
	confirmations := fs.Uint64("confirmations", validator.DefaultConfirmations, "main-chain confirmations before a deposit is signed")
	startBlock := fs.Uint64("start-block", 0, "first main-chain block read for deposits")
	if err := parse(fs, args); err != nil {
		return err
	}
	var missing []string
	for name, v := range map[string]string{"--keystore": keyFile, "--main-rpc": *mainRPC, "--side-rpc": *sideRPC,
		"--root-gateway": *root, "--child-gateway": *child, "--relay": *relayURL} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		fs.Usage()
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	for name, v := range map[string]string{"--root-gateway": *root, "--child-gateway": *child} {
		if !common.IsHexAddress(v) {
			return fmt.Errorf("%s %q is not an address", name, v)
		}
	}
	log, err := (&sharedFlags{logLevel: *logLevel}).logger(stderr)
	if err != nil {
		return err
	}
	key, err := readKeystore(keyFile, *passFile)
	if err != nil {
		return err
	}
	mainClient, _, err := dialChain(ctx, "--main-rpc", *mainRPC)
	if err != nil {
		return err
	}
	defer mainClient.Close()
	sideClient, _, err := dialChain(ctx, "--side-rpc", *sideRPC)
	if err != nil {
		return err
	}
	defer sideClient.Close()
	relay := &oracle.RPCRelay{URL: *relayURL}
	defer relay.Close()
	node, err := validator.NewNode(ctx, validator.NodeConfig{
		Key: key, Main: mainClient, Side: sideClient, Root: common.HexToAddress(*root), Child: common.HexToAddress(*child),
		Relay: relay, Every: *every, MaxWait: *maxWait, Confirmations: *confirmations, Start: *startBlock,
		Poll: 500 * time.Millisecond, Logger: log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "\nStagepass validator %s: checkpoints every %d sidechain blocks to CheckpointManager %s, deposits after %d confirmations, reporting to %s. Ctrl-C stops it.\n\n",
		node.Address(), *every, node.Contracts().Checkpoints, *confirmations, *relayURL)
	if err := node.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
