// Package keystore reads and writes Web3 Secret Storage (keystore v3) JSON,
// the file format geth, MetaMask, MyEtherWallet and ethers import and export.
//
// Why not go-ethereum/accounts/keystore: it imports accounts and with it
// core/types (kzg, gnark), which alone would push the wallet's wasm over its
// size limit. The format is small and fully specified; the tests check that
// go-ethereum decrypts what we write and that we decrypt what it writes.
package keystore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/scrypt"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
)

// Sentinel errors callers branch on.
var (
	// ErrWrongPassword means the MAC did not match: the password is wrong
	// (or the file was altered; v3 cannot tell the two apart).
	ErrWrongPassword = errors.New("keystore: wrong password")
	// ErrInvalidFormat means the JSON is not a keystore v3 file we support.
	ErrInvalidFormat = errors.New("keystore: invalid keystore v3 JSON")
	// ErrUnsafeParams rejects KDF parameters that would exhaust memory or
	// time in a phone browser (a hostile file must not freeze the wallet).
	ErrUnsafeParams = errors.New("keystore: KDF parameters out of allowed range")
	// ErrAddressMismatch means the decrypted key does not belong to the
	// address the file claims.
	ErrAddressMismatch = errors.New("keystore: key does not match the file's address")
)

// ScryptParams are the scrypt cost parameters of an export.
type ScryptParams struct{ N, R, P int }

var (
	// StandardScrypt is what ethers.js uses for exports (N=2^17, 128 MiB).
	// geth's N=2^18 needs 256 MiB, too much for many phone browsers.
	StandardScrypt = ScryptParams{N: 1 << 17, R: 8, P: 1}
	// LightScrypt is geth's light setting, for tests only.
	LightScrypt = ScryptParams{N: 1 << 12, R: 8, P: 6}
)

const (
	maxScryptMemory = 512 << 20 // bytes: 128 * N * r
	maxScryptP      = 16
	maxPBKDF2Iters  = 10_000_000
)

type cryptoJSON struct {
	Cipher       string          `json:"cipher"`
	CipherText   string          `json:"ciphertext"`
	CipherParams cipherParams    `json:"cipherparams"`
	KDF          string          `json:"kdf"`
	KDFParams    json.RawMessage `json:"kdfparams"`
	MAC          string          `json:"mac"`
}

type cipherParams struct {
	IV string `json:"iv"`
}

type scryptJSON struct {
	DKLen int    `json:"dklen"`
	N     int    `json:"n"`
	R     int    `json:"r"`
	P     int    `json:"p"`
	Salt  string `json:"salt"`
}

type pbkdf2JSON struct {
	DKLen int    `json:"dklen"`
	C     int    `json:"c"`
	PRF   string `json:"prf"`
	Salt  string `json:"salt"`
}

type fileJSON struct {
	Address string     `json:"address,omitempty"`
	Crypto  cryptoJSON `json:"crypto"`
	// Some old MyEtherWallet files spell it "Crypto".
	CryptoAlt *cryptoJSON `json:"Crypto,omitempty"`
	ID        string      `json:"id"`
	Version   int         `json:"version"`
}

// Encrypt writes key as keystore v3 JSON (scrypt, aes-128-ctr).
func Encrypt(key *ethcrypto.PrivateKey, password string, p ScryptParams) ([]byte, error) {
	if err := checkScrypt(p.N, p.R, p.P); err != nil {
		return nil, err
	}
	salt := make([]byte, 32)
	iv := make([]byte, aes.BlockSize)
	id := make([]byte, 16)
	for _, b := range [][]byte{salt, iv, id} {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("keystore: random: %w", err)
		}
	}
	dk, err := scrypt.Key([]byte(password), salt, p.N, p.R, p.P, 32)
	if err != nil {
		return nil, fmt.Errorf("keystore: scrypt: %w", err)
	}
	defer clear(dk)
	plain := key.Bytes()
	defer clear(plain)
	ct, err := aesCTR(dk[:16], iv, plain)
	if err != nil {
		return nil, err
	}
	mac := ethcrypto.Keccak256(dk[16:32], ct)
	params, _ := json.Marshal(scryptJSON{DKLen: 32, N: p.N, R: p.R, P: p.P, Salt: hex.EncodeToString(salt)})
	id[6] = id[6]&0x0f | 0x40 // UUID version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(id)
	addr := key.Address()
	return json.Marshal(fileJSON{
		Address: hex.EncodeToString(addr[:]),
		Crypto: cryptoJSON{
			Cipher:       "aes-128-ctr",
			CipherText:   hex.EncodeToString(ct),
			CipherParams: cipherParams{IV: hex.EncodeToString(iv)},
			KDF:          "scrypt",
			KDFParams:    params,
			MAC:          hex.EncodeToString(mac),
		},
		ID:      h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:],
		Version: 3,
	})
}

// Decrypt reads keystore v3 JSON (scrypt or pbkdf2 with hmac-sha256).
func Decrypt(data []byte, password string) (*ethcrypto.PrivateKey, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidFormat, err)
	}
	if f.Version != 3 {
		return nil, fmt.Errorf("%w: version %d", ErrInvalidFormat, f.Version)
	}
	c := f.Crypto
	if c.Cipher == "" && f.CryptoAlt != nil {
		c = *f.CryptoAlt
	}
	if c.Cipher != "aes-128-ctr" {
		return nil, fmt.Errorf("%w: cipher %q", ErrInvalidFormat, c.Cipher)
	}
	ct, err1 := hex.DecodeString(c.CipherText)
	iv, err2 := hex.DecodeString(c.CipherParams.IV)
	mac, err3 := hex.DecodeString(c.MAC)
	if err := errors.Join(err1, err2, err3); err != nil || len(iv) != aes.BlockSize || len(mac) != 32 || len(ct) != 32 {
		return nil, fmt.Errorf("%w: bad ciphertext, iv or mac", ErrInvalidFormat)
	}
	dk, err := deriveKey(c.KDF, c.KDFParams, password)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	if !ethcrypto.Equal(ethcrypto.Keccak256(dk[16:32], ct), mac) {
		return nil, ErrWrongPassword
	}
	plain, err := aesCTR(dk[:16], iv, ct)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	key, err := ethcrypto.PrivateKeyFromBytes(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidFormat, err)
	}
	if f.Address != "" {
		want, err := ethcrypto.ParseAddress("0x" + strings.TrimPrefix(strings.ToLower(f.Address), "0x"))
		if err != nil {
			return nil, fmt.Errorf("%w: address: %v", ErrInvalidFormat, err)
		}
		if want != key.Address() {
			key.Zero()
			return nil, fmt.Errorf("%w: file says %s, key is %s", ErrAddressMismatch, want, key.Address())
		}
	}
	return key, nil
}

func deriveKey(kdf string, raw json.RawMessage, password string) ([]byte, error) {
	switch kdf {
	case "scrypt":
		var p scryptJSON
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("%w: scrypt params: %v", ErrInvalidFormat, err)
		}
		salt, err := hex.DecodeString(p.Salt)
		if err != nil || p.DKLen < 32 {
			return nil, fmt.Errorf("%w: scrypt salt or dklen", ErrInvalidFormat)
		}
		if err := checkScrypt(p.N, p.R, p.P); err != nil {
			return nil, err
		}
		dk, err := scrypt.Key([]byte(password), salt, p.N, p.R, p.P, p.DKLen)
		if err != nil {
			return nil, fmt.Errorf("%w: scrypt: %v", ErrInvalidFormat, err)
		}
		return dk, nil
	case "pbkdf2":
		var p pbkdf2JSON
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("%w: pbkdf2 params: %v", ErrInvalidFormat, err)
		}
		if p.PRF != "hmac-sha256" {
			return nil, fmt.Errorf("%w: pbkdf2 prf %q", ErrInvalidFormat, p.PRF)
		}
		salt, err := hex.DecodeString(p.Salt)
		if err != nil || p.DKLen < 32 || p.DKLen > 64 {
			return nil, fmt.Errorf("%w: pbkdf2 salt or dklen", ErrInvalidFormat)
		}
		if p.C < 1 || p.C > maxPBKDF2Iters {
			return nil, fmt.Errorf("%w: pbkdf2 c=%d", ErrUnsafeParams, p.C)
		}
		dk, err := pbkdf2.Key(sha256.New, password, salt, p.C, p.DKLen)
		if err != nil {
			return nil, fmt.Errorf("keystore: pbkdf2: %w", err)
		}
		return dk, nil
	default:
		return nil, fmt.Errorf("%w: kdf %q", ErrInvalidFormat, kdf)
	}
}

func checkScrypt(n, r, p int) error {
	if n < 2 || n&(n-1) != 0 || r < 1 || p < 1 || p > maxScryptP || 128*n*r > maxScryptMemory || 128*n*r <= 0 {
		return fmt.Errorf("%w: scrypt n=%d r=%d p=%d", ErrUnsafeParams, n, r, p)
	}
	return nil
}

func aesCTR(key, iv, in []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keystore: aes: %w", err)
	}
	out := make([]byte, len(in))
	cipher.NewCTR(block, iv).XORKeyStream(out, in)
	return out, nil
}
