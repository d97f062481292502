package keystore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	gethkeystore "github.com/ethereum/go-ethereum/accounts/keystore"
	gethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keys"
)

func devKey(t testing.TB, i uint32) *ethcrypto.PrivateKey {
	t.Helper()
	k, err := keys.DevAccount(i)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTripAndGoEthereumReadsOurs(t *testing.T) {
	k := devKey(t, 0)
	data, err := Encrypt(k, "correct horse", LightScrypt)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decrypt(data, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if got.Address() != k.Address() {
		t.Fatalf("address %s, want %s", got.Address(), k.Address())
	}
	gk, err := gethkeystore.DecryptKey(data, "correct horse")
	if err != nil {
		t.Fatalf("go-ethereum cannot read our keystore: %v", err)
	}
	if ethcrypto.Address(gk.Address) != k.Address() {
		t.Fatalf("go-ethereum read %s, want %s", gk.Address.Hex(), k.Address())
	}
}

func TestWeReadGoEthereumKeystore(t *testing.T) {
	k := devKey(t, 1)
	ecdsaKey, _ := gethcrypto.ToECDSA(k.Bytes())
	data, err := gethkeystore.EncryptKey(&gethkeystore.Key{
		Id: uuid.New(), Address: gethcrypto.PubkeyToAddress(ecdsaKey.PublicKey), PrivateKey: ecdsaKey,
	}, "pw", gethkeystore.LightScryptN, gethkeystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decrypt(data, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if got.Address() != k.Address() {
		t.Fatalf("address %s, want %s", got.Address(), k.Address())
	}
}

// A pbkdf2 file built by hand from the Web3 Secret Storage definition.
func TestPBKDF2Keystore(t *testing.T) {
	k := devKey(t, 2)
	salt := []byte("0123456789abcdef0123456789abcdef")
	iv := []byte("fedcba9876543210")
	dk, _ := pbkdf2.Key(sha256.New, "pw", salt, 1000, 32)
	block, _ := aes.NewCipher(dk[:16])
	ct := make([]byte, 32)
	cipher.NewCTR(block, iv).XORKeyStream(ct, k.Bytes())
	mac := gethcrypto.Keccak256(dk[16:32], ct)
	file := `{"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"` + hex.EncodeToString(iv) + `"},"ciphertext":"` +
		hex.EncodeToString(ct) + `","kdf":"pbkdf2","kdfparams":{"c":1000,"dklen":32,"prf":"hmac-sha256","salt":"` +
		hex.EncodeToString(salt) + `"},"mac":"` + hex.EncodeToString(mac) + `"},"id":"3198bc9c-6672-5ab3-d995-4942343ae5b6","version":3}`
	got, err := Decrypt([]byte(file), "pw")
	if err != nil {
		t.Fatal(err)
	}
	if got.Address() != k.Address() {
		t.Fatalf("address %s, want %s", got.Address(), k.Address())
	}
	if _, err := Decrypt([]byte(file), "pW"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: err = %v", err)
	}
}

func TestDecryptRejects(t *testing.T) {
	k := devKey(t, 0)
	good, err := Encrypt(k, "pw", LightScrypt)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	crypto := func(m map[string]any) map[string]any { return m["crypto"].(map[string]any) }
	other := devKey(t, 1).Address()
	tests := []struct {
		name     string
		data     []byte
		password string
		want     error
	}{
		{"wrong password", good, "PW", ErrWrongPassword},
		{"empty password", good, "", ErrWrongPassword},
		{"not json", []byte("{"), "pw", ErrInvalidFormat},
		{"version 1", edit(func(m map[string]any) { m["version"] = 1 }), "pw", ErrInvalidFormat},
		{"unknown cipher", edit(func(m map[string]any) { crypto(m)["cipher"] = "aes-128-cbc" }), "pw", ErrInvalidFormat},
		{"unknown kdf", edit(func(m map[string]any) { crypto(m)["kdf"] = "argon2" }), "pw", ErrInvalidFormat},
		{"flipped ciphertext", edit(func(m map[string]any) {
			ct := []byte(crypto(m)["ciphertext"].(string))
			// Change the first hex digit to another valid one.
			if ct[0] == '0' {
				ct[0] = '1'
			} else {
				ct[0] = '0'
			}
			crypto(m)["ciphertext"] = string(ct)
		}), "pw", ErrWrongPassword},
		{"huge scrypt n", edit(func(m map[string]any) { crypto(m)["kdfparams"].(map[string]any)["n"] = 1 << 24 }), "pw", ErrUnsafeParams},
		{"scrypt n not power of 2", edit(func(m map[string]any) { crypto(m)["kdfparams"].(map[string]any)["n"] = 1000 }), "pw", ErrUnsafeParams},
		{"address of someone else", edit(func(m map[string]any) { m["address"] = strings.ToLower(other.Hex()[2:]) }), "pw", ErrAddressMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decrypt(tt.data, tt.password); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncryptIsRandomised(t *testing.T) {
	k := devKey(t, 0)
	a, _ := Encrypt(k, "pw", LightScrypt)
	b, _ := Encrypt(k, "pw", LightScrypt)
	if string(a) == string(b) {
		t.Fatal("two exports are identical: salt/iv not random")
	}
	if _, err := Encrypt(k, "pw", ScryptParams{N: 3, R: 8, P: 1}); !errors.Is(err, ErrUnsafeParams) {
		t.Fatalf("err = %v, want ErrUnsafeParams", err)
	}
}
