// Package signing turns signing requests into a human summary and a digest
// computed from the same decoded values, then signs on approval. There is no
// way to sign an opaque 32-byte hash (no eth_sign): what the user is shown is
// what gets signed.
package signing

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stagepass/stagepass/wasm/eip712"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
)

// Line is one labelled value of a summary.
type Line struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Summary is what the page shows before the user approves.
type Summary struct {
	Kind     string   `json:"kind"` // "message", "typedData", "forward", "transaction"
	Title    string   `json:"title"`
	Account  string   `json:"account"`
	Lines    []Line   `json:"lines"`
	Warnings []string `json:"warnings,omitempty"`
}

func (s *Summary) add(label, value string) { s.Lines = append(s.Lines, Line{label, value}) }

// FormatEther renders wei as ether with up to 18 decimals, trailing zeros
// trimmed ("0.05 ETH").
func FormatEther(wei *big.Int) string {
	if wei == nil {
		wei = new(big.Int)
	}
	neg := wei.Sign() < 0
	abs := new(big.Int).Abs(wei)
	q, r := new(big.Int).QuoRem(abs, big.NewInt(1e18), new(big.Int))
	s := q.String()
	if r.Sign() != 0 {
		frac := fmt.Sprintf("%018s", r.String())
		s += "." + strings.TrimRight(frac, "0")
	}
	if neg {
		s = "-" + s
	}
	return s + " ETH"
}

// Call describes a known function for summaries.
type Call struct {
	Signature string   // e.g. "transfer(address,uint256)"
	Title     string   // e.g. "Transfer tokens"
	Labels    []string // one per argument
}

// knownCalls are decoded in summaries; unknown calldata is shown as such
// with a warning. Only static argument types (address, uint256, bool) are
// supported here; Stagepass's own contract calls are added once their ABI
// is final (see README "Not done yet").
var knownCalls = map[[4]byte]Call{}

// RegisterCall adds a function the summaries can decode.
func RegisterCall(c Call) {
	var sel [4]byte
	copy(sel[:], ethcrypto.Keccak256([]byte(c.Signature))[:4])
	knownCalls[sel] = c
}

func init() {
	for _, c := range []Call{
		{"transfer(address,uint256)", "Transfer tokens", []string{"To", "Amount"}},
		{"approve(address,uint256)", "Allow spending", []string{"Spender", "Amount"}},
		{"transferFrom(address,address,uint256)", "Transfer", []string{"From", "To", "Amount or token id"}},
		{"safeTransferFrom(address,address,uint256)", "Transfer ticket", []string{"From", "To", "Token id"}},
		{"setApprovalForAll(address,bool)", "Allow operator for all tickets", []string{"Operator", "Approved"}},
	} {
		RegisterCall(c)
	}
}

// describeCall appends lines for calldata.
func describeCall(s *Summary, data []byte) {
	if len(data) == 0 {
		s.add("Call", "none (plain transfer)")
		return
	}
	if len(data) < 4 {
		s.add("Data", "0x"+hex.EncodeToString(data))
		s.Warnings = append(s.Warnings, "Call data is too short to be a function call.")
		return
	}
	var sel [4]byte
	copy(sel[:], data)
	c, ok := knownCalls[sel]
	args := data[4:]
	if !ok || len(args) != 32*len(c.Labels) {
		s.add("Call", fmt.Sprintf("unknown function 0x%x (%d bytes of arguments)", sel, len(args)))
		s.Warnings = append(s.Warnings, "This call could not be decoded; only approve it if you trust the site.")
		return
	}
	s.add("Call", c.Title+" — "+c.Signature)
	types := strings.Split(strings.TrimSuffix(c.Signature[strings.IndexByte(c.Signature, '(')+1:], ")"), ",")
	for i, label := range c.Labels {
		word := args[32*i : 32*i+32]
		switch types[i] {
		case "address":
			var a ethcrypto.Address
			copy(a[:], word[12:])
			s.add(label, a.Hex())
		case "bool":
			s.add(label, fmt.Sprint(word[31] == 1))
		default:
			s.add(label, new(big.Int).SetBytes(word).String())
		}
	}
	if c.Signature == "approve(address,uint256)" && new(big.Int).SetBytes(args[32:64]).BitLen() > 200 {
		s.Warnings = append(s.Warnings, "Unlimited approval: the spender may move all of these tokens.")
	}
	if c.Signature == "setApprovalForAll(address,bool)" && args[63] == 1 {
		s.Warnings = append(s.Warnings, "The operator may transfer all your tickets in this contract.")
	}
}

// describeTypedValue flattens a decoded typed-data value into lines.
func describeTypedValue(s *Summary, td *eip712.TypedData, label, typ string, v any, depth int) {
	if depth > 8 {
		s.add(label, "…")
		return
	}
	if fields, ok := td.Types[strings.Split(typ, "[")[0]]; ok && !strings.HasSuffix(typ, "]") {
		m, _ := v.(map[string]any)
		for _, f := range fields {
			describeTypedValue(s, td, label+"."+f.Name, f.Type, m[f.Name], depth+1)
		}
		return
	}
	if strings.HasSuffix(typ, "]") {
		items, _ := v.([]any)
		elem := typ[:strings.LastIndexByte(typ, '[')]
		if len(items) == 0 {
			s.add(label, "[] (empty)")
		}
		for i, it := range items {
			describeTypedValue(s, td, fmt.Sprintf("%s[%d]", label, i), elem, it, depth+1)
		}
		return
	}
	s.add(label, atomicString(typ, v))
}

func atomicString(typ string, v any) string {
	switch {
	case typ == "address":
		if a, err := eip712.Address(v); err == nil {
			return a.Hex()
		}
	case typ == "string":
		if str, ok := v.(string); ok {
			return str
		}
	case strings.HasPrefix(typ, "bytes"):
		if b, err := eip712.Bytes(v); err == nil {
			return "0x" + hex.EncodeToString(b)
		}
	case strings.HasPrefix(typ, "uint"), strings.HasPrefix(typ, "int"):
		if x, err := eip712.Int(v); err == nil {
			return x.String()
		}
	}
	return fmt.Sprint(v)
}

// messageText shows a personal message as text when it is printable UTF-8,
// otherwise as hex with a warning.
func messageText(s *Summary, msg []byte) {
	printable := utf8.Valid(msg)
	for _, r := range string(msg) {
		if r < 0x20 && r != '\n' && r != '\t' && r != '\r' {
			printable = false
		}
	}
	if printable {
		s.add("Message", string(msg))
		return
	}
	s.add("Message (hex)", "0x"+hex.EncodeToString(msg))
	if len(msg) == 32 {
		s.Warnings = append(s.Warnings, "This is 32 bytes of binary data, which may be a hash of something you cannot see.")
	} else {
		s.Warnings = append(s.Warnings, "This message is binary data, not text.")
	}
}

func formatDeadline(unix uint64) string {
	if unix > 1<<40 {
		return fmt.Sprint(unix)
	}
	return time.Unix(int64(unix), 0).UTC().Format("2006-01-02 15:04:05 UTC")
}
