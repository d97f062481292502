package anchor

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
)

// MainChain is what the anchor reads of the main chain: an ethclient.Client, or a simulated
// chain's client.
type MainChain interface {
	ethereum.ContractCaller
	ethereum.LogFilterer
	ethereum.BlockNumberReader
	ethereum.ChainIDReader
	ethereum.TransactionReader
}

var (
	checkpoints   = mainchain.NewCheckpointManager()
	stakeManager  = mainchain.NewStakeManager()
	managerABI, _ = mainchain.CheckpointManagerMetaData.ParseABI()

	// ErrUnknownCheckpoint: the CheckpointManager holds no checkpoint of that number.
	ErrUnknownCheckpoint = errors.New("no such checkpoint on the main chain")
	// ErrNotOnMainChain: a checkpoint differs from the one the CheckpointManager stores.
	ErrNotOnMainChain = errors.New("checkpoint is not the one on the main chain")
)

// Checkpoint is checkpoint Number as CheckpointManager stores it.
type Checkpoint struct {
	Number uint64
	mainchain.CheckpointManagerStored
}

// Same reports whether c and o are the same checkpoint (number, range and roots).
func (c Checkpoint) Same(o Checkpoint) bool {
	return c.Number == o.Number && c.StartBlock == o.StartBlock && c.EndBlock == o.EndBlock &&
		c.BlockRoot == o.BlockRoot && c.WithdrawalRoot == o.WithdrawalRoot
}

// Hash is the hash of checkpoint `cp` of the CheckpointManager at `manager` on the chain
// `chainID` that the anchor writes into the proof-of-work chain:
//
//	keccak256(abi.encode(chainID, manager, number, startBlock, endBlock, blockRoot, withdrawalRoot))
//
// Anyone can recompute it from the main chain's CheckpointManager.checkpoint(number).
func Hash(chainID *big.Int, manager common.Address, cp Checkpoint) common.Hash {
	word := func(v uint64) []byte {
		var w [32]byte
		binary.BigEndian.PutUint64(w[24:], v)
		return w[:]
	}
	return crypto.Keccak256Hash(
		common.LeftPadBytes(chainID.Bytes(), 32), common.LeftPadBytes(manager[:], 32),
		word(cp.Number), word(cp.StartBlock), word(cp.EndBlock), cp.BlockRoot[:], cp.WithdrawalRoot[:])
}

// Count reads how many checkpoints the CheckpointManager holds.
func Count(ctx context.Context, main MainChain, manager common.Address) (uint64, error) {
	out, err := main.CallContract(ctx, ethereum.CallMsg{To: &manager, Data: checkpoints.PackCount()}, nil)
	if err != nil {
		return 0, fmt.Errorf("CheckpointManager.count: %w", err)
	}
	n, err := checkpoints.UnpackCount(out)
	if err != nil {
		return 0, fmt.Errorf("CheckpointManager.count at %s: %w", manager, err)
	}
	return n.Uint64(), nil
}

// ReadCheckpoint reads checkpoint `number` from the CheckpointManager; ErrUnknownCheckpoint
// if there is none yet.
func ReadCheckpoint(ctx context.Context, main MainChain, manager common.Address, number uint64) (Checkpoint, error) {
	n, err := Count(ctx, main, manager)
	if err != nil {
		return Checkpoint{}, err
	}
	if number >= n {
		return Checkpoint{}, fmt.Errorf("checkpoint %d: %w (it holds %d)", number, ErrUnknownCheckpoint, n)
	}
	out, err := main.CallContract(ctx, ethereum.CallMsg{To: &manager, Data: checkpoints.PackCheckpoint(new(big.Int).SetUint64(number))}, nil)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("CheckpointManager.checkpoint(%d): %w", number, err)
	}
	st, err := checkpoints.UnpackCheckpoint(out)
	if err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{Number: number, CheckpointManagerStored: st}, nil
}

// Signer is one validator's signature on a checkpoint.
type Signer struct {
	Address   common.Address
	Signature []byte
	// Stake is the validator's stake now (StakeManager.validators); it may differ from its
	// stake when it signed.
	Stake *big.Int
}

// Submission is how a checkpoint came onto the main chain: its CheckpointSubmitted event,
// the transaction and the validators' signatures in it.
type Submission struct {
	Event *mainchain.CheckpointManagerCheckpointSubmitted
	// Block and Tx locate the submission; Confirmations counts main-chain blocks from it to
	// the head.
	Block         uint64
	Tx            common.Hash
	Confirmations uint64
	Signers       []Signer
	// TotalStake is StakeManager's total stake now.
	TotalStake *big.Int
}

// ReadSubmission finds checkpoint `number`'s CheckpointSubmitted event and recovers the
// signers from the submit call's signatures (the submission must be a direct call to
// CheckpointManager.submit).
func ReadSubmission(ctx context.Context, main MainChain, manager common.Address, number uint64) (*Submission, error) {
	l, err := submittedLog(ctx, main, manager, number)
	if err != nil {
		return nil, err
	}
	ev, err := checkpoints.UnpackCheckpointSubmittedEvent(&l)
	if err != nil {
		return nil, err
	}
	head, err := main.BlockNumber(ctx)
	if err != nil {
		return nil, err
	}
	s := &Submission{Event: ev, Block: l.BlockNumber, Tx: l.TxHash}
	if head >= l.BlockNumber {
		s.Confirmations = head - l.BlockNumber + 1
	}
	tx, _, err := main.TransactionByHash(ctx, l.TxHash)
	if err != nil {
		return nil, fmt.Errorf("submission transaction %s: %w", l.TxHash, err)
	}
	sigs, err := submitSignatures(tx)
	if err != nil {
		return nil, err
	}
	stakeAddr, err := call(ctx, main, manager, checkpoints.PackSTAKE(), checkpoints.UnpackSTAKE)
	if err != nil {
		return nil, err
	}
	if s.TotalStake, err = call(ctx, main, stakeAddr, stakeManager.PackTotalStake(), stakeManager.UnpackTotalStake); err != nil {
		return nil, err
	}
	for i, sig := range sigs {
		if len(sig) != 65 {
			return nil, fmt.Errorf("signature %d: %d bytes", i, len(sig))
		}
		rsv := bytes.Clone(sig)
		if rsv[64] >= 27 {
			rsv[64] -= 27
		}
		pub, err := crypto.SigToPub(ev.Digest[:], rsv)
		if err != nil {
			return nil, fmt.Errorf("signature %d: %w", i, err)
		}
		addr := crypto.PubkeyToAddress(*pub)
		v, err := call(ctx, main, stakeAddr, stakeManager.PackValidators(addr), stakeManager.UnpackValidators)
		if err != nil {
			return nil, err
		}
		s.Signers = append(s.Signers, Signer{Address: addr, Signature: sig, Stake: v.Stake})
	}
	return s, nil
}

// submittedLog finds checkpoint `number`'s CheckpointSubmitted log.
func submittedLog(ctx context.Context, main MainChain, manager common.Address, number uint64) (types.Log, error) {
	logs, err := main.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: big.NewInt(0), Addresses: []common.Address{manager},
		Topics: [][]common.Hash{{managerABI.Events["CheckpointSubmitted"].ID}, {common.BigToHash(new(big.Int).SetUint64(number))}},
	})
	if err != nil {
		return types.Log{}, fmt.Errorf("CheckpointSubmitted logs: %w", err)
	}
	if len(logs) == 0 {
		return types.Log{}, fmt.Errorf("checkpoint %d: %w (no CheckpointSubmitted event)", number, ErrUnknownCheckpoint)
	}
	return logs[0], nil
}

// submitSignatures decodes the signatures of a CheckpointManager.submit transaction.
func submitSignatures(tx *types.Transaction) ([][]byte, error) {
	m := managerABI.Methods["submit"]
	data := tx.Data()
	if len(data) < 4 || !bytes.Equal(data[:4], m.ID) {
		return nil, fmt.Errorf("transaction %s is not a call to CheckpointManager.submit", tx.Hash())
	}
	args, err := m.Inputs.Unpack(data[4:])
	if err != nil {
		return nil, fmt.Errorf("submit call %s: %w", tx.Hash(), err)
	}
	sigs, ok := args[1].([][]byte)
	if !ok {
		return nil, fmt.Errorf("submit call %s: signatures are %T", tx.Hash(), args[1])
	}
	return sigs, nil
}

func call[T any](ctx context.Context, main MainChain, to common.Address, data []byte, unpack func([]byte) (T, error)) (T, error) {
	var zero T
	out, err := main.CallContract(ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
	if err != nil {
		return zero, err
	}
	return unpack(out)
}
