package restic

import (
	"fmt"
	"strings"
)

// Extra arguments a user may add to restic backup or restore (target.args,
// and through them DRIVER_ARGS) tune how restic works; they may not change
// what Stow decides: the repository, the password and credentials, the
// snapshot's host and tags, the paths read, the restore target, the cache,
// locking and output format. Hence an allow-list: a flag not listed is
// refused with its name, and so is any positional argument (for backup it
// would add a path to read).

// flagSpec is one allowed flag: its long name, optional one-letter short
// name, and whether it takes a value.
type flagSpec struct {
	long, short string
	value       bool
}

// Flags every restic command accepts that only tune transfer and output.
var globalTuning = []flagSpec{
	{"limit-upload", "", true}, {"limit-download", "", true}, {"pack-size", "", true},
	{"compression", "", true}, {"option", "o", true}, {"http-user-agent", "", true},
	{"stuck-request-timeout", "", true}, {"verbose", "v", false}, {"no-extra-verify", "", false},
	{"read-concurrency", "", true},
}

var backupFlags = append([]flagSpec{
	{"exclude", "e", true}, {"iexclude", "", true}, {"exclude-file", "", true}, {"iexclude-file", "", true},
	{"exclude-if-present", "", true}, {"exclude-larger-than", "", true}, {"exclude-caches", "", false},
	{"exclude-cloud-files", "", false}, {"one-file-system", "x", false}, {"with-atime", "", false},
	{"ignore-inode", "", false}, {"ignore-ctime", "", false}, {"no-scan", "", false},
	{"skip-if-unchanged", "", false}, {"force", "f", false}, {"parent", "", true}, {"group-by", "g", true},
}, globalTuning...)

var restoreFlags = append([]flagSpec{
	{"include", "i", true}, {"iinclude", "", true}, {"exclude", "e", true}, {"iexclude", "", true},
	{"include-file", "", true}, {"iinclude-file", "", true}, {"exclude-file", "", true}, {"iexclude-file", "", true},
	{"include-xattr", "", true}, {"exclude-xattr", "", true}, {"sparse", "", false}, {"verify", "", false},
	{"overwrite", "", true}, {"delete", "", false}, {"ownership-by-name", "", false},
}, globalTuning...)

// CheckBackupArgs refuses extra restic backup arguments that are not
// allowed. The error names the argument.
func CheckBackupArgs(args []string) error { return checkArgs("backup", args, backupFlags) }

// CheckRestoreArgs refuses extra restic restore arguments that are not
// allowed, and include/exclude patterns that climb out with "..".
func CheckRestoreArgs(args []string) error { return checkArgs("restore", args, restoreFlags) }

func checkArgs(op string, args []string, allowed []flagSpec) error {
	long := map[string]flagSpec{}
	short := map[string]flagSpec{}
	for _, f := range allowed {
		long[f.long] = f
		if f.short != "" {
			short[f.short] = f
		}
	}
	refuse := func(a string) error {
		return fmt.Errorf("restic %s argument %q is not allowed: extra arguments may tune restic, not change the repository, credentials, host, tags, paths, target, cache or locking Stow sets (allowed: %s)", op, a, names(allowed))
	}
	checkValue := func(f flagSpec, v string) error {
		if op == "restore" && strings.Contains(f.long, "clude") {
			return CheckNoParent(v)
		}
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--"):
			name, v, hasValue := strings.Cut(a[2:], "=")
			f, ok := long[name]
			if !ok {
				return refuse(a)
			}
			if f.value && !hasValue {
				if i+1 >= len(args) {
					return fmt.Errorf("restic %s argument %q needs a value", op, a)
				}
				i++
				v = args[i]
			}
			if !f.value && hasValue {
				return refuse(a)
			}
			if err := checkValue(f, v); err != nil {
				return err
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			letters := a[1:]
			for j := 0; j < len(letters); j++ {
				f, ok := short[letters[j:j+1]]
				if !ok {
					return refuse(a)
				}
				if !f.value {
					continue
				}
				v := letters[j+1:]
				if v == "" {
					if i+1 >= len(args) {
						return fmt.Errorf("restic %s argument %q needs a value", op, a)
					}
					i++
					v = args[i]
				}
				if err := checkValue(f, v); err != nil {
					return err
				}
				break
			}
		default:
			return refuse(a)
		}
	}
	return nil
}

func names(flags []flagSpec) string {
	var out []string
	for _, f := range flags {
		out = append(out, "--"+f.long)
	}
	return strings.Join(out, " ")
}
