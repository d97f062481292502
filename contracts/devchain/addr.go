package devchain

import (
	"net"
	"sync"
)

var handedOut sync.Map // addresses FreeAddr returned in this process

// FreeAddr is a loopback host:port free now, for a server a test starts later (a chain's
// JSON-RPC, `stagepass dev --addr`). The port is closed again before it is used, so the
// kernel may offer it twice: FreeAddr never returns one address twice in a process, so two
// servers of one test never collide.
func FreeAddr() (string, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		a := l.Addr().String()
		l.Close()
		if _, dup := handedOut.LoadOrStore(a, true); !dup {
			return a, nil
		}
	}
}

// MustFreeAddr is FreeAddr failing t on error.
func MustFreeAddr(t TB) string {
	t.Helper()
	a, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}
