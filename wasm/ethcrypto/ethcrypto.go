// Package ethcrypto provides the Ethereum primitives the wallet needs —
// Keccak-256, addresses with EIP-55 checksums, and recoverable secp256k1
// signatures — without importing go-ethereum.
//
// Why not go-ethereum/crypto: it drags in go-ethereum/common (regexp,
// database/sql, encoding/json for uint256) and costs about 135 KB of brotli in
// the wasm; its full wallet stack (accounts, core/types, signer/apitypes) pulls
// kzg and gnark and pushes the wasm over the 2.1 MB brotli limit on its own.
// The signing core here is the same library go-ethereum uses in pure-Go builds
// (decred secp256k1), and the tests check every result against go-ethereum.
package ethcrypto

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/sha3"
)

// Sentinel errors callers branch on.
var (
	ErrInvalidAddress   = errors.New("ethcrypto: invalid address")
	ErrBadChecksum      = errors.New("ethcrypto: address checksum (EIP-55) mismatch")
	ErrInvalidKey       = errors.New("ethcrypto: invalid private key")
	ErrInvalidSignature = errors.New("ethcrypto: invalid signature")
)

// SignatureLength is r (32) || s (32) || v (1), the layout of eth_sign results.
const SignatureLength = 65

// Keccak256 hashes the concatenation of data with legacy Keccak-256 (not
// NIST SHA3-256), as Ethereum does.
func Keccak256(data ...[]byte) []byte {
	h := sha3.NewLegacyKeccak256()
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

// Keccak256Hash is Keccak256 into a fixed array.
func Keccak256Hash(data ...[]byte) (out [32]byte) {
	h := sha3.NewLegacyKeccak256()
	for _, d := range data {
		h.Write(d)
	}
	h.Sum(out[:0])
	return out
}

// Address is a 20-byte Ethereum account address.
type Address [20]byte

// Hex returns the EIP-55 mixed-case checksummed form.
func (a Address) Hex() string {
	lower := hex.EncodeToString(a[:])
	hash := Keccak256([]byte(lower))
	out := make([]byte, 2+40)
	out[0], out[1] = '0', 'x'
	for i := 0; i < 40; i++ {
		c := lower[i]
		nibble := hash[i/2]
		if i%2 == 0 {
			nibble >>= 4
		}
		if c >= 'a' && nibble&0xf >= 8 {
			c -= 'a' - 'A'
		}
		out[2+i] = c
	}
	return string(out)
}

func (a Address) String() string { return a.Hex() }

// IsZero reports whether a is the zero address.
func (a Address) IsZero() bool { return a == Address{} }

// MarshalText implements encoding.TextMarshaler (checksummed hex).
func (a Address) MarshalText() ([]byte, error) { return []byte(a.Hex()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseAddress rules.
func (a *Address) UnmarshalText(b []byte) error {
	p, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// ParseAddress accepts "0x" + 40 hex digits. An all-lower or all-upper address
// is accepted as is; a mixed-case one must carry a valid EIP-55 checksum,
// because a mistyped address with a wrong checksum is exactly what EIP-55 is
// there to catch before money or tickets are sent to it.
func ParseAddress(s string) (Address, error) {
	var a Address
	if !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return a, fmt.Errorf("%w: %q lacks 0x prefix", ErrInvalidAddress, s)
	}
	body := s[2:]
	if len(body) != 40 {
		return a, fmt.Errorf("%w: %q is not 20 bytes", ErrInvalidAddress, s)
	}
	if _, err := hex.Decode(a[:], []byte(body)); err != nil {
		return a, fmt.Errorf("%w: %q: %v", ErrInvalidAddress, s, err)
	}
	if body != strings.ToLower(body) && body != strings.ToUpper(body) && a.Hex()[2:] != body {
		return a, fmt.Errorf("%w: %q", ErrBadChecksum, s)
	}
	return a, nil
}

// MustParseAddress is ParseAddress for constants; it panics on error.
func MustParseAddress(s string) Address {
	a, err := ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

// PrivateKey is a secp256k1 signing key. Its bytes never leave Go except
// through an explicit keystore or mnemonic export.
type PrivateKey struct {
	k    *secp256k1.PrivateKey
	addr Address
}

// PrivateKeyFromBytes parses a 32-byte big-endian scalar in [1, n-1].
func PrivateKeyFromBytes(b []byte) (*PrivateKey, error) {
	if len(b) != 32 {
		return nil, fmt.Errorf("%w: length %d, want 32", ErrInvalidKey, len(b))
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(b); overflow || s.IsZero() {
		return nil, fmt.Errorf("%w: scalar out of range", ErrInvalidKey)
	}
	k := secp256k1.NewPrivateKey(&s)
	return &PrivateKey{k: k, addr: PubkeyToAddress(k.PubKey())}, nil
}

// Address is the account address of the key.
func (k *PrivateKey) Address() Address { return k.addr }

// Bytes returns a copy of the 32-byte secret. Callers must treat it as the
// key itself (used only by keystore export).
func (k *PrivateKey) Bytes() []byte {
	b := k.k.Serialize()
	return b
}

// Zero overwrites the secret scalar. Go cannot promise no other copy exists,
// but this shortens the life of the one we own.
func (k *PrivateKey) Zero() {
	if k != nil && k.k != nil {
		k.k.Zero()
	}
}

// Sign signs a 32-byte digest and returns r || s || v with v in {0, 1}.
// Signatures are RFC 6979 deterministic and low-s (EIP-2).
func (k *PrivateKey) Sign(digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return nil, fmt.Errorf("ethcrypto: sign: digest is %d bytes, want 32", len(digest))
	}
	c := ecdsa.SignCompact(k.k, digest, false)
	v := c[0] - 27
	if v > 1 {
		// Recovery ids 2 and 3 (r >= n) occur with probability ~2^-128 and
		// cannot be expressed in Ethereum's v; refuse rather than emit junk.
		return nil, fmt.Errorf("ethcrypto: sign: unrepresentable recovery id %d", v)
	}
	sig := make([]byte, SignatureLength)
	copy(sig, c[1:])
	sig[64] = v
	return sig, nil
}

// PubkeyToAddress derives the address: the last 20 bytes of the Keccak-256
// of the uncompressed public key without its 0x04 prefix.
func PubkeyToAddress(p *secp256k1.PublicKey) Address {
	var a Address
	copy(a[:], Keccak256(p.SerializeUncompressed()[1:])[12:])
	return a
}

// Recover returns the address whose key produced sig over digest. sig is
// r || s || v with v in {0, 1} or {27, 28}. High-s signatures are rejected so
// that each signed message has exactly one valid encoding (no malleability
// for anything keyed on signature bytes, like replay caches).
func Recover(digest, sig []byte) (Address, error) {
	if len(digest) != 32 {
		return Address{}, fmt.Errorf("%w: digest is %d bytes", ErrInvalidSignature, len(digest))
	}
	if len(sig) != SignatureLength {
		return Address{}, fmt.Errorf("%w: length %d, want 65", ErrInvalidSignature, len(sig))
	}
	v := sig[64]
	if v >= 27 {
		v -= 27
	}
	if v > 1 {
		return Address{}, fmt.Errorf("%w: v=%d", ErrInvalidSignature, sig[64])
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(sig[32:64]); overflow || s.IsOverHalfOrder() {
		return Address{}, fmt.Errorf("%w: s out of range (high-s)", ErrInvalidSignature)
	}
	var c [65]byte
	c[0] = 27 + v
	copy(c[1:], sig[:64])
	pub, _, err := ecdsa.RecoverCompact(c[:], digest)
	if err != nil {
		return Address{}, fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}
	return PubkeyToAddress(pub), nil
}

// CompactSignature converts r || s || v to the 64-byte EIP-2098 form
// (v folded into the top bit of s), used where every byte counts (QR codes).
func CompactSignature(sig []byte) ([]byte, error) {
	if len(sig) != SignatureLength || sig[64] > 1 || sig[32]&0x80 != 0 {
		return nil, fmt.Errorf("%w: not a low-s signature with v in {0,1}", ErrInvalidSignature)
	}
	out := make([]byte, 64)
	copy(out, sig[:64])
	out[32] |= sig[64] << 7
	return out, nil
}

// ExpandSignature converts an EIP-2098 64-byte signature back to r || s || v.
func ExpandSignature(compact []byte) ([]byte, error) {
	if len(compact) != 64 {
		return nil, fmt.Errorf("%w: compact length %d, want 64", ErrInvalidSignature, len(compact))
	}
	sig := make([]byte, SignatureLength)
	copy(sig, compact)
	sig[64] = sig[32] >> 7
	sig[32] &= 0x7f
	return sig, nil
}

// Equal compares two byte strings in constant time.
func Equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// Bytes returns the 20 address bytes.
func (a Address) Bytes() []byte { return append([]byte(nil), a[:]...) }
