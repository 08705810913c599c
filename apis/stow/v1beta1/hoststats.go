package v1beta1

// SetHostStats records h as the stats of its host, replacing earlier ones.
func (t *BackupTargetStatus) SetHostStats(h HostBackupStats) {
	t.Stats = setByHost(t.Stats, h, func(s HostBackupStats) string { return s.Hostname })
}

// SetHostStats records h as the stats of its host, replacing earlier ones.
func (st *RestoreSessionStatus) SetHostStats(h HostRestoreStats) {
	st.Stats = setByHost(st.Stats, h, func(s HostRestoreStats) string { return s.Hostname })
}

// HostStats is the stats of host, nil if it has none yet.
func (st *RestoreSessionStatus) HostStats(host string) *HostRestoreStats {
	for i := range st.Stats {
		if st.Stats[i].Hostname == host {
			return &st.Stats[i]
		}
	}
	return nil
}

// setByHost replaces the entry of h's host in list, or appends h.
func setByHost[T any](list []T, h T, host func(T) string) []T {
	for i := range list {
		if host(list[i]) == host(h) {
			list[i] = h
			return list
		}
	}
	return append(list, h)
}
