// Package keys creates and restores BIP39 mnemonics and derives Ethereum
// accounts from them along BIP32/BIP44 m/44'/60'/0'/0/i, the path MetaMask,
// Ledger Live and hardhat use, so a phrase restored elsewhere shows the same
// addresses.
package keys

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
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
const HardenedOffset = hdkeychain.HardenedKeyStart

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
	root     *hdkeychain.ExtendedKey
	accounts *hdkeychain.ExtendedKey
}

// NewMaster builds the master key from a BIP39 seed (16–64 bytes).
func NewMaster(seed []byte) (*Master, error) {
	root, err := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
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

// DeriveExtended walks path from the master and returns the extended key; its
// String() is the xprv serialisation (used by the BIP32 vector tests).
func (m *Master) DeriveExtended(path []uint32) (*hdkeychain.ExtendedKey, error) {
	k := m.root
	for _, i := range path {
		var err error
		// Derive (not DeriveNonStandard) is the BIP32-correct derivation
		// that keeps leading zero bytes of private keys (btcutil issue 172).
		if k, err = k.Derive(i); err != nil {
			return nil, fmt.Errorf("keys: derive child %d: %w", i, err)
		}
	}
	return k, nil
}

// Derive returns the signing key at path.
func (m *Master) Derive(path []uint32) (*ethcrypto.PrivateKey, error) {
	xk, err := m.DeriveExtended(path)
	if err != nil {
		return nil, err
	}
	return extendedToKey(xk)
}

// Account returns the key of Ethereum account i (m/44'/60'/0'/0/i).
func (m *Master) Account(i uint32) (*ethcrypto.PrivateKey, error) {
	if i >= HardenedOffset {
		return nil, fmt.Errorf("%w: account index %d too large", ErrInvalidPath, i)
	}
	if m.accounts == nil {
		p, _ := ParsePath(EthereumAccountsPath)
		xk, err := m.DeriveExtended(p)
		if err != nil {
			return nil, err
		}
		m.accounts = xk
	}
	xk, err := m.accounts.Derive(i)
	if err != nil {
		return nil, fmt.Errorf("keys: derive account %d: %w", i, err)
	}
	return extendedToKey(xk)
}

// Zero wipes the cached extended keys.
func (m *Master) Zero() {
	if m == nil {
		return
	}
	if m.root != nil {
		m.root.Zero()
	}
	if m.accounts != nil {
		m.accounts.Zero()
	}
}

func extendedToKey(xk *hdkeychain.ExtendedKey) (*ethcrypto.PrivateKey, error) {
	pk, err := xk.ECPrivKey()
	if err != nil {
		return nil, fmt.Errorf("keys: extended key has no private part: %w", err)
	}
	b := pk.Serialize()
	defer clear(b)
	return ethcrypto.PrivateKeyFromBytes(b)
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
