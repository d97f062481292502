package keys

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
)

// textbookDerive is BIP32 CKDpriv written straight from the spec, with no
// code shared with hdkeychain, so the library is checked by a second,
// independent implementation rather than only by its own vectors.
func textbookDerive(t *testing.T, seed []byte, path []uint32) []byte {
	t.Helper()
	mac := hmac.New(sha512.New, []byte("Bitcoin seed"))
	mac.Write(seed)
	I := mac.Sum(nil)
	key, chain := I[:32], I[32:]
	for _, idx := range path {
		var data []byte
		if idx >= HardenedOffset {
			data = append([]byte{0}, key...)
		} else {
			var s secp256k1.ModNScalar
			s.SetByteSlice(key)
			data = secp256k1.NewPrivateKey(&s).PubKey().SerializeCompressed()
		}
		data = binary.BigEndian.AppendUint32(data, idx)
		mac := hmac.New(sha512.New, chain)
		mac.Write(data)
		I := mac.Sum(nil)
		var il, k secp256k1.ModNScalar
		if il.SetByteSlice(I[:32]) {
			t.Fatal("IL >= n (astronomically unlikely)")
		}
		k.SetByteSlice(key)
		k.Add(&il)
		b := k.Bytes()
		key, chain = b[:], I[32:]
	}
	return key
}

func TestDerivationMatchesTextbookBIP32(t *testing.T) {
	const mn = "test test test test test test test test test test test junk"
	seed, err := Seed(mn, "")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewMaster(seed)
	base, _ := ParsePath(EthereumAccountsPath)
	for i := uint32(0); i < 5; i++ {
		k, err := m.Account(i)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ethcrypto.PrivateKeyFromBytes(textbookDerive(t, seed, append(base, i)))
		if err != nil {
			t.Fatal(err)
		}
		if k.Address() != want.Address() {
			t.Errorf("account %d: hdkeychain %s, textbook %s", i, k.Address(), want.Address())
		}
	}
}
