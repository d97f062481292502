package server

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/relay/anchor"
	"github.com/stagepass/stagepass/relay/rpcserver"
)

// Anchors is what sp_finality needs of the proof-of-work anchor (an *anchor.Anchorer).
type Anchors interface {
	// Anchored reports whether checkpoint `number` has an anchor (sent, maybe not mined).
	Anchored(number uint64) bool
	// Verify finds the anchor of checkpoint `cp` and its confirmations.
	Verify(ctx context.Context, cp anchor.Checkpoint) (anchor.Proof, error)
}

// Finality stages, from least to most final.
const (
	FinalitySidechain    = "sidechain"
	FinalityCheckpointed = "checkpointed"
	FinalityAnchored     = "anchored"
)

// Finality is sp_finality's answer: how final a ticket's last move (its mint or last
// transfer) on the sidechain is.
type Finality struct {
	Event   string `json:"event"`
	TokenID string `json:"tokenId"`
	// Block is the sidechain block of the ticket's last move.
	Block uint64 `json:"block"`
	// Stage is "sidechain", "checkpointed" (a main-chain checkpoint covers Block) or
	// "anchored" (that checkpoint is also in a proof-of-work block).
	Stage       string                `json:"stage"`
	MainChainID uint64                `json:"mainChainId"`
	Checkpoint  *FinalityCheckpoint   `json:"checkpoint,omitempty"`
	Anchor      *FinalityAnchorRecord `json:"anchor,omitempty"`
}

// FinalityCheckpoint is the main-chain checkpoint covering a block.
type FinalityCheckpoint struct {
	Number      uint64    `json:"number"`
	StartBlock  uint64    `json:"startBlock"`
	EndBlock    uint64    `json:"endBlock"`
	SubmittedAt time.Time `json:"submittedAt"`
}

// FinalityAnchorRecord is a checkpoint's proof-of-work anchor.
type FinalityAnchorRecord struct {
	Txid          string `json:"txid"`
	Block         string `json:"block,omitempty"`
	Height        int64  `json:"height,omitempty"`
	Confirmations int64  `json:"confirmations"`
}

// transferTopic is EventTicket's Transfer event id.
var transferTopic = func() common.Hash {
	a, err := events.EventTicketMetaData.ParseABI()
	if err != nil {
		panic(err)
	}
	return a.Events[events.EventTicketTransferEventName].ID
}()

// finality is sp_finality [event, tokenId].
func (r *Relay) finality(ctx context.Context, req *rpcserver.Request) (any, error) {
	var ev common.Address
	var rawID json.RawMessage
	if err := positional(req, addressParam(&ev, "event"), &rawID); err != nil {
		return nil, err
	}
	var id big.Int
	if _, ok := id.SetString(strings.Trim(string(rawID), `"`), 10); !ok || id.Sign() < 0 {
		return nil, rpcserver.InvalidParams("%s param 2: tokenId must be a decimal number, got %s", req.Method, rawID)
	}
	if r.vagg == nil {
		return nil, rpcserver.InvalidParams("this relay follows no main chain: its chain is the only one")
	}
	main, ok := r.cfg.Validators.Main.(anchor.MainChain)
	if !ok {
		return nil, errors.New("the main chain's connection cannot read logs")
	}
	t, ok := r.index.Ticket(ev, &id)
	if !ok {
		return nil, rpcserver.InvalidParams("no ticket %s of event %s", id.String(), ev.Hex())
	}
	// The ticket's last Transfer (its mint or last move) is at or before its last update.
	logs, err := r.cfg.Client.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: big.NewInt(0), ToBlock: new(big.Int).SetUint64(t.Updated.Block), Addresses: []common.Address{ev},
		Topics: [][]common.Hash{{transferTopic}, nil, nil, {common.BigToHash(&id)}},
	})
	if err != nil {
		return nil, err
	}
	if len(logs) == 0 {
		return nil, errors.New("the ticket's Transfer log is not on the chain")
	}
	f := &Finality{Event: t.Event, TokenID: t.TokenID, Block: logs[len(logs)-1].BlockNumber, Stage: FinalitySidechain,
		MainChainID: r.cfg.Validators.MainChainID.Uint64()}
	cp, ok, err := coveringCheckpoint(ctx, main, r.vagg.Contracts().Checkpoints, f.Block)
	if err != nil || !ok {
		return f, err
	}
	f.Stage = FinalityCheckpointed
	f.Checkpoint = &FinalityCheckpoint{Number: cp.Number, StartBlock: cp.StartBlock, EndBlock: cp.EndBlock,
		SubmittedAt: time.Unix(int64(cp.SubmittedAt), 0).UTC()}
	if a := r.cfg.Validators.Anchors; a != nil && a.Anchored(cp.Number) {
		p, err := a.Verify(ctx, cp)
		if err != nil {
			return nil, err
		}
		f.Anchor = &FinalityAnchorRecord{Txid: p.Txid.String(), Confirmations: p.Confirmations}
		if p.Confirmations > 0 {
			f.Stage = FinalityAnchored
			f.Anchor.Block, f.Anchor.Height = p.Block.String(), p.Height
		}
	}
	return f, nil
}

// coveringCheckpoint finds the CheckpointManager's checkpoint whose range holds sidechain
// block `block` (checkpoints are contiguous, so a binary search over their end blocks).
func coveringCheckpoint(ctx context.Context, main anchor.MainChain, manager common.Address, block uint64) (anchor.Checkpoint, bool, error) {
	n, err := anchor.Count(ctx, main, manager)
	if err != nil || n == 0 {
		return anchor.Checkpoint{}, false, err
	}
	lo, hi := uint64(0), n // the first checkpoint with EndBlock >= block is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		cp, err := anchor.ReadCheckpoint(ctx, main, manager, mid)
		if err != nil {
			return anchor.Checkpoint{}, false, err
		}
		if cp.EndBlock < block {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == n {
		return anchor.Checkpoint{}, false, nil
	}
	cp, err := anchor.ReadCheckpoint(ctx, main, manager, lo)
	if err != nil || cp.StartBlock > block {
		return anchor.Checkpoint{}, false, err
	}
	return cp, true, nil
}
