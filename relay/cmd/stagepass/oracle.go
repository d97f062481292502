package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/relay/payments"
)

func runOracle(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("oracle", "Runs one independent oracle node: it follows card purchase requests on its own chain "+
		"connection, checks each payment with its own payment-processor credentials, signs an\n"+
		"EIP-712 report with its own key (a keystore v3 file) and sends it to the relay.", stderr)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	rpcURL := fs.String("rpc", "", "the chain's JSON-RPC endpoint (required)")
	keyFile := fs.String("keystore", "", "keystore v3 JSON file of the oracle's signing key (required)")
	passFile := fs.String("password-file", "", "file holding the keystore's password (default: $STAGEPASS_PASSWORD)")
	hub := fs.String("hub", "", "address of the OracleHub (required)")
	relayURL := fs.String("relay", "", "the relay's websocket, e.g. ws://127.0.0.1:8080/ws, or its HTTP JSON-RPC endpoint http://127.0.0.1:8080/rpc (required)")
	procURL := fs.String("processor-url", "", "base URL of the Stripe-shaped payment API, e.g. http://127.0.0.1:8080/sandbox (required)")
	procKey := fs.String("processor-key", "", "the payment API's secret key (required; better as $STAGEPASS_PROCESSOR_KEY)")
	startBlock := fs.Uint64("start-block", 0, "first block to read")
	factory := fs.String("factory", "", "address of the EventFactory: with it the node also attests buyer categories and issuers' domains")
	if err := parse(fs, args); err != nil {
		return err
	}
	var missing []string
	for name, v := range map[string]string{"--rpc": *rpcURL, "--keystore": *keyFile, "--hub": *hub, "--relay": *relayURL, "--processor-url": *procURL, "--processor-key": *procKey} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		fs.Usage()
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if !common.IsHexAddress(*hub) {
		return fmt.Errorf("--hub %q is not an address", *hub)
	}
	var attest *oracle.AttestConfig
	if *factory != "" {
		if !common.IsHexAddress(*factory) {
			return fmt.Errorf("--factory %q is not an address", *factory)
		}
		attest = &oracle.AttestConfig{Factory: common.HexToAddress(*factory), Start: *startBlock}
	}
	log, err := (&sharedFlags{logLevel: *logLevel}).logger(stderr)
	if err != nil {
		return err
	}
	key, err := readKeystore(*keyFile, *passFile)
	if err != nil {
		return err
	}
	client, chainID, err := dialChain(ctx, "--rpc", *rpcURL)
	if err != nil {
		return err
	}
	defer client.Close()
	node, err := oracle.NewNode(oracle.NodeConfig{
		Key: key, Chain: client, ChainID: chainID, Hub: common.HexToAddress(*hub), Start: *startBlock,
		Processor: &payments.Client{BaseURL: *procURL, APIKey: *procKey},
		Relay:     &oracle.RPCRelay{URL: *relayURL}, Poll: 500 * time.Millisecond, Logger: log, Attest: attest,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "\nStagepass oracle %s for hub %s on chain %s, reporting to %s. Ctrl-C stops it.\n\n", node.Address(), *hub, chainID, *relayURL)
	if err := node.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// readKeystore decrypts a keystore v3 file with the password from passFile, or
// $STAGEPASS_PASSWORD.
func readKeystore(keyFile, passFile string) (*ecdsa.PrivateKey, error) {
	password := os.Getenv("STAGEPASS_PASSWORD")
	if passFile != "" {
		b, err := os.ReadFile(passFile)
		if err != nil {
			return nil, fmt.Errorf("read password file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	keyJSON, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read keystore: %w", err)
	}
	key, err := keystore.DecryptKey(keyJSON, password)
	if err != nil {
		if errors.Is(err, keystore.ErrDecrypt) {
			return nil, fmt.Errorf("keystore %s: wrong password", keyFile)
		}
		return nil, fmt.Errorf("keystore %s: %w", keyFile, err)
	}
	return key.PrivateKey, nil
}
