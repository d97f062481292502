package vault

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/keystore"
)

const devMnemonic = keys.DevMnemonic

// fastKDF records the iteration count it is asked for but runs one
// iteration, so the many unlocks below stay fast. TestRealKDF covers the
// real cost.
type fastKDF struct{ calls, minIters atomic.Int64 }

func (f *fastKDF) PBKDF2SHA256(_ context.Context, pw string, salt []byte, iters, n int) ([]byte, error) {
	f.calls.Add(1)
	if m := f.minIters.Load(); m == 0 || int64(iters) < m {
		f.minIters.Store(int64(iters))
	}
	return pbkdf2.Key(sha256.New, pw, salt, 1, n)
}

func newTestVault(t *testing.T) (*Vault, *MemoryStore, *fastKDF) {
	t.Helper()
	store := &MemoryStore{}
	kdf := &fastKDF{}
	return New(store, kdf, 0), store, kdf
}

func TestKnownAnswerPBKDF2SHA256(t *testing.T) {
	// RFC 7914 section 11, PBKDF2-HMAC-SHA256 test vector.
	dk, err := GoKDF{}.PBKDF2SHA256(context.Background(), "passwd", []byte("salt"), 1, 64)
	if err != nil {
		t.Fatal(err)
	}
	want := "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
	if got := hex.EncodeToString(dk); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestRestoreUnlockLock(t *testing.T) {
	ctx := context.Background()
	v, store, kdf := newTestVault(t)
	accts, err := v.Restore(ctx, devMnemonic, "", "hunter2hunter2")
	if err != nil {
		t.Fatal(err)
	}
	if accts[0].Hex() != "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" {
		t.Fatalf("account 0 = %s", accts[0])
	}
	if kdf.minIters.Load() < 600_000 {
		t.Fatalf("KDF ran with %d iterations, want >= 600000", kdf.minIters.Load())
	}
	a1, err := v.AddAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Hex() != "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" {
		t.Fatalf("account 1 = %s", a1)
	}
	// The stored record must not contain the mnemonic in any form.
	raw, _ := store.Load(ctx)
	for _, w := range []string{"test test", "junk", "dGVzdCB0ZXN0"} {
		if bytes.Contains(raw, []byte(w)) {
			t.Fatalf("stored record contains %q", w)
		}
	}

	v.Lock()
	if v.Unlocked() {
		t.Fatal("still unlocked after Lock")
	}
	if err := v.WithKey(a1, func(*ethcrypto.PrivateKey) error { return nil }); !errors.Is(err, ErrLocked) {
		t.Fatalf("WithKey while locked: %v", err)
	}
	if _, err := v.AddAccount(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("AddAccount while locked: %v", err)
	}
	locked, err := v.Accounts(ctx)
	if err != nil || len(locked) != 2 {
		t.Fatalf("Accounts while locked = %v, %v", locked, err)
	}

	// A new Vault over the same store (a page reload) unlocks both accounts.
	v2 := New(store, kdf, 0)
	got, err := v2.Unlock(ctx, "hunter2hunter2")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1] != a1 {
		t.Fatalf("accounts after unlock = %v", got)
	}
	err = v2.WithKey(a1, func(k *ethcrypto.PrivateKey) error {
		if k.Address() != a1 {
			t.Fatalf("WithKey gave %s", k.Address())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWrongPasswordLosesNothing(t *testing.T) {
	ctx := context.Background()
	v, store, _ := newTestVault(t)
	if _, err := v.Restore(ctx, devMnemonic, "", "right password"); err != nil {
		t.Fatal(err)
	}
	v.Lock()
	before, _ := store.Load(ctx)
	for _, pw := range []string{"wrong password", "", "Right password", "right password "} {
		if _, err := v.Unlock(ctx, pw); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("Unlock(%q) err = %v, want ErrWrongPassword", pw, err)
		}
		if v.Unlocked() {
			t.Fatal("unlocked with a wrong password")
		}
	}
	if _, err := v.ExportMnemonic(ctx, "wrong password"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("ExportMnemonic wrong password: %v", err)
	}
	after, _ := store.Load(ctx)
	if !bytes.Equal(before, after) {
		t.Fatal("stored record changed after failed unlocks")
	}
	if _, err := v.Unlock(ctx, "right password"); err != nil {
		t.Fatalf("right password after wrong ones: %v", err)
	}
}

func TestTamperDetected(t *testing.T) {
	ctx := context.Background()
	v, store, _ := newTestVault(t)
	if _, err := v.Restore(ctx, devMnemonic, "", "right password"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.AddAccount(ctx); err != nil {
		t.Fatal(err)
	}
	good, _ := store.Load(ctx)
	edit := func(f func(r *record)) []byte {
		var r record
		json.Unmarshal(good, &r)
		f(&r)
		b, _ := json.Marshal(&r)
		return b
	}
	attacker := ethcrypto.MustParseAddress("0x000000000000000000000000000000000000dEaD")
	tests := []struct {
		name string
		rec  []byte
		want error
	}{
		{"ciphertext bit flipped", edit(func(r *record) { r.Ciphertext[3] ^= 0x10 }), ErrTampered},
		{"ciphertext truncated", edit(func(r *record) { r.Ciphertext = r.Ciphertext[:len(r.Ciphertext)-1] }), ErrTampered},
		{"nonce changed", edit(func(r *record) { r.Nonce[0] ^= 1 }), ErrTampered},
		{"account swapped for attacker's", edit(func(r *record) { r.Accounts[1] = attacker }), ErrTampered},
		{"account dropped", edit(func(r *record) { r.Accounts = r.Accounts[:1] }), ErrTampered},
		{"iterations lowered", edit(func(r *record) { r.Iterations = 1000 }), ErrTampered},
		// fastKDF ignores the count, so the additional data catches it; with
		// the real KDF the key changes and it reads as a wrong password.
		{"iterations raised", edit(func(r *record) { r.Iterations++ }), ErrTampered},
		{"salt changed", edit(func(r *record) { r.Salt[0] ^= 1 }), ErrWrongPassword},
		{"not JSON", []byte("{"), ErrTampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &MemoryStore{}
			s.Save(ctx, tt.rec)
			v := New(s, &fastKDF{}, 0)
			if _, err := v.Unlock(ctx, "right password"); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if v.Unlocked() {
				t.Fatal("unlocked a tampered vault")
			}
		})
	}
}

func TestCreateAndExports(t *testing.T) {
	ctx := context.Background()
	v, _, _ := newTestVault(t)
	accts, err := v.Create(ctx, "correct horse", 128)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Create(ctx, "correct horse", 128); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	m, err := v.ExportMnemonic(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	master, err := keys.FromMnemonic(m, "")
	if err != nil {
		t.Fatal(err)
	}
	k0, _ := master.Account(0)
	if k0.Address() != accts[0] {
		t.Fatalf("exported mnemonic derives %s, vault has %s", k0.Address(), accts[0])
	}
	js, err := v.ExportKeystore(ctx, accts[0], "correct horse", "export password", keystore.LightScrypt)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keystore.Decrypt(js, "export password")
	if err != nil || k.Address() != accts[0] {
		t.Fatalf("keystore decrypts to %v, %v", k, err)
	}
	if _, err := v.ExportKeystore(ctx, accts[0], "wrong horse", "export password", keystore.LightScrypt); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("export with wrong password: %v", err)
	}
	other := ethcrypto.MustParseAddress("0x000000000000000000000000000000000000dEaD")
	if _, err := v.ExportKeystore(ctx, other, "correct horse", "export password", keystore.LightScrypt); !errors.Is(err, ErrUnknownAccount) {
		t.Fatalf("export unknown account: %v", err)
	}
}

func TestRejects(t *testing.T) {
	ctx := context.Background()
	v, _, _ := newTestVault(t)
	if _, err := v.Unlock(ctx, "anything"); !errors.Is(err, ErrNoVault) {
		t.Fatalf("unlock empty: %v", err)
	}
	if _, err := v.Restore(ctx, devMnemonic, "", "short"); !errors.Is(err, ErrWeakPassword) {
		t.Fatalf("short password: %v", err)
	}
	if _, err := v.Restore(ctx, "test test test", "", "long enough"); !errors.Is(err, keys.ErrInvalidMnemonic) {
		t.Fatalf("bad mnemonic: %v", err)
	}
}

// One real 600,000-iteration unlock, and the benchmark the README reports.
func TestRealKDF(t *testing.T) {
	if testing.Short() {
		t.Skip("600k PBKDF2 iterations")
	}
	ctx := context.Background()
	store := &MemoryStore{}
	v := New(store, nil, 0)
	if _, err := v.Restore(ctx, devMnemonic, "", "hunter2hunter2"); err != nil {
		t.Fatal(err)
	}
	v.Lock()
	if _, err := v.Unlock(ctx, "nope nope nope"); !errors.Is(err, ErrWrongPassword) {
		t.Fatal(err)
	}
	if _, err := v.Unlock(ctx, "hunter2hunter2"); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkUnlock600k(b *testing.B) {
	ctx := context.Background()
	store := &MemoryStore{}
	v := New(store, GoKDF{}, 600_000)
	if _, err := v.Restore(ctx, devMnemonic, "", "hunter2hunter2"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Unlock(ctx, "hunter2hunter2"); err != nil {
			b.Fatal(err)
		}
	}
}
