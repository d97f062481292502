package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/stagepass/stagepass/relay/anchor"
)

// anchorFlags are the flags of `checkpoint verify` and `anchor`: the main chain's
// CheckpointManager and the btcd node.
type anchorFlags struct {
	mainRPC, manager            string
	btcdRPC, btcdUser, btcdPass string
	btcdCert                    string
	main                        *ethclient.Client
	btc                         *rpcclient.Client
	managerAddr                 common.Address
	required                    []string
}

func (f *anchorFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.mainRPC, "main-rpc", "", "the main chain's JSON-RPC endpoint (required)")
	fs.StringVar(&f.manager, "checkpoints", "", "address of the main chain's CheckpointManager (required)")
	fs.StringVar(&f.btcdRPC, "btcd-rpc", "", "host:port of the btcd node's JSON-RPC server (required)")
	fs.StringVar(&f.btcdUser, "btcd-user", "", "btcd RPC user")
	fs.StringVar(&f.btcdPass, "btcd-pass", "", "btcd RPC password (better as $STAGEPASS_BTCD_PASS)")
	fs.StringVar(&f.btcdCert, "btcd-cert", "", "btcd's rpc.cert for TLS (default: plain HTTP, which btcd allows on loopback only)")
}

// connect checks the flags and dials both chains.
func (f *anchorFlags) connect(ctx context.Context, fs *flag.FlagSet) error {
	var missing []string
	for _, x := range []struct{ name, v string }{{"--main-rpc", f.mainRPC}, {"--checkpoints", f.manager}, {"--btcd-rpc", f.btcdRPC}} {
		if x.v == "" {
			missing = append(missing, x.name)
		}
	}
	if len(missing) > 0 {
		fs.Usage()
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if !common.IsHexAddress(f.manager) {
		return fmt.Errorf("--checkpoints %q is not an address", f.manager)
	}
	f.managerAddr = common.HexToAddress(f.manager)
	var err error
	if f.main, err = ethclient.DialContext(ctx, f.mainRPC); err != nil {
		return fmt.Errorf("connect to %s: %w", f.mainRPC, err)
	}
	if f.btc, err = anchor.Dial(f.btcdRPC, f.btcdUser, f.btcdPass, f.btcdCert); err != nil {
		f.main.Close()
		return fmt.Errorf("connect to btcd at %s: %w", f.btcdRPC, err)
	}
	return nil
}

func (f *anchorFlags) close() {
	if f.main != nil {
		f.main.Close()
	}
	if f.btc != nil {
		f.btc.Shutdown()
	}
}

func runCheckpoint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(stderr, "Usage: stagepass checkpoint verify N [flags]\n")
		return errors.New("checkpoint: the only subcommand is verify")
	}
	fs := newFlags("checkpoint verify N", "Shows checkpoint N as the main chain's CheckpointManager holds it (range, roots, the\n"+
		"validators' stake signatures from its submission) and its proof-of-work anchor in btcd with\n"+
		"its confirmations. Fails if the checkpoint is not on the main chain or not anchored.", stderr)
	var f anchorFlags
	f.register(fs)
	depth := fs.Int64("scan-depth", anchor.ScanDepth, "how many btcd blocks back from the tip to look for the anchor")
	// The number may come before or after the flags.
	rest := args[1:]
	var numArg string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		numArg, rest = rest[0], rest[1:]
	}
	if err := parse(fs, rest); err != nil {
		return err
	}
	if numArg == "" && fs.NArg() == 1 {
		numArg = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	number, err := strconv.ParseUint(numArg, 10, 64)
	if err != nil {
		fs.Usage()
		return fmt.Errorf("checkpoint number %q: want a number from 0", numArg)
	}
	if err := f.connect(ctx, fs); err != nil {
		return err
	}
	defer f.close()
	return verifyCheckpoint(ctx, &f, number, *depth, stdout)
}

func verifyCheckpoint(ctx context.Context, f *anchorFlags, number uint64, depth int64, w io.Writer) error {
	chainID, err := f.main.ChainID(ctx)
	if err != nil {
		return fmt.Errorf("main chain id: %w", err)
	}
	cp, err := anchor.ReadCheckpoint(ctx, f.main, f.managerAddr, number)
	if err != nil {
		return err
	}
	sub, err := anchor.ReadSubmission(ctx, f.main, f.managerAddr, number)
	if err != nil {
		return err
	}
	h := anchor.Hash(chainID, f.managerAddr, cp)
	fmt.Fprintf(w, "checkpoint %d on main chain %s (CheckpointManager %s)\n", number, chainID, f.managerAddr)
	fmt.Fprintf(w, "  sidechain blocks  %d-%d\n", cp.StartBlock, cp.EndBlock)
	fmt.Fprintf(w, "  block root        %s\n", common.Hash(cp.BlockRoot))
	fmt.Fprintf(w, "  withdrawal root   %s\n", common.Hash(cp.WithdrawalRoot))
	fmt.Fprintf(w, "  submitted         main block %d, tx %s, %s, %d confirmations\n", sub.Block, sub.Tx,
		time.Unix(int64(cp.SubmittedAt), 0).UTC().Format(time.RFC3339), sub.Confirmations)
	fmt.Fprintf(w, "  signed digest     %s (EIP-712)\n", common.Hash(sub.Event.Digest))
	fmt.Fprintf(w, "  stake signatures  %d, signing %s at submission of %s staked now (%s)\n", len(sub.Signers),
		sub.Event.SignedStake, sub.TotalStake, percent(sub.Event.SignedStake, sub.TotalStake))
	for _, s := range sub.Signers {
		fmt.Fprintf(w, "    %s  stake now %s\n", s.Address, s.Stake)
	}
	fmt.Fprintf(w, "  anchor hash       %s\n", h)
	p, err := anchor.Find(ctx, f.btc, number, h, depth)
	if err != nil {
		fmt.Fprintf(w, "proof-of-work anchor: none\n")
		return err
	}
	fmt.Fprintf(w, "proof-of-work anchor (btcd %s)\n", f.btcdRPC)
	fmt.Fprintf(w, "  tx                %s\n", p.Txid)
	if p.Confirmations == 0 {
		fmt.Fprintf(w, "  in the mempool, 0 confirmations\n")
		return nil
	}
	fmt.Fprintf(w, "  block             %s (height %d)\n", p.Block, p.Height)
	fmt.Fprintf(w, "  confirmations     %d\n", p.Confirmations)
	return nil
}

func percent(part, whole *big.Int) string {
	if whole.Sign() == 0 {
		return "no stake now"
	}
	pm := new(big.Int).Div(new(big.Int).Mul(part, big.NewInt(1000)), whole).Int64()
	return fmt.Sprintf("%d.%d%%", pm/10, pm%10)
}

func runAnchor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("anchor", "Anchors every checkpoint the main chain's CheckpointManager accepts into a proof-of-work\n"+
		"chain: its hash in an OP_RETURN output of a transaction signed with --key-file's key and\n"+
		"sent to btcd; each checkpoint once (remembered in --store).", stderr)
	var f anchorFlags
	f.register(fs)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	keyFile := fs.String("key-file", "", "file holding the anchor key in WIF; its coins pay the fees (required)")
	printAddr := fs.Bool("print-address", false, "print the key's address (creating the key if --key-file does not exist) and exit; in development give it to btcd as --miningaddr")
	network := fs.String("network", "simnet", "the proof-of-work chain: simnet, regtest, testnet3 or mainnet")
	store := fs.String("store", filepath.Join("data", "anchor.db"), "the anchorer's record of what it anchored")
	feeRate := fs.Int64("fee-rate", 2, "fee in satoshi per byte")
	generate := fs.Uint("generate", 0, "development (simnet, regtest): mine this many blocks after each anchor")
	poll := fs.Duration("poll", 2*time.Second, "how often to read the main chain")
	confirmations := fs.Uint64("main-confirmations", 1, "main-chain blocks a checkpoint's submission needs before it is anchored")
	if err := parse(fs, args); err != nil {
		return err
	}
	params, err := networkParams(*network)
	if err != nil {
		return err
	}
	if *keyFile == "" {
		fs.Usage()
		return errors.New("missing --key-file")
	}
	key, err := readWIF(*keyFile, params, *printAddr)
	if err != nil {
		return err
	}
	if *printAddr {
		addr, err := anchor.KeyAddress(key, params)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, addr.EncodeAddress())
		return nil
	}
	if *generate > 0 && params != &chaincfg.SimNetParams && params != &chaincfg.RegressionNetParams {
		return fmt.Errorf("--generate is for simnet and regtest, not %s", *network)
	}
	log, err := (&sharedFlags{logLevel: *logLevel}).logger(stderr)
	if err != nil {
		return err
	}
	if err := f.connect(ctx, fs); err != nil {
		return err
	}
	defer f.close()
	if err := os.MkdirAll(filepath.Dir(*store), 0o700); err != nil {
		return err
	}
	a, err := anchor.New(ctx, anchor.Config{
		BTC: f.btc, Params: params, Key: key, Main: f.main, Manager: f.managerAddr,
		Store: *store, FeeRate: *feeRate, Generate: uint32(*generate), Logger: log,
	})
	if err != nil {
		return err
	}
	defer a.Close()
	log.Info("anchoring checkpoints", "checkpoints", f.managerAddr, "btcd", f.btcdRPC, "network", params.Name, "address", a.Address())
	return a.Run(ctx, anchor.LoopConfig{Poll: *poll, Confirmations: *confirmations})
}

func networkParams(name string) (*chaincfg.Params, error) {
	for _, p := range []*chaincfg.Params{&chaincfg.SimNetParams, &chaincfg.RegressionNetParams, &chaincfg.TestNet3Params, &chaincfg.MainNetParams} {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("--network %q: want simnet, regtest, testnet3 or mainnet", name)
}

// readWIF reads the anchor key (WIF) from `path`; with create, a missing file gets a new key
// (mode 0600).
func readWIF(path string, params *chaincfg.Params, create bool) (*btcec.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		key, err := btcec.NewPrivateKey()
		if err != nil {
			return nil, err
		}
		wif, err := btcutil.NewWIF(key, params, true)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(wif.String()+"\n"), 0o600); err != nil {
			return nil, err
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w (--print-address creates a key)", err)
	}
	wif, err := btcutil.DecodeWIF(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("--key-file %s: not a WIF private key: %w", path, err)
	}
	if !wif.IsForNet(params) {
		return nil, fmt.Errorf("--key-file %s: the key is not for %s", path, params.Name)
	}
	return wif.PrivKey, nil
}
