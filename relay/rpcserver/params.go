package rpcserver

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"
)

// Positional decodes a params array of exactly len(targets) items into targets, with an
// InvalidParams error naming the method and the parameter at fault.
func Positional(req *Request, targets ...any) error {
	var raw []json.RawMessage
	if len(req.Params) == 0 || json.Unmarshal(req.Params, &raw) != nil {
		return InvalidParams("%s takes a params array of %d", req.Method, len(targets))
	}
	if len(raw) != len(targets) {
		return InvalidParams("%s takes %d params, got %d", req.Method, len(targets), len(raw))
	}
	for i, t := range targets {
		if err := json.Unmarshal(raw[i], t); err != nil {
			return InvalidParams("%s param %d: %v", req.Method, i+1, err)
		}
	}
	return nil
}

// AddressParam is a Positional target that accepts only a 0x-prefixed 20-byte hex address,
// named in the error otherwise.
func AddressParam(dst *common.Address, name string) json.Unmarshaler {
	return &addressTarget{dst: dst, name: name}
}

type addressTarget struct {
	dst  *common.Address
	name string
}

func (a *addressTarget) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil || !common.IsHexAddress(s) || !strings.HasPrefix(s, "0x") {
		return fmt.Errorf("%s must be a 0x-prefixed 20-byte hex address", a.name)
	}
	*a.dst = common.HexToAddress(s)
	return nil
}
