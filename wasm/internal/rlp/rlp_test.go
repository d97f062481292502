package rlp

import (
	"bytes"
	"encoding/hex"
	"math/big"
	"testing"

	gethrlp "github.com/ethereum/go-ethereum/rlp"
)

// Examples from the RLP specification, and agreement with go-ethereum.
func TestKnownAnswerRLP(t *testing.T) {
	long := bytes.Repeat([]byte("a"), 60)
	tests := []struct {
		name string
		in   Item
		geth any
		want string
	}{
		{"dog", "dog", "dog", "83646f67"},
		{"cat dog", List{"cat", "dog"}, []string{"cat", "dog"}, "c88363617483646f67"},
		{"empty string", "", "", "80"},
		{"empty list", List{}, []string{}, "c0"},
		{"zero", uint64(0), uint64(0), "80"},
		{"15", uint64(15), uint64(15), "0f"},
		{"1024", uint64(1024), uint64(1024), "820400"},
		{"big", new(big.Int).Lsh(big.NewInt(1), 100), new(big.Int).Lsh(big.NewInt(1), 100), "8d10000000000000000000000000"},
		{"long string", long, long, "b83c" + hex.EncodeToString(long)},
		{"set theory", List{List{}, List{List{}}, List{List{}, List{List{}}}}, []any{[]any{}, []any{[]any{}}, []any{[]any{}, []any{[]any{}}}}, "c7c0c1c0c3c0c1c0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hex.EncodeToString(Encode(tt.in))
			if got != tt.want {
				t.Fatalf("Encode = %s, want %s", got, tt.want)
			}
			g, err := gethrlp.EncodeToBytes(tt.geth)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(g) != got {
				t.Fatalf("go-ethereum %x, ours %s", g, got)
			}
		})
	}
}
