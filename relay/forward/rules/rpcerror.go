package rules

import (
	"errors"

	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// RPCError turns a refusal into the JSON-RPC error both relays answer with, its message
// saying why: limits are CodeLimitExceeded, a request that cannot be accepted is
// InvalidParams. Any other error is returned as it is.
func RPCError(err error) error {
	switch {
	case errors.Is(err, ErrRateLimited), errors.Is(err, ErrTooManyPending):
		return rpcserver.Errorf(rpcserver.CodeLimitExceeded, "%v", err)
	case errors.Is(err, ErrUnknownRequest), errors.Is(err, ErrInvalidRequest),
		errors.Is(err, ErrTarget), errors.Is(err, ErrSelector), errors.Is(err, ErrValue),
		errors.Is(err, ErrDeadline), errors.Is(err, ErrSignature), errors.Is(err, ErrGasLimit),
		errors.Is(err, ErrNonce), errors.Is(err, ErrWouldRevert), errors.Is(err, protocol.ErrInvalidRequest):
		return rpcserver.InvalidParams("%v", err)
	}
	return err
}
