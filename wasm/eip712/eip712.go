// Package eip712 hashes EIP-712 typed structured data (the
// eth_signTypedData_v4 JSON shape) so the wallet can show and sign exactly
// the same decoded values.
//
// Why not go-ethereum/signer/core/apitypes: it imports core/types and with it
// kzg and gnark, about 0.25 MB of brotli in the wasm for code a wallet never
// runs. Tests check every digest here against apitypes.
package eip712

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
)

// Sentinel errors callers branch on.
var (
	ErrInvalidTypes = errors.New("eip712: invalid type definitions")
	ErrInvalidValue = errors.New("eip712: value does not match its type")
)

// maxDepth bounds struct/array nesting so a hostile dapp cannot make the
// wallet recurse without end.
const maxDepth = 32

// Field is one member of a struct type.
type Field struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Types maps struct type names to their members, in declaration order.
type Types map[string][]Field

// TypedData is the eth_signTypedData_v4 payload. Values may be what
// encoding/json produces (with UseNumber) or Go values: *big.Int, integers,
// ethcrypto.Address, []byte, [32]byte, bool, string, []any, map[string]any.
type TypedData struct {
	Types       Types          `json:"types"`
	PrimaryType string         `json:"primaryType"`
	Domain      map[string]any `json:"domain"`
	Message     map[string]any `json:"message"`
}

// DomainType is the struct name of the domain.
const DomainType = "EIP712Domain"

// domainFields lists the standard domain members in their canonical order,
// used when the payload omits the EIP712Domain definition (ethers does).
var domainFields = []Field{
	{"name", "string"}, {"version", "string"}, {"chainId", "uint256"},
	{"verifyingContract", "address"}, {"salt", "bytes32"},
}

// Parse decodes eth_signTypedData_v4 JSON, keeping numbers exact.
func Parse(data []byte) (*TypedData, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var td TypedData
	if err := dec.Decode(&td); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidTypes, err)
	}
	if err := td.Validate(); err != nil {
		return nil, err
	}
	return &td, nil
}

// isIdent reports whether s is a Solidity identifier. Hand-written rather
// than a regexp: the regexp package costs ~50 KB of brotli in the wasm.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || c == '$' || (c|0x20 >= 'a' && c|0x20 <= 'z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// splitArray splits "T[n]" into ("T", "n", true) and "T[]" into ("T", "", true).
func splitArray(t string) (elem, length string, ok bool) {
	if !strings.HasSuffix(t, "]") {
		return "", "", false
	}
	i := strings.LastIndexByte(t, '[')
	if i <= 0 {
		return "", "", false
	}
	length = t[i+1 : len(t)-1]
	for _, c := range length {
		if c < '0' || c > '9' {
			return "", "", false
		}
	}
	return t[:i], length, true
}

// Validate checks that every type is defined and well formed, and fills in
// EIP712Domain from the domain's keys if it was omitted.
func (td *TypedData) Validate() error {
	if td.Types == nil {
		td.Types = Types{}
	}
	if _, ok := td.Types[DomainType]; !ok {
		var fs []Field
		for _, f := range domainFields {
			if _, ok := td.Domain[f.Name]; ok {
				fs = append(fs, f)
			}
		}
		td.Types[DomainType] = fs
	}
	if td.PrimaryType == "" {
		return fmt.Errorf("%w: primaryType missing", ErrInvalidTypes)
	}
	if _, ok := td.Types[td.PrimaryType]; !ok {
		return fmt.Errorf("%w: primaryType %q not defined", ErrInvalidTypes, td.PrimaryType)
	}
	for name, fields := range td.Types {
		if !isIdent(name) {
			return fmt.Errorf("%w: type name %q", ErrInvalidTypes, name)
		}
		seen := map[string]bool{}
		for _, f := range fields {
			if !isIdent(f.Name) || seen[f.Name] {
				return fmt.Errorf("%w: %s has bad or duplicate field %q", ErrInvalidTypes, name, f.Name)
			}
			seen[f.Name] = true
			base := f.Type
			for {
				elem, _, ok := splitArray(base)
				if !ok {
					break
				}
				base = elem
			}
			if _, ok := td.Types[base]; !ok && !isAtomic(base) {
				return fmt.Errorf("%w: %s.%s has unknown type %q", ErrInvalidTypes, name, f.Name, f.Type)
			}
		}
	}
	return nil
}

func isAtomic(t string) bool {
	switch t {
	case "address", "bool", "string", "bytes":
		return true
	}
	if n, ok := strings.CutPrefix(t, "bytes"); ok {
		i, err := strconv.Atoi(n)
		return err == nil && i >= 1 && i <= 32 && strconv.Itoa(i) == n
	}
	if _, bits, ok := intType(t); ok {
		return bits > 0
	}
	return false
}

// intType parses uintN/intN (N in 8..256, multiple of 8).
func intType(t string) (signed bool, bits int, ok bool) {
	rest, found := strings.CutPrefix(t, "uint")
	if !found {
		rest, found = strings.CutPrefix(t, "int")
		signed = true
	}
	if !found {
		return false, 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 8 || n > 256 || n%8 != 0 || strconv.Itoa(n) != rest {
		return false, 0, false
	}
	return signed, n, true
}

// EncodeType returns e.g. "Mail(Person from,Person to,string contents)Person(...)".
func (td *TypedData) EncodeType(primary string) string {
	deps := map[string]bool{}
	td.collectDeps(primary, deps)
	delete(deps, primary)
	names := make([]string, 0, len(deps))
	for d := range deps {
		names = append(names, d)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range append([]string{primary}, names...) {
		b.WriteString(n)
		b.WriteByte('(')
		for i, f := range td.Types[n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(f.Type)
			b.WriteByte(' ')
			b.WriteString(f.Name)
		}
		b.WriteByte(')')
	}
	return b.String()
}

func (td *TypedData) collectDeps(t string, deps map[string]bool) {
	t = strings.Split(t, "[")[0]
	if deps[t] {
		return
	}
	if _, ok := td.Types[t]; !ok {
		return
	}
	deps[t] = true
	for _, f := range td.Types[t] {
		td.collectDeps(f.Type, deps)
	}
}

// TypeHash is keccak256(EncodeType(t)).
func (td *TypedData) TypeHash(t string) [32]byte {
	return ethcrypto.Keccak256Hash([]byte(td.EncodeType(t)))
}

// HashStruct is keccak256(typeHash || encodeData(data)).
func (td *TypedData) HashStruct(t string, data map[string]any) ([32]byte, error) {
	return td.hashStruct(t, data, 0)
}

func (td *TypedData) hashStruct(t string, data map[string]any, depth int) ([32]byte, error) {
	if depth > maxDepth {
		return [32]byte{}, fmt.Errorf("%w: nesting deeper than %d", ErrInvalidValue, maxDepth)
	}
	fields := td.Types[t]
	if len(data) > len(fields) {
		// Extra members would be shown to the user but not signed.
		return [32]byte{}, fmt.Errorf("%w: %s has %d members, data has %d", ErrInvalidValue, t, len(fields), len(data))
	}
	th := td.TypeHash(t)
	buf := make([]byte, 0, 32*(1+len(fields)))
	buf = append(buf, th[:]...)
	for _, f := range fields {
		v, ok := data[f.Name]
		if !ok {
			return [32]byte{}, fmt.Errorf("%w: %s.%s missing", ErrInvalidValue, t, f.Name)
		}
		enc, err := td.encodeValue(f.Type, v, depth+1)
		if err != nil {
			return [32]byte{}, fmt.Errorf("%s.%s: %w", t, f.Name, err)
		}
		buf = append(buf, enc[:]...)
	}
	return ethcrypto.Keccak256Hash(buf), nil
}

func (td *TypedData) encodeValue(t string, v any, depth int) ([32]byte, error) {
	var out [32]byte
	if elem, length, isArray := splitArray(t); isArray {
		items, ok := v.([]any)
		if !ok {
			return out, fmt.Errorf("%w: %s wants an array, got %T", ErrInvalidValue, t, v)
		}
		if length != "" {
			n, _ := strconv.Atoi(length)
			if len(items) != n {
				return out, fmt.Errorf("%w: %s wants %d items, got %d", ErrInvalidValue, t, n, len(items))
			}
		}
		if depth > maxDepth {
			return out, fmt.Errorf("%w: nesting deeper than %d", ErrInvalidValue, maxDepth)
		}
		buf := make([]byte, 0, 32*len(items))
		for i, it := range items {
			enc, err := td.encodeValue(elem, it, depth+1)
			if err != nil {
				return out, fmt.Errorf("[%d]: %w", i, err)
			}
			buf = append(buf, enc[:]...)
		}
		return ethcrypto.Keccak256Hash(buf), nil
	}
	if _, ok := td.Types[t]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return out, fmt.Errorf("%w: %s wants an object, got %T", ErrInvalidValue, t, v)
		}
		return td.hashStruct(t, m, depth)
	}
	return EncodeAtomic(t, v)
}

// EncodeAtomic encodes one atomic value into its 32-byte EIP-712 word
// (dynamic types hashed).
func EncodeAtomic(t string, v any) ([32]byte, error) {
	var out [32]byte
	switch {
	case t == "string":
		s, ok := v.(string)
		if !ok {
			return out, fmt.Errorf("%w: string wants a string, got %T", ErrInvalidValue, v)
		}
		return ethcrypto.Keccak256Hash([]byte(s)), nil
	case t == "bytes":
		b, err := Bytes(v)
		if err != nil {
			return out, err
		}
		return ethcrypto.Keccak256Hash(b), nil
	case t == "bool":
		b, ok := v.(bool)
		if !ok {
			if s, isStr := v.(string); isStr && (s == "true" || s == "false") {
				b, ok = s == "true", true
			}
		}
		if !ok {
			return out, fmt.Errorf("%w: bool wants true/false, got %v", ErrInvalidValue, v)
		}
		if b {
			out[31] = 1
		}
		return out, nil
	case t == "address":
		a, err := Address(v)
		if err != nil {
			return out, err
		}
		copy(out[12:], a[:])
		return out, nil
	case strings.HasPrefix(t, "bytes"):
		n, _ := strconv.Atoi(t[5:])
		b, err := Bytes(v)
		if err != nil {
			return out, err
		}
		if len(b) != n {
			return out, fmt.Errorf("%w: %s wants %d bytes, got %d", ErrInvalidValue, t, n, len(b))
		}
		copy(out[:], b)
		return out, nil
	}
	signed, bits, ok := intType(t)
	if !ok {
		return out, fmt.Errorf("%w: unknown type %q", ErrInvalidTypes, t)
	}
	x, err := Int(v)
	if err != nil {
		return out, err
	}
	if err := checkRange(x, signed, bits); err != nil {
		return out, fmt.Errorf("%s: %w", t, err)
	}
	if x.Sign() < 0 {
		// Two's complement in 256 bits.
		x = new(big.Int).Add(x, new(big.Int).Lsh(big.NewInt(1), 256))
	}
	x.FillBytes(out[:])
	return out, nil
}

func checkRange(x *big.Int, signed bool, bits int) error {
	if signed {
		lim := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
		if x.Cmp(lim) >= 0 || x.Cmp(new(big.Int).Neg(lim)) < 0 {
			return fmt.Errorf("%w: %s out of int%d range", ErrInvalidValue, x, bits)
		}
		return nil
	}
	if x.Sign() < 0 || x.BitLen() > bits {
		return fmt.Errorf("%w: %s out of uint%d range", ErrInvalidValue, x, bits)
	}
	return nil
}

// Int reads an integer from a JSON number, a decimal or 0x-hex string, or a
// Go integer. Fractions and exponents are rejected rather than rounded.
func Int(v any) (*big.Int, error) {
	switch x := v.(type) {
	case *big.Int:
		if x == nil {
			return nil, fmt.Errorf("%w: nil integer", ErrInvalidValue)
		}
		return new(big.Int).Set(x), nil
	case json.Number:
		return parseInt(string(x))
	case string:
		return parseInt(x)
	case float64:
		// Only from callers that skipped UseNumber; exact below 2^53.
		if x != float64(int64(x)) || x > 1<<53 || x < -(1<<53) {
			return nil, fmt.Errorf("%w: %v is not an exact integer (send large numbers as strings)", ErrInvalidValue, x)
		}
		return big.NewInt(int64(x)), nil
	case int:
		return big.NewInt(int64(x)), nil
	case int64:
		return big.NewInt(x), nil
	case uint64:
		return new(big.Int).SetUint64(x), nil
	case uint32:
		return new(big.Int).SetUint64(uint64(x)), nil
	}
	return nil, fmt.Errorf("%w: %T is not an integer", ErrInvalidValue, v)
}

func parseInt(s string) (*big.Int, error) {
	neg := strings.HasPrefix(s, "-")
	body := strings.TrimPrefix(s, "-")
	base := 10
	if h, ok := strings.CutPrefix(body, "0x"); ok {
		body, base = h, 16
	}
	x, ok := new(big.Int).SetString(body, base)
	if !ok || body == "" || strings.ContainsAny(body, "+-_") {
		return nil, fmt.Errorf("%w: %q is not an integer", ErrInvalidValue, s)
	}
	if neg {
		x.Neg(x)
	}
	return x, nil
}

// Address reads an address from a 0x string or an ethcrypto.Address.
func Address(v any) (ethcrypto.Address, error) {
	switch x := v.(type) {
	case ethcrypto.Address:
		return x, nil
	case string:
		a, err := ethcrypto.ParseAddress(x)
		if err != nil {
			return a, fmt.Errorf("%w: %v", ErrInvalidValue, err)
		}
		return a, nil
	}
	return ethcrypto.Address{}, fmt.Errorf("%w: %T is not an address", ErrInvalidValue, v)
}

// Bytes reads bytes from a 0x-hex string or a Go byte slice/array.
func Bytes(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case [32]byte:
		return x[:], nil
	case string:
		h, ok := strings.CutPrefix(x, "0x")
		if !ok {
			return nil, fmt.Errorf("%w: bytes must be 0x-hex, got %q", ErrInvalidValue, x)
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidValue, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: %T is not bytes", ErrInvalidValue, v)
}

// DomainSeparator is hashStruct(EIP712Domain, domain).
func (td *TypedData) DomainSeparator() ([32]byte, error) {
	return td.HashStruct(DomainType, td.Domain)
}

// Digest returns keccak256(0x19 0x01 || domainSeparator || hashStruct(message)),
// the value that is signed.
func (td *TypedData) Digest() ([32]byte, error) {
	if err := td.Validate(); err != nil {
		return [32]byte{}, err
	}
	ds, err := td.DomainSeparator()
	if err != nil {
		return [32]byte{}, fmt.Errorf("domain: %w", err)
	}
	if td.PrimaryType == DomainType {
		return ethcrypto.Keccak256Hash([]byte{0x19, 0x01}, ds[:]), nil
	}
	mh, err := td.HashStruct(td.PrimaryType, td.Message)
	if err != nil {
		return [32]byte{}, fmt.Errorf("message: %w", err)
	}
	return ethcrypto.Keccak256Hash([]byte{0x19, 0x01}, ds[:], mh[:]), nil
}

// MarshalJSON writes the eth_signTypedData_v4 shape with portable values:
// integers as decimal strings (JSON numbers lose precision above 2^53 in
// JavaScript) and bytes as 0x-hex (not Go's base64).
func (td *TypedData) MarshalJSON() ([]byte, error) {
	type plain TypedData
	out := plain(*td)
	out.Domain, _ = portable(td.Domain).(map[string]any)
	out.Message, _ = portable(td.Message).(map[string]any)
	return json.Marshal(out)
}

func portable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return x
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = portable(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = portable(e)
		}
		return s
	case []byte:
		return "0x" + hex.EncodeToString(x)
	case [32]byte:
		return "0x" + hex.EncodeToString(x[:])
	case *big.Int:
		return x.String()
	case int, int64, uint64, uint32:
		return fmt.Sprint(x)
	}
	return v
}
