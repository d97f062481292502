package protocol

import (
	"errors"
	"fmt"
)

// Base45 (RFC 9285) packs bytes into the 45-character set of the QR
// alphanumeric mode (5.5 bits per character), giving a smaller QR code than
// base64 in byte mode (8 bits per character) for the same payload.
const base45Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

var errBase45 = errors.New("invalid base45")

var base45Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(base45Alphabet); i++ {
		t[base45Alphabet[i]] = int8(i)
	}
	return t
}()

// Base45Encode encodes b per RFC 9285.
func Base45Encode(b []byte) string {
	out := make([]byte, 0, (len(b)/2)*3+2)
	for i := 0; i+1 < len(b); i += 2 {
		n := int(b[i])*256 + int(b[i+1])
		out = append(out, base45Alphabet[n%45], base45Alphabet[(n/45)%45], base45Alphabet[n/2025])
	}
	if len(b)%2 == 1 {
		n := int(b[len(b)-1])
		out = append(out, base45Alphabet[n%45], base45Alphabet[n/45])
	}
	return string(out)
}

// Base45Decode decodes s per RFC 9285, rejecting out-of-range groups so each
// byte string has exactly one encoding.
func Base45Decode(s string) ([]byte, error) {
	if len(s)%3 == 1 {
		return nil, fmt.Errorf("%w: length %d", errBase45, len(s))
	}
	out := make([]byte, 0, len(s)/3*2+1)
	for i := 0; i < len(s); i += 3 {
		n := len(s) - i
		if n > 3 {
			n = 3
		}
		v, mul := 0, 1
		for j := 0; j < n; j++ {
			d := base45Index[s[i+j]]
			if d < 0 {
				return nil, fmt.Errorf("%w: character %q", errBase45, s[i+j])
			}
			v += int(d) * mul
			mul *= 45
		}
		if n == 3 {
			if v > 0xffff {
				return nil, fmt.Errorf("%w: group %q out of range", errBase45, s[i:i+3])
			}
			out = append(out, byte(v>>8), byte(v))
		} else {
			if v > 0xff {
				return nil, fmt.Errorf("%w: group %q out of range", errBase45, s[i:i+2])
			}
			out = append(out, byte(v))
		}
	}
	return out, nil
}
