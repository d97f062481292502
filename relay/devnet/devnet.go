// Package devnet is the embedded development chain of `stagepass dev`: go-ethereum's
// simulated chain in-process, blocks committed on a timer, the platform deployed, a demo
// event created and development accounts funded. Nothing to install.
//
// The chain lives in memory: each start is a new chain.
package devnet

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/wasm/keys"
)

// DevMnemonic is the well-known development mnemonic (Hardhat's and Anvil's default).
// Its keys are public knowledge: development chains only.
const DevMnemonic = keys.DevMnemonic

// ReporterAccount is the development mnemonic's account index of Devnet.Reporter.
const ReporterAccount = 10

// Config configures the development chain.
type Config struct {
	// BlockTime is how often a block is committed (default 1 s).
	BlockTime time.Duration
	// Accounts is how many development accounts to fund (default 10).
	Accounts int
	// MainChain, if set, also starts the main chain (MainChainID) with the bridge: the
	// staking, checkpoint and gateway contracts there, ChildGateway on this chain (the
	// sidechain), and Validators validators staked (default 4). Blocks on both every
	// BlockTime.
	MainChain  bool
	Validators int
	// ExitDelay, with MainChain, is ChildGateway's EXIT_DELAY: how long after an event's
	// start (or its resale close, if later) its tickets may exit to the main chain (whole
	// seconds; default 1 day).
	ExitDelay time.Duration
	// RPC and MainRPC, if set (host:port), serve the sidechain's and the main chain's
	// JSON-RPC over HTTP there, for processes of their own (`stagepass validator`).
	RPC, MainRPC string
	Logger       *slog.Logger
}

// Devnet is a running development chain.
type Devnet struct {
	*devchain.Chain
	// Relayer is the key that pays gas for forwarded requests (development account 0).
	Relayer *ecdsa.PrivateKey
	// Reporter is the hot wallet that submits the oracles' reports to the OracleHub
	// (development mnemonic account 10, funded with 100 ETH at start): a wallet apart from
	// Relayer, so the report aggregator and the forwarding outbox never race for nonces.
	Reporter *ecdsa.PrivateKey
	// Demo is the demo event's contract.
	Demo common.Address
	// Attest is the template of the oracle nodes' attestation settings (StartOracles fills
	// in the factory); the zero value runs the platform's category rules.
	Attest oracle.AttestConfig
	// Main and Bridge are the main chain and the bridge between it and this chain, and
	// Submitter the hot wallet that sends the validators' checkpoints and deposit batches
	// (development mnemonic account 11, funded on both), with Config.MainChain; else nil.
	Main      *devchain.Chain
	Bridge    *devchain.Bridge
	Submitter *ecdsa.PrivateKey
	// MainStart is the main-chain block the bridge's deployment began in (RootGateway's
	// deployment block or an earlier one), with Config.MainChain.
	MainStart uint64

	cancel context.CancelFunc
	done   chan struct{}
}

// Start creates the chain, deploys the platform and the demo event, and starts committing
// blocks every BlockTime.
func Start(cfg Config) (*Devnet, error) {
	if cfg.BlockTime == 0 {
		cfg.BlockTime = time.Second
	}
	if cfg.Accounts == 0 {
		cfg.Accounts = 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	master, err := keys.FromMnemonic(DevMnemonic, "")
	if err != nil {
		return nil, fmt.Errorf("dev mnemonic: %w", err)
	}
	defer master.Zero()
	devKeys := make([]*ecdsa.PrivateKey, cfg.Accounts)
	for i := range devKeys {
		k, err := master.Account(uint32(i))
		if err != nil {
			return nil, fmt.Errorf("dev account %d: %w", i, err)
		}
		if devKeys[i], err = crypto.ToECDSA(k.Bytes()); err != nil {
			return nil, fmt.Errorf("dev account %d: %w", i, err)
		}
		k.Zero()
	}
	rk, err := master.Account(ReporterAccount)
	if err != nil {
		return nil, fmt.Errorf("dev account %d: %w", ReporterAccount, err)
	}
	reporter, err := crypto.ToECDSA(rk.Bytes())
	rk.Zero()
	if err != nil {
		return nil, fmt.Errorf("dev account %d: %w", ReporterAccount, err)
	}
	c, err := devchain.New(devchain.Options{Keys: devKeys, Seed: "devnet", HTTP: cfg.RPC})
	if err != nil {
		return nil, fmt.Errorf("start simulated chain: %w", err)
	}
	d := &Devnet{Chain: c, Relayer: devKeys[0], Reporter: reporter, done: make(chan struct{})}
	eth := new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
	if _, err := c.Transact(c.Deployer, crypto.PubkeyToAddress(reporter.PublicKey), nil, new(big.Int).Mul(eth, big.NewInt(100))); err != nil {
		c.Close()
		return nil, fmt.Errorf("fund the report submitter: %w", err)
	}
	if err := d.createDemo(); err != nil {
		c.Close()
		return nil, err
	}
	if cfg.MainChain {
		if err := d.startMainchain(devKeys, cfg.Validators, cfg.ExitDelay, cfg.MainRPC); err != nil {
			c.Close()
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go d.commitLoop(ctx, cfg.BlockTime)
	cfg.Logger.Info("development chain ready", "chainId", c.ChainID, "forwarder", c.Forwarder, "factory", c.Factory,
		"testUSD", c.USD, "demoEvent", d.Demo, "blockTime", cfg.BlockTime)
	if d.Main != nil {
		cfg.Logger.Info("development main chain ready", "chainId", d.Main.ChainID, "stakeManager", d.Bridge.Stake,
			"checkpointManager", d.Bridge.Checkpoints, "rootGateway", d.Bridge.Root, "mainStartBlock", d.MainStart, "testUSD", d.Main.USD,
			"childGateway", d.Bridge.Child, "childToken", d.Bridge.ChildToken, "validators", len(d.Bridge.Validators))
	}
	return d, nil
}

// createDemo creates a realistic demo event: two tiers, a discount schedule, resale capped at
// +20% with half the markup to the seller, splits to the originator, artist, promoter and
// venue, and gifts allowed. Issuer: development account 1; gate: account 2.
func (d *Devnet) createDemo() error {
	acc := d.Accounts
	issuer, gate, artist, promoter, venue := acc[1], acc[2], acc[3], acc[4], acc[5]
	now := d.Now()
	day := uint64(86400)
	starts := now + 30*day
	cfg := events.EventConfig{
		Name:        "Stagepass Live: Opening Night",
		Venue:       "Harbour Hall, Main Stage",
		BaseURI:     "http://127.0.0.1:8080/meta/",
		StartsAt:    new(big.Int).SetUint64(starts),
		DoorsOpenAt: new(big.Int).SetUint64(starts - 2*3600),
		Currency:    d.USD,
		// Buyer categories come from the oracle network's attestations on the hub.
		CategoryRegistry: d.Hub,
		Tiers: []events.TierConfig{
			{Name: "General admission", FaceValue: devchain.USDC(45), Supply: 2000},
			{Name: "VIP balcony", FaceValue: devchain.USDC(120), Supply: 150},
		},
		Rules: events.Rules{
			MaxPerBuyer:          6,
			MaxResaleMarkupBps:   2000,
			SellerMarkupShareBps: 5000,
			GiftsAllowed:         true,
			ResaleClosesAt:       new(big.Int).SetUint64(starts - 3*3600),
			Discounts:            []events.Discount{{From: new(big.Int).SetUint64(starts - 2*day), MaxDiscountBps: 2000}},
			CategoryQuotaBps:     [5]uint16{10000, 10000, 10000, 1000, 0},
			PresaleEndsAt:        new(big.Int), SuperfanPresaleEndsAt: new(big.Int),
		},
		Splits: []events.Split{
			{Account: issuer.Address, Bps: 5000, Role: 0},
			{Account: artist.Address, Bps: 3000, Role: 1},
			{Account: promoter.Address, Bps: 1000, Role: 2},
			{Account: venue.Address, Bps: 1000, Role: 3},
		},
		Gates: []common.Address{gate.Address},
	}
	ev, err := d.CreateEvent(issuer, cfg)
	if err != nil {
		return fmt.Errorf("create demo event: %w", err)
	}
	d.Demo = ev
	// Development accounts hold TestUSD, approved to the demo event.
	d.FundUSD(ev, devchain.USDC(5000), acc...)
	return nil
}

func (d *Devnet) attestConfig() *oracle.AttestConfig {
	c := d.Attest
	c.Factory = d.Factory
	if c.Scheme == "" {
		c.Scheme = "https"
	}
	return &c
}

func (d *Devnet) commitLoop(ctx context.Context, every time.Duration) {
	defer close(d.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.Commit()
			if d.Main != nil {
				d.Main.Commit()
			}
		}
	}
}

// Close stops committing blocks and shuts the chain down.
func (d *Devnet) Close() {
	d.cancel()
	<-d.done
	d.Chain.Close()
	if d.Main != nil {
		d.Main.Close()
	}
}

// StartOracles runs the OracleHub's oracle nodes in-process until ctx ends, each with its own key
// (the chain's Oracles), the relay connection `relay(i)` and the processor `processor(i)`
// give node i; `down` lists nodes not to start (tests: one oracle down).
func (d *Devnet) StartOracles(ctx context.Context, relay func(i int) oracle.Relay, processor func(i int) payments.Processor, logger *slog.Logger, down ...int) ([]*oracle.Node, error) {
	if logger == nil {
		logger = slog.Default()
	}
	skip := map[int]bool{}
	for _, i := range down {
		skip[i] = true
	}
	var nodes []*oracle.Node
	for i, acc := range d.Chain.Oracles {
		if skip[i] {
			continue
		}
		n, err := oracle.NewNode(oracle.NodeConfig{
			Key: acc.Key, Chain: d.Client, ChainID: d.ChainID, Hub: d.Hub, Processor: processor(i), Relay: relay(i),
			Poll: 100 * time.Millisecond, Logger: logger, Attest: d.attestConfig(),
		})
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
		go func() { _ = n.Run(ctx) }()
	}
	return nodes, nil
}
