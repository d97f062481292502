// Package vault keeps the wallet's mnemonic encrypted at rest and its keys in
// Go memory while unlocked. The stored record holds the mnemonic only as
// AES-256-GCM ciphertext under a key from PBKDF2-HMAC-SHA256 with at least
// 600,000 iterations (OWASP 2023 guidance, as MetaMask uses).
package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/keystore"
)

// Sentinel errors callers branch on.
var (
	ErrNoVault       = errors.New("vault: no wallet stored")
	ErrExists        = errors.New("vault: a wallet is already stored")
	ErrLocked        = errors.New("vault: locked")
	ErrWrongPassword = errors.New("vault: wrong password")
	// ErrTampered means the password was right but the stored record was
	// altered (ciphertext, header or account list): refuse to use it.
	ErrTampered       = errors.New("vault: stored wallet was tampered with or corrupted")
	ErrWeakPassword   = errors.New("vault: password must be at least 8 characters")
	ErrUnknownAccount = errors.New("vault: account not in this wallet")
)

const (
	// MinIterations is the floor for PBKDF2; a record asking for fewer is
	// treated as tampered (someone weakening the next encryption).
	MinIterations     = 600_000
	recordVersion     = 1
	kdfName           = "pbkdf2-sha256"
	minPasswordLength = 8
	maxAccounts       = 100
)

// record is the stored JSON. Everything but the ciphertext is authenticated
// as GCM additional data, so changing the header or the account list is
// detected at unlock.
type record struct {
	Version    int                 `json:"version"`
	KDF        string              `json:"kdf"`
	Iterations int                 `json:"iterations"`
	Salt       []byte              `json:"salt"`
	Check      []byte              `json:"check"` // SHA-256 of the second half of the derived key
	Nonce      []byte              `json:"nonce"`
	Ciphertext []byte              `json:"ciphertext"`
	Accounts   []ethcrypto.Address `json:"accounts"`
}

func (r *record) aad() []byte {
	b := []byte("stagepass-vault|" + strconv.Itoa(r.Version) + "|" + r.KDF + "|" + strconv.Itoa(r.Iterations) + "|")
	b = append(b, r.Salt...)
	for _, a := range r.Accounts {
		b = append(b, a[:]...)
	}
	return b
}

// secret is the plaintext inside the ciphertext.
type secret struct {
	Mnemonic   string `json:"mnemonic"`
	Passphrase string `json:"passphrase,omitempty"`
}

// Vault is safe for concurrent use.
type Vault struct {
	store      Store
	kdf        KDF
	iterations int

	mu     sync.Mutex
	rec    *record
	encKey []byte // AES key, held only while unlocked (to re-seal on AddAccount)
	master *keys.Master
	keys   map[ethcrypto.Address]*ethcrypto.PrivateKey
	secret *secret
}

// New returns a vault over store. iterations below MinIterations are raised
// to it; kdf nil means GoKDF.
func New(store Store, kdf KDF, iterations int) *Vault {
	if kdf == nil {
		kdf = GoKDF{}
	}
	if iterations < MinIterations {
		iterations = MinIterations
	}
	return &Vault{store: store, kdf: kdf, iterations: iterations}
}

// Exists reports whether a wallet is stored.
func (v *Vault) Exists(ctx context.Context) (bool, error) {
	_, err := v.store.Load(ctx)
	if errors.Is(err, ErrNoVault) {
		return false, nil
	}
	return err == nil, err
}

// Create makes a fresh mnemonic (bits of entropy), stores it encrypted and
// leaves the vault unlocked with account 0. The mnemonic is not returned:
// showing it for backup goes through ExportMnemonic, which asks for the
// password again.
func (v *Vault) Create(ctx context.Context, password string, bits int) ([]ethcrypto.Address, error) {
	m, err := keys.NewMnemonic(bits)
	if err != nil {
		return nil, err
	}
	return v.Restore(ctx, m, "", password)
}

// Restore stores an existing mnemonic (and optional BIP39 passphrase).
func (v *Vault) Restore(ctx context.Context, mnemonic, passphrase, password string) ([]ethcrypto.Address, error) {
	if len([]rune(password)) < minPasswordLength {
		return nil, ErrWeakPassword
	}
	mnemonic = keys.NormalizeMnemonic(mnemonic)
	master, err := keys.FromMnemonic(mnemonic, passphrase)
	if err != nil {
		return nil, err
	}
	if ok, err := v.Exists(ctx); err != nil {
		return nil, fmt.Errorf("vault: load: %w", err)
	} else if ok {
		return nil, ErrExists
	}
	k0, err := master.Account(0)
	if err != nil {
		return nil, err
	}
	rec := &record{Version: recordVersion, KDF: kdfName, Iterations: v.iterations, Accounts: []ethcrypto.Address{k0.Address()}}
	rec.Salt = make([]byte, 32)
	if _, err := rand.Read(rec.Salt); err != nil {
		return nil, fmt.Errorf("vault: random: %w", err)
	}
	encKey, check, err := v.deriveKeys(ctx, password, rec)
	if err != nil {
		return nil, err
	}
	rec.Check = check
	sec := &secret{Mnemonic: mnemonic, Passphrase: passphrase}
	if err := seal(rec, encKey, sec); err != nil {
		return nil, err
	}
	if err := v.save(ctx, rec); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lockLocked()
	v.rec, v.encKey, v.master, v.secret = rec, encKey, master, sec
	v.keys = map[ethcrypto.Address]*ethcrypto.PrivateKey{k0.Address(): k0}
	return append([]ethcrypto.Address(nil), rec.Accounts...), nil
}

// Unlock decrypts the stored mnemonic and derives the accounts. A wrong
// password returns ErrWrongPassword and changes nothing, in memory or stored.
func (v *Vault) Unlock(ctx context.Context, password string) ([]ethcrypto.Address, error) {
	rec, err := v.load(ctx)
	if err != nil {
		return nil, err
	}
	encKey, sec, err := v.open(ctx, rec, password)
	if err != nil {
		return nil, err
	}
	master, err := keys.FromMnemonic(sec.Mnemonic, sec.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w: stored mnemonic: %v", ErrTampered, err)
	}
	ks := map[ethcrypto.Address]*ethcrypto.PrivateKey{}
	for i, want := range rec.Accounts {
		k, err := master.Account(uint32(i))
		if err != nil {
			return nil, err
		}
		if k.Address() != want {
			// Authenticated by GCM, so this cannot happen unless the
			// derivation code changed; never sign with a surprise key.
			return nil, fmt.Errorf("%w: account %d is %s, record says %s", ErrTampered, i, k.Address(), want)
		}
		ks[want] = k
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lockLocked()
	v.rec, v.encKey, v.master, v.keys, v.secret = rec, encKey, master, ks, sec
	return append([]ethcrypto.Address(nil), rec.Accounts...), nil
}

// Lock forgets every key and the mnemonic.
func (v *Vault) Lock() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lockLocked()
}

func (v *Vault) lockLocked() {
	for _, k := range v.keys {
		k.Zero()
	}
	v.master.Zero()
	clear(v.encKey)
	if v.secret != nil {
		// Go strings are immutable; dropping the reference is all we can do.
		v.secret = nil
	}
	v.keys, v.master, v.encKey = nil, nil, nil
}

// Unlocked reports whether keys are in memory.
func (v *Vault) Unlocked() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.keys != nil
}

// Accounts lists the wallet's addresses. While locked they come from the
// stored record (for display; they are authenticated only at unlock).
func (v *Vault) Accounts(ctx context.Context) ([]ethcrypto.Address, error) {
	v.mu.Lock()
	if v.keys != nil {
		defer v.mu.Unlock()
		return append([]ethcrypto.Address(nil), v.rec.Accounts...), nil
	}
	v.mu.Unlock()
	rec, err := v.load(ctx)
	if err != nil {
		return nil, err
	}
	return rec.Accounts, nil
}

// AddAccount derives the next account (m/44'/60'/0'/0/n) and stores it.
func (v *Vault) AddAccount(ctx context.Context) (ethcrypto.Address, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys == nil {
		return ethcrypto.Address{}, ErrLocked
	}
	n := len(v.rec.Accounts)
	if n >= maxAccounts {
		return ethcrypto.Address{}, fmt.Errorf("vault: at most %d accounts", maxAccounts)
	}
	k, err := v.master.Account(uint32(n))
	if err != nil {
		return ethcrypto.Address{}, err
	}
	rec := *v.rec
	rec.Accounts = append(append([]ethcrypto.Address(nil), v.rec.Accounts...), k.Address())
	if err := seal(&rec, v.encKey, v.secret); err != nil {
		return ethcrypto.Address{}, err
	}
	if err := v.save(ctx, &rec); err != nil {
		return ethcrypto.Address{}, err
	}
	v.rec = &rec
	v.keys[k.Address()] = k
	return k.Address(), nil
}

// WithKey runs fn with the key of addr. Keys stay inside Go: the js layer
// only ever gets signatures.
func (v *Vault) WithKey(addr ethcrypto.Address, fn func(*ethcrypto.PrivateKey) error) error {
	v.mu.Lock()
	if v.keys == nil {
		v.mu.Unlock()
		return ErrLocked
	}
	k, ok := v.keys[addr]
	v.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownAccount, addr)
	}
	return fn(k)
}

// ExportMnemonic returns the recovery phrase after checking the password
// again (an explicit, password-confirmed export).
func (v *Vault) ExportMnemonic(ctx context.Context, password string) (string, error) {
	rec, err := v.load(ctx)
	if err != nil {
		return "", err
	}
	_, sec, err := v.open(ctx, rec, password)
	if err != nil {
		return "", err
	}
	return sec.Mnemonic, nil
}

// ExportKeystore writes account addr as keystore v3 JSON encrypted with
// exportPassword, after confirming the vault password.
func (v *Vault) ExportKeystore(ctx context.Context, addr ethcrypto.Address, password, exportPassword string, p keystore.ScryptParams) ([]byte, error) {
	if len([]rune(exportPassword)) < minPasswordLength {
		return nil, ErrWeakPassword
	}
	rec, err := v.load(ctx)
	if err != nil {
		return nil, err
	}
	_, sec, err := v.open(ctx, rec, password)
	if err != nil {
		return nil, err
	}
	master, err := keys.FromMnemonic(sec.Mnemonic, sec.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTampered, err)
	}
	defer master.Zero()
	for i, a := range rec.Accounts {
		if a == addr {
			k, err := master.Account(uint32(i))
			if err != nil {
				return nil, err
			}
			defer k.Zero()
			return keystore.Encrypt(k, exportPassword, p)
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownAccount, addr)
}

func (v *Vault) load(ctx context.Context) (*record, error) {
	b, err := v.store.Load(ctx)
	if err != nil {
		if errors.Is(err, ErrNoVault) {
			return nil, err
		}
		return nil, fmt.Errorf("vault: load: %w", err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTampered, err)
	}
	if rec.Version != recordVersion || rec.KDF != kdfName || rec.Iterations < MinIterations ||
		len(rec.Salt) < 16 || len(rec.Check) != 32 || len(rec.Accounts) == 0 || len(rec.Accounts) > maxAccounts {
		return nil, fmt.Errorf("%w: bad header", ErrTampered)
	}
	return &rec, nil
}

func (v *Vault) save(ctx context.Context, rec *record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("vault: encode: %w", err)
	}
	if err := v.store.Save(ctx, b); err != nil {
		return fmt.Errorf("vault: save: %w", err)
	}
	return nil
}

// deriveKeys returns the AES key and the password check. One PBKDF2 call
// yields 64 bytes: the first half encrypts, the hash of the second half is
// stored so a wrong password (ErrWrongPassword) is told apart from a
// tampered ciphertext (ErrTampered). The check gives an attacker nothing the
// ciphertext does not: both need the full PBKDF2 cost per guess.
func (v *Vault) deriveKeys(ctx context.Context, password string, rec *record) (encKey, check []byte, err error) {
	dk, err := v.kdf.PBKDF2SHA256(ctx, password, rec.Salt, rec.Iterations, 64)
	if err != nil {
		return nil, nil, fmt.Errorf("vault: derive key: %w", err)
	}
	if len(dk) != 64 {
		return nil, nil, fmt.Errorf("vault: derive key: got %d bytes, want 64", len(dk))
	}
	sum := sha256.Sum256(dk[32:])
	clear(dk[32:])
	return dk[:32:32], sum[:], nil
}

func (v *Vault) open(ctx context.Context, rec *record, password string) ([]byte, *secret, error) {
	encKey, check, err := v.deriveKeys(ctx, password, rec)
	if err != nil {
		return nil, nil, err
	}
	if !ethcrypto.Equal(check, rec.Check) {
		clear(encKey)
		return nil, nil, ErrWrongPassword
	}
	gcm, err := newGCM(encKey)
	if err != nil {
		return nil, nil, err
	}
	if len(rec.Nonce) != gcm.NonceSize() {
		return nil, nil, fmt.Errorf("%w: nonce", ErrTampered)
	}
	plain, err := gcm.Open(nil, rec.Nonce, rec.Ciphertext, rec.aad())
	if err != nil {
		clear(encKey)
		return nil, nil, fmt.Errorf("%w: %v", ErrTampered, err)
	}
	defer clear(plain)
	var sec secret
	if err := json.Unmarshal(plain, &sec); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrTampered, err)
	}
	return encKey, &sec, nil
}

func seal(rec *record, encKey []byte, sec *secret) error {
	gcm, err := newGCM(encKey)
	if err != nil {
		return err
	}
	rec.Nonce = make([]byte, gcm.NonceSize())
	if _, err := rand.Read(rec.Nonce); err != nil {
		return fmt.Errorf("vault: random: %w", err)
	}
	plain, err := json.Marshal(sec)
	if err != nil {
		return fmt.Errorf("vault: encode secret: %w", err)
	}
	defer clear(plain)
	rec.Ciphertext = gcm.Seal(nil, rec.Nonce, plain, rec.aad())
	return nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("vault: aes: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("vault: gcm: %w", err)
	}
	return gcm, nil
}
