package vault

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"

	gethkeystore "github.com/ethereum/go-ethereum/accounts/keystore"
	gethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keystore"
)

const pw = "hunter2hunter2"

var (
	prfA = bytes.Repeat([]byte{0xa1}, 32)
	prfB = bytes.Repeat([]byte{0xb2}, 32)
)

// stored decodes the record in store.
func stored(t *testing.T, s *MemoryStore) record {
	t.Helper()
	b, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func raw(t *testing.T, s *MemoryStore) []byte {
	t.Helper()
	b, _ := s.Load(context.Background())
	return b
}

// failingStore refuses to save.
type failingStore struct{ MemoryStore }

func (*failingStore) Save(context.Context, []byte) error { return errors.New("disk full") }

// testdata/vault-v1.json was written by the version-1 code (commit e24f7b2)
// with fastKDF: the dev mnemonic, accounts 0 and 1, password hunter2hunter2.
func loadV1(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/vault-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMigrateV1(t *testing.T) {
	ctx := context.Background()
	v1 := loadV1(t)
	store := &MemoryStore{}
	store.Save(ctx, v1)
	v := New(store, &fastKDF{}, 0)
	info, err := v.Passkeys(ctx)
	if err != nil || info.Salt != nil || len(info.Passkeys) != 0 {
		t.Fatalf("passkeys of a v1 record = %+v, %v", info, err)
	}
	if _, err := v.UnlockWithPasskey(ctx, "cred", prfA); !errors.Is(err, ErrUnknownPasskey) {
		t.Fatalf("passkey unlock of v1: %v", err)
	}
	if _, err := v.Unlock(ctx, "wrong password"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if !bytes.Equal(raw(t, store), v1) {
		t.Fatal("a wrong password changed the v1 record")
	}
	// A migration that cannot be saved fails and leaves the v1 record.
	fs := &failingStore{}
	fs.MemoryStore.Save(ctx, v1)
	if _, err := New(fs, &fastKDF{}, 0).Unlock(ctx, pw); err == nil {
		t.Fatal("unlock succeeded though the migrated record could not be saved")
	}
	if b, _ := fs.Load(ctx); !bytes.Equal(b, v1) {
		t.Fatal("failed migration changed the record")
	}

	accts, err := v.Unlock(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if len(accts) != 2 || accts[0].Hex() != "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" || accts[1].Hex() != "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" {
		t.Fatalf("accounts after migration = %v", accts)
	}
	r := stored(t, store)
	if r.Version != 2 || r.Wrap == nil || len(r.PRFSalt) != 32 || r.Iterations != 600_000 {
		t.Fatalf("migrated record: version %d wrap %v prfSalt %x iterations %d", r.Version, r.Wrap, r.PRFSalt, r.Iterations)
	}
	for _, w := range []string{"test test", "junk", "dGVzdCB0ZXN0"} {
		if bytes.Contains(raw(t, store), []byte(w)) {
			t.Fatalf("migrated record contains %q", w)
		}
	}
	// A fresh vault (page reload) opens the v2 record with the same password.
	v2 := New(store, &fastKDF{}, 0)
	if got, err := v2.Unlock(ctx, pw); err != nil || !slices.Equal(got, accts) {
		t.Fatalf("unlock v2 = %v, %v", got, err)
	}
	if m, err := v2.ExportMnemonic(ctx, pw); err != nil || m != devMnemonic {
		t.Fatalf("mnemonic after migration = %q, %v", m, err)
	}
	// A tampered v1 record is still detected (not migrated).
	var tr record
	json.Unmarshal(v1, &tr)
	tr.Ciphertext[0] ^= 1
	tb, _ := json.Marshal(&tr)
	ts := &MemoryStore{}
	ts.Save(ctx, tb)
	if _, err := New(ts, &fastKDF{}, 0).Unlock(ctx, pw); !errors.Is(err, ErrTampered) {
		t.Fatalf("tampered v1: %v", err)
	}
	if b, _ := ts.Load(ctx); !bytes.Equal(b, tb) {
		t.Fatal("tampered v1 record was rewritten")
	}
}

// Enabling a passkey on a v1 record migrates it too.
func TestEnablePasskeyMigratesV1(t *testing.T) {
	ctx := context.Background()
	store := &MemoryStore{}
	store.Save(ctx, loadV1(t))
	v := New(store, &fastKDF{}, 0)
	if err := v.EnablePasskey(ctx, pw, "cred-A", prfA); err != nil {
		t.Fatal(err)
	}
	v.Lock()
	if r := stored(t, store); r.Version != 2 || len(r.Passkeys) != 1 {
		t.Fatalf("record version %d, %d passkeys", r.Version, len(r.Passkeys))
	}
	if a, err := New(store, &fastKDF{}, 0).UnlockWithPasskey(ctx, "cred-A", prfA); err != nil || len(a) != 2 {
		t.Fatalf("passkey unlock after migration: %v, %v", a, err)
	}
}

func TestPasskeyUnlock(t *testing.T) {
	ctx := context.Background()
	v, store, _ := newTestVault(t)
	accts, err := v.Restore(ctx, devMnemonic, "", pw)
	if err != nil {
		t.Fatal(err)
	}
	before := raw(t, store)
	if err := v.EnablePasskey(ctx, "wrong password", "cred-A", prfA); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("enable with wrong password: %v", err)
	}
	if err := v.EnablePasskey(ctx, pw, "cred-A", prfA[:16]); err == nil {
		t.Fatal("enabled with a 16-byte PRF output")
	}
	if !bytes.Equal(before, raw(t, store)) {
		t.Fatal("failed enables changed the record")
	}
	if err := v.EnablePasskey(ctx, pw, "cred-A", prfA); err != nil {
		t.Fatal(err)
	}
	if err := v.EnablePasskey(ctx, pw, "cred-B", prfB); err != nil {
		t.Fatal(err)
	}
	// Neither the PRF outputs nor the data key are stored.
	b := raw(t, store)
	for _, secret := range [][]byte{prfA, prfB, v.dataKey} {
		if bytes.Contains(b, secret) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString(secret))) {
			t.Fatal("record contains a PRF output or the data key")
		}
	}
	v.Lock()

	v = New(store, &fastKDF{}, 0) // page reload
	info, err := v.Passkeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(info.Salt, stored(t, store).PRFSalt) || len(info.Salt) != 32 || len(info.Passkeys) != 2 || info.Passkeys[0].ID != "cred-A" || info.Passkeys[1].ID != "cred-B" {
		t.Fatalf("passkeys = %+v", info)
	}
	before = raw(t, store)
	for _, c := range []struct {
		id   string
		prf  []byte
		want error
	}{
		{"cred-A", prfB, ErrWrongPasskey},
		{"cred-B", prfA, ErrWrongPasskey},
		{"cred-A", prfA[:31], ErrWrongPasskey},
		{"cred-C", prfA, ErrUnknownPasskey},
		{"", prfA, ErrUnknownPasskey},
	} {
		if _, err := v.UnlockWithPasskey(ctx, c.id, c.prf); !errors.Is(err, c.want) {
			t.Fatalf("UnlockWithPasskey(%s, %x): %v, want %v", c.id, c.prf[:2], err, c.want)
		}
		if v.Unlocked() {
			t.Fatal("unlocked with a wrong passkey")
		}
	}
	if !bytes.Equal(before, raw(t, store)) {
		t.Fatal("failed passkey unlocks changed the record")
	}
	got, err := v.UnlockWithPasskey(ctx, "cred-A", prfA)
	if err != nil || !slices.Equal(got, accts) {
		t.Fatalf("passkey unlock = %v, %v", got, err)
	}
	if err := v.WithKey(accts[0], func(*ethcrypto.PrivateKey) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// AddAccount under a passkey unlock re-seals with the data key: both ways still open.
	a1, err := v.AddAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v.Lock()
	if err := v.RemovePasskey(ctx, "cred-A"); !errors.Is(err, ErrLocked) {
		t.Fatalf("remove while locked: %v", err)
	}
	if got, err := v.UnlockWithPasskey(ctx, "cred-B", prfB); err != nil || len(got) != 2 || got[1] != a1 {
		t.Fatalf("passkey B unlock = %v, %v", got, err)
	}
	if err := v.RemovePasskey(ctx, "cred-X"); !errors.Is(err, ErrUnknownPasskey) {
		t.Fatalf("remove unknown: %v", err)
	}
	if err := v.RemovePasskey(ctx, "cred-A"); err != nil {
		t.Fatal(err)
	}
	v.Lock()
	if _, err := v.UnlockWithPasskey(ctx, "cred-A", prfA); !errors.Is(err, ErrUnknownPasskey) {
		t.Fatalf("removed passkey: %v", err)
	}
	if _, err := v.UnlockWithPasskey(ctx, "cred-B", prfB); err != nil {
		t.Fatalf("remaining passkey: %v", err)
	}
	v.Lock()
	if got, err := v.Unlock(ctx, pw); err != nil || len(got) != 2 {
		t.Fatalf("password after passkey changes: %v, %v", got, err)
	}
	// Re-enabling an id replaces its wrapping.
	if err := v.EnablePasskey(ctx, pw, "cred-B", prfA); err != nil {
		t.Fatal(err)
	}
	v.Lock()
	if _, err := v.UnlockWithPasskey(ctx, "cred-B", prfB); !errors.Is(err, ErrWrongPasskey) {
		t.Fatalf("replaced passkey, old PRF: %v", err)
	}
	if n := len(stored(t, store).Passkeys); n != 1 {
		t.Fatalf("%d passkeys stored, want 1", n)
	}
}

// geth makes a random key and its keystore file with go-ethereum.
func geth(t *testing.T, password string) (*ecdsa.PrivateKey, ethcrypto.Address, []byte) {
	t.Helper()
	k, err := gethcrypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr := gethcrypto.PubkeyToAddress(k.PublicKey)
	js, err := gethkeystore.EncryptKey(&gethkeystore.Key{Id: uuid.New(), Address: addr, PrivateKey: k}, password, gethkeystore.LightScryptN, gethkeystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	return k, ethcrypto.Address(addr), js
}

func TestImportKeystore(t *testing.T) {
	ctx := context.Background()
	v, store, _ := newTestVault(t)
	accts, err := v.Restore(ctx, devMnemonic, "", pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.EnablePasskey(ctx, pw, "cred-A", prfA); err != nil {
		t.Fatal(err)
	}
	gk, addr, file := geth(t, "keystore pw")
	before := raw(t, store)
	for _, c := range []struct {
		name     string
		file     []byte
		ksPw, pw string
		want     error
	}{
		{"wrong keystore password", file, "nope", pw, ErrKeystorePassword},
		{"wrong vault password", file, "keystore pw", "wrong password", ErrWrongPassword},
		{"not a keystore", []byte(`{"version":3}`), "keystore pw", pw, keystore.ErrInvalidFormat},
		{"not JSON", []byte("hello"), "keystore pw", pw, keystore.ErrInvalidFormat},
	} {
		if _, err := v.ImportKeystore(ctx, c.file, c.ksPw, c.pw); !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if !bytes.Equal(before, raw(t, store)) {
		t.Fatal("failed imports changed the record")
	}
	v.Lock()
	got, err := v.ImportKeystore(ctx, file, "keystore pw", pw)
	if err != nil || got != addr {
		t.Fatalf("import = %s, %v (want %s)", got, err, addr)
	}
	if !v.Unlocked() {
		t.Fatal("import with the password left the vault locked")
	}
	if list, _ := v.Accounts(ctx); !slices.Equal(list, []ethcrypto.Address{accts[0], addr}) {
		t.Fatalf("accounts = %v", list)
	}
	if bytes.Contains(raw(t, store), gethcrypto.FromECDSA(gk)) {
		t.Fatal("record holds the imported key in clear")
	}
	// The imported key signs: the signature recovers to its address.
	digest := ethcrypto.Keccak256([]byte("hello"))
	var sig []byte
	if err := v.WithKey(addr, func(k *ethcrypto.PrivateKey) (err error) { sig, err = k.Sign(digest); return }); err != nil {
		t.Fatal(err)
	}
	if who, err := ethcrypto.Recover(digest, sig); err != nil || who != addr {
		t.Fatalf("signature recovers to %s, %v", who, err)
	}
	if _, err := v.ImportKeystore(ctx, file, "keystore pw", pw); !errors.Is(err, ErrAccountExists) {
		t.Fatalf("second import: %v", err)
	}
	// An HD account's own keystore is refused too.
	own, err := v.ExportKeystore(ctx, accts[0], pw, "export password", keystore.LightScrypt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.ImportKeystore(ctx, own, "export password", pw); !errors.Is(err, ErrAccountExists) {
		t.Fatalf("import of account 0: %v", err)
	}
	// HD accounts keep their index after an import.
	a1, err := v.AddAccount(ctx)
	if err != nil || a1.Hex() != "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" {
		t.Fatalf("account 1 after import = %s, %v", a1, err)
	}
	want := []ethcrypto.Address{accts[0], a1, addr}
	v.Lock()
	for name, unlock := range map[string]func(*Vault) ([]ethcrypto.Address, error){
		"password": func(v *Vault) ([]ethcrypto.Address, error) { return v.Unlock(ctx, pw) },
		"passkey":  func(v *Vault) ([]ethcrypto.Address, error) { return v.UnlockWithPasskey(ctx, "cred-A", prfA) },
	} {
		v := New(store, &fastKDF{}, 0)
		if got, err := unlock(v); err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s unlock = %v, %v; want %v", name, got, err, want)
		}
		if err := v.WithKey(addr, func(*ethcrypto.PrivateKey) error { return nil }); err != nil {
			t.Fatalf("%s: WithKey(imported): %v", name, err)
		}
	}
	// Exported again, go-ethereum reads back the very key it wrote.
	out, err := v.ExportKeystore(ctx, addr, pw, "export password", keystore.LightScrypt)
	if err != nil {
		t.Fatal(err)
	}
	back, err := gethkeystore.DecryptKey(out, "export password")
	if err != nil {
		t.Fatal(err)
	}
	if !back.PrivateKey.Equal(gk) || ethcrypto.Address(back.Address) != addr {
		t.Fatal("exported keystore holds another key")
	}
}

func TestV2TamperDetected(t *testing.T) {
	ctx := context.Background()
	v, store, _ := newTestVault(t)
	if _, err := v.Restore(ctx, devMnemonic, "", pw); err != nil {
		t.Fatal(err)
	}
	if err := v.EnablePasskey(ctx, pw, "cred-A", prfA); err != nil {
		t.Fatal(err)
	}
	if err := v.EnablePasskey(ctx, pw, "cred-B", prfB); err != nil {
		t.Fatal(err)
	}
	_, _, file := geth(t, "keystore pw")
	if _, err := v.ImportKeystore(ctx, file, "keystore pw", pw); err != nil {
		t.Fatal(err)
	}
	good := raw(t, store)
	edit := func(f func(r *record)) []byte {
		var r record
		json.Unmarshal(good, &r)
		f(&r)
		b, _ := json.Marshal(&r)
		return b
	}
	attacker := ethcrypto.MustParseAddress("0x000000000000000000000000000000000000dEaD")
	byPw := func(v *Vault) error { _, err := v.Unlock(ctx, pw); return err }
	byPk := func(v *Vault) error { _, err := v.UnlockWithPasskey(ctx, "cred-A", prfA); return err }
	tests := []struct {
		name   string
		rec    []byte
		unlock func(*Vault) error
		want   error
	}{
		{"secret bit flipped (password)", edit(func(r *record) { r.Ciphertext[3] ^= 0x10 }), byPw, ErrTampered},
		{"secret bit flipped (passkey)", edit(func(r *record) { r.Ciphertext[3] ^= 0x10 }), byPk, ErrTampered},
		{"password wrapping flipped", edit(func(r *record) { r.Wrap.Key[0] ^= 1 }), byPw, ErrTampered},
		{"password wrapping missing", edit(func(r *record) { r.Wrap = nil }), byPw, ErrTampered},
		{"passkey wrapping flipped", edit(func(r *record) { r.Passkeys[0].Key[5] ^= 1 }), byPk, ErrTampered},
		{"passkey wrappings swapped", edit(func(r *record) {
			r.Passkeys[0].wrapping, r.Passkeys[1].wrapping = r.Passkeys[1].wrapping, r.Passkeys[0].wrapping
		}), byPw, ErrTampered},
		{"passkey dropped (password)", edit(func(r *record) { r.Passkeys = r.Passkeys[1:] }), byPw, ErrTampered},
		{"passkey date changed", edit(func(r *record) { r.Passkeys[1].Created++ }), byPk, ErrTampered},
		{"passkey check changed", edit(func(r *record) { r.Passkeys[0].Check[0] ^= 1 }), byPk, ErrWrongPasskey},
		{"PRF salt changed (passkey)", edit(func(r *record) { r.PRFSalt[0] ^= 1 }), byPk, ErrWrongPasskey},
		{"PRF salt changed (password)", edit(func(r *record) { r.PRFSalt[0] ^= 1 }), byPw, ErrTampered},
		{"imported account swapped", edit(func(r *record) { r.Imported[0] = attacker }), byPk, ErrTampered},
		{"imported account dropped", edit(func(r *record) { r.Imported = nil }), byPw, ErrTampered},
		{"HD account swapped", edit(func(r *record) { r.Accounts[0] = attacker }), byPw, ErrTampered},
		{"downgraded to version 1", edit(func(r *record) { r.Version = 1 }), byPw, ErrTampered},
		{"iterations lowered", edit(func(r *record) { r.Iterations = 1000 }), byPw, ErrTampered},
		{"iterations raised", edit(func(r *record) { r.Iterations++ }), byPw, ErrTampered},
		{"unknown version", edit(func(r *record) { r.Version = 3 }), byPk, ErrTampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &MemoryStore{}
			s.Save(ctx, tt.rec)
			v := New(s, &fastKDF{}, 0)
			if err := tt.unlock(v); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if v.Unlocked() {
				t.Fatal("unlocked a tampered vault")
			}
		})
	}
	// The untouched record opens both ways (the table is not vacuous).
	for _, unlock := range []func(*Vault) error{byPw, byPk} {
		s := &MemoryStore{}
		s.Save(ctx, good)
		if err := unlock(New(s, &fastKDF{}, 0)); err != nil {
			t.Fatal(err)
		}
	}
}

// The passkey path with the real 600,000-iteration KDF for the password part.
func TestRealKDFPasskey(t *testing.T) {
	if testing.Short() {
		t.Skip("600k PBKDF2 iterations")
	}
	ctx := context.Background()
	store := &MemoryStore{}
	v := New(store, nil, 0)
	if _, err := v.Restore(ctx, devMnemonic, "", pw); err != nil {
		t.Fatal(err)
	}
	if err := v.EnablePasskey(ctx, pw, "cred", prfA); err != nil {
		t.Fatal(err)
	}
	v.Lock()
	if _, err := v.UnlockWithPasskey(ctx, "cred", prfA); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkUnlockWithPasskey(b *testing.B) {
	ctx := context.Background()
	store := &MemoryStore{}
	v := New(store, &fastKDF{}, 0)
	if _, err := v.Restore(ctx, devMnemonic, "", pw); err != nil {
		b.Fatal(err)
	}
	if err := v.EnablePasskey(ctx, pw, "cred", prfA); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.UnlockWithPasskey(ctx, "cred", prfA); err != nil {
			b.Fatal(err)
		}
	}
}
