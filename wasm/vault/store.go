package vault

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"fmt"
	"sync"
)

// Store keeps the one encrypted vault record. In the browser it is backed by
// IndexedDB through the js layer; Node has no IndexedDB, so tests use
// MemoryStore. Load returns ErrNoVault when nothing is stored.
type Store interface {
	Load(ctx context.Context) ([]byte, error)
	Save(ctx context.Context, record []byte) error
}

// MemoryStore is a Store in memory (tests, and a browser with storage off).
type MemoryStore struct {
	mu   sync.Mutex
	data []byte
}

func (m *MemoryStore) Load(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		return nil, ErrNoVault
	}
	return append([]byte(nil), m.data...), nil
}

func (m *MemoryStore) Save(_ context.Context, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = append([]byte(nil), b...)
	return nil
}

// KDF derives keyLen bytes from a password with PBKDF2-HMAC-SHA256. It is an
// interface so the js layer can use WebCrypto's native PBKDF2, several times
// faster than Go compiled to wasm at 600,000 iterations.
type KDF interface {
	PBKDF2SHA256(ctx context.Context, password string, salt []byte, iterations, keyLen int) ([]byte, error)
}

// GoKDF is the pure-Go KDF (crypto/pbkdf2).
type GoKDF struct{}

func (GoKDF) PBKDF2SHA256(ctx context.Context, password string, salt []byte, iterations, keyLen int) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dk, err := pbkdf2.Key(sha256.New, password, salt, iterations, keyLen)
	if err != nil {
		return nil, fmt.Errorf("vault: pbkdf2: %w", err)
	}
	return dk, nil
}
