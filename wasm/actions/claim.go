package actions

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/stagepass/stagepass/wasm/eip712"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/signing"
)

// Self-custody claims: the recipient of a checkpointed withdrawal submits RootGateway.exit
// on the main chain from their own account, paying its gas, instead of waiting for the
// relay (which pays no exits with --manual-exits). The wallet signs an EIP-1559
// transaction for the main chain; the key stays here.

// SigExit is RootGateway.exit(uint256 checkpoint, Withdrawal w, bytes32[] proof).
const SigExit = "exit(uint256,(uint8,uint256,address,address,uint256,uint256),bytes32[])"

// Withdrawal kinds (SidechainTypes.sol).
const (
	KindToken  uint8 = 1 // Value base units of the stablecoin to Recipient
	KindTicket uint8 = 2 // ticket Value of event Asset mirrored to Recipient, Data 1 if checked in
)

// Gas of a claim: at most ~115,000 for a stablecoin exit (the first of its exited bitmap's
// word, to an address new to the token) and ~116,400 for a ticket's mirror minted to a new
// owner (relay/README.md, from receipts), with a margin; unused gas is not paid. ClaimGas
// is the limit signed, claimGasTypical what the fan is told to expect.
const (
	ClaimGas        = 180_000
	claimGasTypical = 100_000
	claimGasTicket  = 120_000
)

// ExitCall is RootGateway.exit's arguments.
type ExitCall struct {
	Checkpoint       *big.Int
	Kind             uint8
	Index            *big.Int
	Recipient, Asset ethcrypto.Address
	Value, Data      *big.Int
	Proof            [][32]byte
}

// Encode returns the calldata: the checkpoint, the withdrawal's six static words in place,
// the offset of the proof (8 words) and the proof as a dynamic bytes32[].
func (c *ExitCall) Encode() ([]byte, error) {
	for _, f := range []struct {
		n string
		x *big.Int
	}{{"checkpoint", c.Checkpoint}, {"index", c.Index}, {"value", c.Value}, {"data", c.Data}} {
		if err := checkUint(f.n, f.x, 256); err != nil {
			return nil, err
		}
	}
	words := [][]byte{word(c.Checkpoint), word(big.NewInt(int64(c.Kind))), word(c.Index), addrWord(c.Recipient), addrWord(c.Asset),
		word(c.Value), word(c.Data), word(big.NewInt(8 * 32)), word(big.NewInt(int64(len(c.Proof))))}
	for i := range c.Proof {
		words = append(words, c.Proof[i][:])
	}
	return encode(SigExit, words...), nil
}

// DecodeExit reads RootGateway.exit calldata back, strictly: the canonical encoding only.
func DecodeExit(data []byte) (*ExitCall, error) {
	sel := selector(SigExit)
	if len(data) < 4+9*32 || [4]byte(data[:4]) != sel || (len(data)-4)%32 != 0 {
		return nil, fmt.Errorf("%w: not RootGateway.exit", ErrCalldata)
	}
	w := func(i int) []byte { return data[4+32*i : 4+32*(i+1)] }
	num := func(i int) *big.Int { return new(big.Int).SetBytes(w(i)) }
	addr := func(i int) (ethcrypto.Address, bool) {
		var a ethcrypto.Address
		copy(a[:], w(i)[12:])
		return a, new(big.Int).SetBytes(w(i)[:12]).Sign() == 0
	}
	kind, n := num(1), num(8)
	rcp, ok1 := addr(3)
	asset, ok2 := addr(4)
	if !kind.IsUint64() || kind.Uint64() > 255 || !ok1 || !ok2 || num(7).Cmp(big.NewInt(8*32)) != 0 ||
		!n.IsUint64() || uint64(len(data)-4)/32 != 9+n.Uint64() {
		return nil, fmt.Errorf("%w: RootGateway.exit not canonically encoded", ErrCalldata)
	}
	c := &ExitCall{Checkpoint: num(0), Kind: uint8(kind.Uint64()), Index: num(2), Recipient: rcp, Asset: asset, Value: num(5), Data: num(6)}
	for i := 0; i < int(n.Uint64()); i++ {
		c.Proof = append(c.Proof, [32]byte(w(9+i)))
	}
	return c, nil
}

// ClaimAction is a claim awaiting approval: an EIP-1559 transaction for the main chain
// whose summary was built from its own calldata.
type ClaimAction struct {
	Account ethcrypto.Address
	Summary signing.Summary
	tx      *signing.Prepared
}

// Sign signs the transaction; Result.Raw is what sp_sendRawTransaction takes.
func (a *ClaimAction) Sign(k signing.Signer) (signing.Result, error) { return a.tx.Sign(k) }

// Claim prepares account's claim of withdrawal w on the main chain with proof p (from
// sp_withdrawals and sp_withdrawalProof) and the main chain's state for account (mp, from
// sp_mainTxParams); token is the bridged stablecoin (its symbol and decimals, for a
// stablecoin withdrawal). Refused: a withdrawal not yet checkpointed or already paid, one
// paid to someone else, a proof of another withdrawal, and an account without the
// main-chain coin the gas may cost at most.
func Claim(account ethcrypto.Address, mp *protocol.MainTxParams, w *protocol.Withdrawal, p *protocol.WithdrawalProof, token *protocol.PermitInfo) (*ClaimAction, error) {
	gw, err := ethcrypto.ParseAddress(mp.Gateway)
	if err != nil || gw.IsZero() || mp.ChainID == 0 {
		return nil, fmt.Errorf("%w: the relay gave no main chain to claim on", ErrNoGateway)
	}
	switch w.Stage {
	case protocol.WithdrawalQueued:
		return nil, fmt.Errorf("%w: withdrawal %d is not in a main-chain checkpoint yet; it can be claimed once one carries it", ErrNotAllowed, w.Index)
	case protocol.WithdrawalExited:
		return nil, fmt.Errorf("%w: withdrawal %d is already paid on the main chain (transaction %s)", ErrNotAllowed, w.Index, w.ExitTx)
	case protocol.WithdrawalCheckpointed:
	default:
		return nil, fmt.Errorf("%w: withdrawal %d is at an unknown stage %q", ErrBadArgs, w.Index, w.Stage)
	}
	rcp, err := ethcrypto.ParseAddress(w.Recipient)
	if err != nil || rcp != account {
		return nil, fmt.Errorf("%w: withdrawal %d is paid to %s, not to %s; its recipient claims it", ErrNotAllowed, w.Index, w.Recipient, account.Hex())
	}
	if p.Index != w.Index || !strings.EqualFold(p.Recipient, w.Recipient) || p.Value != w.Value || w.Checkpoint == nil || p.Checkpoint < *w.Checkpoint {
		return nil, fmt.Errorf("%w: the proof (withdrawal %d to %s) does not match withdrawal %d", ErrBadArgs, p.Index, p.Recipient, w.Index)
	}
	asset, err := ethcrypto.ParseAddress(p.Asset)
	if err != nil {
		return nil, fmt.Errorf("%w: proof asset %q", ErrBadArgs, p.Asset)
	}
	value, err := parseAmount("value", p.Value)
	if err != nil {
		return nil, err
	}
	data, err := parseAmount("data", p.Data)
	if err != nil {
		return nil, err
	}
	c := ExitCall{Checkpoint: new(big.Int).SetUint64(p.Checkpoint), Kind: p.Kind, Index: new(big.Int).SetUint64(p.Index),
		Recipient: rcp, Asset: asset, Value: value, Data: data}
	for _, h := range p.Proof {
		b, err := eip712.Bytes(h)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("%w: proof hash %q", ErrBadArgs, h)
		}
		c.Proof = append(c.Proof, [32]byte(b))
	}
	if c.Kind != KindToken && c.Kind != KindTicket {
		return nil, fmt.Errorf("%w: withdrawal kind %d", ErrBadArgs, c.Kind)
	}
	base, err := parseAmount("base fee", mp.BaseFee)
	if err != nil {
		return nil, err
	}
	tip, err := parseAmount("tip", mp.Tip)
	if err != nil {
		return nil, err
	}
	balance, err := parseAmount("balance", mp.Balance)
	if err != nil {
		return nil, err
	}
	// The fee cap survives a few blocks of rising base fee (the relay's own wallets price
	// the same way, relay/internal/txfees); the node wants the whole gas × fee cap held.
	feeCap := new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), tip)
	most := new(big.Int).Mul(feeCap, big.NewInt(ClaimGas))
	typical := int64(claimGasTypical)
	if c.Kind == KindTicket {
		typical = claimGasTicket
	}
	about := new(big.Int).Mul(new(big.Int).Add(base, tip), big.NewInt(typical))
	if balance.Cmp(most) < 0 {
		return nil, fmt.Errorf("%w: claiming needs up to %s of main-chain coin for gas (about %s), and %s holds %s on chain %d",
			ErrInsufficientBalance, signing.FormatEther(most), signing.FormatEther(about), account.Hex(), signing.FormatEther(balance), mp.ChainID)
	}
	calldata, err := c.Encode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArgs, err)
	}
	tx := &signing.Transaction{ChainID: mp.ChainID, Nonce: mp.Nonce, MaxPriorityFeePerGas: tip, MaxFeePerGas: feeCap,
		Gas: ClaimGas, To: &gw, Value: new(big.Int), Data: calldata}
	prep, err := signing.Transaction1559(account, tx)
	if err != nil {
		return nil, err
	}
	// The summary says what the signed calldata says.
	d, err := DecodeExit(tx.Data)
	if err != nil {
		return nil, err
	}
	main := fmt.Sprintf("%s on the main chain (id %d)", d.Recipient.Hex(), mp.ChainID)
	s := signing.Summary{Kind: "transaction", Account: account.Hex()}
	if d.Kind == KindToken {
		m := MoneyOf(&protocol.EventInfo{}, token)
		s.Title = "Claim " + m.Format(d.Value) + " on the main chain"
		s.Lines = []signing.Line{{Label: "Amount", Value: m.Format(d.Value)}, {Label: "Paid to", Value: main}}
	} else {
		what := "ticket"
		if d.Data.Sign() != 0 {
			what = "souvenir ticket"
		}
		s.Title = "Claim " + what + " #" + d.Value.String() + " on the main chain"
		s.Lines = []signing.Line{{Label: "Ticket", Value: fmt.Sprintf("#%s of event %s", d.Value, d.Asset.Hex())}, {Label: "Mirror ticket to", Value: main}}
	}
	how := "the relay would pay this claim too; claiming now, you pay its gas yourself"
	if mp.ManualExits {
		how = "this relay leaves claims to their recipients: nothing is paid on the main chain until you claim"
	}
	s.Lines = append(s.Lines,
		signing.Line{Label: "Checkpoint", Value: "#" + d.Checkpoint.String()},
		signing.Line{Label: "Withdrawal", Value: "#" + d.Index.String()},
		signing.Line{Label: "Gas", Value: fmt.Sprintf("about %s, paid by you from %s", signing.FormatEther(about), account.Hex())},
		signing.Line{Label: "Max network fee", Value: signing.FormatEther(most)},
		signing.Line{Label: "Why", Value: how},
		signing.Line{Label: "Contract", Value: gw.Hex() + " (RootGateway)"},
		signing.Line{Label: "Function", Value: SigExit},
		signing.Line{Label: "Network", Value: fmt.Sprintf("main chain %d", mp.ChainID)},
		signing.Line{Label: "Nonce", Value: fmt.Sprint(mp.Nonce)})
	prep.Summary = s
	return &ClaimAction{Account: account, Summary: s, tx: prep}, nil
}
