package forward

import (
	"context"
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/forwarder"
	"github.com/stagepass/stagepass/relay/forward/rules"
)

// What a request must pass — the selector allowlist, revert decoding, the dry run — is in
// package rules, shared with the Cloudflare Workers build (relay/worker).

// RevertError is a forward request that would revert (or did), with the target's decoded
// custom error when it is one the platform knows.
type RevertError = rules.RevertError

func (f *Forwarder) checkSelector(to common.Address, data []byte) error {
	return rules.CheckSelector(f.targets(), to, data)
}

func (f *Forwarder) targets() rules.Targets {
	return rules.Targets{Factory: f.cfg.Factory, Gateway: f.cfg.Gateway}
}

func decodeRevert(data []byte, message string) *RevertError { return rules.DecodeRevert(data, message) }

// simulate runs the request as the sender would send it, from the hot wallet through
// forwarder.execute, at block (nil: latest), and explains a revert (rules.Simulate).
func (f *Forwarder) simulate(ctx context.Context, r *record, block *big.Int) error {
	return rules.Simulate(ctx, f.client, f.cfg.Forwarder, f.hot, r.execution(), block)
}

func (r *record) execution() rules.Execution {
	return rules.Execution{ID: r.ID, From: r.From, To: r.To, Gas: r.Gas, Deadline: r.Deadline, Data: r.Data, Signature: r.Signature}
}

func (r *record) requestData() forwarder.ERC2771ForwarderForwardRequestData {
	return r.execution().RequestData()
}
