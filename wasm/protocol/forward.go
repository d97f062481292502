package protocol

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/stagepass/stagepass/wasm/eip712"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
)

// The EIP-712 domain and type of OpenZeppelin 5.x ERC2771Forwarder as
// deployed by Stagepass (constructor name "Stagepass Forwarder").
const (
	ForwarderName    = "Stagepass Forwarder"
	ForwarderVersion = "1"
	// ForwardRequestType is ERC2771Forwarder's _FORWARD_REQUEST_TYPEHASH
	// preimage. The on-chain ForwardRequestData struct also carries the
	// signature, but the signature is over this struct only.
	ForwardRequestType = "ForwardRequest(address from,address to,uint256 value,uint256 gas,uint256 nonce,uint48 deadline,bytes data)"
)

// Sentinel errors callers branch on.
var (
	ErrInvalidRequest = errors.New("protocol: invalid forward request")
	ErrBadSignature   = errors.New("protocol: signature is not from the request's signer")
)

// MaxUint48 is the largest deadline ERC2771Forwarder accepts.
const MaxUint48 = 1<<48 - 1

// ForwardRequest is what the user signs for a gasless call through the
// forwarder. Nonce is the forwarder's nonces(from) at signing time.
type ForwardRequest struct {
	From     ethcrypto.Address
	To       ethcrypto.Address
	Value    *big.Int
	Gas      *big.Int
	Nonce    *big.Int
	Deadline uint64 // unix seconds, uint48
	Data     []byte
}

// Validate checks ranges the contract would reject anyway, so the user is
// never asked to sign something that cannot execute.
func (r *ForwardRequest) Validate() error {
	for name, v := range map[string]*big.Int{"value": r.Value, "gas": r.Gas, "nonce": r.Nonce} {
		if v == nil || v.Sign() < 0 || v.BitLen() > 256 {
			return fmt.Errorf("%w: %s missing or out of uint256 range", ErrInvalidRequest, name)
		}
	}
	if r.Deadline > MaxUint48 {
		return fmt.Errorf("%w: deadline %d exceeds uint48", ErrInvalidRequest, r.Deadline)
	}
	if r.From.IsZero() || r.To.IsZero() {
		return fmt.Errorf("%w: from and to must be set", ErrInvalidRequest)
	}
	return nil
}

// Domain is an EIP-712 domain with the four usual members.
type Domain struct {
	Name              string
	Version           string
	ChainID           uint64
	VerifyingContract ethcrypto.Address
}

// ForwarderDomain is the domain of the Stagepass forwarder at addr.
func ForwarderDomain(chainID uint64, forwarder ethcrypto.Address) Domain {
	return Domain{Name: ForwarderName, Version: ForwarderVersion, ChainID: chainID, VerifyingContract: forwarder}
}

var domainFields = []eip712.Field{
	{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
	{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"},
}

func (d Domain) values() map[string]any {
	return map[string]any{
		"name": d.Name, "version": d.Version,
		"chainId": new(big.Int).SetUint64(d.ChainID), "verifyingContract": d.VerifyingContract,
	}
}

// TypedData renders the request as EIP-712 typed data (what a dapp would pass
// to eth_signTypedData_v4, and what the wallet hashes).
func (r *ForwardRequest) TypedData(d Domain) *eip712.TypedData {
	return &eip712.TypedData{
		Types: eip712.Types{
			eip712.DomainType: domainFields,
			"ForwardRequest": {
				{Name: "from", Type: "address"}, {Name: "to", Type: "address"},
				{Name: "value", Type: "uint256"}, {Name: "gas", Type: "uint256"},
				{Name: "nonce", Type: "uint256"}, {Name: "deadline", Type: "uint48"},
				{Name: "data", Type: "bytes"},
			},
		},
		PrimaryType: "ForwardRequest",
		Domain:      d.values(),
		Message: map[string]any{
			"from": r.From, "to": r.To, "value": r.Value, "gas": r.Gas, "nonce": r.Nonce,
			"deadline": r.Deadline, "data": r.Data,
		},
	}
}

// Digest is the EIP-712 hash the forwarder checks the signature against.
func (r *ForwardRequest) Digest(d Domain) ([32]byte, error) {
	if err := r.Validate(); err != nil {
		return [32]byte{}, err
	}
	return r.TypedData(d).Digest()
}

// VerifyForwardRequest checks that sig (r || s || v) is From's signature
// over the request, as ERC2771Forwarder.verify does on chain. The relay
// calls it before paying gas for a request.
func VerifyForwardRequest(r *ForwardRequest, d Domain, sig []byte) error {
	digest, err := r.Digest(d)
	if err != nil {
		return err
	}
	signer, err := ethcrypto.Recover(digest[:], sig)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if signer != r.From {
		return fmt.Errorf("%w: signed by %s, from is %s", ErrBadSignature, signer, r.From)
	}
	return nil
}

// JSON renders the request for sp_sendForward.
func (r *ForwardRequest) JSON() ForwardRequestJSON {
	return ForwardRequestJSON{
		From: r.From.Hex(), To: r.To.Hex(), Value: r.Value.String(), Gas: r.Gas.String(),
		Nonce: r.Nonce.String(), Deadline: r.Deadline, Data: "0x" + hex.EncodeToString(r.Data),
	}
}

// Parse reads a request from its wire form, with an error naming the field at fault.
func (j ForwardRequestJSON) Parse() (*ForwardRequest, error) {
	from, err := ParseAddressField("from", j.From)
	if err != nil {
		return nil, err
	}
	to, err := ParseAddressField("to", j.To)
	if err != nil {
		return nil, err
	}
	r := &ForwardRequest{From: from, To: to, Deadline: j.Deadline}
	for _, f := range []struct {
		name string
		s    string
		dst  **big.Int
	}{{"value", j.Value, &r.Value}, {"gas", j.Gas, &r.Gas}, {"nonce", j.Nonce, &r.Nonce}} {
		v, ok := new(big.Int).SetString(f.s, 10)
		if !ok {
			return nil, fmt.Errorf("%w: %s must be a decimal integer, got %q", ErrInvalidRequest, f.name, f.s)
		}
		*f.dst = v
	}
	if !strings.HasPrefix(j.Data, "0x") {
		return nil, fmt.Errorf("%w: data must be 0x-prefixed hex", ErrInvalidRequest)
	}
	if r.Data, err = hex.DecodeString(j.Data[2:]); err != nil {
		return nil, fmt.Errorf("%w: data: %v", ErrInvalidRequest, err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// ParseAddressField parses a 0x address, naming the field when it is not one.
func ParseAddressField(name, s string) (ethcrypto.Address, error) {
	a, err := ethcrypto.ParseAddress(s)
	if err != nil {
		return ethcrypto.Address{}, fmt.Errorf("%w: %s: %v", ErrInvalidRequest, name, err)
	}
	return a, nil
}
