// Package bridge is the bridge's withdrawals (and deposits) as plain functions over what
// was read of the chains: relay/exits' Tracker keeps them in memory, the Workers build of
// the relay (relay/worker/edge) in D1; both read, check, stage and prove them with these.
// Nothing here sends a transaction or touches a disk, so it builds for js/wasm too.
package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/relay/internal/logscan"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/wasm/protocol"
)

var (
	rootABI     = mainchain.NewRootGateway()
	childABI    = sidechain.NewChildGateway()
	cpABI       = mainchain.NewCheckpointManager()
	queuedTopic = logscan.EventID(&sidechain.ChildGatewayMetaData, "WithdrawalQueued")
	ExitedTopic = logscan.EventID(&mainchain.RootGatewayMetaData, "Exited")
	// DepositedTopic is RootGateway's Deposited(depositId, from, recipient, amount) event
	// (all but amount indexed).
	DepositedTopic = logscan.EventID(&mainchain.RootGatewayMetaData, "Deposited")
)

// Errors a withdrawal's proof is refused with (RPCError turns the first two into invalid
// params, the last into unavailable).
var (
	ErrUnknown         = errors.New("no such withdrawal")
	ErrNotCheckpointed = errors.New("not in a checkpoint yet")
	// ErrNotReady: the relay has not read the chains up to their heads yet (a node is away).
	ErrNotReady = errors.New("the relay has not read the bridge's withdrawals and deposits yet")
)

// refusal is an error whose message says it all and that is one of the sentinels.
type refusal struct {
	kind error
	msg  string
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }

// Deposit is one of RootGateway's deposits as its Deposited log says.
type Deposit struct {
	ID, Amount      *big.Int
	From, Recipient common.Address
	Tx              common.Hash
	Block           uint64
}

// DepositOf decodes a Deposited log.
func DepositOf(l *types.Log) (Deposit, bool) {
	ev, err := rootABI.UnpackDepositedEvent(l)
	if err != nil {
		return Deposit{}, false
	}
	return Deposit{ID: ev.DepositId, Amount: ev.Amount, From: ev.From, Recipient: ev.Recipient, Tx: l.TxHash, Block: l.BlockNumber}, true
}

// MainChain is what the bridge's followers read of the main chain (an ethclient.Client, a
// simulated chain's client, an anchor.MainChain).
type MainChain interface {
	ethereum.ContractCaller
	ethereum.LogFilterer
	ethereum.BlockNumberReader
	ethereum.TransactionReader
}

// Leaf is one withdrawal of ChildGateway's tree as its WithdrawalQueued log says, with the
// leaf hash recomputed in Go (and checked against the logged one).
type Leaf struct {
	W     merkle.Withdrawal
	Hash  common.Hash
	Tx    common.Hash
	Block uint64
}

// Exit is one of RootGateway's Exited logs: the transaction (in main-chain block Block)
// that paid withdrawal Index, and against which checkpoint.
type Exit struct {
	Index, Checkpoint, Block uint64
	Tx                       common.Hash
}

// Checkpoint is one of CheckpointManager's checkpoints as checked against ChildGateway's
// withdrawals: the first Leaves withdrawals (those in sidechain blocks ≤ End) make a tree
// whose root is Root, the checkpoint's, or OK is false (no proofs or exits against it).
type Checkpoint struct {
	Number, End uint64
	Leaves      int
	Root        common.Hash
	OK          bool
}

// ScanQueued reads ChildGateway's WithdrawalQueued logs in span (chunked by logscan) and
// gives each query's withdrawals to fn with the last block it covered. next is the index
// the first must have: a withdrawal out of order, or whose logged leaf is not the one Go
// computes, is an error (the relay would build another tree than the contract's).
func ScanQueued(ctx context.Context, side logscan.Filterer, child common.Address, span logscan.Span, next uint64,
	fn func(leaves []Leaf, to uint64) error) error {
	q := ethereum.FilterQuery{Addresses: []common.Address{child}, Topics: [][]common.Hash{{queuedTopic}}}
	return logscan.Scan(ctx, side, q, span, func(logs []types.Log, _, to uint64) (bool, error) {
		var got []Leaf
		for i := range logs {
			l := &logs[i]
			if l.Removed {
				continue
			}
			ev, err := childABI.UnpackWithdrawalQueuedEvent(l)
			if err != nil {
				return false, fmt.Errorf("WithdrawalQueued log in sidechain block %d: %w", l.BlockNumber, err)
			}
			w := merkle.Withdrawal{Kind: ev.Kind, Index: ev.Index.Uint64(), Recipient: ev.Recipient, Asset: ev.Asset, Value: ev.Value, Data: ev.Data}
			if !ev.Index.IsUint64() || w.Index != next {
				return false, fmt.Errorf("ChildGateway's withdrawal %s (sidechain block %d) is not the next one, %d: the relay would build another tree",
					ev.Index, l.BlockNumber, next)
			}
			leaf := w.Leaf()
			if leaf != ev.Leaf {
				return false, fmt.Errorf("withdrawal %d (sidechain block %d): ChildGateway logged leaf %x, the relay computes %x; no proofs from here on",
					w.Index, l.BlockNumber, ev.Leaf, leaf)
			}
			got = append(got, Leaf{W: w, Hash: leaf, Tx: l.TxHash, Block: l.BlockNumber})
			next++
		}
		return true, fn(got, to)
	})
}

// ScanMain reads RootGateway's Exited and Deposited logs in span and gives each query's to
// fn with the last block it covered.
func ScanMain(ctx context.Context, main logscan.Filterer, root common.Address, span logscan.Span,
	fn func(exits []Exit, deposits []Deposit, to uint64) error) error {
	q := ethereum.FilterQuery{Addresses: []common.Address{root}, Topics: [][]common.Hash{{ExitedTopic, DepositedTopic}}}
	return logscan.Scan(ctx, main, q, span, func(logs []types.Log, _, to uint64) (bool, error) {
		var xs []Exit
		var ds []Deposit
		for i := range logs {
			l := &logs[i]
			if l.Removed || len(l.Topics) == 0 {
				continue
			}
			if l.Topics[0] == DepositedTopic {
				if d, ok := DepositOf(l); ok {
					ds = append(ds, d)
				}
			} else if ev, err := rootABI.UnpackExitedEvent(l); err == nil {
				xs = append(xs, Exit{Index: ev.Index.Uint64(), Checkpoint: ev.Checkpoint.Uint64(), Block: l.BlockNumber, Tx: l.TxHash})
			}
		}
		return true, fn(xs, ds, to)
	})
}

// DepositMinted reads whether ChildGateway minted deposit id.
func DepositMinted(ctx context.Context, side ethereum.ContractCaller, child common.Address, id *big.Int) (bool, error) {
	out, err := side.CallContract(ctx, ethereum.CallMsg{To: &child, Data: childABI.PackDepositMinted(id)}, nil)
	if err == nil {
		var minted bool
		if minted, err = childABI.UnpackDepositMinted(out); err == nil {
			return minted, nil
		}
	}
	return false, fmt.Errorf("sidechain: read deposit %s: %w", id, err)
}

// DepositView is a deposit as sp_deposits shows it, with the main chain at head, required
// confirmations before the validators credit it, and whether ChildGateway minted it.
func DepositView(d Deposit, head, required uint64, credited bool) protocol.Deposit {
	out := protocol.Deposit{
		ID: d.ID.String(), Amount: d.Amount.String(), From: strings.ToLower(d.From.Hex()),
		TxHash: d.Tx.Hex(), Block: d.Block, Confirmations: head - d.Block + 1, Required: required,
		Stage: protocol.DepositPending,
	}
	if credited {
		out.Stage = protocol.DepositCredited
	}
	return out
}

// Tree is the withdrawal tree of leaves, in index order.
func Tree(leaves []common.Hash) *merkle.Tree {
	tree := merkle.New(merkle.WithdrawalDepth)
	for _, l := range leaves {
		tree.Push(l)
	}
	return tree
}

// Check checks checkpoint `number` (as CheckpointManager stores it) against leaves, the
// withdrawals in sidechain blocks up to its end block, in index order.
func Check(number uint64, cp mainchain.CheckpointManagerStored, leaves []common.Hash) Checkpoint {
	return Checkpoint{Number: number, End: cp.EndBlock, Leaves: len(leaves), Root: cp.WithdrawalRoot,
		OK: Tree(leaves).Root() == cp.WithdrawalRoot}
}

// CheckpointCount reads how many checkpoints CheckpointManager at `manager` holds.
func CheckpointCount(ctx context.Context, main ethereum.ContractCaller, manager common.Address) (uint64, error) {
	out, err := main.CallContract(ctx, ethereum.CallMsg{To: &manager, Data: cpABI.PackCount()}, nil)
	if err != nil {
		return 0, fmt.Errorf("CheckpointManager.count: %w", err)
	}
	n, err := cpABI.UnpackCount(out)
	if err != nil {
		return 0, fmt.Errorf("CheckpointManager.count at %s: %w", manager, err)
	}
	return n.Uint64(), nil
}

// ReadCheckpoint reads checkpoint `number`, one CheckpointCount says exists.
func ReadCheckpoint(ctx context.Context, main ethereum.ContractCaller, manager common.Address, number uint64) (mainchain.CheckpointManagerStored, error) {
	out, err := main.CallContract(ctx, ethereum.CallMsg{To: &manager, Data: cpABI.PackCheckpoint(new(big.Int).SetUint64(number))}, nil)
	if err != nil {
		return mainchain.CheckpointManagerStored{}, fmt.Errorf("CheckpointManager.checkpoint(%d): %w", number, err)
	}
	return cpABI.UnpackCheckpoint(out)
}

// ReadCheckpointManager reads RootGateway's CheckpointManager (its CHECKPOINTS).
func ReadCheckpointManager(ctx context.Context, main ethereum.ContractCaller, root common.Address) (common.Address, error) {
	out, err := main.CallContract(ctx, ethereum.CallMsg{To: &root, Data: rootABI.PackCHECKPOINTS()}, nil)
	if err == nil {
		var cps common.Address
		if cps, err = rootABI.UnpackCHECKPOINTS(out); err == nil {
			return cps, nil
		}
	}
	return common.Address{}, fmt.Errorf("read RootGateway %s's CheckpointManager: %w", root.Hex(), err)
}

// ReadChild reads ChildGateway's bridged stablecoin (its ChildToken) and exit delay, as
// sp_chainInfo shows them.
func ReadChild(ctx context.Context, side ethereum.ContractCaller, child common.Address) (token common.Address, exitDelay uint64, err error) {
	out, err := side.CallContract(ctx, ethereum.CallMsg{To: &child, Data: childABI.PackTOKEN()}, nil)
	if err == nil {
		token, err = childABI.UnpackTOKEN(out)
	}
	if err != nil {
		return token, 0, fmt.Errorf("read ChildGateway %s's token: %w", child.Hex(), err)
	}
	if out, err = side.CallContract(ctx, ethereum.CallMsg{To: &child, Data: childABI.PackEXITDELAY()}, nil); err == nil {
		exitDelay, err = childABI.UnpackEXITDELAY(out)
	}
	if err != nil {
		return token, 0, fmt.Errorf("read ChildGateway %s's exit delay: %w", child.Hex(), err)
	}
	return token, exitDelay, nil
}

// View is a withdrawal as sp_withdrawals shows it: queued; checkpointed by cp, the first
// verified checkpoint carrying it (nil: none yet); exited by x (nil: not yet).
func View(l Leaf, cp *uint64, x *Exit) protocol.Withdrawal {
	w := protocol.Withdrawal{
		Index: l.W.Index, Kind: "token", Recipient: strings.ToLower(l.W.Recipient.Hex()), Value: l.W.Value.String(),
		TxHash: l.Tx.Hex(), Block: l.Block, Stage: protocol.WithdrawalQueued,
	}
	if l.W.Kind == merkle.KindTicket {
		w.Kind, w.Event, w.CheckedIn = "ticket", strings.ToLower(l.W.Asset.Hex()), l.W.Data.Sign() != 0
	}
	if cp != nil {
		n := *cp
		w.Stage, w.Checkpoint = protocol.WithdrawalCheckpointed, &n
	}
	if x != nil {
		n := x.Checkpoint
		w.Stage, w.Checkpoint, w.ExitTx = protocol.WithdrawalExited, &n, x.Tx.Hex()
	}
	return w
}

// ProofOf is withdrawal l with its proof against checkpoint cp, whose tree is leaves (the
// checkpoint's, in index order): what RootGateway.exit takes.
func ProofOf(l Leaf, cp uint64, leaves []common.Hash) (protocol.WithdrawalProof, error) {
	proof, err := Tree(leaves).Proof(int(l.W.Index))
	if err != nil {
		return protocol.WithdrawalProof{}, err
	}
	out := protocol.WithdrawalProof{
		Checkpoint: cp, Index: l.W.Index, Kind: l.W.Kind, Recipient: strings.ToLower(l.W.Recipient.Hex()),
		Asset: strings.ToLower(l.W.Asset.Hex()), Value: l.W.Value.String(), Data: l.W.Data.String(), Proof: make([]string, len(proof)),
	}
	for i, p := range proof {
		out.Proof[i] = p.Hex()
	}
	return out, nil
}

// Unknown is the refusal of a proof of withdrawal index when ChildGateway has queued count.
func Unknown(index, count uint64) error {
	return &refusal{ErrUnknown, fmt.Sprintf("no withdrawal %d (ChildGateway has queued %d)", index, count)}
}

// NotCheckpointed is the refusal of a proof of withdrawal index that no verified checkpoint
// carries; failed are the checkpoints read whose root did not verify.
func NotCheckpointed(index uint64, failed []Checkpoint) error {
	why := ""
	for _, c := range failed {
		if !c.OK && c.Leaves > int(index) {
			why = fmt.Sprintf(" (checkpoint %d carries it, but its withdrawal root is not the relay's tree of ChildGateway's withdrawals)", c.Number)
			break
		}
	}
	return fmt.Errorf("withdrawal %d is %w%s", index, ErrNotCheckpointed, why)
}

// ParseIndex reads sp_withdrawalProof's param: a withdrawal index, a number or a decimal
// string.
func ParseIndex(method string, raw json.RawMessage) (uint64, error) {
	index, err := strconv.ParseUint(strings.Trim(string(raw), `"`), 10, 64)
	if err != nil {
		return 0, rpcserver.InvalidParams("%s param 1: index must be a withdrawal index (a whole number), got %s", method, raw)
	}
	return index, nil
}

// NoBridge answers the withdrawal methods on a relay that follows no main chain.
func NoBridge() error {
	return rpcserver.InvalidParams("this relay follows no main chain: it has no bridge to withdraw through")
}

// NoDeposits answers sp_deposits on a relay that follows no main chain.
func NoDeposits() error {
	return rpcserver.InvalidParams("this relay follows no main chain: it has no bridge to deposit through")
}

// RPCError is err as the withdrawal methods answer it: an unknown or not yet checkpointed
// withdrawal is invalid params, a bridge not read yet unavailable.
func RPCError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnknown), errors.Is(err, ErrNotCheckpointed):
		return rpcserver.InvalidParams("%v", err)
	case errors.Is(err, ErrNotReady):
		return rpcserver.Errorf(rpcserver.CodeUnavailable, "%v", err)
	}
	return err
}
