package ethcrypto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	gethcommon "github.com/ethereum/go-ethereum/common"
	gethcrypto "github.com/ethereum/go-ethereum/crypto"
)

// The EIP-55 examples from the EIP text.
func TestKnownAnswerEIP55(t *testing.T) {
	for _, want := range []string{
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
		"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
	} {
		a, err := ParseAddress(want)
		if err != nil {
			t.Fatalf("ParseAddress(%s): %v", want, err)
		}
		if got := a.Hex(); got != want {
			t.Errorf("Hex() = %s, want %s", got, want)
		}
	}
}

func TestParseAddressRejects(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
	}{
		{"no prefix", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", ErrInvalidAddress},
		{"short", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", ErrInvalidAddress},
		{"not hex", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeZ", ErrInvalidAddress},
		{"bad checksum", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAEd", ErrBadChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseAddress(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// All-lowercase and all-uppercase carry no checksum and are accepted.
	for _, s := range []string{"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED"} {
		if _, err := ParseAddress(s); err != nil {
			t.Errorf("ParseAddress(%s): %v", s, err)
		}
	}
}

func TestKnownAnswerKeccak256(t *testing.T) {
	// Keccak-256 of the empty string (differs from NIST SHA3-256).
	want := "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
	if got := hex.EncodeToString(Keccak256()); got != want {
		t.Fatalf("Keccak256() = %s, want %s", got, want)
	}
}

// Sign/recover must agree with go-ethereum byte for byte.
func TestSignMatchesGoEthereum(t *testing.T) {
	for i := 1; i <= 20; i++ {
		seed := Keccak256([]byte{byte(i)})
		k, err := PrivateKeyFromBytes(seed)
		if err != nil {
			t.Fatal(err)
		}
		gk, err := gethcrypto.ToECDSA(seed)
		if err != nil {
			t.Fatal(err)
		}
		if k.Address() != Address(gethcrypto.PubkeyToAddress(gk.PublicKey)) {
			t.Fatalf("address mismatch for key %d", i)
		}
		digest := Keccak256([]byte("message"), []byte{byte(i)})
		sig, err := k.Sign(digest)
		if err != nil {
			t.Fatal(err)
		}
		gsig, err := gethcrypto.Sign(digest, gk)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sig, gsig) {
			t.Fatalf("signature mismatch:\n ours %x\n geth %x", sig, gsig)
		}
		got, err := Recover(digest, sig)
		if err != nil || got != k.Address() {
			t.Fatalf("Recover = %s, %v; want %s", got, err, k.Address())
		}
		compact, err := CompactSignature(sig)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ExpandSignature(compact)
		if err != nil || !bytes.Equal(back, sig) {
			t.Fatalf("EIP-2098 round trip: %x, %v", back, err)
		}
	}
}

func TestRecoverRejects(t *testing.T) {
	k, _ := PrivateKeyFromBytes(Keccak256([]byte("k")))
	digest := Keccak256([]byte("d"))
	sig, _ := k.Sign(digest)

	highS := append([]byte(nil), sig...)
	// s' = n - s flips to the high half and the parity of R.
	n, _ := hex.DecodeString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
	var borrow int
	for i := 31; i >= 0; i-- {
		d := int(n[i]) - int(sig[32+i]) - borrow
		borrow = 0
		if d < 0 {
			d += 256
			borrow = 1
		}
		highS[32+i] = byte(d)
	}
	highS[64] ^= 1

	badV := append([]byte(nil), sig...)
	badV[64] = 5
	zeroR := append([]byte(nil), sig...)
	copy(zeroR[:32], make([]byte, 32))

	tests := []struct {
		name string
		sig  []byte
	}{
		{"short", sig[:64]},
		{"high s", highS},
		{"bad v", badV},
		{"zero r", zeroR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Recover(digest, tt.sig); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("err = %v, want ErrInvalidSignature", err)
			}
		})
	}
	// go-ethereum accepts the high-s twin; we must not.
	if _, err := gethcrypto.Ecrecover(digest, highS); err != nil {
		t.Logf("geth also rejects high-s: %v", err)
	}
}

func TestPrivateKeyRange(t *testing.T) {
	for _, b := range [][]byte{make([]byte, 32), bytes.Repeat([]byte{0xff}, 32), make([]byte, 31)} {
		if _, err := PrivateKeyFromBytes(b); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("PrivateKeyFromBytes(%x) err = %v, want ErrInvalidKey", b, err)
		}
	}
}

func TestAddressJSONRoundTrip(t *testing.T) {
	a := Address(gethcommon.HexToAddress("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"))
	b, _ := a.MarshalText()
	var c Address
	if err := c.UnmarshalText(b); err != nil || c != a {
		t.Fatalf("round trip: %s %v", c, err)
	}
}
