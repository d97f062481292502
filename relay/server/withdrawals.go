package server

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/relay/anchor"
	"github.com/stagepass/stagepass/relay/exits"
	"github.com/stagepass/stagepass/relay/exits/bridge"
	"github.com/stagepass/stagepass/relay/rpcserver"
)

// startExits reads ChildGateway's bridged stablecoin and exit delay (sp_chainInfo) and starts following the bridge's
// withdrawals (relay/exits): their stages and proofs for sp_withdrawals and
// sp_withdrawalProof and, unless ManualExits, the relay's own exits from the submitter's
// main-chain wallet, the one the validator aggregator sends checkpoints from.
func (r *Relay) startExits(ctx context.Context) error {
	v := r.cfg.Validators
	main, ok := v.Main.(anchor.MainChain)
	if !ok {
		return errors.New("the main chain's connection cannot read logs")
	}
	var err error
	if r.bridged, r.exitDelay, err = bridge.ReadChild(ctx, r.cfg.Client, v.Child); err != nil {
		return err
	}
	cfg := exits.Config{
		Main: main, Side: r.cfg.Client, Root: v.Root, Checkpoints: r.vagg.Contracts().Checkpoints, Child: v.Child,
		SideStart: r.cfg.StartBlock, MainStart: v.MainStartBlock, Logger: r.cfg.Logger,
		Path: filepath.Join(r.cfg.DataDir, "bridge.db"), Margin: v.MainReorgMargin,
		OnStep: r.pushBridge, // bridgefeed.go
	}
	if !v.ManualExits {
		cfg.Wallet = r.vagg.MainWallet()
	}
	if r.exits, err = exits.New(cfg); err != nil {
		return err
	}
	// Catch up with the chains (from where bridge.db says the last run stopped) before
	// serving; a node that is away only delays it (Run retries, and the methods say so
	// meanwhile).
	if err := r.exits.Step(ctx); err != nil {
		r.cfg.Logger.Warn("withdrawals: reading the bridge failed; retrying", "err", err)
	}
	return nil
}

// withdrawals is sp_withdrawals [recipient].
func (r *Relay) withdrawals(_ context.Context, req *rpcserver.Request) (any, error) {
	var recipient common.Address
	if err := positional(req, addressParam(&recipient, "recipient")); err != nil {
		return nil, err
	}
	if r.exits == nil {
		return nil, bridge.NoBridge()
	}
	ws, err := r.exits.Withdrawals(recipient)
	return ws, bridge.RPCError(err)
}

// withdrawalProof is sp_withdrawalProof [index] (a number, or a decimal string).
func (r *Relay) withdrawalProof(_ context.Context, req *rpcserver.Request) (any, error) {
	var raw json.RawMessage
	if err := positional(req, &raw); err != nil {
		return nil, err
	}
	index, err := bridge.ParseIndex(req.Method, raw)
	if err != nil {
		return nil, err
	}
	if r.exits == nil {
		return nil, bridge.NoBridge()
	}
	p, err := r.exits.Proof(index)
	if err != nil {
		return nil, bridge.RPCError(err)
	}
	return p, nil
}
