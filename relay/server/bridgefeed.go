package server

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/relay/exits"
	"github.com/stagepass/stagepass/relay/exits/bridge"
	"github.com/stagepass/stagepass/relay/internal/logscan"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// The "bridge" topic: an account's withdrawals and deposits pushed as their stages change,
// so the fan app need not poll sp_withdrawals and sp_deposits. The withdrawal tracker
// (relay/exits) tells pushBridge what each of its steps read: withdrawals queued,
// checkpointed or exited, deposits seen; the confirmations of deposits short of M are
// pushed at each new main-chain block it read, and ChildGateway's DepositMinted logs on
// the sidechain (read from the step's goroutine too) push the account's whole state.

// depositMintedTopic is ChildGateway's DepositMinted(depositId, recipient, amount) (all but
// amount indexed).
var depositMintedTopic = logscan.EventID(&sidechain.ChildGatewayMetaData, "DepositMinted")

// bridgeFeed is the topic's state; all but seq belongs to the tracker's step goroutine.
type bridgeFeed struct {
	// seq numbers the pushes (their cursor): a subscription's first push, the state read
	// at subscribing, carries the number reached then.
	seq     atomic.Uint64
	started bool
	// confirming: deposits short of M confirmations at head, the main-chain block last
	// read; sideNext the next sidechain block read for DepositMinted.
	confirming map[string]exits.Deposit
	head       uint64
	sideNext   uint64
}

func bridgeKey(account common.Address) string { return "bridge:" + strings.ToLower(account.Hex()) }

// registerBridgeTopic puts the "bridge" topic on the server.
func (r *Relay) registerBridgeTopic(s *rpcserver.Server) {
	s.RegisterTopic(protocol.TopicBridge, func(ctx context.Context, req *rpcserver.Request) (rpcserver.Feed, error) {
		var p struct {
			Account json.RawMessage `json:"account"`
		}
		if err := topicParams(req, &p); err != nil {
			return rpcserver.Feed{}, err
		}
		var account common.Address
		if len(p.Account) == 0 {
			return rpcserver.Feed{}, rpcserver.InvalidParams("bridge: account is required")
		}
		if err := addressParam(&account, "account").UnmarshalJSON(p.Account); err != nil {
			return rpcserver.Feed{}, rpcserver.InvalidParams("bridge: %v", err)
		}
		if r.exits == nil || r.vagg == nil {
			return rpcserver.Feed{}, bridge.NoBridge()
		}
		if _, err := r.exits.Withdrawals(account); err != nil {
			return rpcserver.Feed{}, bridge.RPCError(err)
		}
		return rpcserver.Feed{Key: bridgeKey(account), Backlog: func(ctx context.Context) ([]rpcserver.Message, error) {
			// The state now first (all a resubscribing wallet needs); changes follow.
			seq := r.bridgeFeed.seq.Load()
			up, err := r.bridgeState(ctx, account)
			if err != nil {
				return nil, err
			}
			return []rpcserver.Message{{Cursor: protocol.Cursor{Block: seq}, Data: up}}, nil
		}}, nil
	})
}

// bridgeState is account's whole state: sp_withdrawals and sp_deposits in one push.
func (r *Relay) bridgeState(ctx context.Context, account common.Address) (protocol.BridgeUpdate, error) {
	ws, err := r.exits.Withdrawals(account)
	if err != nil {
		return protocol.BridgeUpdate{}, bridge.RPCError(err)
	}
	ds, err := r.depositViews(ctx, account)
	if err != nil {
		return protocol.BridgeUpdate{}, err
	}
	return protocol.BridgeUpdate{Account: strings.ToLower(account.Hex()), Full: true, Withdrawals: ws, Deposits: ds}, nil
}

// pushBridge is the tracker's OnStep: it pushes what the step changed to each account
// concerned. The tracker's first step (at start, what the store did not have) is not
// pushed: no wallet can have subscribed before it.
func (r *Relay) pushBridge(ch exits.Changes) {
	f := &r.bridgeFeed
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if f.confirming == nil {
		f.confirming = map[string]exits.Deposit{}
	}
	m := r.depositConfirmations()
	ups := map[common.Address]*protocol.BridgeUpdate{}
	up := func(a common.Address) *protocol.BridgeUpdate {
		if ups[a] == nil {
			ups[a] = &protocol.BridgeUpdate{Account: strings.ToLower(a.Hex()), Withdrawals: []protocol.Withdrawal{}, Deposits: []protocol.Deposit{}}
		}
		return ups[a]
	}
	full := map[common.Address]bool{}
	for _, w := range ch.Withdrawals {
		a := common.HexToAddress(w.Recipient)
		up(a).Withdrawals = append(up(a).Withdrawals, w)
	}
	for _, d := range ch.Deposits {
		if d.Block > ch.MainBlock {
			continue
		}
		if ch.MainBlock-d.Block+1 < m {
			f.confirming[d.ID.String()] = d
		} else {
			full[d.Recipient] = true // seen late: it may be minted already
		}
		up(d.Recipient)
	}
	if ch.MainBlock != f.head || len(ch.Deposits) > 0 {
		for id, d := range f.confirming {
			if d.Block > ch.MainBlock { // taken back by a reorganisation
				delete(f.confirming, id)
				continue
			}
			v := bridge.DepositView(d, ch.MainBlock, m, false)
			if v.Confirmations >= m {
				delete(f.confirming, id)
			}
			up(d.Recipient).Deposits = append(up(d.Recipient).Deposits, v)
		}
		f.head = ch.MainBlock
	}
	r.mintedSince(ctx, full)
	if !f.started {
		f.started = true
		return
	}
	for a := range full {
		st, err := r.bridgeState(ctx, a)
		if err != nil {
			r.cfg.Logger.Warn("bridge topic: reading an account's state failed", "account", a, "err", err)
			continue
		}
		ups[a] = &st
	}
	for a, u := range ups {
		_ = r.rpc.Publish(rpcserver.Message{Cursor: protocol.Cursor{Block: f.seq.Add(1)}, Data: u}, bridgeKey(a))
	}
}

// mintedSince reads ChildGateway's DepositMinted logs since the last call (the first only
// notes the sidechain's head) and marks their recipients in full.
func (r *Relay) mintedSince(ctx context.Context, full map[common.Address]bool) {
	f := &r.bridgeFeed
	head, err := r.cfg.Client.BlockNumber(ctx)
	if err != nil {
		r.cfg.Logger.Warn("bridge topic: the sidechain's head", "err", err)
		return
	}
	if !f.started {
		f.sideNext = head + 1
		return
	}
	q := ethereum.FilterQuery{Addresses: []common.Address{r.cfg.Validators.Child}, Topics: [][]common.Hash{{depositMintedTopic}}}
	err = logscan.Scan(ctx, r.cfg.Client, q, logscan.Span{From: f.sideNext, To: head}, func(logs []types.Log, _, to uint64) (bool, error) {
		for _, l := range logs {
			if !l.Removed && len(l.Topics) == 3 {
				a := common.BytesToAddress(l.Topics[2].Bytes())
				full[a] = true
				r.minted.Store(l.Topics[1].Big().String(), true)
			}
		}
		f.sideNext = to + 1
		return true, nil
	})
	if err != nil {
		r.cfg.Logger.Warn("bridge topic: reading ChildGateway's DepositMinted logs failed; trying again at the next step", "err", err)
	}
}
