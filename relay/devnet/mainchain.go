package devnet

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/validator"
	"github.com/stagepass/stagepass/wasm/keys"
)

// MainChainID is the development main chain's id (the sidechain, where the tickets live,
// keeps 1337).
var MainChainID = big.NewInt(1338)

// SubmitterAccount is the development mnemonic's account index of Devnet.Submitter.
const SubmitterAccount = 11

// startMainchain starts the main chain (its own simulated chain, MainChainID) with
// StakeManager, CheckpointManager, RootGateway and TestUSD, `validators` validators staked
// (1,000 TestUSD each), ChildGateway and its ChildToken on the sidechain, the development
// accounts funded on the main chain too, and the submitter funded on both. The validators'
// keys are devchain.NewAccount("validator", i): test keys, anyone can recompute them.
// exitDelay is ChildGateway's EXIT_DELAY (0: devchain's default, 1 day).
func (d *Devnet) startMainchain(devKeys []*ecdsa.PrivateKey, validators int, exitDelay time.Duration, rpc string) error {
	main, err := devchain.New(devchain.Options{Keys: devKeys, Seed: "devnet/main", ChainID: MainChainID, HTTP: rpc})
	if err != nil {
		return fmt.Errorf("start the main chain: %w", err)
	}
	head, err := main.Client.BlockNumber(context.Background())
	if err != nil {
		main.Close()
		return fmt.Errorf("start the main chain: %w", err)
	}
	b, err := devchain.NewBridge(main, d.Chain, devchain.BridgeOptions{Validators: validators, ExitDelay: uint64(exitDelay / time.Second)})
	if err != nil {
		main.Close()
		return fmt.Errorf("deploy the bridge: %w", err)
	}
	master, err := keys.FromMnemonic(DevMnemonic, "")
	if err != nil {
		main.Close()
		return err
	}
	defer master.Zero()
	sk, err := master.Account(SubmitterAccount)
	if err != nil {
		main.Close()
		return err
	}
	submitter, err := crypto.ToECDSA(sk.Bytes())
	sk.Zero()
	if err != nil {
		main.Close()
		return err
	}
	eth := new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
	for _, c := range []*devchain.Chain{main, d.Chain} {
		if _, err := c.Transact(c.Deployer, crypto.PubkeyToAddress(submitter.PublicKey), nil, new(big.Int).Mul(eth, big.NewInt(100))); err != nil {
			main.Close()
			return fmt.Errorf("fund the checkpoint submitter: %w", err)
		}
	}
	// Development accounts hold TestUSD on the main chain, approved to RootGateway.
	main.FundUSD(b.Root, devchain.USDC(5000), main.Accounts...)
	d.Main, d.Bridge, d.Submitter, d.MainStart = main, b, submitter, head+1
	return nil
}

// StartValidators runs the bridge's validator nodes in-process until ctx ends, each with its
// own key and its own clients of both chains, reporting to `relay(i)`; `down` lists nodes
// not to start. cfg sets the cadence and confirmations (its keys, chains and contracts are
// filled in).
func (d *Devnet) StartValidators(ctx context.Context, relay func(i int) validator.Relay, cfg validator.NodeConfig, logger *slog.Logger, down ...int) ([]*validator.Node, error) {
	if d.Bridge == nil {
		return nil, fmt.Errorf("devnet: no main chain (Config.MainChain)")
	}
	if logger == nil {
		logger = slog.Default()
	}
	skip := map[int]bool{}
	for _, i := range down {
		skip[i] = true
	}
	var nodes []*validator.Node
	for i, v := range d.Bridge.Validators {
		if skip[i] {
			continue
		}
		c := cfg
		c.Key, c.Main, c.Side, c.Root, c.Child, c.Relay, c.Logger = v.Key, d.Main.Client, d.Client, d.Bridge.Root, d.Bridge.Child, relay(i), logger
		n, err := validator.NewNode(ctx, c)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
		go func() { _ = n.Run(ctx) }()
	}
	return nodes, nil
}
