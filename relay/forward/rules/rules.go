// Package rules holds what decides whether the relay pays for a forward request, apart from
// where requests are stored: the sentinel errors, the checks that need neither the chain nor
// an outbox (ranges, value, selector allowlist, size, gas, signature, deadline), the
// chain reads (forwarder nonce, factory events), the dry run of forwarder.execute with its
// revert decoding, the transaction gas of an execution and what a node's answer to a
// broadcast means.
//
// Package forward (the native relay's outbox and sender, on bbolt) and relay/worker (the
// Cloudflare Workers build, on Durable Objects) both use it, so the two builds refuse and
// explain the same requests the same way. It compiles with GOOS=js GOARCH=wasm.
package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/bindings/forwarder"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Sentinel errors the relay turns into JSON-RPC errors.
var (
	ErrInvalidRequest = errors.New("forward: malformed forward request")
	ErrTarget         = errors.New("forward: target is not a Stagepass contract")
	ErrSelector       = errors.New("forward: function is not one the relay pays for")
	ErrValue          = errors.New("forward: value must be 0 (the relay never fronts coin)")
	ErrDeadline       = errors.New("forward: deadline too soon")
	ErrSignature      = errors.New("forward: signature is not from the request's signer")
	ErrGasLimit       = errors.New("forward: request gas above the relay's cap")
	ErrNonce          = errors.New("forward: wrong forwarder nonce")
	ErrRateLimited    = errors.New("forward: too many requests from this signer")
	ErrTooManyPending = errors.New("forward: too many requests from this signer still pending")
	ErrWouldRevert    = errors.New("forward: call would revert")
	ErrUnknownRequest = errors.New("forward: unknown request")
)

// NonceError is a request signed with a nonce other than the one it would execute with.
type NonceError struct {
	Got, Want *big.Int
}

func (e *NonceError) Error() string {
	return fmt.Sprintf("%v: request has nonce %s, the next for this signer is %s", ErrNonce, e.Got, e.Want)
}

func (e *NonceError) Unwrap() error { return ErrNonce }

var (
	fwdABI     = sync.OnceValue(forwarder.NewStagepassForwarder)
	factoryABI = sync.OnceValue(events.NewEventFactory)
)

// Check runs the checks that need neither the chain nor stored state, cheapest first:
// ranges, value 0, a selector the relay pays for on this target, calldata size, gas cap, and
// the signature by From. It returns the request's ID (its EIP-712 digest) and the signature
// with v normalised to 27/28, as it must be sent.
func Check(req *protocol.ForwardRequest, sig []byte, domain protocol.Domain, targets Targets, maxData int, maxGas uint64) (common.Hash, []byte, error) {
	if err := req.Validate(); err != nil {
		return common.Hash{}, nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	if req.Value.Sign() != 0 {
		return common.Hash{}, nil, fmt.Errorf("%w: value is %s wei", ErrValue, req.Value)
	}
	if len(req.Data) < 4 {
		return common.Hash{}, nil, fmt.Errorf("%w: calldata has no function selector", ErrInvalidRequest)
	}
	if len(req.Data) > maxData {
		return common.Hash{}, nil, fmt.Errorf("%w: calldata is %d bytes, at most %d", ErrInvalidRequest, len(req.Data), maxData)
	}
	if !req.Gas.IsUint64() || req.Gas.Uint64() > maxGas {
		return common.Hash{}, nil, fmt.Errorf("%w: %s > %d", ErrGasLimit, req.Gas, maxGas)
	}
	if err := CheckSelector(targets, common.Address(req.To), req.Data); err != nil {
		return common.Hash{}, nil, err
	}
	sig, err := NormalizeSignature(sig)
	if err != nil {
		return common.Hash{}, nil, err
	}
	if err := protocol.VerifyForwardRequest(req, domain, sig); err != nil {
		return common.Hash{}, nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	digest, err := req.Digest(domain)
	if err != nil {
		return common.Hash{}, nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	return common.Hash(digest), sig, nil
}

// CheckDeadline refuses a deadline less than margin after now: the request could expire
// while it waits for a block.
func CheckDeadline(deadline uint64, now time.Time, margin time.Duration) error {
	if minDeadline := now.Add(margin); time.Unix(int64(deadline), 0).Before(minDeadline) {
		return fmt.Errorf("%w: deadline %s, must be at least %s away", ErrDeadline,
			time.Unix(int64(deadline), 0).UTC().Format(time.RFC3339), margin)
	}
	return nil
}

// NormalizeSignature returns a copy of sig with v as 27 or 28: the forwarder's ECDSA
// accepts only those, while wallets also produce 0 and 1 for the same signature.
func NormalizeSignature(sig []byte) ([]byte, error) {
	if len(sig) != 65 {
		return nil, fmt.Errorf("%w: signature is %d bytes, want 65", ErrSignature, len(sig))
	}
	out := bytes.Clone(sig)
	if out[64] < 27 {
		out[64] += 27
	}
	return out, nil
}

// Caller is the one node call the chain reads need; ethclient and forward.Client have it.
type Caller interface {
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
}

// ForwarderNonce reads the forwarder's nonces(from) at block (nil: latest).
func ForwarderNonce(ctx context.Context, c Caller, fwd, from common.Address, block *big.Int) (uint64, error) {
	out, err := c.CallContract(ctx, ethereum.CallMsg{To: &fwd, Data: fwdABI().PackNonces(from)}, block)
	if err != nil {
		return 0, fmt.Errorf("forward: read forwarder nonce of %s: %w", from, err)
	}
	n, err := fwdABI().UnpackNonces(out)
	if err != nil {
		return 0, fmt.Errorf("forward: decode forwarder nonce of %s: %w", from, err)
	}
	if !n.IsUint64() {
		return 0, fmt.Errorf("forward: forwarder nonce of %s is %s", from, n)
	}
	return n.Uint64(), nil
}

// IsEvent asks the factory whether addr is one of its events.
func IsEvent(ctx context.Context, c Caller, factory, addr common.Address) (bool, error) {
	out, err := c.CallContract(ctx, ethereum.CallMsg{To: &factory, Data: factoryABI().PackIsEvent(addr)}, nil)
	if err != nil {
		return false, fmt.Errorf("forward: ask the factory whether %s is an event: %w", addr, err)
	}
	ok, err := factoryABI().UnpackIsEvent(out)
	if err != nil {
		return false, fmt.Errorf("forward: decode isEvent(%s): %w", addr, err)
	}
	return ok, nil
}

// Execution is an accepted request as the forwarder executes it.
type Execution struct {
	ID        common.Hash
	From, To  common.Address
	Gas       uint64
	Deadline  uint64
	Data      []byte
	Signature []byte
}

// RequestData is the forwarder's struct for execute.
func (r Execution) RequestData() forwarder.ERC2771ForwarderForwardRequestData {
	return forwarder.ERC2771ForwarderForwardRequestData{
		From: r.From, To: r.To, Value: new(big.Int), Gas: new(big.Int).SetUint64(r.Gas),
		Deadline: new(big.Int).SetUint64(r.Deadline), Data: r.Data, Signature: r.Signature,
	}
}

// Calldata is the transaction data of forwarder.execute(request).
func (r Execution) Calldata() []byte { return fwdABI().PackExecute(r.RequestData()) }

// ExecuteGas is the transaction gas for a request: the forwarder must be able to pass on
// req.gas after EIP-150 keeps 1/64 back (it checks, and burns everything if not), plus its
// own work (signature recovery, nonce, event) and the calldata at the EIP-7623 floor price.
// Only the gas used is paid for.
func ExecuteGas(reqGas uint64, calldata int) uint64 {
	return 21_000 + 40*uint64(calldata) + reqGas + reqGas/63 + 100_000
}

// Simulate runs the request as the sender would send it, from the hot wallet through
// forwarder.execute, at block (nil: latest), and explains a revert (*RevertError). The
// forwarder does not pass the target's revert data on (it reverts with FailedCall), so when
// the target is what failed, the call is repeated the way the forwarder makes it — from the
// forwarder, with the signer appended to the calldata — to learn the target's own error.
func Simulate(ctx context.Context, c Caller, fwd, hot common.Address, r Execution, block *big.Int) error {
	_, err := c.CallContract(ctx, ethereum.CallMsg{From: hot, To: &fwd, Data: r.Calldata()}, block)
	if err == nil {
		return nil
	}
	re, ok := CallFailure(err)
	if !ok {
		return fmt.Errorf("forward: simulate request %s: %w", r.ID, err)
	}
	if re.Name != "FailedCall" {
		return re
	}
	inner := append(bytes.Clone(r.Data), r.From.Bytes()...)
	_, err = c.CallContract(ctx, ethereum.CallMsg{From: fwd, To: &r.To, Gas: r.Gas, Data: inner}, block)
	if err == nil {
		// The target succeeds on its own: what failed is the forwarder's gas accounting.
		return &RevertError{Message: "call failed inside the forwarder (request gas too low?)"}
	}
	inside, ok := CallFailure(err)
	if !ok {
		return fmt.Errorf("forward: simulate request %s on its target: %w", r.ID, err)
	}
	return inside
}

// Outcome is what a node made of a broadcast transaction.
type Outcome int

// The outcomes of a broadcast.
const (
	Delivered   Outcome = iota // in the pool (or already there)
	NonceUsed                  // the nonce is taken: mined, by ours or another transaction
	Underpriced                // the pool holds a pricier transaction with this nonce
	Retry                      // the node or the wallet is in trouble; try again later
	Rejected                   // the node will never take this transaction
)

// Classify reads a node's answer to eth_sendRawTransaction.
func Classify(err error) Outcome {
	if err == nil {
		return Delivered
	}
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "already known"), strings.Contains(msg, "known transaction"),
		strings.Contains(msg, "already imported"):
		return Delivered
	case strings.Contains(msg, "nonce too low"):
		return NonceUsed
	case strings.Contains(msg, "replacement transaction underpriced"):
		return Underpriced
	case strings.Contains(msg, "intrinsic gas too low"), strings.Contains(msg, "exceeds block gas limit"),
		strings.Contains(msg, "gas limit too high"), strings.Contains(msg, "oversized data"),
		strings.Contains(msg, "invalid sender"):
		return Rejected
	default:
		return Retry
	}
}
