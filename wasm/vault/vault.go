// Package vault keeps the wallet's secret (the mnemonic and any imported
// keys) encrypted at rest and its keys in Go memory while unlocked.
//
// Record version 2: the secret is AES-256-GCM ciphertext under a random data
// key; the data key is wrapped (AES-256-GCM) once under a key from
// PBKDF2-HMAC-SHA256 of the password with at least 600,000 iterations (OWASP
// 2023 guidance, as MetaMask uses) and once under a key from each enabled
// passkey's WebAuthn PRF output (HKDF-SHA256). The whole record but the
// secret's own nonce and ciphertext is the secret's GCM additional data, so
// the header, the account lists and every wrapping are authenticated.
// Version 1 (the secret directly under the password key) is read and
// rewritten as version 2 on the next password unlock.
package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

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
	// altered (ciphertext, header, account list or a wrapping): refuse to use it.
	ErrTampered       = errors.New("vault: stored wallet was tampered with or corrupted")
	ErrWeakPassword   = errors.New("vault: password must be at least 8 characters")
	ErrUnknownAccount = errors.New("vault: account not in this wallet")
	// ErrWrongPasskey means the passkey is enabled for this wallet but its PRF
	// output does not open it (another salt, another authenticator).
	ErrWrongPasskey = errors.New("vault: this passkey does not unlock the wallet")
	// ErrUnknownPasskey means no passkey with that credential id is enabled.
	ErrUnknownPasskey = errors.New("vault: passkey not enabled for this wallet")
	// ErrKeystorePassword means an imported keystore file did not open with
	// the password given for it (the vault's own password was right).
	ErrKeystorePassword = errors.New("vault: wrong password for the keystore file")
	ErrAccountExists    = errors.New("vault: account already in this wallet")
	// ErrNotImported refuses to remove an account derived from the recovery phrase: it
	// would come back with the phrase, and every account after it is numbered by it.
	ErrNotImported = errors.New("vault: only an imported account can be removed; this one is derived from the recovery phrase")
	// ErrInvalidName refuses an account name (see CleanName).
	ErrInvalidName = errors.New("vault: invalid account name")
)

const (
	// MinIterations is the floor for PBKDF2; a record asking for fewer is
	// treated as tampered (someone weakening the next encryption).
	MinIterations     = 600_000
	recordVersion     = 2
	kdfName           = "pbkdf2-sha256"
	minPasswordLength = 8
	maxAccounts       = 100
	maxPasskeys       = 10
	maxCredentialID   = 1023 // WebAuthn credential ids are at most 1023 bytes
	// PRFLength is the size of a WebAuthn PRF output.
	PRFLength   = 32
	passkeyInfo = "stagepass vault passkey v1|"
)

// record is the stored JSON.
type record struct {
	Version    int    `json:"version"`
	KDF        string `json:"kdf"`
	Iterations int    `json:"iterations"`
	Salt       []byte `json:"salt"`
	Check      []byte `json:"check"` // SHA-256 of the second half of the PBKDF2 output
	// Version 2: the data key under the password key, the per-vault PRF salt
	// the page asks passkeys to evaluate, and one wrapping per passkey.
	Wrap     *wrapping           `json:"wrap,omitempty"`
	PRFSalt  []byte              `json:"prfSalt,omitempty"`
	Passkeys []passkey           `json:"passkeys,omitempty"`
	Accounts []ethcrypto.Address `json:"accounts"` // m/44'/60'/0'/0/i, in order
	Imported []ethcrypto.Address `json:"imported,omitempty"`
	// Names the user gave accounts (not secret; authenticated with the rest of the
	// record, so a changed name is VAULT_TAMPERED at unlock like a changed account).
	Names map[ethcrypto.Address]string `json:"names,omitempty"`
	// The secret: under the data key (v2) or the password key (v1).
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// wrapping is the 32-byte data key sealed with AES-256-GCM.
type wrapping struct {
	Nonce []byte `json:"nonce"`
	Key   []byte `json:"key"`
}

type passkey struct {
	ID      string `json:"id"` // the WebAuthn credential id as the page gives it (base64url)
	Created int64  `json:"created"`
	Check   []byte `json:"check"` // SHA-256 of the second half of the HKDF output
	wrapping
}

// aad is the secret's additional data: version 1 covered the header and the
// accounts; version 2 covers every field but the secret's nonce and ciphertext.
func (r *record) aad() []byte {
	if r.Version == 1 {
		b := []byte("stagepass-vault|1|" + r.KDF + "|" + strconv.Itoa(r.Iterations) + "|")
		b = append(b, r.Salt...)
		for _, a := range r.Accounts {
			b = append(b, a[:]...)
		}
		return b
	}
	h := *r
	h.Nonce, h.Ciphertext = nil, nil
	b, _ := json.Marshal(&h) // plain structs: cannot fail
	return append([]byte("stagepass-vault|2|"), b...)
}

// wrapAAD binds a wrapping to its slot and its vault.
func (r *record) wrapAAD(slot string) []byte {
	return append([]byte("stagepass-vault-wrap|"+slot+"|"), r.Salt...)
}

// secret is the plaintext inside the ciphertext.
type secret struct {
	Mnemonic   string   `json:"mnemonic"`
	Passphrase string   `json:"passphrase,omitempty"`
	Imported   [][]byte `json:"imported,omitempty"` // private keys of record.Imported, same order
}

// Vault is safe for concurrent use.
type Vault struct {
	store      Store
	kdf        KDF
	iterations int
	// Now stamps passkeys (tests pin it).
	Now func() time.Time

	mu      sync.Mutex
	rec     *record
	dataKey []byte // held only while unlocked (to re-seal on changes)
	master  *keys.Master
	keys    map[ethcrypto.Address]*ethcrypto.PrivateKey
	secret  *secret
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
	return &Vault{store: store, kdf: kdf, iterations: iterations, Now: time.Now}
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
	defer master.Zero()
	if ok, err := v.Exists(ctx); err != nil {
		return nil, fmt.Errorf("vault: load: %w", err)
	} else if ok {
		return nil, ErrExists
	}
	k0, err := master.Account(0)
	if err != nil {
		return nil, err
	}
	defer k0.Zero()
	rec := &record{Version: recordVersion, KDF: kdfName, Iterations: v.iterations, Accounts: []ethcrypto.Address{k0.Address()}}
	if rec.Salt, err = random(32); err != nil {
		return nil, err
	}
	pwKey, check, err := v.passwordKeys(ctx, password, rec)
	if err != nil {
		return nil, err
	}
	defer clear(pwKey)
	rec.Check = check
	dataKey, err := v.upgrade(rec, pwKey)
	if err != nil {
		return nil, err
	}
	sec := &secret{Mnemonic: mnemonic, Passphrase: passphrase}
	if err := seal(rec, dataKey, sec); err != nil {
		return nil, err
	}
	if err := v.save(ctx, rec); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.install(rec, dataKey, sec)
}

// upgrade makes rec a version-2 record: a fresh data key wrapped by pwKey and
// a fresh PRF salt. It returns the data key; the caller seals the secret.
func (v *Vault) upgrade(rec *record, pwKey []byte) ([]byte, error) {
	dataKey, err := random(32)
	if err != nil {
		return nil, err
	}
	if rec.PRFSalt, err = random(32); err != nil {
		return nil, err
	}
	rec.Version = recordVersion
	if rec.Wrap, err = wrap(pwKey, dataKey, rec.wrapAAD("password")); err != nil {
		return nil, err
	}
	return dataKey, nil
}

// Unlock decrypts the stored secret with the password and derives the
// accounts. A wrong password returns ErrWrongPassword and changes nothing, in
// memory or stored. A version-1 record is rewritten as version 2 first (if
// that save fails the version-1 record stays as it was and Unlock fails).
func (v *Vault) Unlock(ctx context.Context, password string) ([]ethcrypto.Address, error) {
	rec, err := v.load(ctx)
	if err != nil {
		return nil, err
	}
	wasV1 := rec.Version == 1
	dataKey, sec, err := v.openPassword(ctx, rec, password)
	if err != nil {
		return nil, err
	}
	if wasV1 {
		if err := v.save(ctx, rec); err != nil {
			clear(dataKey)
			return nil, err
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.install(rec, dataKey, sec)
}

// UnlockWithPasskey opens the vault with the PRF output of the passkey
// credentialID evaluated on the vault's PRF salt (see Passkeys).
func (v *Vault) UnlockWithPasskey(ctx context.Context, credentialID string, prf []byte) ([]ethcrypto.Address, error) {
	rec, err := v.load(ctx)
	if err != nil {
		return nil, err
	}
	i := rec.passkey(credentialID)
	if i < 0 {
		return nil, ErrUnknownPasskey
	}
	if len(prf) != PRFLength {
		return nil, fmt.Errorf("%w: PRF output is %d bytes, want %d", ErrWrongPasskey, len(prf), PRFLength)
	}
	pk := rec.Passkeys[i]
	key, check, err := passkeyKeys(rec, credentialID, prf)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	if !ethcrypto.Equal(check, pk.Check) {
		return nil, ErrWrongPasskey
	}
	dataKey, err := unwrap(key, &pk.wrapping, rec.wrapAAD("passkey|"+credentialID))
	if err != nil {
		return nil, err
	}
	sec, err := open(rec, dataKey)
	if err != nil {
		clear(dataKey)
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.install(rec, dataKey, sec)
}

// PasskeyInfo is what the page needs for navigator.credentials.get: the PRF
// salt to evaluate and the enabled credentials. It holds no secret.
type PasskeyInfo struct {
	Salt     []byte
	Passkeys []PasskeyID
}

// PasskeyID names one enabled passkey.
type PasskeyID struct {
	ID      string `json:"id"`
	Created int64  `json:"created"`
}

// Passkeys lists the enabled passkeys and the PRF salt (read from the stored
// record while locked; authenticated only at unlock, like the accounts).
// A version-1 record has neither yet.
func (v *Vault) Passkeys(ctx context.Context) (PasskeyInfo, error) {
	v.mu.Lock()
	rec := v.rec
	v.mu.Unlock()
	if rec == nil {
		var err error
		if rec, err = v.load(ctx); err != nil {
			return PasskeyInfo{}, err
		}
	}
	info := PasskeyInfo{Salt: rec.PRFSalt, Passkeys: []PasskeyID{}}
	for _, p := range rec.Passkeys {
		info.Passkeys = append(info.Passkeys, PasskeyID{p.ID, p.Created})
	}
	return info, nil
}

// EnablePasskey adds (or replaces) a wrapping of the data key under a key
// derived from the passkey's PRF output, after checking the password. The
// vault is unlocked afterwards.
func (v *Vault) EnablePasskey(ctx context.Context, password, credentialID string, prf []byte) error {
	if credentialID == "" || len(credentialID) > maxCredentialID*2 {
		return fmt.Errorf("vault: credential id must be 1 to %d characters", maxCredentialID*2)
	}
	if len(prf) != PRFLength {
		return fmt.Errorf("vault: PRF output is %d bytes, want %d", len(prf), PRFLength)
	}
	return v.change(ctx, password, func(rec *record, dataKey []byte, _ *secret) error {
		key, check, err := passkeyKeys(rec, credentialID, prf)
		if err != nil {
			return err
		}
		defer clear(key)
		w, err := wrap(key, dataKey, rec.wrapAAD("passkey|"+credentialID))
		if err != nil {
			return err
		}
		if i := rec.passkey(credentialID); i >= 0 {
			rec.Passkeys = slices.Delete(slices.Clone(rec.Passkeys), i, i+1)
		}
		if len(rec.Passkeys) >= maxPasskeys {
			return fmt.Errorf("vault: at most %d passkeys", maxPasskeys)
		}
		rec.Passkeys = append(slices.Clone(rec.Passkeys), passkey{ID: credentialID, Created: v.Now().Unix(), Check: check, wrapping: *w})
		return nil
	})
}

// RemovePasskey drops a passkey's wrapping (the vault must be unlocked). The
// password always keeps working.
func (v *Vault) RemovePasskey(ctx context.Context, credentialID string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys == nil {
		return ErrLocked
	}
	i := v.rec.passkey(credentialID)
	if i < 0 {
		return ErrUnknownPasskey
	}
	rec := *v.rec
	rec.Passkeys = slices.Delete(slices.Clone(rec.Passkeys), i, i+1)
	if err := seal(&rec, v.dataKey, v.secret); err != nil {
		return err
	}
	if err := v.save(ctx, &rec); err != nil {
		return err
	}
	v.rec = &rec
	return nil
}

// ImportKeystore adds the private key of a keystore v3 file as an imported
// account, encrypted in the same secret, after checking the vault password.
// A wrong keystore password is ErrKeystorePassword; nothing is changed on any
// error. The vault is unlocked afterwards.
func (v *Vault) ImportKeystore(ctx context.Context, keystoreJSON []byte, keystorePassword, password string) (ethcrypto.Address, error) {
	// Decrypted before taking the vault's lock: scrypt may take seconds.
	k, err := keystore.Decrypt(keystoreJSON, keystorePassword)
	if errors.Is(err, keystore.ErrWrongPassword) {
		return ethcrypto.Address{}, ErrKeystorePassword
	} else if err != nil {
		return ethcrypto.Address{}, err
	}
	defer k.Zero()
	addr := k.Address()
	err = v.change(ctx, password, func(rec *record, _ []byte, sec *secret) error {
		if slices.Contains(rec.Accounts, addr) || slices.Contains(rec.Imported, addr) {
			return fmt.Errorf("%w: %s", ErrAccountExists, addr)
		}
		if len(rec.Imported) >= maxAccounts {
			return fmt.Errorf("vault: at most %d imported accounts", maxAccounts)
		}
		rec.Imported = append(slices.Clone(rec.Imported), addr)
		sec.Imported = append(sec.Imported, k.Bytes())
		return nil
	})
	return addr, err
}

// change opens the stored record with the password (upgrading a version-1
// record), lets edit change the record and the secret, re-seals, saves and
// leaves the vault unlocked with the result. On any error nothing changes.
func (v *Vault) change(ctx context.Context, password string, edit func(rec *record, dataKey []byte, sec *secret) error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	rec, err := v.load(ctx)
	if err != nil {
		return err
	}
	dataKey, sec, err := v.openPassword(ctx, rec, password)
	if err != nil {
		return err
	}
	if err = edit(rec, dataKey, sec); err == nil {
		err = seal(rec, dataKey, sec)
	}
	if err == nil {
		err = v.save(ctx, rec)
	}
	if err == nil {
		_, err = v.install(rec, dataKey, sec)
	}
	if err != nil {
		clear(dataKey)
	}
	return err
}

func (r *record) passkey(id string) int {
	return slices.IndexFunc(r.Passkeys, func(p passkey) bool { return p.ID == id })
}

// install derives every account of rec from sec and makes it the unlocked
// state (v.mu held). A key that does not match its recorded address fails.
func (v *Vault) install(rec *record, dataKey []byte, sec *secret) ([]ethcrypto.Address, error) {
	master, ks, err := accountKeys(rec, sec)
	if err != nil {
		clear(dataKey)
		return nil, err
	}
	v.lockLocked()
	v.rec, v.dataKey, v.master, v.keys, v.secret = rec, dataKey, master, ks, sec
	return rec.all(), nil
}

// accountKeys derives the HD accounts and reads the imported keys.
func accountKeys(rec *record, sec *secret) (*keys.Master, map[ethcrypto.Address]*ethcrypto.PrivateKey, error) {
	master, err := keys.FromMnemonic(sec.Mnemonic, sec.Passphrase)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: stored mnemonic: %v", ErrTampered, err)
	}
	ks := map[ethcrypto.Address]*ethcrypto.PrivateKey{}
	fail := func(err error) (*keys.Master, map[ethcrypto.Address]*ethcrypto.PrivateKey, error) {
		for _, k := range ks {
			k.Zero()
		}
		master.Zero()
		return nil, nil, err
	}
	for i, want := range rec.Accounts {
		k, err := master.Account(uint32(i))
		if err != nil {
			return fail(err)
		}
		ks[k.Address()] = k
		if k.Address() != want {
			// Authenticated by GCM, so this cannot happen unless the
			// derivation code changed; never sign with a surprise key.
			return fail(fmt.Errorf("%w: account %d is %s, record says %s", ErrTampered, i, k.Address(), want))
		}
	}
	if len(sec.Imported) != len(rec.Imported) {
		return fail(fmt.Errorf("%w: %d imported keys for %d accounts", ErrTampered, len(sec.Imported), len(rec.Imported)))
	}
	for i, want := range rec.Imported {
		k, err := ethcrypto.PrivateKeyFromBytes(sec.Imported[i])
		if err != nil {
			return fail(fmt.Errorf("%w: imported key %d: %v", ErrTampered, i, err))
		}
		ks[k.Address()] = k
		if k.Address() != want {
			return fail(fmt.Errorf("%w: imported key %d is %s, record says %s", ErrTampered, i, k.Address(), want))
		}
	}
	return master, ks, nil
}

// all lists the HD accounts, then the imported ones.
func (r *record) all() []ethcrypto.Address {
	return append(append([]ethcrypto.Address(nil), r.Accounts...), r.Imported...)
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
	clear(v.dataKey)
	if v.secret != nil {
		for _, b := range v.secret.Imported {
			clear(b)
		}
		// Go strings are immutable; dropping the reference is all we can do.
		v.secret = nil
	}
	v.keys, v.master, v.dataKey = nil, nil, nil
}

// Unlocked reports whether keys are in memory.
func (v *Vault) Unlocked() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.keys != nil
}

// Accounts lists the wallet's addresses: the HD accounts in order, then the
// imported ones. While locked they come from the stored record (for
// display; they are authenticated only at unlock).
func (v *Vault) Accounts(ctx context.Context) ([]ethcrypto.Address, error) {
	v.mu.Lock()
	if v.keys != nil {
		defer v.mu.Unlock()
		return v.rec.all(), nil
	}
	v.mu.Unlock()
	rec, err := v.load(ctx)
	if err != nil {
		return nil, err
	}
	return rec.all(), nil
}

// ImportedAccounts lists the imported addresses (the tail of Accounts), locked
// or not, as Accounts does.
func (v *Vault) ImportedAccounts(ctx context.Context) ([]ethcrypto.Address, error) {
	v.mu.Lock()
	if v.keys != nil {
		defer v.mu.Unlock()
		return slices.Clone(v.rec.Imported), nil
	}
	v.mu.Unlock()
	rec, err := v.load(ctx)
	if err != nil {
		return nil, err
	}
	return rec.Imported, nil
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
	if slices.Contains(v.rec.Imported, k.Address()) {
		k.Zero()
		return ethcrypto.Address{}, fmt.Errorf("%w: %s (imported)", ErrAccountExists, k.Address())
	}
	rec := *v.rec
	rec.Accounts = append(slices.Clone(v.rec.Accounts), k.Address())
	if err := seal(&rec, v.dataKey, v.secret); err != nil {
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
	dataKey, sec, err := v.openPassword(ctx, rec, password)
	if err != nil {
		return "", err
	}
	clear(dataKey)
	return sec.Mnemonic, nil
}

// ExportKeystore writes account addr (derived or imported) as keystore v3
// JSON encrypted with exportPassword, after confirming the vault password.
func (v *Vault) ExportKeystore(ctx context.Context, addr ethcrypto.Address, password, exportPassword string, p keystore.ScryptParams) ([]byte, error) {
	if len([]rune(exportPassword)) < minPasswordLength {
		return nil, ErrWeakPassword
	}
	rec, err := v.load(ctx)
	if err != nil {
		return nil, err
	}
	dataKey, sec, err := v.openPassword(ctx, rec, password)
	if err != nil {
		return nil, err
	}
	clear(dataKey)
	if !slices.Contains(rec.all(), addr) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownAccount, addr)
	}
	master, ks, err := accountKeys(rec, sec)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, k := range ks {
			k.Zero()
		}
		master.Zero()
	}()
	return keystore.Encrypt(ks[addr], exportPassword, p)
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
	ok := rec.KDF == kdfName && rec.Iterations >= MinIterations && len(rec.Salt) >= 16 && len(rec.Check) == 32 &&
		len(rec.Accounts) > 0 && len(rec.Accounts) <= maxAccounts
	switch rec.Version {
	case 1:
		ok = ok && rec.Wrap == nil && rec.PRFSalt == nil && rec.Passkeys == nil && rec.Imported == nil && rec.Names == nil
	case 2:
		ok = ok && rec.Wrap != nil && len(rec.PRFSalt) == 32 && len(rec.Passkeys) <= maxPasskeys && len(rec.Imported) <= maxAccounts &&
			len(rec.Names) <= 2*maxAccounts
		for _, p := range rec.Passkeys {
			ok = ok && len(p.Check) == 32
		}
	default:
		ok = false
	}
	if !ok {
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

// passwordKeys returns the password key and its check. One PBKDF2 call
// yields 64 bytes: the first half is the key, the hash of the second half is
// stored so a wrong password (ErrWrongPassword) is told apart from a
// tampered record (ErrTampered). The check gives an attacker nothing the
// ciphertext does not: both need the full PBKDF2 cost per guess.
func (v *Vault) passwordKeys(ctx context.Context, password string, rec *record) (key, check []byte, err error) {
	dk, err := v.kdf.PBKDF2SHA256(ctx, password, rec.Salt, rec.Iterations, 64)
	if err != nil {
		return nil, nil, fmt.Errorf("vault: derive key: %w", err)
	}
	if len(dk) != 64 {
		return nil, nil, fmt.Errorf("vault: derive key: got %d bytes, want 64", len(dk))
	}
	return splitCheck(dk)
}

// passkeyKeys derives a passkey's wrapping key and check from its PRF output
// with HKDF-SHA256 (salt: the vault's PRF salt; info: a label and the
// credential id), the same split as the password's.
func passkeyKeys(rec *record, credentialID string, prf []byte) (key, check []byte, err error) {
	dk, err := hkdf.Key(sha256.New, prf, rec.PRFSalt, passkeyInfo+credentialID, 64)
	if err != nil {
		return nil, nil, fmt.Errorf("vault: hkdf: %w", err)
	}
	return splitCheck(dk)
}

func splitCheck(dk []byte) (key, check []byte, err error) {
	sum := sha256.Sum256(dk[32:])
	clear(dk[32:])
	return dk[:32:32], sum[:], nil
}

// openPassword checks the password and returns the data key and the secret.
// A version-1 record is upgraded in place to version 2 (not saved here).
func (v *Vault) openPassword(ctx context.Context, rec *record, password string) ([]byte, *secret, error) {
	pwKey, check, err := v.passwordKeys(ctx, password, rec)
	if err != nil {
		return nil, nil, err
	}
	defer clear(pwKey)
	if !ethcrypto.Equal(check, rec.Check) {
		return nil, nil, ErrWrongPassword
	}
	if rec.Version == 1 {
		sec, err := open(rec, pwKey)
		if err != nil {
			return nil, nil, err
		}
		dataKey, err := v.upgrade(rec, pwKey)
		if err == nil {
			err = seal(rec, dataKey, sec)
		}
		if err != nil {
			return nil, nil, err
		}
		return dataKey, sec, nil
	}
	dataKey, err := unwrap(pwKey, rec.Wrap, rec.wrapAAD("password"))
	if err != nil {
		return nil, nil, err
	}
	sec, err := open(rec, dataKey)
	if err != nil {
		clear(dataKey)
		return nil, nil, err
	}
	return dataKey, sec, nil
}

// open decrypts the secret.
func open(rec *record, key []byte) (*secret, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(rec.Nonce) != gcm.NonceSize() {
		return nil, fmt.Errorf("%w: nonce", ErrTampered)
	}
	plain, err := gcm.Open(nil, rec.Nonce, rec.Ciphertext, rec.aad())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTampered, err)
	}
	defer clear(plain)
	var sec secret
	if err := json.Unmarshal(plain, &sec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTampered, err)
	}
	return &sec, nil
}

func seal(rec *record, key []byte, sec *secret) error {
	plain, err := json.Marshal(sec)
	if err != nil {
		return fmt.Errorf("vault: encode secret: %w", err)
	}
	defer clear(plain)
	rec.Nonce, rec.Ciphertext = nil, nil
	nonce, ct, err := gcmSeal(key, plain, rec.aad())
	rec.Nonce, rec.Ciphertext = nonce, ct
	return err
}

func wrap(key, dataKey, aad []byte) (*wrapping, error) {
	nonce, ct, err := gcmSeal(key, dataKey, aad)
	if err != nil {
		return nil, err
	}
	return &wrapping{Nonce: nonce, Key: ct}, nil
}

// unwrap opens a wrapping whose key passed its check: a failure is tampering.
func unwrap(key []byte, w *wrapping, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(w.Nonce) != gcm.NonceSize() {
		return nil, fmt.Errorf("%w: wrapping nonce", ErrTampered)
	}
	dataKey, err := gcm.Open(nil, w.Nonce, w.Key, aad)
	if err != nil || len(dataKey) != 32 {
		return nil, fmt.Errorf("%w: wrapped key", ErrTampered)
	}
	return dataKey, nil
}

func gcmSeal(key, plain, aad []byte) (nonce, ct []byte, err error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, nil, err
	}
	if nonce, err = random(gcm.NonceSize()); err != nil {
		return nil, nil, err
	}
	return nonce, gcm.Seal(nil, nonce, plain, aad), nil
}

func random(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("vault: random: %w", err)
	}
	return b, nil
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
