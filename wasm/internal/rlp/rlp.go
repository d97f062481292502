// Package rlp encodes the few RLP shapes a transaction needs (byte strings,
// unsigned integers, lists). Decoding is not needed: the wallet only builds
// transactions; tests decode them with go-ethereum.
package rlp

import (
	"encoding/binary"
	"math/big"
)

// Item is something AppendItem can encode.
type Item interface{}

// List is an RLP list.
type List []Item

// Encode encodes one item: []byte, string, uint64, *big.Int (nil = 0,
// must be non-negative), or List.
func Encode(it Item) []byte { return appendItem(nil, it) }

func appendItem(b []byte, it Item) []byte {
	switch x := it.(type) {
	case []byte:
		if len(x) == 1 && x[0] < 0x80 {
			return append(b, x[0])
		}
		return append(appendHeader(b, 0x80, len(x)), x...)
	case string:
		return appendItem(b, []byte(x))
	case uint64:
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], x)
		i := 0
		for i < 8 && buf[i] == 0 {
			i++
		}
		return appendItem(b, buf[i:])
	case *big.Int:
		if x == nil {
			return appendItem(b, []byte{})
		}
		return appendItem(b, x.Bytes())
	case List:
		var body []byte
		for _, e := range x {
			body = appendItem(body, e)
		}
		return append(appendHeader(b, 0xc0, len(body)), body...)
	}
	panic("rlp: unsupported item type")
}

func appendHeader(b []byte, base byte, n int) []byte {
	if n < 56 {
		return append(b, base+byte(n))
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(n))
	i := 0
	for buf[i] == 0 {
		i++
	}
	b = append(b, base+55+byte(8-i))
	return append(b, buf[i:]...)
}
