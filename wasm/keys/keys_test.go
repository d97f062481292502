package keys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
)

// Published BIP39 vectors (trezor/python-mnemonic vectors.json, passphrase
// "TREZOR"): entropy → mnemonic → seed.
func TestKnownAnswerBIP39(t *testing.T) {
	vectors := []struct{ entropy, mnemonic, seed string }{
		{
			"00000000000000000000000000000000",
			"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
			"c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
		},
		{
			"7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
			"legal winner thank year wave sausage worth useful legal winner thank yellow",
			"2e8905819b8723fe2c1d161860e5ee1830318dbf49a83bd451cfb8440c28bd6fa457fe1296106559a3c80937a1c1069be3a3a5bd381ee6260e8d9739fce1f607",
		},
		{
			"80808080808080808080808080808080",
			"letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
			"d71de856f81a8acc65e6fc851a38d4d7ec216fd0796d0a6827a3ad6ed5511a30fa280f12eb2e47ed2ac03b5c462a0358d18d69fe4f985ec81778c1b370b652a8",
		},
		{
			"ffffffffffffffffffffffffffffffff",
			"zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong",
			"ac27495480225222079d7be181583751e86f571027b0497b5b5d11218e0a8a13332572917f0f8e5a589620c6f15b11c61dee327651a14c34e18231052e48c069",
		},
		{
			"808080808080808080808080808080808080808080808080",
			"letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter always",
			"107d7c02a5aa6f38c58083ff74f04c607c2d2c0ecc55501dadd72d025b751bc27fe913ffb796f841c49b1d33b610cf0e91d3aa239027f5e99fe4ce9e5088cd65",
		},
		{
			"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
			"zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote",
			"dd48c104698c30cfe2b6142103248622fb7bb0ff692eebb00089b32d22484e1613912f0a5b694407be899ffd31ed3992c456cdf60f5d4564b8ba3f05a69890ad",
		},
	}
	for _, v := range vectors {
		t.Run(v.mnemonic[:20], func(t *testing.T) {
			entropy, _ := hex.DecodeString(v.entropy)
			m, err := MnemonicFromEntropy(entropy)
			if err != nil {
				t.Fatal(err)
			}
			if m != v.mnemonic {
				t.Fatalf("mnemonic = %q, want %q", m, v.mnemonic)
			}
			seed, err := Seed(v.mnemonic, "TREZOR")
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(seed); got != v.seed {
				t.Fatalf("seed = %s, want %s", got, v.seed)
			}
		})
	}
}

// The first Trezor vector also publishes the BIP32 root key of its seed.
func TestKnownAnswerBIP39RootKey(t *testing.T) {
	m, err := FromMnemonic("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", "TREZOR")
	if err != nil {
		t.Fatal(err)
	}
	seed, err := Seed("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", "TREZOR")
	if err != nil {
		t.Fatal(err)
	}
	want := "xprv9s21ZrQH143K3h3fDYiay8mocZ3afhfULfb5GX8kCBdno77K4HiA15Tg23wpbeF1pLfs1c5SPmYHrEpTuuRhxMwvKDwqdKiGJS9XFKzUsAF"
	checkAgainstHDKeychain(t, m, seed, nil, want)
}

// BIP32 test vectors 1 and 2: xprv serialisation at each path.
func TestKnownAnswerBIP32(t *testing.T) {
	const seed1 = "000102030405060708090a0b0c0d0e0f"
	const seed2 = "fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a29f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542"
	vectors := []struct{ seed, path, xprv string }{
		{seed1, "m", "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"},
		{seed1, "m/0'", "xprv9uHRZZhk6KAJC1avXpDAp4MDc3sQKNxDiPvvkX8Br5ngLNv1TxvUxt4cV1rGL5hj6KCesnDYUhd7oWgT11eZG7XnxHrnYeSvkzY7d2bhkJ7"},
		{seed1, "m/0'/1", "xprv9wTYmMFdV23N2TdNG573QoEsfRrWKQgWeibmLntzniatZvR9BmLnvSxqu53Kw1UmYPxLgboyZQaXwTCg8MSY3H2EU4pWcQDnRnrVA1xe8fs"},
		{seed1, "m/0'/1/2'", "xprv9z4pot5VBttmtdRTWfWQmoH1taj2axGVzFqSb8C9xaxKymcFzXBDptWmT7FwuEzG3ryjH4ktypQSAewRiNMjANTtpgP4mLTj34bhnZX7UiM"},
		{seed1, "m/0'/1/2'/2", "xprvA2JDeKCSNNZky6uBCviVfJSKyQ1mDYahRjijr5idH2WwLsEd4Hsb2Tyh8RfQMuPh7f7RtyzTtdrbdqqsunu5Mm3wDvUAKRHSC34sJ7in334"},
		{seed1, "m/0'/1/2'/2/1000000000", "xprvA41z7zogVVwxVSgdKUHDy1SKmdb533PjDz7J6N6mV6uS3ze1ai8FHa8kmHScGpWmj4WggLyQjgPie1rFSruoUihUZREPSL39UNdE3BBDu76"},
		{seed2, "m", "xprv9s21ZrQH143K31xYSDQpPDxsXRTUcvj2iNHm5NUtrGiGG5e2DtALGdso3pGz6ssrdK4PFmM8NSpSBHNqPqm55Qn3LqFtT2emdEXVYsCzC2U"},
		{seed2, "m/0", "xprv9vHkqa6EV4sPZHYqZznhT2NPtPCjKuDKGY38FBWLvgaDx45zo9WQRUT3dKYnjwih2yJD9mkrocEZXo1ex8G81dwSM1fwqWpWkeS3v86pgKt"},
		{seed2, "m/0/2147483647'", "xprv9wSp6B7kry3Vj9m1zSnLvN3xH8RdsPP1Mh7fAaR7aRLcQMKTR2vidYEeEg2mUCTAwCd6vnxVrcjfy2kRgVsFawNzmjuHc2YmYRmagcEPdU9"},
		{seed2, "m/0/2147483647'/1", "xprv9zFnWC6h2cLgpmSA46vutJzBcfJ8yaJGg8cX1e5StJh45BBciYTRXSd25UEPVuesF9yog62tGAQtHjXajPPdbRCHuWS6T8XA2ECKADdw4Ef"},
		{seed2, "m/0/2147483647'/1/2147483646'", "xprvA1RpRA33e1JQ7ifknakTFpgNXPmW2YvmhqLQYMmrj4xJXXWYpDPS3xz7iAxn8L39njGVyuoseXzU6rcxFLJ8HFsTjSyQbLYnMpCqE2VbFWc"},
		{seed2, "m/0/2147483647'/1/2147483646'/2", "xprvA2nrNbFZABcdryreWet9Ea4LvTJcGsqrMzxHx98MMrotbir7yrKCEXw7nadnHM8Dq38EGfSh6dqA9QWTyefMLEcBYJUuekgW4BYPJcr9E7j"},
	}
	for _, v := range vectors {
		t.Run(v.path, func(t *testing.T) {
			seed, _ := hex.DecodeString(v.seed)
			m, err := NewMaster(seed)
			if err != nil {
				t.Fatal(err)
			}
			path, err := ParsePath(v.path)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstHDKeychain(t, m, seed, path, v.xprv)
		})
	}
}

// The hardhat/anvil development mnemonic: what MetaMask, hardhat and foundry
// derive for accounts 0..2 (as `npx hardhat node` and `anvil` print them).
//
// Note: the task brief listed account 1 as 0x70997970C51812dc3A64C3784F7e8A4A5C3bD2f3.
// That is not what hardhat/anvil print (and fails EIP-55); the address is
// 0x70997970C51812dc3A010C7d01b50e0d17dc79C8, confirmed below against
// hdkeychain's derivation (TestDerivationMatchesHDKeychain).
func TestKnownAnswerDevMnemonicAccounts(t *testing.T) {
	m, err := FromMnemonic("test test test test test test test test test test test junk", "")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{
		"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
		"0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
		"0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
	} {
		k, err := m.Account(uint32(i))
		if err != nil {
			t.Fatal(err)
		}
		if got := k.Address().Hex(); got != want {
			t.Errorf("account %d = %s, want %s", i, got, want)
		}
		// Account(i) must equal the full-path derivation.
		p, _ := ParsePath(EthereumAccountsPath + "/" + string(rune('0'+i)))
		k2, err := m.Derive(p)
		if err != nil || k2.Address() != k.Address() {
			t.Errorf("Derive(path %d) = %v, %v", i, k2.Address(), err)
		}
	}
}

func TestPassphraseIsNFKDNormalised(t *testing.T) {
	const mn = "test test test test test test test test test test test junk"
	composed, _ := Seed(mn, "caf\u00e9")    // é as one code point
	decomposed, _ := Seed(mn, "cafe\u0301") // e + combining acute
	none, _ := Seed(mn, "")
	if hex.EncodeToString(composed) != hex.EncodeToString(decomposed) {
		t.Fatal("composed and decomposed passphrases gave different seeds")
	}
	if hex.EncodeToString(composed) == hex.EncodeToString(none) {
		t.Fatal("passphrase had no effect")
	}
}

func TestMnemonicNormalisation(t *testing.T) {
	a, _ := Seed("  Test test TEST test test test test test test test test   junk\n", "")
	b, _ := Seed("test test test test test test test test test test test junk", "")
	if hex.EncodeToString(a) != hex.EncodeToString(b) {
		t.Fatal("whitespace/case variants gave different seeds")
	}
}

func TestNewMnemonic(t *testing.T) {
	for _, bits := range []int{128, 160, 192, 224, 256} {
		m, err := NewMnemonic(bits)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(strings.Fields(m)), bits/32*3; got != want {
			t.Errorf("%d bits: %d words, want %d", bits, got, want)
		}
		if err := ValidateMnemonic(m); err != nil {
			t.Error(err)
		}
	}
	a, _ := NewMnemonic(128)
	b, _ := NewMnemonic(128)
	if a == b {
		t.Fatal("two fresh mnemonics are equal")
	}
}

func TestRejects(t *testing.T) {
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"bad checksum", func() error { return ValidateMnemonic("test test test test test test test test test test test test") }, ErrInvalidMnemonic},
		{"unknown word", func() error { return ValidateMnemonic("test test test test test test test test test test test junkk") }, ErrInvalidMnemonic},
		{"11 words", func() error { return ValidateMnemonic("test test test test test test test test test test junk") }, ErrInvalidMnemonic},
		{"seed of bad mnemonic", func() error { _, err := Seed("zoo zoo", ""); return err }, ErrInvalidMnemonic},
		{"strength 100", func() error { _, err := NewMnemonic(100); return err }, ErrInvalidStrength},
		{"path without m", func() error { _, err := ParsePath("44'/60'"); return err }, ErrInvalidPath},
		{"path overflow", func() error { _, err := ParsePath("m/2147483648"); return err }, ErrInvalidPath},
		{"path junk", func() error { _, err := ParsePath("m/x"); return err }, ErrInvalidPath},
		{"short seed", func() error { _, err := NewMaster(make([]byte, 8)); return err }, ErrInvalidSeed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

var sink ethcrypto.Address

func BenchmarkDeriveAccount(b *testing.B) {
	m, _ := FromMnemonic("test test test test test test test test test test test junk", "")
	m.Account(0) // warm the account-parent cache, as an unlocked vault has it
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k, err := m.Account(uint32(i % 100))
		if err != nil {
			b.Fatal(err)
		}
		sink = k.Address()
	}
}

// checkAgainstHDKeychain derives path with btcutil's hdkeychain (the well-kept library this
// package no longer links into the wallet), checks its xprv serialisation against the
// published vector, and m's own derivation against its key and chain code.
func checkAgainstHDKeychain(t *testing.T, m *Master, seed []byte, path []uint32, xprv string) {
	t.Helper()
	lib, err := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range path {
		if lib, err = lib.Derive(i); err != nil {
			t.Fatal(err)
		}
	}
	if got := lib.String(); got != xprv {
		t.Fatalf("hdkeychain: xprv = %s, want %s", got, xprv)
	}
	own, err := m.derive(path)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := lib.ECPrivKey()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(own.key[:], priv.Serialize()) || !bytes.Equal(own.chain[:], lib.ChainCode()) {
		t.Fatalf("derived key %x chain %x, BIP32 (hdkeychain) key %x chain %x", own.key, own.chain, priv.Serialize(), lib.ChainCode())
	}
}
