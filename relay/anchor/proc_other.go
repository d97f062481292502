//go:build !linux

package anchor

import "os/exec"

// dieWithParent: only Linux offers a parent-death signal; elsewhere Stop must be called.
func dieWithParent(*exec.Cmd) {}
