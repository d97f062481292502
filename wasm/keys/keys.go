// Package keys creates and restores BIP39 mnemonics and derives Ethereum
// accounts from them along BIP32/BIP44 m/44'/60'/0'/0/i, the path MetaMask,
// Ledger Live and hardhat use, so a phrase restored elsewhere shows the same
// addresses.
package keys

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/tyler-smith/go-bip39"
	"golang.org/x/text/unicode/norm"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
)

// Sentinel errors callers branch on.
var (
	ErrInvalidMnemonic = errors.New("keys: invalid mnemonic")
	ErrInvalidStrength = errors.New("keys: mnemonic strength must be 128, 160, 192, 224 or 256 bits")
	ErrInvalidPath     = errors.New("keys: invalid derivation path")
	ErrInvalidSeed     = errors.New("keys: invalid seed")
)

// HardenedOffset marks a hardened BIP32 child index (i').
const HardenedOffset = 0x80000000

// EthereumAccountsPath is the BIP44 parent of Ethereum account keys; account
// i is its non-hardened child i.
const EthereumAccountsPath = "m/44'/60'/0'/0"

// NewMnemonic returns a fresh English mnemonic with the given entropy size in
// bits (128 → 12 words, 256 → 24 words), from crypto/rand.
func NewMnemonic(bits int) (string, error) {
	if bits < 128 || bits > 256 || bits%32 != 0 {
		return "", fmt.Errorf("%w: got %d", ErrInvalidStrength, bits)
	}
	entropy, err := bip39.NewEntropy(bits)
	if err != nil {
		return "", fmt.Errorf("keys: entropy: %w", err)
	}
	defer clear(entropy)
	return MnemonicFromEntropy(entropy)
}

// MnemonicFromEntropy encodes entropy (16–32 bytes, multiple of 4) as words.
func MnemonicFromEntropy(entropy []byte) (string, error) {
	m, err := bip39.NewMnemonic(entropy)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidStrength, err)
	}
	return m, nil
}

// NormalizeMnemonic applies NFKD (as BIP39 requires), lower-cases and
// collapses whitespace, so a phrase pasted with stray spaces or capitals
// restores the same wallet.
func NormalizeMnemonic(m string) string {
	return strings.Join(strings.Fields(strings.ToLower(norm.NFKD.String(m))), " ")
}

// ValidateMnemonic checks word list membership and the checksum.
func ValidateMnemonic(m string) error {
	m = NormalizeMnemonic(m)
	if _, err := bip39.EntropyFromMnemonic(m); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidMnemonic, err)
	}
	return nil
}

// Seed turns a mnemonic and optional passphrase into the 64-byte BIP39 seed.
// Both are NFKD-normalised first: without it, "é" typed as one code point on
// one keyboard and as e + combining accent on another would silently open two
// different wallets.
func Seed(mnemonic, passphrase string) ([]byte, error) {
	m := NormalizeMnemonic(mnemonic)
	if err := ValidateMnemonic(m); err != nil {
		return nil, err
	}
	return bip39.NewSeed(m, norm.NFKD.String(passphrase)), nil
}

// ParsePath parses "m/44'/60'/0'/0/3" (h or H also mark hardened).
func ParsePath(path string) ([]uint32, error) {
	parts := strings.Split(path, "/")
	if len(parts) == 0 || parts[0] != "m" {
		return nil, fmt.Errorf("%w: %q must start with m", ErrInvalidPath, path)
	}
	out := make([]uint32, 0, len(parts)-1)
	for _, p := range parts[1:] {
		hardened := false
		if n := len(p); n > 0 && (p[n-1] == '\'' || p[n-1] == 'h' || p[n-1] == 'H') {
			hardened = true
			p = p[:n-1]
		}
		i, err := strconv.ParseUint(p, 10, 31)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: segment %q", ErrInvalidPath, path, p)
		}
		idx := uint32(i)
		if hardened {
			idx += HardenedOffset
		}
		out = append(out, idx)
	}
	return out, nil
}

// Master is a BIP32 master private key. It caches the account parent
// m/44'/60'/0'/0 so listing several accounts does three hardened derivations
// once instead of once per account.
type Master struct {
	root     *extKey
	accounts *extKey
}

// NewMaster builds the master key from a BIP39 seed (16–64 bytes).
func NewMaster(seed []byte) (*Master, error) {
	if len(seed) < 16 || len(seed) > 64 {
		return nil, fmt.Errorf("%w: %d bytes, want 16 to 64", ErrInvalidSeed, len(seed))
	}
	mac := hmac.New(sha512.New, []byte("Bitcoin seed"))
	mac.Write(seed)
	I := mac.Sum(nil)
	defer clear(I)
	root, err := extFrom(I, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSeed, err)
	}
	return &Master{root: root}, nil
}

// FromMnemonic is Seed followed by NewMaster.
func FromMnemonic(mnemonic, passphrase string) (*Master, error) {
	seed, err := Seed(mnemonic, passphrase)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	return NewMaster(seed)
}

// derive walks path from the master.
func (m *Master) derive(path []uint32) (*extKey, error) {
	k := m.root
	for _, i := range path {
		next, err := k.child(i)
		if k != m.root {
			k.zero()
		}
		if err != nil {
			return nil, err
		}
		k = next
	}
	return k, nil
}

// Derive returns the signing key at path.
func (m *Master) Derive(path []uint32) (*ethcrypto.PrivateKey, error) {
	xk, err := m.derive(path)
	if err != nil {
		return nil, err
	}
	if xk != m.root {
		defer xk.zero()
	}
	return ethcrypto.PrivateKeyFromBytes(xk.key[:])
}

// Account returns the key of Ethereum account i (m/44'/60'/0'/0/i).
func (m *Master) Account(i uint32) (*ethcrypto.PrivateKey, error) {
	if i >= HardenedOffset {
		return nil, fmt.Errorf("%w: account index %d too large", ErrInvalidPath, i)
	}
	if m.accounts == nil {
		p, _ := ParsePath(EthereumAccountsPath)
		xk, err := m.derive(p)
		if err != nil {
			return nil, err
		}
		m.accounts = xk
	}
	xk, err := m.accounts.child(i)
	if err != nil {
		return nil, err
	}
	defer xk.zero()
	return ethcrypto.PrivateKeyFromBytes(xk.key[:])
}

// Zero wipes the cached extended keys.
func (m *Master) Zero() {
	if m == nil {
		return
	}
	if m.root != nil {
		m.root.zero()
	}
	if m.accounts != nil {
		m.accounts.zero()
	}
}

// extKey is a BIP32 extended private key: the key and its chain code.
//
// Hand-written rather than btcutil's hdkeychain, the library this package used before:
// private derivation (CKDpriv) is one HMAC-SHA512 and one addition modulo the curve order
// over the secp256k1 arithmetic ethcrypto already links, while hdkeychain brings Bitcoin's
// chaincfg (every network's parameters and genesis blocks) and wire, and through them
// crypto/x509 and net, into wallet.wasm: 90,747 B brotli of its 2.1 MB budget (measured,
// 2,098,499 → 2,007,752 B) for code the wallet never runs (it never serialises xprv/xpub). The BIP32 test vectors and hdkeychain itself (test-only
// now) check this code in keys_test.go.
type extKey struct {
	key, chain [32]byte
}

var errInvalidChild = errors.New("keys: BIP32 derivation gives an invalid key at this index (IL ≥ n or zero; about 1 in 2^127)")

// child is CKDpriv(k, i): hardened children hash 0x00 || key, others the compressed
// public key, each followed by i; the child key is IL + key mod n, its chain code IR.
func (k *extKey) child(i uint32) (*extKey, error) {
	var data [37]byte
	defer clear(data[:])
	if i >= HardenedOffset {
		copy(data[1:33], k.key[:])
	} else {
		var s secp256k1.ModNScalar
		s.SetBytes(&k.key)
		copy(data[:33], secp256k1.NewPrivateKey(&s).PubKey().SerializeCompressed())
		s.Zero()
	}
	binary.BigEndian.PutUint32(data[33:], i)
	mac := hmac.New(sha512.New, k.chain[:])
	mac.Write(data[:])
	I := mac.Sum(nil)
	defer clear(I)
	return extFrom(I, &k.key)
}

// extFrom makes the key IL (+ parent mod n) with chain code IR from a 64-byte HMAC output.
func extFrom(I []byte, parent *[32]byte) (*extKey, error) {
	var il secp256k1.ModNScalar
	defer il.Zero()
	if il.SetByteSlice(I[:32]) {
		return nil, errInvalidChild
	}
	if parent != nil {
		var p secp256k1.ModNScalar
		p.SetBytes(parent)
		il.Add(&p)
		p.Zero()
	}
	if il.IsZero() {
		return nil, errInvalidChild
	}
	out := &extKey{}
	il.PutBytes(&out.key)
	copy(out.chain[:], I[32:])
	return out, nil
}

func (k *extKey) zero() {
	clear(k.key[:])
	clear(k.chain[:])
}

// DevMnemonic is the well-known development mnemonic (Hardhat's and Anvil's default). Its
// keys are public knowledge: for development chains and tests only.
const DevMnemonic = "test test test test test test test test test test test junk"

// DevAccount returns account i (m/44'/60'/0'/0/i) of DevMnemonic.
func DevAccount(i uint32) (*ethcrypto.PrivateKey, error) {
	m, err := FromMnemonic(DevMnemonic, "")
	if err != nil {
		return nil, err
	}
	defer m.Zero()
	return m.Account(i)
}
