package vault

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
)

// MaxNameLength is the longest account name, in characters (Unicode code points).
const MaxNameLength = 32

// CleanName returns name trimmed of surrounding spaces, or ErrInvalidName when it is then
// empty, longer than MaxNameLength characters, not UTF-8, or holds a control character,
// a line or paragraph separator or a bidirectional formatting character (which could make
// the address shown beside the name read differently).
func CleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	switch {
	case !utf8.ValidString(name):
		return "", fmt.Errorf("%w: not valid text", ErrInvalidName)
	case n == 0:
		return "", fmt.Errorf("%w: empty", ErrInvalidName)
	case n > MaxNameLength:
		return "", fmt.Errorf("%w: %d characters, at most %d", ErrInvalidName, n, MaxNameLength)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control) {
			return "", fmt.Errorf("%w: control character %U", ErrInvalidName, r)
		}
	}
	return name, nil
}

// Names maps accounts to the names the user gave them (unnamed accounts are absent), locked
// or not, as Accounts does.
func (v *Vault) Names(ctx context.Context) (map[ethcrypto.Address]string, error) {
	v.mu.Lock()
	if v.keys != nil {
		defer v.mu.Unlock()
		return maps.Clone(v.rec.Names), nil
	}
	v.mu.Unlock()
	rec, err := v.load(ctx)
	if err != nil {
		return nil, err
	}
	return rec.Names, nil
}

// RenameAccount names an account of the wallet (HD or imported) and stores the name in the
// record beside the account lists (the vault must be unlocked: the record is re-sealed,
// since the secret's additional data covers it). The name is cleaned by CleanName.
func (v *Vault) RenameAccount(ctx context.Context, addr ethcrypto.Address, name string) (string, error) {
	name, err := CleanName(name)
	if err != nil {
		return "", err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys == nil {
		return "", ErrLocked
	}
	if !slices.Contains(v.rec.all(), addr) {
		return "", fmt.Errorf("%w: %s", ErrUnknownAccount, addr)
	}
	rec := *v.rec
	rec.Names = maps.Clone(v.rec.Names)
	if rec.Names == nil {
		rec.Names = map[ethcrypto.Address]string{}
	}
	rec.Names[addr] = name
	if err := seal(&rec, v.dataKey, v.secret); err != nil {
		return "", err
	}
	if err := v.save(ctx, &rec); err != nil {
		return "", err
	}
	v.rec = &rec
	return name, nil
}

// RemoveAccount deletes an imported account after checking the password: its key leaves
// the secret (and memory), its address and name leave the record, and the record is saved.
// An HD account is ErrNotImported, a wrong password ErrWrongPassword; on any error nothing
// changes. The vault is unlocked afterwards.
func (v *Vault) RemoveAccount(ctx context.Context, addr ethcrypto.Address, password string) error {
	// Refused before the password's key derivation when the stored record already says so.
	if rec, err := v.load(ctx); err != nil {
		return err
	} else if slices.Contains(rec.Accounts, addr) {
		return ErrNotImported
	}
	return v.change(ctx, password, func(rec *record, _ []byte, sec *secret) error {
		i := slices.Index(rec.Imported, addr)
		switch {
		case slices.Contains(rec.Accounts, addr):
			return ErrNotImported
		case i < 0:
			return fmt.Errorf("%w: %s", ErrUnknownAccount, addr)
		case len(sec.Imported) != len(rec.Imported):
			return fmt.Errorf("%w: %d imported keys for %d accounts", ErrTampered, len(sec.Imported), len(rec.Imported))
		}
		rec.Imported = slices.Delete(slices.Clone(rec.Imported), i, i+1)
		clear(sec.Imported[i]) // this copy of the key; install zeroes the unlocked one
		sec.Imported = slices.Delete(sec.Imported, i, i+1)
		if len(rec.Imported) == 0 {
			rec.Imported = nil // as a record that never had one
		}
		if _, ok := rec.Names[addr]; ok {
			rec.Names = maps.Clone(rec.Names)
			delete(rec.Names, addr)
			if len(rec.Names) == 0 {
				rec.Names = nil
			}
		}
		return nil
	})
}
