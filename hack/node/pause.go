// pause: the process that holds a pod's namespaces open on the e2e node (tests/e2e).
//
// There is no container registry here, so the pod sandbox image is built from this file
// (hack/node.sh) instead of pulled. As PID 1 of the sandbox it reaps the zombies any other
// process in the pod leaves behind, and exits on SIGTERM or SIGINT when the pod is stopped.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
