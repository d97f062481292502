package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/relay/anchor"
	"github.com/stagepass/stagepass/relay/exits"
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
	gw := sidechain.NewChildGateway()
	out, err := r.cfg.Client.CallContract(ctx, ethereum.CallMsg{To: &v.Child, Data: gw.PackTOKEN()}, nil)
	if err != nil {
		return fmt.Errorf("read ChildGateway %s's token: %w", v.Child.Hex(), err)
	}
	if r.bridged, err = gw.UnpackTOKEN(out); err != nil {
		return fmt.Errorf("read ChildGateway %s's token: %w", v.Child.Hex(), err)
	}
	if out, err = r.cfg.Client.CallContract(ctx, ethereum.CallMsg{To: &v.Child, Data: gw.PackEXITDELAY()}, nil); err != nil {
		return fmt.Errorf("read ChildGateway %s's exit delay: %w", v.Child.Hex(), err)
	}
	if r.exitDelay, err = gw.UnpackEXITDELAY(out); err != nil {
		return fmt.Errorf("read ChildGateway %s's exit delay: %w", v.Child.Hex(), err)
	}
	cfg := exits.Config{
		Main: main, Side: r.cfg.Client, Root: v.Root, Checkpoints: r.vagg.Contracts().Checkpoints, Child: v.Child,
		SideStart: r.cfg.StartBlock, MainStart: v.MainStartBlock, Logger: r.cfg.Logger,
	}
	if !v.ManualExits {
		cfg.Wallet = r.vagg.MainWallet()
	}
	if r.exits, err = exits.New(cfg); err != nil {
		return err
	}
	// Rebuild from the chains before serving; a node that is away only delays it (Run
	// retries, and the methods say so meanwhile).
	if err := r.exits.Step(ctx); err != nil {
		r.cfg.Logger.Warn("withdrawals: reading the bridge failed; retrying", "err", err)
	}
	return nil
}

// noBridge answers the withdrawal methods on a relay without ValidatorConfig.
func noBridge() error {
	return rpcserver.InvalidParams("this relay follows no main chain: it has no bridge to withdraw through")
}

// withdrawals is sp_withdrawals [recipient].
func (r *Relay) withdrawals(_ context.Context, req *rpcserver.Request) (any, error) {
	var recipient common.Address
	if err := positional(req, addressParam(&recipient, "recipient")); err != nil {
		return nil, err
	}
	if r.exits == nil {
		return nil, noBridge()
	}
	ws, err := r.exits.Withdrawals(recipient)
	return ws, withdrawalError(err)
}

// withdrawalProof is sp_withdrawalProof [index] (a number, or a decimal string).
func (r *Relay) withdrawalProof(_ context.Context, req *rpcserver.Request) (any, error) {
	var raw json.RawMessage
	if err := positional(req, &raw); err != nil {
		return nil, err
	}
	index, err := strconv.ParseUint(strings.Trim(string(raw), `"`), 10, 64)
	if err != nil {
		return nil, rpcserver.InvalidParams("%s param 1: index must be a withdrawal index (a whole number), got %s", req.Method, raw)
	}
	if r.exits == nil {
		return nil, noBridge()
	}
	p, err := r.exits.Proof(index)
	if err != nil {
		return nil, withdrawalError(err)
	}
	return p, nil
}

func withdrawalError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, exits.ErrUnknown), errors.Is(err, exits.ErrNotCheckpointed):
		return rpcserver.InvalidParams("%v", err)
	case errors.Is(err, exits.ErrNotReady):
		return rpcserver.Errorf(rpcserver.CodeUnavailable, "%v", err)
	}
	return err
}
