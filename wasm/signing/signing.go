package signing

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/stagepass/stagepass/wasm/eip712"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/internal/rlp"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Sentinel errors callers branch on.
var (
	ErrWrongAccount = errors.New("signing: request is not from the signing account")
	ErrInvalidTx    = errors.New("signing: invalid transaction")
)

// Signer is the key operation signing needs (ethcrypto.PrivateKey fits;
// the vault hands one over only inside WithKey).
type Signer interface {
	Sign(digest []byte) ([]byte, error)
}

// Result is what an approved request returns to the page.
type Result struct {
	Signature string `json:"signature"`        // 0x r||s||v, v = 27/28
	Digest    string `json:"digest"`           // what was signed
	Raw       string `json:"raw,omitempty"`    // signed transaction (EIP-2718 type 2)
	TxHash    string `json:"txHash,omitempty"` // its hash
}

// Prepared is a decoded request awaiting approval: the summary and the
// digest come from the same values, and Sign signs exactly that digest.
type Prepared struct {
	Account ethcrypto.Address
	Summary Summary
	Digest  [32]byte
	finish  func(sig []byte) Result
}

// Sign signs the prepared digest with s (the key of p.Account).
func (p *Prepared) Sign(s Signer) (Result, error) {
	sig, err := s.Sign(p.Digest[:])
	if err != nil {
		return Result{}, fmt.Errorf("signing: %w", err)
	}
	if p.finish != nil {
		return p.finish(sig), nil
	}
	return signatureResult(p.Digest, sig), nil
}

func signatureResult(digest [32]byte, sig []byte) Result {
	out := append([]byte(nil), sig...)
	out[64] += 27 // ecrecover and OpenZeppelin ECDSA expect v = 27/28
	return Result{Signature: hexBytes(out), Digest: hexBytes(digest[:])}
}

// PersonalMessage prepares an EIP-191 version 0x45 (personal_sign) message.
func PersonalMessage(account ethcrypto.Address, msg []byte) *Prepared {
	s := Summary{Kind: "message", Title: "Sign a message", Account: account.Hex()}
	messageText(&s, msg)
	digest := ethcrypto.Keccak256Hash([]byte("\x19Ethereum Signed Message:\n"+strconv.Itoa(len(msg))), msg)
	return &Prepared{Account: account, Summary: s, Digest: digest}
}

// TypedData prepares EIP-712 data. Known shapes (Stagepass forward requests,
// EIP-2612 permits) get a purpose-built summary; anything else is listed
// field by field.
func TypedData(account ethcrypto.Address, td *eip712.TypedData) (*Prepared, error) {
	digest, err := td.Digest()
	if err != nil {
		return nil, err
	}
	s := Summary{Kind: "typedData", Title: "Sign typed data: " + td.PrimaryType, Account: account.Hex()}
	for _, f := range td.Types[eip712.DomainType] {
		describeTypedValue(&s, td, "domain."+f.Name, f.Type, td.Domain[f.Name], 0)
	}
	switch {
	case td.PrimaryType == "ForwardRequest" && td.Domain["name"] == protocol.ForwarderName:
		s.Title = "Approve a Stagepass action (gas paid by Stagepass)"
		if from, err := eip712.Address(td.Message["from"]); err != nil || from != account {
			return nil, fmt.Errorf("%w: forward request from %v", ErrWrongAccount, td.Message["from"])
		}
		if data, err := eip712.Bytes(td.Message["data"]); err == nil {
			if to, err := eip712.Address(td.Message["to"]); err == nil {
				s.add("Contract", to.Hex())
			}
			describeCall(&s, data)
		}
	case td.PrimaryType == "Permit":
		s.Title = "Allow a spender to move your tokens (permit)"
		s.Warnings = append(s.Warnings, "A permit lets the spender move tokens without another confirmation.")
	}
	describeTypedValue(&s, td, "message", td.PrimaryType, td.Message, 0)
	return &Prepared{Account: account, Summary: s, Digest: digest}, nil
}

// Forward prepares an ERC-2771 forward request for the Stagepass forwarder.
func Forward(account ethcrypto.Address, req *protocol.ForwardRequest, d protocol.Domain) (*Prepared, error) {
	if req.From != account {
		return nil, fmt.Errorf("%w: from %s, signing with %s", ErrWrongAccount, req.From, account)
	}
	digest, err := req.Digest(d)
	if err != nil {
		return nil, err
	}
	s := Summary{Kind: "forward", Title: "Approve a Stagepass action (gas paid by Stagepass)", Account: account.Hex()}
	s.add("Contract", req.To.Hex())
	describeCall(&s, req.Data)
	if req.Value.Sign() != 0 {
		s.add("Sends", FormatEther(req.Value))
	}
	s.add("Valid until", formatDeadline(req.Deadline))
	s.add("Network", chainName(d.ChainID))
	s.add("Forwarder", d.VerifyingContract.Hex())
	return &Prepared{Account: account, Summary: s, Digest: digest}, nil
}

// AccessTuple is one EIP-2930 access list entry.
type AccessTuple struct {
	Address     ethcrypto.Address
	StorageKeys [][32]byte
}

// Transaction is an EIP-1559 (type 2) transaction.
type Transaction struct {
	ChainID              uint64
	Nonce                uint64
	MaxPriorityFeePerGas *big.Int
	MaxFeePerGas         *big.Int
	Gas                  uint64
	To                   *ethcrypto.Address // nil = contract creation
	Value                *big.Int
	Data                 []byte
	AccessList           []AccessTuple
}

func (tx *Transaction) validate() error {
	for name, v := range map[string]*big.Int{"maxPriorityFeePerGas": tx.MaxPriorityFeePerGas, "maxFeePerGas": tx.MaxFeePerGas, "value": tx.Value} {
		if v == nil || v.Sign() < 0 || v.BitLen() > 256 {
			return fmt.Errorf("%w: %s missing or out of range", ErrInvalidTx, name)
		}
	}
	if tx.MaxPriorityFeePerGas.Cmp(tx.MaxFeePerGas) > 0 {
		return fmt.Errorf("%w: maxPriorityFeePerGas above maxFeePerGas", ErrInvalidTx)
	}
	if tx.ChainID == 0 || tx.Gas == 0 {
		return fmt.Errorf("%w: chainId and gas must be set", ErrInvalidTx)
	}
	return nil
}

func (tx *Transaction) fields() rlp.List {
	var to []byte
	if tx.To != nil {
		to = tx.To[:]
	}
	al := rlp.List{}
	for _, t := range tx.AccessList {
		keys := rlp.List{}
		for _, k := range t.StorageKeys {
			keys = append(keys, k[:])
		}
		al = append(al, rlp.List{t.Address[:], keys})
	}
	if to == nil {
		to = []byte{}
	}
	data := tx.Data
	if data == nil {
		data = []byte{}
	}
	return rlp.List{tx.ChainID, tx.Nonce, tx.MaxPriorityFeePerGas, tx.MaxFeePerGas, tx.Gas, to, tx.Value, data, al}
}

// Transaction1559 prepares an EIP-1559 transaction; approval returns the
// signed raw transaction ready for eth_sendRawTransaction.
func Transaction1559(account ethcrypto.Address, tx *Transaction) (*Prepared, error) {
	if err := tx.validate(); err != nil {
		return nil, err
	}
	fields := tx.fields()
	digest := ethcrypto.Keccak256Hash([]byte{0x02}, rlp.Encode(fields))
	s := Summary{Kind: "transaction", Title: "Send a transaction", Account: account.Hex()}
	if tx.To == nil {
		s.add("To", "new contract")
		s.Warnings = append(s.Warnings, "This deploys a contract.")
	} else {
		s.add("To", tx.To.Hex())
	}
	s.add("Amount", FormatEther(tx.Value))
	describeCall(&s, tx.Data)
	maxFee := new(big.Int).Mul(tx.MaxFeePerGas, new(big.Int).SetUint64(tx.Gas))
	s.add("Max network fee", FormatEther(maxFee))
	s.add("Max total", FormatEther(new(big.Int).Add(maxFee, tx.Value)))
	s.add("Network", chainName(tx.ChainID))
	s.add("Nonce", strconv.FormatUint(tx.Nonce, 10))
	p := &Prepared{Account: account, Summary: s, Digest: digest}
	p.finish = func(sig []byte) Result {
		signed := append(fields, uint64(sig[64]), new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64]))
		raw := append([]byte{0x02}, rlp.Encode(signed)...)
		r := signatureResult(digest, sig)
		r.Raw = hexBytes(raw)
		r.TxHash = hexBytes(ethcrypto.Keccak256(raw))
		return r
	}
	return p, nil
}

func chainName(id uint64) string {
	names := map[uint64]string{1: "Ethereum", 8453: "Base", 84532: "Base Sepolia", 11155111: "Sepolia", 31337: "Local (hardhat/anvil)"}
	if n, ok := names[id]; ok {
		return fmt.Sprintf("%s (chain %d)", n, id)
	}
	return fmt.Sprintf("chain %d", id)
}

func hexBytes(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2+2*len(b))
	out[0], out[1] = '0', 'x'
	for i, c := range b {
		out[2+2*i], out[3+2*i] = digits[c>>4], digits[c&15]
	}
	return string(out)
}
