package rules

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/stagepass/stagepass/contracts/bindings/childtoken"
	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/bindings/forwarder"
	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/contracts/bindings/testusd"
)

// The user actions the relay pays for, by the binding's method names (abigen names the
// second safeTransferFrom overload safeTransferFrom0). Views cost nothing to call directly,
// and initialize is the factory's alone, so neither is here. They are parsed on first use,
// not at start-up: the Workers build starts a fresh program for every request, and most
// requests need none of them.
var (
	factorySelectors = sync.OnceValue(func() map[[4]byte]string {
		return selectors(&events.EventFactoryMetaData, "createEvent")
	})
	eventSelectors = sync.OnceValue(func() map[[4]byte]string {
		return selectors(&events.EventTicketMetaData,
			"buy", "buyWithPermit", "list", "cancelListing", "buyListed",
			"transferFrom", "safeTransferFrom", "safeTransferFrom0", "approve", "setApprovalForAll",
			"checkIn", "checkInBatch", "claimRefund", "withdraw",
			"setGate", "cancelEvent", "fundRefunds", "withdrawRefundSurplus",
			"requestPurchase", "requestResale")
	})
	gatewaySelectors = sync.OnceValue(func() map[[4]byte]string {
		return selectors(&sidechain.ChildGatewayMetaData, "withdraw", "exitTicket")
	})
)

// Targets are the contracts the relay pays calls to: the factory, the sidechain's
// ChildGateway when there is one (a fan's withdrawal or ticket exit), and the factory's
// events (asked of the factory: IsEvent).
type Targets struct {
	Factory common.Address
	Gateway common.Address // zero: no gateway (a chain without the main-chain bridge)
}

// Fixed reports whether to is the factory or the gateway, which need no IsEvent check.
func (t Targets) Fixed(to common.Address) bool {
	return to == t.Factory || (to == t.Gateway && t.Gateway != common.Address{})
}

func (t Targets) selectors(to common.Address) map[[4]byte]string {
	switch {
	case to == t.Factory:
		return factorySelectors()
	case to == t.Gateway && t.Gateway != common.Address{}:
		return gatewaySelectors()
	}
	return eventSelectors()
}

// selectors maps the 4-byte selectors of the named methods to their signatures. A name
// missing from the ABI is a binding that drifted from this list: panic (TestTables in
// this package makes that a test failure).
func selectors(meta *bind.MetaData, names ...string) map[[4]byte]string {
	parsed, err := meta.ParseABI()
	if err != nil {
		panic(fmt.Sprintf("rules: parse %s ABI: %v", meta.ID, err))
	}
	out := make(map[[4]byte]string, len(names))
	for _, name := range names {
		m, ok := parsed.Methods[name]
		if !ok {
			panic(fmt.Sprintf("rules: %s has no method %s", meta.ID, name))
		}
		out[[4]byte(m.ID)] = m.Sig
	}
	return out
}

// CheckSelector refuses calldata whose function the relay does not pay for on to: the
// factory's createEvent, the gateway's withdraw and exitTicket, or one of the event actions.
func CheckSelector(t Targets, to common.Address, data []byte) error {
	if len(data) < 4 {
		return fmt.Errorf("%w: calldata has no function selector", ErrInvalidRequest)
	}
	sel := [4]byte(data[:4])
	if _, ok := t.selectors(to)[sel]; !ok {
		return fmt.Errorf("%w: selector %s on %s", ErrSelector, hexutil.Encode(sel[:]), to)
	}
	return nil
}

// SelectorName is the signature of the function data calls, "?" if not one the relay pays for.
func SelectorName(t Targets, to common.Address, data []byte) string {
	if len(data) >= 4 {
		if s, ok := t.selectors(to)[[4]byte(data[:4])]; ok {
			return s
		}
	}
	return "?"
}

// knownErrors are the custom errors a forwarded call can revert with: the events', the
// factory's, the oracle hub's (a card request registers its payment id there), the
// forwarder's, the gateway's and its bridged token's, and OpenZeppelin's ERC-20 errors (as
// TestUSD, like most stablecoins built on OpenZeppelin, raises them through the events'
// SafeERC20 calls).
var knownErrors = sync.OnceValue(func() map[[4]byte]abi.Error {
	out := make(map[[4]byte]abi.Error)
	for _, meta := range []*bind.MetaData{
		&events.EventTicketMetaData, &events.EventFactoryMetaData, &events.OracleHubMetaData,
		&forwarder.StagepassForwarderMetaData, &testusd.TestUSDMetaData,
		&sidechain.ChildGatewayMetaData, &childtoken.ChildTokenMetaData,
	} {
		parsed, err := meta.ParseABI()
		if err != nil {
			panic(fmt.Sprintf("rules: parse %s ABI: %v", meta.ID, err))
		}
		for _, e := range parsed.Errors {
			out[[4]byte(e.ID[:4])] = e
		}
	}
	return out
})

// RevertError is a forward request that would revert (or did), with the target's decoded
// custom error when it is one the platform knows.
type RevertError struct {
	Name    string // the custom error, e.g. "PriceOutOfRange"; "" if not decoded
	Args    []any  // its arguments
	Data    []byte // the raw revert data
	Message string // the node's message when the revert carries no data (out of gas…)
	names   []string
}

func (e *RevertError) Error() string { return ErrWouldRevert.Error() + ": " + e.Reason() }

func (e *RevertError) Unwrap() error { return ErrWouldRevert }

// Reason renders the error for people: "PriceOutOfRange(price=1, floor=2, cap=3)".
func (e *RevertError) Reason() string {
	if e.Name == "" {
		if len(e.Data) > 0 {
			return "unknown error " + hexutil.Encode(e.Data)
		}
		if e.Message != "" {
			return e.Message
		}
		return "reverted without a reason"
	}
	var b strings.Builder
	b.WriteString(e.Name)
	b.WriteByte('(')
	for i, a := range e.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		if i < len(e.names) && e.names[i] != "" {
			b.WriteString(e.names[i])
			b.WriteByte('=')
		}
		switch v := a.(type) {
		case []byte:
			b.WriteString(hexutil.Encode(v))
		case [32]byte:
			b.WriteString(hexutil.Encode(v[:]))
		case string:
			fmt.Fprintf(&b, "%q", v)
		default:
			fmt.Fprint(&b, v)
		}
	}
	b.WriteByte(')')
	return b.String()
}

// DecodeRevert explains revert data (and the node's message when there is none).
func DecodeRevert(data []byte, message string) *RevertError {
	re := &RevertError{Data: data, Message: message}
	if len(data) < 4 {
		return re
	}
	if e, ok := knownErrors()[[4]byte(data[:4])]; ok {
		if args, err := e.Inputs.Unpack(data[4:]); err == nil {
			re.Name, re.Args = e.Name, args
			for _, in := range e.Inputs {
				re.names = append(re.names, in.Name)
			}
		}
		return re
	}
	// Error(string) from require and Panic(uint256) from assert and arithmetic.
	if reason, err := abi.UnpackRevert(data); err == nil {
		if bytes.Equal(data[:4], panicSelector()) {
			re.Name = "Panic"
		} else {
			re.Name = "Error"
		}
		re.Args = []any{reason}
	}
	return re
}

var panicSelector = sync.OnceValue(func() []byte { return crypto.Keccak256([]byte("Panic(uint256)"))[:4] })

// CallFailure separates a call the EVM refused (a revert, out of gas: the node answers with
// a JSON-RPC error) from a failure to ask at all (the node unreachable, a timeout).
func CallFailure(err error) (*RevertError, bool) {
	var rpcErr rpc.Error
	if !errors.As(err, &rpcErr) {
		return nil, false
	}
	var data []byte
	var de rpc.DataError
	if errors.As(err, &de) {
		if s, ok := de.ErrorData().(string); ok {
			data = common.FromHex(s)
		}
	}
	return DecodeRevert(data, rpcErr.Error()), true
}
