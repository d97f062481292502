package server

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"path/filepath"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/relay/internal/txfees"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/relay/validator"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// ValidatorConfig turns on the sidechain validators' aggregator (issue 9): validators'
// checkpoints and deposit attestations arrive on sp_submitReport (kinds "checkpoint" and
// "deposits") and go out to CheckpointManager on the main chain and ChildGateway on this
// relay's chain (the sidechain) once their signers hold ≥ 2/3 of the stake.
type ValidatorConfig struct {
	// Main is the relay's connection to the main chain and MainChainID its id.
	Main        oracle.Sender
	MainChainID *big.Int
	// Root is RootGateway on the main chain (CheckpointManager and StakeManager are read
	// from it); Child is ChildGateway on the sidechain.
	Root, Child common.Address
	// Submitter is the hot wallet that sends checkpoints and deposit batches on both
	// chains: a wallet of its own, apart from the forwarding and oracle reporting ones.
	Submitter *ecdsa.PrivateKey
	// Anchors, if set, is the proof-of-work anchor of the checkpoints, shown by sp_finality.
	Anchors Anchors
	// ManualExits: the relay only serves withdrawals' proofs (sp_withdrawalProof) and their
	// recipients exit on the main chain themselves. By default the relay sends
	// RootGateway.exit for each checkpointed withdrawal from Submitter's wallet, once.
	ManualExits bool
	// DepositConfirmations is M, the main-chain confirmations the validators wait for
	// before crediting a deposit, as sp_mainPermitInfo and sp_deposits report it (0: the
	// validators' default, validator.DefaultConfirmations).
	DepositConfirmations uint64
	// MinGaslessDeposit is the least sp_depositWithPermit sends, in whole units of the main
	// chain's stablecoin (its decimals read from the token): the relay pays about 69,000
	// main-chain gas per deposit whatever its amount. Nil: DefaultMinGaslessDeposit; zero:
	// no minimum. Smaller deposits remain open to RootGateway.deposit with the owner's gas.
	MinGaslessDeposit *big.Rat
	// Fees prices the submitter's transactions on both chains (zero: the defaults, a stuck
	// transaction re-priced after 30 s).
	Fees txfees.Policy
	// MainStartBlock is RootGateway's deployment block on the main chain (or an earlier
	// one): the relay reads the bridge's main-chain logs (Exited, Deposited) from there, in
	// queries of at most 1,000 blocks; 0 reads from the genesis block, which a node that
	// keeps no logs that old refuses.
	MainStartBlock uint64
	// MainReorgMargin is how many of the main chain's newest blocks the withdrawal tracker
	// reads again at every step rather than keeping them in DATADIR/bridge.db (a
	// reorganisation may still replace them; one that replaces a kept block is seen by its
	// hash and read again). 0: every block is kept as soon as it is read.
	MainReorgMargin uint64
}

// Validators is the relay's validator report aggregator, nil without ValidatorConfig.
// In-process validators (stagepass dev --mainchain) talk to it directly.
func (r *Relay) Validators() *validator.Aggregator { return r.vagg }

func (r *Relay) startValidators(ctx context.Context) error {
	v := r.cfg.Validators
	agg, err := validator.NewAggregator(ctx, validator.AggregatorConfig{
		Main: v.Main, Side: r.cfg.Client, MainChainID: v.MainChainID, SideChainID: r.cfg.ChainID,
		Root: v.Root, Child: v.Child, Key: v.Submitter, Fees: v.Fees, Logger: r.cfg.Logger,
		Path: filepath.Join(r.cfg.DataDir, "validators.db"),
	})
	if err != nil {
		return err
	}
	r.vagg = agg
	if err := r.startExits(ctx); err != nil {
		_ = agg.Close()
		return err
	}
	return nil
}

// submitReport is sp_submitReport: validators' reports to the validator aggregator, the
// oracles' to the oracle aggregator.
func (r *Relay) submitReport(ctx context.Context, req *rpcserver.Request) (any, error) {
	var rep protocol.OracleReport
	if err := positional(req, &rep); err != nil {
		return nil, err
	}
	var rc protocol.ReportReceipt
	var err error
	switch {
	case validator.IsKind(rep.Kind) && r.vagg != nil:
		rc, err = r.vagg.Submit(ctx, rep)
	case validator.IsKind(rep.Kind):
		return nil, rpcserver.InvalidParams("%v: this relay does not aggregate validators' reports", oracle.ErrRefused)
	case r.agg != nil:
		rc, err = r.agg.Submit(ctx, rep)
	default:
		return nil, rpcserver.InvalidParams("%v: this relay has no oracle network", oracle.ErrRefused)
	}
	if errors.Is(err, oracle.ErrRefused) {
		return nil, rpcserver.InvalidParams("%v", err)
	}
	return rc, err
}

// bridgeHealth is /healthz's "bridge": where the validators' reports go.
type bridgeHealth struct {
	MainChainID       uint64 `json:"mainChainId"`
	StakeManager      string `json:"stakeManager"`
	CheckpointManager string `json:"checkpointManager"`
	RootGateway       string `json:"rootGateway"`
	ChildGateway      string `json:"childGateway"`
	Submitted         int    `json:"checkpointsSubmitted"` // by this relay since it started
}

func (r *Relay) bridgeHealth() *bridgeHealth {
	if r.vagg == nil {
		return nil
	}
	c := r.vagg.Contracts()
	return &bridgeHealth{
		MainChainID: r.cfg.Validators.MainChainID.Uint64(), StakeManager: c.Stake.Hex(), CheckpointManager: c.Checkpoints.Hex(),
		RootGateway: c.Root.Hex(), ChildGateway: c.Child.Hex(), Submitted: r.vagg.Submitted(),
	}
}
