// Package validator is the sidechain's proof-of-stake validator network in Go (issue 9,
// claims 9–13): the validator Node, which follows the sidechain and the main chain with its
// own connections, signs the checkpoint of each next sidechain block range (EIP-712, under
// StakeManager's domain) and each RootGateway deposit once it has M main-chain
// confirmations (under ChildGateway's domain), and the relay's Aggregator, which collects
// the signatures over sp_submitReport — the oracles' transport — and submits a checkpoint
// to CheckpointManager, or a deposit batch to ChildGateway, once its signers hold ≥ 2/3 of
// the stake.
package validator

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"sort"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/relay/internal/logscan"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/wasm/protocol"
)

var (
	stakeABI  = mainchain.NewStakeManager()
	cpABI     = mainchain.NewCheckpointManager()
	rootABI   = mainchain.NewRootGateway()
	childABI  = sidechain.NewChildGateway()
	depositID = logscan.EventID(&mainchain.RootGatewayMetaData, "Deposited")
)

// call reads a contract at `block` (nil: the head).
func call(ctx context.Context, c oracle.Caller, to common.Address, data []byte, block *big.Int) ([]byte, error) {
	return c.CallContract(ctx, ethereum.CallMsg{To: &to, Data: data}, block)
}

// Contracts are the bridge's addresses, read from RootGateway (its CheckpointManager, whose
// StakeManager) and given for ChildGateway.
type Contracts struct {
	Root, Checkpoints, Stake common.Address // main chain
	Child                    common.Address // sidechain
}

// ReadContracts finds CheckpointManager and StakeManager from RootGateway on the main chain.
func ReadContracts(ctx context.Context, main oracle.Caller, root, child common.Address) (Contracts, error) {
	c := Contracts{Root: root, Child: child}
	out, err := call(ctx, main, root, rootABI.PackCHECKPOINTS(), nil)
	if err != nil {
		return c, fmt.Errorf("read RootGateway %s: %w", root.Hex(), err)
	}
	if c.Checkpoints, err = rootABI.UnpackCHECKPOINTS(out); err != nil {
		return c, fmt.Errorf("read RootGateway %s: %w", root.Hex(), err)
	}
	if out, err = call(ctx, main, c.Checkpoints, cpABI.PackSTAKE(), nil); err != nil {
		return c, fmt.Errorf("read CheckpointManager: %w", err)
	}
	if c.Stake, err = cpABI.UnpackSTAKE(out); err != nil {
		return c, fmt.Errorf("read CheckpointManager: %w", err)
	}
	return c, nil
}

// nextStart is the sidechain block the next checkpoint must start at.
func nextStart(ctx context.Context, main oracle.Caller, cps common.Address) (uint64, error) {
	out, err := call(ctx, main, cps, cpABI.PackNextStartBlock(), nil)
	if err != nil {
		return 0, fmt.Errorf("read the next checkpoint's start: %w", err)
	}
	n, err := cpABI.UnpackNextStartBlock(out)
	if err != nil {
		return 0, err
	}
	return n.Uint64(), nil
}

// checkpointDigest is StakeManager's EIP-712 digest of `cp`, as the contract computes it.
func checkpointDigest(ctx context.Context, main oracle.Caller, stake common.Address, cp mainchain.Checkpoint) ([32]byte, error) {
	out, err := call(ctx, main, stake, stakeABI.PackCheckpointDigest(cp), nil)
	if err != nil {
		return [32]byte{}, fmt.Errorf("checkpoint digest: %w", err)
	}
	return stakeABI.UnpackCheckpointDigest(out)
}

// depositDigest is ChildGateway's EIP-712 digest of a deposit batch.
func depositDigest(ctx context.Context, side oracle.Caller, child common.Address, ds []sidechain.Deposit) ([32]byte, error) {
	out, err := call(ctx, side, child, childABI.PackDepositDigest(ds), nil)
	if err != nil {
		return [32]byte{}, fmt.Errorf("deposit digest: %w", err)
	}
	return childABI.UnpackDepositDigest(out)
}

// depositMinted says whether ChildGateway minted deposit `id`.
func depositMinted(ctx context.Context, side oracle.Caller, child common.Address, id *big.Int) (bool, error) {
	out, err := call(ctx, side, child, childABI.PackDepositMinted(id), nil)
	if err != nil {
		return false, fmt.Errorf("read deposit %s: %w", id, err)
	}
	return childABI.UnpackDepositMinted(out)
}

// power is a validator set with its members' power and the total.
type power struct {
	of    map[common.Address]*big.Int
	total *big.Int
}

func newPower(members []common.Address, stakes []*big.Int) power {
	p := power{of: map[common.Address]*big.Int{}, total: new(big.Int)}
	for i, m := range members {
		if stakes[i].Sign() > 0 {
			p.of[m] = stakes[i]
			p.total.Add(p.total, stakes[i])
		}
	}
	return p
}

// quorum: signed × 3 ≥ total × 2, the contracts' rule.
func (p power) quorum(signed *big.Int) bool {
	return p.total.Sign() > 0 && new(big.Int).Mul(signed, big.NewInt(3)).Cmp(new(big.Int).Mul(p.total, big.NewInt(2))) >= 0
}

// stakes reads StakeManager's validator set (a leaving validator keeps its stake until unbonded).
func stakes(ctx context.Context, main oracle.Caller, stake common.Address) (power, error) {
	out, err := call(ctx, main, stake, stakeABI.PackValidatorSet(), nil)
	if err != nil {
		return power{}, fmt.Errorf("read the validator set: %w", err)
	}
	set, err := stakeABI.UnpackValidatorSet(out)
	if err != nil {
		return power{}, err
	}
	return newPower(set.Members, set.Stakes), nil
}

// childPowers reads ChildGateway's copy of the validator set.
func childPowers(ctx context.Context, side oracle.Caller, child common.Address) (power, error) {
	out, err := call(ctx, side, child, childABI.PackValidatorSet(), nil)
	if err != nil {
		return power{}, fmt.Errorf("read ChildGateway's validator set: %w", err)
	}
	set, err := childABI.UnpackValidatorSet(out)
	if err != nil {
		return power{}, err
	}
	return newPower(set.Validators, set.Powers), nil
}

// checkpointJSON and parseCheckpoint convert a checkpoint to and from the wire.
func checkpointJSON(cp mainchain.Checkpoint) *protocol.CheckpointJSON {
	return &protocol.CheckpointJSON{
		StartBlock: cp.StartBlock.Uint64(), EndBlock: cp.EndBlock.Uint64(),
		BlockRoot: protocol.Hex32(cp.BlockRoot), WithdrawalRoot: protocol.Hex32(cp.WithdrawalRoot),
	}
}

func parseCheckpoint(j *protocol.CheckpointJSON) (mainchain.Checkpoint, error) {
	if j == nil {
		return mainchain.Checkpoint{}, fmt.Errorf("a checkpoint report needs its checkpoint")
	}
	if j.EndBlock < j.StartBlock {
		return mainchain.Checkpoint{}, fmt.Errorf("checkpoint ends (%d) before it starts (%d)", j.EndBlock, j.StartBlock)
	}
	br, err := protocol.ParseHash32("blockRoot", j.BlockRoot)
	if err != nil {
		return mainchain.Checkpoint{}, err
	}
	wr, err := protocol.ParseHash32("withdrawalRoot", j.WithdrawalRoot)
	if err != nil {
		return mainchain.Checkpoint{}, err
	}
	return mainchain.Checkpoint{
		StartBlock: new(big.Int).SetUint64(j.StartBlock), EndBlock: new(big.Int).SetUint64(j.EndBlock),
		BlockRoot: br, WithdrawalRoot: wr,
	}, nil
}

func depositsJSON(ds []sidechain.Deposit) []protocol.DepositJSON {
	out := make([]protocol.DepositJSON, len(ds))
	for i, d := range ds {
		out[i] = protocol.DepositJSON{DepositID: d.DepositId.String(), Recipient: d.Recipient.Hex(), Amount: d.Amount.String()}
	}
	return out
}

func parseDeposits(js []protocol.DepositJSON) ([]sidechain.Deposit, error) {
	if len(js) == 0 {
		return nil, fmt.Errorf("a deposits report needs at least one deposit")
	}
	if len(js) > 100 {
		return nil, fmt.Errorf("at most 100 deposits in one report, not %d", len(js))
	}
	out := make([]sidechain.Deposit, len(js))
	for i, j := range js {
		id, ok1 := new(big.Int).SetString(j.DepositID, 10)
		amount, ok2 := new(big.Int).SetString(j.Amount, 10)
		if !ok1 || !ok2 || id.Sign() < 0 || amount.Sign() <= 0 || id.BitLen() > 256 || amount.BitLen() > 256 {
			return nil, fmt.Errorf("deposit %d: depositId and amount must be decimal numbers (amount > 0)", i)
		}
		if !common.IsHexAddress(j.Recipient) {
			return nil, fmt.Errorf("deposit %d: recipient must be an address", i)
		}
		out[i] = sidechain.Deposit{DepositId: id, Recipient: common.HexToAddress(j.Recipient), Amount: amount}
	}
	return out, nil
}

// validatorSet is a set as ChildGateway.updateValidators takes it: ascending addresses,
// nonzero powers, and the epoch of the copy it replaces.
type validatorSet struct {
	validators []common.Address
	powers     []*big.Int
	epoch      uint64
}

// mainSet is StakeManager's set at `block`, members with stake only, ascending.
func mainSet(ctx context.Context, main oracle.Caller, stake common.Address, block *big.Int) (validatorSet, error) {
	out, err := call(ctx, main, stake, stakeABI.PackValidatorSet(), block)
	if err != nil {
		return validatorSet{}, fmt.Errorf("read the validator set: %w", err)
	}
	set, err := stakeABI.UnpackValidatorSet(out)
	if err != nil {
		return validatorSet{}, err
	}
	idx := make([]int, 0, len(set.Members))
	for i := range set.Members {
		if set.Stakes[i].Sign() > 0 {
			idx = append(idx, i)
		}
	}
	sort.Slice(idx, func(a, b int) bool { return bytes.Compare(set.Members[idx[a]][:], set.Members[idx[b]][:]) < 0 })
	var vs validatorSet
	for _, i := range idx {
		vs.validators = append(vs.validators, set.Members[i])
		vs.powers = append(vs.powers, set.Stakes[i])
	}
	return vs, nil
}

// childSet is ChildGateway's copy of the set and its epoch.
func childSet(ctx context.Context, side oracle.Caller, child common.Address) (validatorSet, error) {
	out, err := call(ctx, side, child, childABI.PackValidatorSet(), nil)
	if err != nil {
		return validatorSet{}, fmt.Errorf("read ChildGateway's validator set: %w", err)
	}
	set, err := childABI.UnpackValidatorSet(out)
	if err != nil {
		return validatorSet{}, err
	}
	return validatorSet{validators: set.Validators, powers: set.Powers, epoch: set.CurrentEpoch.Uint64()}, nil
}

// same says whether two sets have the same members and powers.
func (s validatorSet) same(o validatorSet) bool {
	if len(s.validators) != len(o.validators) {
		return false
	}
	for i := range s.validators {
		if s.validators[i] != o.validators[i] || s.powers[i].Cmp(o.powers[i]) != 0 {
			return false
		}
	}
	return true
}

// setDigest is ChildGateway's EIP-712 digest of a set update.
func setDigest(ctx context.Context, side oracle.Caller, child common.Address, s validatorSet) ([32]byte, error) {
	out, err := call(ctx, side, child, childABI.PackSetDigest(s.validators, s.powers, new(big.Int).SetUint64(s.epoch)), nil)
	if err != nil {
		return [32]byte{}, fmt.Errorf("validator set digest: %w", err)
	}
	return childABI.UnpackSetDigest(out)
}

func setJSON(s validatorSet) *protocol.ValidatorSetJSON {
	j := &protocol.ValidatorSetJSON{Epoch: s.epoch}
	for i := range s.validators {
		j.Validators = append(j.Validators, s.validators[i].Hex())
		j.Powers = append(j.Powers, s.powers[i].String())
	}
	return j
}

func parseSet(j *protocol.ValidatorSetJSON) (validatorSet, error) {
	if j == nil || len(j.Validators) == 0 || len(j.Validators) != len(j.Powers) || len(j.Validators) > 100 {
		return validatorSet{}, fmt.Errorf("a validatorSet report needs 1..100 validators, each with its power")
	}
	s := validatorSet{epoch: j.Epoch}
	for i := range j.Validators {
		if !common.IsHexAddress(j.Validators[i]) {
			return validatorSet{}, fmt.Errorf("validator %d must be an address", i)
		}
		p, ok := new(big.Int).SetString(j.Powers[i], 10)
		if !ok || p.Sign() <= 0 || p.BitLen() > 256 {
			return validatorSet{}, fmt.Errorf("power %d must be a decimal number > 0", i)
		}
		s.validators = append(s.validators, common.HexToAddress(j.Validators[i]))
		s.powers = append(s.powers, p)
	}
	return s, nil
}
