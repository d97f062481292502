package eip712

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// The example from the EIP-712 text (Mail from Cow to Bob).
const mailJSON = `{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
    ],
    "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
    "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"}, {"name": "contents", "type": "string"}]
  },
  "primaryType": "Mail",
  "domain": {"name": "Ether Mail", "version": "1", "chainId": 1, "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
  "message": {
    "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
    "contents": "Hello, Bob!"
  }
}`

func TestKnownAnswerEIP712Mail(t *testing.T) {
	td, err := Parse([]byte(mailJSON))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := td.EncodeType("Mail"), "Mail(Person from,Person to,string contents)Person(string name,address wallet)"; got != want {
		t.Errorf("EncodeType = %s, want %s", got, want)
	}
	ds, err := td.DomainSeparator()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(ds[:]), "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"; got != want {
		t.Errorf("domain separator = %s, want %s", got, want)
	}
	d, err := td.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(d[:]), "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"; got != want {
		t.Errorf("digest = %s, want %s", got, want)
	}
}

// Each case must hash exactly as go-ethereum's apitypes does.
func TestDigestMatchesGoEthereum(t *testing.T) {
	cases := map[string]string{
		"mail": mailJSON,
		"arrays, ints, bytesN, bool": `{
  "types": {
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}, {"name": "salt", "type": "bytes32"}],
    "Item": [{"name": "id", "type": "uint256"}, {"name": "tags", "type": "string[]"}],
    "Order": [
      {"name": "items", "type": "Item[]"}, {"name": "delta", "type": "int64"}, {"name": "flag", "type": "bool"},
      {"name": "code", "type": "bytes4"}, {"name": "blob", "type": "bytes"}, {"name": "pair", "type": "address[2]"},
      {"name": "big", "type": "uint256"}, {"name": "small", "type": "uint8"}
    ]
  },
  "primaryType": "Order",
  "domain": {"name": "Shop", "chainId": "0x2105", "salt": "0x0000000000000000000000000000000000000000000000000000000000000abc"},
  "message": {
    "items": [{"id": 1, "tags": ["a", "b"]}, {"id": "115792089237316195423570985008687907853269984665640564039457584007913129639935", "tags": []}],
    "delta": -42, "flag": true, "code": "0xdeadbeef", "blob": "0x0102", 
    "pair": ["0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826", "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"],
    "big": "0x10", "small": 255
  }
}`,
		"EIP-2612 permit": `{
  "types": {
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}, {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
    "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}, {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"}, {"name": "deadline", "type": "uint256"}]
  },
  "primaryType": "Permit",
  "domain": {"name": "USD Coin", "version": "2", "chainId": 8453, "verifyingContract": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"},
  "message": {"owner": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "spender": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "value": "1000000", "nonce": 0, "deadline": 1893456000}
}`,
	}
	for name, js := range cases {
		t.Run(name, func(t *testing.T) {
			td, err := Parse([]byte(js))
			if err != nil {
				t.Fatal(err)
			}
			ours, err := td.Digest()
			if err != nil {
				t.Fatal(err)
			}
			var gtd apitypes.TypedData
			if err := json.Unmarshal([]byte(js), &gtd); err != nil {
				t.Fatal(err)
			}
			theirs, _, err := apitypes.TypedDataAndHash(gtd)
			if err != nil {
				t.Fatalf("go-ethereum: %v", err)
			}
			if hex.EncodeToString(ours[:]) != hex.EncodeToString(theirs) {
				t.Fatalf("digest %x, go-ethereum %x", ours, theirs)
			}
		})
	}
}

func TestDomainTypeInferred(t *testing.T) {
	var m map[string]any
	json.Unmarshal([]byte(mailJSON), &m)
	delete(m["types"].(map[string]any), "EIP712Domain")
	b, _ := json.Marshal(m)
	td, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := td.Digest()
	if got := hex.EncodeToString(d[:]); got != "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2" {
		t.Fatalf("digest with inferred domain = %s", got)
	}
}

func TestRejects(t *testing.T) {
	base := func(msgType, value string) string {
		return `{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"T":[{"name":"v","type":"` + msgType +
			`"}]},"primaryType":"T","domain":{"name":"x"},"message":{"v":` + value + `}}`
	}
	tests := []struct {
		name, json string
		want       error
	}{
		{"uint8 overflow", base("uint8", "256"), ErrInvalidValue},
		{"negative uint", base("uint256", "-1"), ErrInvalidValue},
		{"int8 underflow", base("int8", "-129"), ErrInvalidValue},
		{"fraction", base("uint256", "1.5"), ErrInvalidValue},
		{"bytes4 too long", base("bytes4", `"0x0102030405"`), ErrInvalidValue},
		{"bytes not hex", base("bytes", `"hello"`), ErrInvalidValue},
		{"bad address checksum", base("address", `"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD827"`), ErrInvalidValue},
		{"bool as number", base("bool", "1"), ErrInvalidValue},
		{"fixed array wrong length", base("uint8[2]", "[1]"), ErrInvalidValue},
		{"unknown type", base("Foo", "{}"), ErrInvalidTypes},
		{"bad type uint7", base("uint7", "1"), ErrInvalidTypes},
		{"missing primary", `{"types":{"T":[]},"primaryType":"U","domain":{},"message":{}}`, ErrInvalidTypes},
		{"missing field", `{"types":{"T":[{"name":"a","type":"uint8"}]},"primaryType":"T","domain":{},"message":{}}`, ErrInvalidValue},
		{"extra field", `{"types":{"T":[{"name":"a","type":"uint8"}]},"primaryType":"T","domain":{},"message":{"a":1,"b":2}}`, ErrInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td, err := Parse([]byte(tt.json))
			if err == nil {
				_, err = td.Digest()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDepthLimit(t *testing.T) {
	// A self-referencing type nested deeper than maxDepth.
	msg := `{"n":[]}`
	for i := 0; i < maxDepth+2; i++ {
		msg = `{"n":[` + msg + `]}`
	}
	js := `{"types":{"Node":[{"name":"n","type":"Node[]"}]},"primaryType":"Node","domain":{},"message":` + msg + `}`
	td, err := Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := td.Digest(); !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("err = %v, want ErrInvalidValue", err)
	}
}
