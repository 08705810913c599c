package main

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// checkWritable fails early, with what to do, when a restore cannot write
// into its target directory: restores run as a non-root user by default
// (docs/security.md), and a volume whose root belongs to another user
// without write access for others refuses them. Root is not checked: it
// writes anywhere the mount allows.
func checkWritable(dir string) error {
	uid := os.Geteuid()
	if uid == 0 || unix.Access(dir, unix.W_OK) == nil {
		return nil
	}
	owner := "?"
	mode := os.FileMode(0)
	if fi, err := os.Stat(dir); err == nil {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			owner = fmt.Sprintf("%d:%d", st.Uid, st.Gid)
		}
	}
	return fmt.Errorf("cannot write into %s as uid %d (it belongs to %s, mode %o): give the restore's user write access (runtimeSettings.pod.securityContext.fsGroup, or runAsUser of the volume's owner) or restore as root (runAsUser: 0, which also restores file owners; see docs/security.md)", dir, uid, owner, mode)
}
