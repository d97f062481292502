package server

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/relay/forward"
	"github.com/stagepass/stagepass/relay/forward/rules"
	"github.com/stagepass/stagepass/relay/index"
	"github.com/stagepass/stagepass/relay/permit"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// registerAPI puts the sp_ methods and subscription topics on the JSON-RPC server.
// relay/README.md documents each with an example.
func (r *Relay) registerAPI(s *rpcserver.Server) {
	s.Register(protocol.MethodChainInfo, func(ctx context.Context, _ *rpcserver.Request) (any, error) {
		return r.chainInfo(ctx)
	})
	s.Register(protocol.MethodEvents, func(ctx context.Context, _ *rpcserver.Request) (any, error) {
		evs := r.index.Events()
		for i := range evs {
			r.withIssuerDomain(ctx, &evs[i])
		}
		return nonNil(evs), nil
	})
	s.Register(protocol.MethodEvent, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		var ev common.Address
		if err := positional(req, addressParam(&ev, "event")); err != nil {
			return nil, err
		}
		info, ok := r.index.Event(ev)
		if !ok {
			return nil, rpcserver.InvalidParams("no Stagepass event at %s", ev.Hex())
		}
		r.withIssuerDomain(ctx, &info)
		return info, nil
	})
	s.Register(protocol.MethodTicketsByOwner, func(_ context.Context, req *rpcserver.Request) (any, error) {
		var owner common.Address
		if err := positional(req, addressParam(&owner, "owner")); err != nil {
			return nil, err
		}
		return nonNil(r.index.TicketsByOwner(owner)), nil
	})
	s.Register(protocol.MethodListings, func(_ context.Context, req *rpcserver.Request) (any, error) {
		var ev common.Address
		if err := positional(req, addressParam(&ev, "event")); err != nil {
			return nil, err
		}
		if _, ok := r.index.Event(ev); !ok {
			return nil, rpcserver.InvalidParams("no Stagepass event at %s", ev.Hex())
		}
		return nonNil(r.index.Listings(ev)), nil
	})
	s.Register(protocol.MethodEventTickets, func(_ context.Context, req *rpcserver.Request) (any, error) {
		var ev common.Address
		if err := positional(req, addressParam(&ev, "event")); err != nil {
			return nil, err
		}
		if _, ok := r.index.Event(ev); !ok {
			return nil, rpcserver.InvalidParams("no Stagepass event at %s", ev.Hex())
		}
		tickets, cursor := r.index.EventTickets(ev)
		return protocol.EventTickets{Event: strings.ToLower(ev.Hex()), Cursor: cursor, Tickets: nonNil(tickets)}, nil
	})
	s.Register(protocol.MethodForwarderNonce, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		var account common.Address
		if err := positional(req, addressParam(&account, "account")); err != nil {
			return nil, err
		}
		n, err := r.fwd.NextNonce(ctx, account)
		if err != nil {
			return nil, err
		}
		return strconv.FormatUint(n, 10), nil
	})
	s.Register(protocol.MethodPermitInfo, r.permitInfo)
	s.Register(protocol.MethodFinality, r.finality)
	s.Register(protocol.MethodWithdrawals, r.withdrawals)
	s.Register(protocol.MethodWithdrawalProof, r.withdrawalProof)
	s.Register(protocol.MethodMainPermitInfo, r.mainPermitInfo)
	s.Register(protocol.MethodDepositWithPermit, r.depositWithPermit)
	s.Register(protocol.MethodDeposits, r.deposits)
	s.Register(protocol.MethodSendRawTransaction, r.sendRawTransaction)
	s.Register(protocol.MethodSendForward, r.sendForward)
	s.Register(protocol.MethodRequestStatus, func(_ context.Context, req *rpcserver.Request) (any, error) {
		var id common.Hash
		if err := positional(req, &id); err != nil {
			return nil, err
		}
		st, err := r.fwd.Status(id)
		if err != nil {
			return nil, forwardError(err)
		}
		return requestStatus(st), nil
	})
	s.RegisterTopic(protocol.TopicRequest, func(_ context.Context, req *rpcserver.Request) (rpcserver.Feed, error) {
		var p struct {
			ID common.Hash `json:"id"`
		}
		if err := topicParams(req, &p); err != nil {
			return rpcserver.Feed{}, err
		}
		if _, err := r.fwd.Status(p.ID); err != nil {
			return rpcserver.Feed{}, forwardError(err)
		}
		return rpcserver.Feed{Key: requestKey(p.ID), Backlog: func(context.Context) ([]rpcserver.Message, error) {
			// The current state first; later changes follow as pushes.
			st, err := r.fwd.Status(p.ID)
			if err != nil {
				return nil, err
			}
			return []rpcserver.Message{statusMessage(st)}, nil
		}}, nil
	})

	s.RegisterTopic(protocol.TopicTickets, func(_ context.Context, req *rpcserver.Request) (rpcserver.Feed, error) {
		var p struct {
			Owner common.Address   `json:"owner"`
			From  *protocol.Cursor `json:"from"`
		}
		if err := topicParams(req, &p); err != nil {
			return rpcserver.Feed{}, err
		}
		if p.Owner == (common.Address{}) {
			return rpcserver.Feed{}, rpcserver.InvalidParams("tickets: owner is required")
		}
		return r.feed(index.OwnerKey(p.Owner), p.From), nil
	})
	s.RegisterTopic(protocol.TopicEvent, func(_ context.Context, req *rpcserver.Request) (rpcserver.Feed, error) {
		var p struct {
			Event common.Address   `json:"event"`
			From  *protocol.Cursor `json:"from"`
		}
		if err := topicParams(req, &p); err != nil {
			return rpcserver.Feed{}, err
		}
		if _, ok := r.index.Event(p.Event); !ok {
			return rpcserver.Feed{}, rpcserver.InvalidParams("event: no Stagepass event at %s", p.Event.Hex())
		}
		return r.feed(index.EventKey(p.Event), p.From), nil
	})
	r.registerIssuerAPI(s)
	r.registerMainClaim(s)
	r.registerBridgeTopic(s)
}

// feed follows `key`, replaying what came after `from` when the client resumes.
func (r *Relay) feed(key string, from *protocol.Cursor) rpcserver.Feed {
	f := rpcserver.Feed{Key: key}
	if from != nil {
		cursor := *from
		f.Backlog = func(context.Context) ([]rpcserver.Message, error) {
			acts := r.index.Since(key, cursor)
			out := make([]rpcserver.Message, len(acts))
			for i, a := range acts {
				out[i] = rpcserver.Message{Cursor: a.Cursor, Data: a}
			}
			return out, nil
		}
	}
	return f
}

// sendRawTransaction broadcasts a transaction a self-custody user signed and pays for
// themselves, if it is addressed to one of the platform's contracts: on this chain, or
// RootGateway on the main chain (mainclaim.go).
func (r *Relay) sendRawTransaction(ctx context.Context, req *rpcserver.Request) (any, error) {
	var raw hexutil.Bytes
	if err := positional(req, &raw); err != nil {
		return nil, err
	}
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		return nil, rpcserver.InvalidParams("not a signed transaction: %v", err)
	}
	if v := r.cfg.Validators; v != nil && r.vagg != nil && tx.ChainId().Cmp(v.MainChainID) == 0 {
		return r.sendMainTransaction(ctx, tx) // mainclaim.go
	}
	if tx.ChainId().Cmp(r.cfg.ChainID) != 0 {
		if r.vagg == nil {
			return nil, rpcserver.InvalidParams("transaction is for chain %s, this relay serves chain %s and follows no main chain", tx.ChainId(), r.cfg.ChainID)
		}
		return nil, rpcserver.InvalidParams("transaction is for chain %s, this relay sends to chain %s and, to RootGateway only, main chain %s", tx.ChainId(), r.cfg.ChainID, r.cfg.Validators.MainChainID)
	}
	if _, err := types.Sender(types.LatestSignerForChainID(r.cfg.ChainID), tx); err != nil {
		return nil, rpcserver.InvalidParams("bad signature: %v", err)
	}
	to := tx.To()
	if to == nil || !r.isPlatformContract(*to) {
		return nil, rpcserver.InvalidParams("the relay only sends transactions to Stagepass contracts")
	}
	if err := r.cfg.Client.SendTransaction(ctx, tx); err != nil {
		return nil, rpcserver.Errorf(rpcserver.CodeInvalidParams, "the node refused the transaction: %v", err)
	}
	return tx.Hash().Hex(), nil
}

func (r *Relay) isPlatformContract(a common.Address) bool {
	if a == r.cfg.Factory || a == r.cfg.Forwarder || (a == r.cfg.USD && a != common.Address{}) {
		return true
	}
	_, ok := r.index.Event(a)
	return ok
}

// permitInfo tells a wallet what signing an EIP-2612 permit for one of the platform's
// currencies needs. Only tokens some event is priced in (and the bridged stablecoin) are
// read, so the relay is not a general-purpose RPC proxy.
func (r *Relay) permitInfo(ctx context.Context, req *rpcserver.Request) (any, error) {
	var token, owner common.Address
	if err := positional(req, addressParam(&token, "token"), addressParam(&owner, "owner")); err != nil {
		return nil, err
	}
	if !r.index.Currencies()[token] && (token != r.cfg.USD || token == common.Address{}) && (token != r.bridged || token == common.Address{}) {
		return nil, rpcserver.InvalidParams("%s is not a currency of any Stagepass event", token.Hex())
	}
	return permit.Read(ctx, r.cfg.Client, token, owner)
}

// sendForward accepts a user's signed forward request: the relay checks it, queues it
// durably and pays its gas. The answer is the request's id and state; its progress is
// pushed on the "request" topic.
func (r *Relay) sendForward(ctx context.Context, req *rpcserver.Request) (any, error) {
	var sub protocol.ForwardSubmission
	if err := positional(req, &sub); err != nil {
		return nil, err
	}
	fr, err := sub.Request.Parse()
	if err != nil {
		return nil, rpcserver.InvalidParams("%v", err)
	}
	sig, err := hexutil.Decode(sub.Signature)
	if err != nil || len(sig) != 65 {
		return nil, rpcserver.InvalidParams("signature must be 65 bytes of 0x hex")
	}
	rc, err := r.fwd.Submit(ctx, *fr, sig)
	if err != nil {
		return nil, forwardError(err)
	}
	st, err := r.fwd.Status(rc.ID)
	if err != nil {
		return protocol.RequestStatus{ID: rc.ID.Hex(), State: string(rc.Status)}, nil
	}
	return requestStatus(st), nil
}

// forwardError turns the forwarder's refusals into JSON-RPC errors whose message says why.
func forwardError(err error) error {
	if errors.Is(err, forward.ErrClosed) {
		return rpcserver.Errorf(rpcserver.CodeUnavailable, "%v", err)
	}
	return rules.RPCError(err)
}

func requestKey(id common.Hash) string { return "request:" + strings.ToLower(id.Hex()) }

func requestStatus(st forward.Status) protocol.RequestStatus {
	out := protocol.RequestStatus{
		ID: st.ID.Hex(), State: string(st.State), From: strings.ToLower(st.From.Hex()), Nonce: st.Nonce,
		Block: st.Block, Reason: st.Reason, Time: st.Time.UnixMilli(),
	}
	if st.TxHash != (common.Hash{}) {
		out.TxHash = st.TxHash.Hex()
	}
	return out
}

// statusMessage orders a request's status pushes by the time each state was recorded.
func statusMessage(st forward.Status) rpcserver.Message {
	return rpcserver.Message{Cursor: protocol.Cursor{Block: uint64(st.Time.UnixNano())}, Data: requestStatus(st)}
}

func (r *Relay) publishStatus(st forward.Status) {
	_ = r.rpc.Publish(statusMessage(st), requestKey(st.ID))
}

// publish fans an activity out to the subscribers of its keys.
func (r *Relay) publish(keys []string, a protocol.Activity) {
	if a.Kind == protocol.KindEventCreated && !a.Removed && r.agg != nil {
		r.agg.RegisterEvent(common.HexToAddress(a.Event))
	}
	_ = r.rpc.Publish(rpcserver.Message{Cursor: a.Cursor, Data: a}, keys...)
}

// positional decodes a params array into the given targets, in order; all are required.
func positional(req *rpcserver.Request, targets ...any) error {
	return rpcserver.Positional(req, targets...)
}

// addressParam decodes a 0x address, rejecting anything else with a clear message.
func addressParam(dst *common.Address, name string) json.Unmarshaler {
	return rpcserver.AddressParam(dst, name)
}

// topicParams decodes a topic's params object strictly.
func topicParams(req *rpcserver.Request, v any) error {
	if len(req.Params) == 0 {
		return rpcserver.InvalidParams("%s: params object required", req.Method)
	}
	return req.DecodeParams(v)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
