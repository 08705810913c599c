package restic

import (
	"fmt"
	"time"
)

// FormatSize renders a byte count the way Stash reports sizes, so dashboards
// and status columns read the same: binary units with three decimals
// ("11.254 MiB"), plain bytes below 1 KiB ("80 B").
func FormatSize(n uint64) string {
	const (
		kib = 1 << 10
		mib = 1 << 20
		gib = 1 << 30
		tib = 1 << 40
	)
	b := float64(n)
	switch {
	case n >= tib:
		return fmt.Sprintf("%.3f TiB", b/tib)
	case n >= gib:
		return fmt.Sprintf("%.3f GiB", b/gib)
	case n >= mib:
		return fmt.Sprintf("%.3f MiB", b/mib)
	case n >= kib:
		return fmt.Sprintf("%.3f KiB", b/kib)
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// FormatProcessingTime renders a duration as M:SS, or H:MM:SS from one hour
// on, rounded down to whole seconds (Stash's processingTime format).
func FormatProcessingTime(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	sec := int64(d / time.Second)
	h, m, s := sec/3600, (sec%3600)/60, sec%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}
