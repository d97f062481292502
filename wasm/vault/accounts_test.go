package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keystore"
)

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"Concerts": "Concerts", "  Work \t": "Work", "Été 2027 🎸": "Été 2027 🎸",
		strings.Repeat("é", 32): strings.Repeat("é", 32),
	} {
		if got, err := CleanName(in); err != nil || got != want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "   ", strings.Repeat("a", 33), "a\nb", "tab\tinside", "nul\x00", "\u202eevil",
		"line\u2028sep", "del\x7f", "bad \xff utf8"} {
		if got, err := CleanName(in); !errors.Is(err, ErrInvalidName) {
			t.Errorf("CleanName(%q) = %q, %v; want ErrInvalidName", in, got, err)
		}
	}
}

// Names live in the stored record beside the account lists: they survive lock, unlock and a
// new vault over the same store (a reload), are authenticated with the record, and a
// restore from the phrase starts with none.
func TestAccountNames(t *testing.T) {
	ctx := context.Background()
	v, store, kdf := newTestVault(t)
	accts, err := v.Restore(ctx, devMnemonic, "", "hunter2hunter2")
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := v.AddAccount(ctx)
	if _, err := v.RenameAccount(ctx, accts[0], " Concerts "); err != nil {
		t.Fatal(err)
	}
	if _, err := v.RenameAccount(ctx, a1, "Work"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.RenameAccount(ctx, a1, "Work trips"); err != nil { // renamed again
		t.Fatal(err)
	}
	if _, err := v.RenameAccount(ctx, a1, "\t"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("blank name: %v", err)
	}
	if _, err := v.RenameAccount(ctx, ethcrypto.Address{1}, "Other"); !errors.Is(err, ErrUnknownAccount) {
		t.Fatalf("an account not in the wallet: %v", err)
	}
	want := map[ethcrypto.Address]string{accts[0]: "Concerts", a1: "Work trips"}
	check := func(v *Vault, when string) {
		t.Helper()
		names, err := v.Names(ctx)
		if err != nil || len(names) != 2 || names[accts[0]] != want[accts[0]] || names[a1] != want[a1] {
			t.Fatalf("%s: names %v, %v", when, names, err)
		}
	}
	check(v, "unlocked")
	v.Lock()
	if _, err := v.RenameAccount(ctx, a1, "x"); !errors.Is(err, ErrLocked) {
		t.Fatalf("rename while locked: %v", err)
	}
	check(v, "locked")
	if _, err := v.Unlock(ctx, "hunter2hunter2"); err != nil {
		t.Fatal(err)
	}
	check(v, "unlocked again")
	reloaded := New(store, kdf, 0) // a page reload: a new vault over the same storage
	check(reloaded, "reloaded, locked")
	if _, err := reloaded.Unlock(ctx, "hunter2hunter2"); err != nil {
		t.Fatal(err)
	}
	check(reloaded, "reloaded, unlocked")

	// A changed name is a changed record.
	raw, _ := store.Load(ctx)
	bad := bytes.Replace(raw, []byte("Work trips"), []byte("Work tripz"), 1)
	if bytes.Equal(bad, raw) {
		t.Fatal("name not in the stored record")
	}
	tampered := &MemoryStore{}
	tampered.Save(ctx, bad)
	if _, err := New(tampered, kdf, 0).Unlock(ctx, "hunter2hunter2"); !errors.Is(err, ErrTampered) {
		t.Fatalf("unlock of a record with a changed name: %v", err)
	}

	// Restoring the phrase elsewhere starts with no names.
	fresh, _, _ := newTestVault(t)
	fresh.Restore(ctx, devMnemonic, "", "hunter2hunter2")
	if names, err := fresh.Names(ctx); err != nil || len(names) != 0 {
		t.Fatalf("restored wallet's names: %v, %v", names, err)
	}
}

// An imported account is removed only with the password: its key is gone from the stored
// secret and from memory, its name with it, and a new vault over the same store agrees.
// HD accounts are refused, and nothing changes on any error.
func TestRemoveImportedAccount(t *testing.T) {
	ctx := context.Background()
	v, store, kdf := newTestVault(t)
	accts, _ := v.Restore(ctx, devMnemonic, "", "hunter2hunter2")
	imp := make([]ethcrypto.Address, 2)
	for i := range imp {
		k, _ := ethcrypto.PrivateKeyFromBytes(bytes.Repeat([]byte{byte(0x11 * (i + 1))}, 32))
		file, _ := keystore.Encrypt(k, "file password", keystore.LightScrypt)
		var err error
		if imp[i], err = v.ImportKeystore(ctx, file, "file password", "hunter2hunter2"); err != nil {
			t.Fatal(err)
		}
	}
	v.RenameAccount(ctx, imp[0], "Old phone")
	v.RenameAccount(ctx, accts[0], "Main")
	before, _ := store.Load(ctx)

	for _, c := range []struct {
		addr     ethcrypto.Address
		password string
		want     error
	}{
		{imp[0], "wrong password", ErrWrongPassword},
		{accts[0], "hunter2hunter2", ErrNotImported},
		{ethcrypto.Address{9}, "hunter2hunter2", ErrUnknownAccount},
	} {
		if err := v.RemoveAccount(ctx, c.addr, c.password); !errors.Is(err, c.want) {
			t.Fatalf("remove %s with %q: %v, want %v", c.addr, c.password, err, c.want)
		}
	}
	if after, _ := store.Load(ctx); !bytes.Equal(after, before) {
		t.Fatal("a refused removal changed the stored record")
	}
	if err := v.WithKey(imp[0], func(*ethcrypto.PrivateKey) error { return nil }); err != nil {
		t.Fatalf("a refused removal dropped the key: %v", err)
	}

	if err := v.RemoveAccount(ctx, imp[0], "hunter2hunter2"); err != nil {
		t.Fatal(err)
	}
	for _, vv := range []*Vault{v, New(store, kdf, 0)} {
		if !vv.Unlocked() {
			if _, err := vv.Unlock(ctx, "hunter2hunter2"); err != nil {
				t.Fatal(err)
			}
		}
		all, _ := vv.Accounts(ctx)
		imported, _ := vv.ImportedAccounts(ctx)
		names, _ := vv.Names(ctx)
		if len(all) != 2 || all[1] != imp[1] || len(imported) != 1 || imported[0] != imp[1] {
			t.Fatalf("accounts after removal: %v, imported %v", all, imported)
		}
		if _, ok := names[imp[0]]; ok || names[accts[0]] != "Main" {
			t.Fatalf("names after removal: %v", names)
		}
		if err := vv.WithKey(imp[0], func(*ethcrypto.PrivateKey) error { return nil }); !errors.Is(err, ErrUnknownAccount) {
			t.Fatalf("the removed key still signs: %v", err)
		}
		if _, err := vv.ExportKeystore(ctx, imp[0], "hunter2hunter2", "export password", keystore.LightScrypt); !errors.Is(err, ErrUnknownAccount) {
			t.Fatalf("the removed key still exports: %v", err)
		}
	}
	// The secret holds one imported key now (the stored ciphertext, opened).
	rec, _ := v.load(ctx)
	dk, sec, err := v.openPassword(ctx, rec, "hunter2hunter2")
	clear(dk)
	if err != nil || len(sec.Imported) != 1 {
		t.Fatalf("stored secret: %d imported keys, %v", len(sec.Imported), err)
	}
	k1, _ := ethcrypto.PrivateKeyFromBytes(sec.Imported[0])
	if k1.Address() != imp[1] {
		t.Fatalf("the remaining key is %s, want %s", k1.Address(), imp[1])
	}

	// The last imported account: the record is as one that never had any.
	if err := v.RemoveAccount(ctx, imp[1], "hunter2hunter2"); err != nil {
		t.Fatal(err)
	}
	raw, _ := store.Load(ctx)
	var fields map[string]json.RawMessage
	json.Unmarshal(raw, &fields)
	if _, ok := fields["imported"]; ok {
		t.Fatalf("record still lists imported accounts: %s", fields["imported"])
	}
	if _, err := New(store, kdf, 0).Unlock(ctx, "hunter2hunter2"); err != nil {
		t.Fatal(err)
	}
}
