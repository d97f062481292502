package anchor

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill btcd when the process that started it dies, even by
// SIGKILL (tests stop `stagepass dev` that way), so no simnet node outlives its owner.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
