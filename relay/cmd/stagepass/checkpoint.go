package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
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

// btcdFlags are the flags naming a btcd node's JSON-RPC server (`anchor`, `checkpoint
// verify`, `serve`).
type btcdFlags struct {
	rpc, user, pass, cert string
}

func (b *btcdFlags) register(fs *flag.FlagSet, required bool) {
	rpcHelp := "host:port of the btcd node's JSON-RPC server"
	if required {
		rpcHelp += " (required)"
	}
	fs.StringVar(&b.rpc, "btcd-rpc", "", rpcHelp)
	fs.StringVar(&b.user, "btcd-user", "", "btcd RPC user")
	fs.StringVar(&b.pass, "btcd-pass", "", "btcd RPC password (better as $STAGEPASS_BTCD_PASS)")
	fs.StringVar(&b.cert, "btcd-cert", "", "btcd's rpc.cert for TLS (default: plain HTTP, btcd's --notls, which it allows on loopback only)")
}

func (b *btcdFlags) dial() (*rpcclient.Client, error) {
	c, err := anchor.Dial(b.rpc, b.user, b.pass, b.cert)
	if err != nil {
		return nil, fmt.Errorf("connect to btcd at %s: %w", b.rpc, err)
	}
	return c, nil
}

// anchorFlags are the flags of `checkpoint verify` and `anchor`: the main chain's
// CheckpointManager and the btcd node.
type anchorFlags struct {
	mainRPC, manager string
	btcd             btcdFlags
	main             *ethclient.Client
	btc              *rpcclient.Client
	managerAddr      common.Address
}

func (f *anchorFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.mainRPC, "main-rpc", "", "the main chain's JSON-RPC endpoint (required)")
	fs.StringVar(&f.manager, "checkpoints", "", "address of the main chain's CheckpointManager (required)")
	f.btcd.register(fs, true)
}

// connect checks the flags and dials both chains.
func (f *anchorFlags) connect(ctx context.Context, fs *flag.FlagSet) error {
	var missing []string
	for _, x := range []struct{ name, v string }{{"--main-rpc", f.mainRPC}, {"--checkpoints", f.manager}, {"--btcd-rpc", f.btcd.rpc}} {
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
	if f.main, _, err = dialChain(ctx, "--main-rpc", f.mainRPC); err != nil {
		return err
	}
	if f.btc, err = f.btcd.dial(); err != nil {
		f.main.Close()
		return err
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

// anchorerFlags configure an anchor.Anchorer and its loop: `stagepass anchor`'s flags, and
// `stagepass serve`'s with the prefix "anchor-".
type anchorerFlags struct {
	prefix        string
	keyFile       string
	network       string
	store         string
	feeRate       int64
	generate      uint
	poll          time.Duration
	confirmations uint64
	startHeight   int64
}

func (a *anchorerFlags) register(fs *flag.FlagSet, prefix, keyHelp, defaultStore, storeHelp string) {
	a.prefix = prefix
	fs.StringVar(&a.keyFile, prefix+"key-file", "", "file holding the anchor key in WIF; its coins pay the fees"+keyHelp)
	fs.StringVar(&a.network, prefix+"network", "simnet", "the proof-of-work chain: simnet, regtest, testnet3 or mainnet")
	fs.StringVar(&a.store, prefix+"store", defaultStore, "the anchorer's record of what it anchored"+storeHelp)
	fs.Int64Var(&a.feeRate, prefix+"fee-rate", 2, "fee in satoshi per byte")
	fs.UintVar(&a.generate, prefix+"generate", 0, "development (simnet, regtest): mine this many blocks after each anchor")
	fs.DurationVar(&a.poll, prefix+"poll", 2*time.Second, "how often to read the main chain")
	fs.Uint64Var(&a.confirmations, prefix+"main-confirmations", 1, "main-chain blocks a checkpoint's submission needs before it is anchored")
	fs.Int64Var(&a.startHeight, prefix+"start-height", 0, "first proof-of-work block to look for the anchor key's coins in")
}

func (a *anchorerFlags) flag(name string) string { return "--" + a.prefix + name }

// params is the --network's chain parameters, checking --generate against it.
func (a *anchorerFlags) params() (*chaincfg.Params, error) {
	var params *chaincfg.Params
	for _, p := range []*chaincfg.Params{&chaincfg.SimNetParams, &chaincfg.RegressionNetParams, &chaincfg.TestNet3Params, &chaincfg.MainNetParams} {
		if p.Name == a.network {
			params = p
		}
	}
	if params == nil {
		return nil, fmt.Errorf("%s %q: want simnet, regtest, testnet3 or mainnet", a.flag("network"), a.network)
	}
	if a.generate > 0 && params != &chaincfg.SimNetParams && params != &chaincfg.RegressionNetParams {
		return nil, fmt.Errorf("%s is for simnet and regtest, not %s", a.flag("generate"), a.network)
	}
	return params, nil
}

// key reads the anchor key from --key-file.
func (a *anchorerFlags) key(params *chaincfg.Params) (*btcec.PrivateKey, error) {
	if a.keyFile == "" {
		return nil, fmt.Errorf("missing %s", a.flag("key-file"))
	}
	return readWIF(a.flag("key-file"), a.keyFile, params, false)
}

// open opens the anchorer of CheckpointManager `manager` on `main`, paying with key and
// sending to `btc`; Run it with loop().
func (a *anchorerFlags) open(ctx context.Context, params *chaincfg.Params, key *btcec.PrivateKey, btc *rpcclient.Client, main anchor.MainChain,
	manager common.Address, log *slog.Logger) (*anchor.Anchorer, error) {
	if err := os.MkdirAll(filepath.Dir(a.store), 0o700); err != nil {
		return nil, err
	}
	return anchor.New(ctx, anchor.Config{
		BTC: btc, Params: params, Key: key, Main: main, Manager: manager,
		Store: a.store, FeeRate: a.feeRate, Generate: uint32(a.generate), StartHeight: a.startHeight, Logger: log,
	})
}

func (a *anchorerFlags) loop() anchor.LoopConfig {
	return anchor.LoopConfig{Poll: a.poll, Confirmations: a.confirmations}
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
	fmt.Fprintf(w, "proof-of-work anchor (btcd %s)\n", f.btcd.rpc)
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
	var a anchorerFlags
	a.register(fs, "", " (required)", filepath.Join("data", "anchor.db"), "")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	printAddr := fs.Bool("print-address", false, "print the key's address (creating the key if --key-file does not exist) and exit; in development give it to btcd as --miningaddr")
	if err := parse(fs, args); err != nil {
		return err
	}
	params, err := a.params()
	if err != nil {
		return err
	}
	if a.keyFile == "" {
		fs.Usage()
		return errors.New("missing --key-file")
	}
	key, err := readWIF("--key-file", a.keyFile, params, *printAddr)
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
	log, err := (&sharedFlags{logLevel: *logLevel}).logger(stderr)
	if err != nil {
		return err
	}
	if err := f.connect(ctx, fs); err != nil {
		return err
	}
	defer f.close()
	anc, err := a.open(ctx, params, key, f.btc, f.main, f.managerAddr, log)
	if err != nil {
		return err
	}
	defer anc.Close()
	log.Info("anchoring checkpoints", "checkpoints", f.managerAddr, "btcd", f.btcd.rpc, "network", params.Name, "address", anc.Address())
	return anc.Run(ctx, a.loop())
}

// readWIF reads the anchor key (WIF) from `path` (given as flag `name`); with create, a
// missing file gets a new key (mode 0600).
func readWIF(name, path string, params *chaincfg.Params, create bool) (*btcec.PrivateKey, error) {
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
		return nil, fmt.Errorf("%s: %w (--print-address creates a key: stagepass anchor --print-address --key-file FILE)", name, err)
	}
	wif, err := btcutil.DecodeWIF(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("%s %s: not a WIF private key: %w", name, path, err)
	}
	if !wif.IsForNet(params) {
		return nil, fmt.Errorf("%s %s: the key is not for %s", name, path, params.Name)
	}
	return wif.PrivKey, nil
}
