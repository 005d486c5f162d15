//go:build !linux

package extract

import (
	"os"
	"syscall"
)

// groupAttrs: process groups and parent-death signals are set up on Linux only; elsewhere
// (development machines) the tool is killed alone.
func groupAttrs() *syscall.SysProcAttr { return nil }

func killGroup(p *os.Process) error { return p.Kill() }
